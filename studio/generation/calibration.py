"""MagCache calibrations: the magnitude ratios of one checkpoint, measured once and kept on disk.

MagCache skips a step when the change its ratios predict is small, so ratios measured on one model
are wrong for another (a finetune included). `python -m studio calibrate-cache` renders one plain
generation per model of a preset with diffusers' MagCache in calibration mode and writes each
model's ratios, one list per transformer (expert), to

    <settings_dir>/magcache/<preset>-<baseline|finetuned>-<location digest>-<steps>steps.json

A `--step-cache magcache` run takes the file for the loaded weights (same preset, location and
content hash) measured at the nearest step count; diffusers interpolates it to the run's steps.
The tiny presets differ from the real ones only in their default sizes, so they share the key.
Nothing here loads a model, so a missing calibration is refused before any model loads.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..tiny.locations import model_locations
from . import provenance

SCHEMA = "chai-studio/magcache-calibration"
SCHEMA_VERSION = 1
FOLDER = "magcache"
FIELD = "step_cache"


@dataclass(frozen=True)
class Calibration:
    path: Path
    preset: str
    tiny: bool
    model: str  # BASELINE_MODEL or FINETUNED_MODEL
    location: str  # model_key of the weights it was measured on
    sha256: str | None  # their content hash (None for hub snapshots, whose path names the revision)
    steps: int  # the step count it was measured at
    ratios: tuple[tuple[float, ...], ...]  # one list per transformer, over the steps that expert ran


def model_key(location: str) -> str:
    """The location that names the weights: a local path made absolute, a hub id as given."""
    path = Path(location).expanduser()
    return str(path.resolve()) if path.exists() else str(location)


def calibration_folder(settings_dir: str | Path) -> Path:
    return Path(settings_dir).expanduser() / FOLDER


def _stem(preset: str, model: str, location: str) -> str:
    digest = hashlib.sha256(model_key(location).encode()).hexdigest()[:12]
    return f"{preset}-{model}-{digest}"


def save_calibration(settings_dir: str | Path, preset: str, tiny: bool, model: str, location: str, steps: int,
                     ratios: list[list[float]], details: dict[str, Any] | None = None) -> Path:
    """Write one model's ratios; a calibration of the same weights at the same steps is replaced."""
    folder = calibration_folder(settings_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot write {folder} ({exc.strerror or exc}); set --settings-dir / "
                         "CHAI_STUDIO_SETTINGS_DIR to a folder you can write", "settings_dir") from exc
    path = folder / f"{_stem(preset, model, location)}-{steps}steps.json"
    record = {"schema": SCHEMA, "version": SCHEMA_VERSION,
              "created": datetime.now(UTC).isoformat(timespec="seconds"), "preset": preset, "tiny": tiny,
              "model": model, "location": model_key(location), "sha256": provenance.local_content_hash(location),
              "steps": steps, "ratios": [[round(float(r), 6) for r in expert] for expert in ratios],
              **(details or {})}
    staged = path.with_suffix(".json.tmp")
    staged.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    staged.replace(path)  # a reader never sees half a file
    return path


def _read(path: Path) -> Calibration | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("schema") != SCHEMA:
            return None
        return Calibration(path, data["preset"], bool(data["tiny"]), data["model"], data["location"],
                           data.get("sha256"), int(data["steps"]),
                           tuple(tuple(float(r) for r in expert) for expert in data["ratios"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None  # not one of ours, or damaged: as if absent (calibrate-cache writes it again)


def find_calibration(settings_dir: str | Path, preset: str, tiny: bool, model: str, location: str,
                     steps: int) -> Calibration:
    """The calibration of these weights at the step count nearest `steps` (the larger on a tie);
    refused, with the command that makes one, when there is none or the weights have changed.
    `tiny` only shapes that command."""
    folder = calibration_folder(settings_dir)
    stem = _stem(preset, model, location)
    key = model_key(location)
    found = [c for c in map(_read, sorted(folder.glob(f"{stem}-*steps.json"))) if c is not None
             and (c.preset, c.model, c.location) == (preset, model, key)]
    command = f"python -m studio calibrate-cache --preset {preset}{' --tiny' if tiny else ''}"
    if not found:
        raise InputError(f"MagCache has no calibration for the {model} weights {key} ({preset}) in {folder}; "
                         f"run `{command}` first, or choose another step cache", FIELD)
    current = provenance.local_content_hash(location)
    same = [c for c in found if c.sha256 == current]
    if not same:
        raise InputError(f"the {model} weights at {key} changed since MagCache was calibrated ({found[0].path.name}); "
                         f"run `{command}` again", FIELD)
    return min(same, key=lambda c: (abs(c.steps - steps), -c.steps))


def planned_locations(config, preset_name: str) -> dict[str, str]:
    """Where the baseline and finetune of `config` will load from, worked out without loading
    (or, in tiny mode, building) anything: the keys the generator's calibrations are found by."""
    from .finetune import classify_finetuned

    provider = model_locations(config)
    locations = {"baseline": provider.resolved_baseline(preset_name, build=False)}
    if str(config.finetuned or "").strip():
        locations["finetuned"] = classify_finetuned(config.finetuned).location
    elif provider.finetuned(preset_name, build=False):
        locations["finetuned"] = provider.finetuned(preset_name, build=False)  # the tiny LoRA
    return locations


def check_calibrated(config, preset_name: str, models: list[str], steps: int) -> None:
    """Refuse a MagCache run, before loading, when a model it runs has no calibration."""
    tiny = model_locations(config).preset(preset_name).tiny
    locations = planned_locations(config, preset_name)
    for model in models:
        if model in locations:
            find_calibration(config.settings_dir, preset_name, tiny, model, locations[model], steps)
