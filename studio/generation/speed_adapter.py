"""The speed adapter slot: a step-distilled LoRA under both sides, and the sampling it was distilled for.

A Lightning-style Wan2.2 LoRA turns the 40-50 step, guidance-5 sampler into a 4-step one without
guidance. For a fair comparison the zero-shot side needs the same shortcut as the finetuned one,
so the adapter goes into every transformer that renders: the baseline's (where the zero-shot side
runs with "speed" alone and a LoRA finetune's side with "speed" and "finetune" together) and a
full-weight finetune's own copies. A two-expert A14B baseline gets it in both experts.

The slot is classified and fitted to the baseline by the finetune's own code (`finetune`); only a
LoRA is accepted. The sampling it needs comes from an optional sidecar JSON beside the weights:

    {"steps": 4, "guidance_scale": 1.0, "guidance_scale_2": 1.0, "flow_shift": 5.0}

(`guidance_scale_2` for A14B's low-noise expert, `flow_shift` the scheduler's shift; both
optional). Those values are the run's defaults: explicit values win over them, and they win over
the speed profile's. Without a sidecar a Lightning-style adapter gets 4 steps at guidance 1.0.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError
from . import finetune as ft
from .finetune import SIDECAR_NAME, has_sidecar, sidecar_path

ADAPTER_NAME = "speed"
FIELD = "speed_adapter"
# What Lightning-style 4-step Wan2.2 LoRAs are distilled for (guidance 1.0 = no negative branch).
DEFAULT_STEPS = 4
DEFAULT_GUIDANCE = 1.0
# Sidecar key -> the GenerationSettings value it sets by default.
SIDECAR_KEYS = {"steps": "steps", "guidance_scale": "guidance", "guidance_scale_2": "guidance_2",
                "flow_shift": "shift"}


@dataclass(frozen=True)
class SpeedAdapter:
    """A speed LoRA and the sampling defaults it brings (from its sidecar, else Lightning's)."""

    source: ft.FinetuneSource
    steps: int = DEFAULT_STEPS
    guidance: float = DEFAULT_GUIDANCE
    guidance_2: float | None = None
    shift: float | None = None
    sidecar: Path | None = None

    @property
    def location(self) -> str:
        return self.source.location

    def defaults(self) -> dict[str, Any]:
        """The settings this adapter sets unless given explicitly (None: the preset's stays)."""
        values = {"steps": self.steps, "guidance": self.guidance, "guidance_2": self.guidance_2,
                  "shift": self.shift}
        return {name: value for name, value in values.items() if value is not None}

    def describe(self) -> str:
        shift = "" if self.shift is None else f", shift {self.shift:g}"
        return f"{self.steps} steps, guidance {self.guidance:g}{shift}"



def describe_speed_adapter(location: Any) -> SpeedAdapter | None:
    """The speed adapter at `location` (a LoRA file or folder, or a hub id), checked from its path,
    tensor names and sidecar alone; None for an empty setting. No weights are loaded."""
    if location is None or not str(location).strip():
        return None
    location = str(location).strip()
    path = Path(location).expanduser()
    if not path.exists() and not ft._looks_local(location):  # a hub id: its snapshot's files
        path = Path(_hub_folder(location))
    source = ft.classify_finetuned(str(path), field=FIELD)
    if source.kind != "lora":
        what = "a full transformer file" if source.kind == "transformer" else "a diffusers model folder"
        raise InputError(f"{location} is {what}, not a LoRA; a speed adapter is a step-distilled LoRA "
                         "(.safetensors with lora_ tensors, or a folder holding one)", FIELD)
    # The location as given is what run.json records (a hub id stays a hub id); the files are local.
    source = ft.FinetuneSource("lora", location, weight_file=source.weight_file, expert_2_file=source.expert_2_file)
    sidecar = sidecar_path(path, Path(source.weight_file))
    if not sidecar.is_file():
        return SpeedAdapter(source)
    return SpeedAdapter(source, **read_sidecar(sidecar), sidecar=sidecar)


def read_sidecar(path: Path) -> dict[str, Any]:
    """The sidecar's values under GenerationSettings' names; anything unknown or out of range is refused."""
    from .settings import GUIDANCE_RANGE, SHIFT_RANGE, STEPS_RANGE

    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"{path} is not readable JSON ({exc})", FIELD) from None
    if not isinstance(data, dict):
        raise InputError(f"{path} must hold one JSON object such as {{\"steps\": 4, \"guidance_scale\": 1.0}}", FIELD)
    unknown = sorted(set(data) - set(SIDECAR_KEYS) - {"description"})
    if unknown:
        raise InputError(f"{path} has unknown key {unknown[0]!r}; it takes {', '.join(SIDECAR_KEYS)} "
                         "(and a description)", FIELD)
    if "steps" not in data:
        raise InputError(f"{path} names no steps; a speed adapter's sidecar says how many steps it was "
                         "distilled for", FIELD)
    bounds = {"steps": STEPS_RANGE, "guidance_scale": GUIDANCE_RANGE, "guidance_scale_2": GUIDANCE_RANGE,
              "flow_shift": SHIFT_RANGE}
    values: dict[str, Any] = {}
    for key, name in SIDECAR_KEYS.items():
        if key not in data:
            continue
        value, (low, high) = data[key], bounds[key]
        whole = key == "steps"
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or (whole and value != int(value)) or not low <= value <= high:
            kind = "a whole number" if whole else "a number"
            raise InputError(f"{path}: {key} must be {kind} from {low:g} to {high:g}, got {value!r}", FIELD)
        values[name] = int(value) if whole else float(value)
    return values


def _hub_folder(repo_id: str) -> str:
    """A hub adapter's local snapshot (its weights and sidecar only), downloaded when needed."""
    from ..errors import ModelLoadError
    from ..hub import resolve_model_location

    location = resolve_model_location(repo_id, "CHAI_STUDIO_SPEED_ADAPTER or --speed-adapter")
    if Path(location).exists():
        return location
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(repo_id, allow_patterns=["*.safetensors", "*.json"])
    except Exception as exc:  # noqa: BLE001 - any hub failure means the adapter cannot be had
        raise ModelLoadError(f"could not download speed adapter {repo_id!r} ({exc}); check --speed-adapter") from exc


@dataclass(frozen=True)
class SpeedAdapterChoice:
    label: str  # folder or file name and the sampling the adapter brings
    location: str


def list_speed_adapters(models_dir: str | Path) -> list[SpeedAdapterChoice]:
    """LoRAs one level below `models_dir` that carry a speed sidecar (what marks a LoRA as a speed
    adapter rather than a finetune), sorted by name. Unusable entries are left out, never raised."""
    root = Path(models_dir).expanduser()
    if not root.is_dir():
        return []
    found = []
    for entry in sorted(root.iterdir(), key=lambda p: p.name.lower()):
        if not has_sidecar(entry):
            continue
        try:
            adapter = describe_speed_adapter(str(entry))
        except InputError:
            continue
        found.append(SpeedAdapterChoice(f"{entry.name} (speed LoRA: {adapter.describe()})", str(entry)))
    return found
