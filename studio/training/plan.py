"""Checking a training request before anything is loaded: dataset, preset, options, output folder."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..config import StudioConfig
from ..errors import InputError, ModelLoadError
from ..generation.loading import baseline_location
from ..generation.presets import Preset, get_preset
from . import artifacts
from .folder import read_header, read_manifest
from .options import TrainOptions

EXPERTS = ("transformer", "transformer_2")


@dataclass
class TrainingPlan:
    """A checked request: everything needed to train, nothing loaded yet."""

    config: StudioConfig
    dataset: Path
    out: Path
    options: TrainOptions
    preset: Preset
    header: dict[str, Any]
    train_rows: list[dict[str, Any]]
    val_rows: list[dict[str, Any]]
    resume: bool = False
    stop_after: int | None = None


def plan_training(config: StudioConfig, dataset: str | Path, out: str | Path, options: TrainOptions,
                  preset: str | None = None, resume: bool = False, stop_after: int | None = None) -> TrainingPlan:
    """Check the dataset, the options and the output folder before any model is loaded."""
    root = Path(dataset)
    if not root.is_dir():
        raise InputError(f"{root} is not a dataset folder; build one with `python -m studio dataset`", "dataset")
    header = read_header(root)
    rows = read_manifest(root)
    if not rows:
        raise InputError(f"{root} has no training shots (its manifest is empty; see skipped.jsonl for why)",
                         "dataset")
    chosen = get_preset(preset or header["preset"])
    if header["preset"] != chosen.name:
        raise InputError(f"{root} was built for preset {header['preset']}, not {chosen.name}; build a dataset for "
                         f"{chosen.name} (python -m studio dataset ... --preset {chosen.name})", "preset")
    for row in rows:
        size = (row.get("preset"), row.get("height"), row.get("width"), row.get("frames"))
        if size != (header["preset"], header["height"], header["width"], header["frames"]):
            raise InputError(f"{root}: shot {row.get('key')} was encoded as {size[0]} {size[2]}x{size[1]}, "
                             f"{size[3]} frames, but the dataset is {header['preset']} {header['width']}x"
                             f"{header['height']}, {header['frames']} frames; rebuild it into a new folder",
                             "dataset")
        if not (root / row["latents"]["shard"]).is_file():
            raise InputError(f"{root}: shard {row['latents']['shard']} is missing; run `python -m studio dataset` "
                             "again to rebuild it", "dataset")
    if stop_after is not None and stop_after < 1:
        raise InputError(f"must be 1 or more steps, got {stop_after}", "stop_after")
    artifacts.check_output_folder(Path(out), resume)
    check_baseline_fits(baseline_location(config, chosen), chosen, options.target_modules, root, rows[0])
    train_rows, val_rows = split_rows(rows, options.val_fraction)
    if options.batch_size > len(train_rows):
        raise InputError(f"is {options.batch_size} but the dataset has {len(train_rows)} training shots",
                         "batch_size")
    return TrainingPlan(config, root, Path(out), options, chosen, header, train_rows, val_rows, resume, stop_after)


def check_baseline_fits(location: str, preset: Preset, targets: tuple[str, ...], dataset: Path,
                        row: dict[str, Any]) -> None:
    """The baseline transformer's config against the dataset (latent channels, text width) and the LoRA
    targets (Linear layers of an empty meta-device model), so a mismatch costs no weights loaded."""
    from accelerate import init_empty_weights
    from diffusers import WanTransformer3DModel

    try:
        config = WanTransformer3DModel.load_config(location, subfolder=EXPERTS[0])
    except Exception as exc:  # noqa: BLE001 - hub/IO/config errors all mean no baseline
        raise ModelLoadError(f"could not read the transformer config of baseline {location!r} ({exc}); check "
                             "--baseline / CHAI_STUDIO_BASELINE") from exc
    channels, dim = row["latents"]["shape"][0], row["embeddings"]["dim"]
    if config["in_channels"] != channels or config["text_dim"] != dim:
        raise InputError(f"{dataset} holds {channels}-channel latents and {dim}-wide text embeddings, but the "
                         f"baseline transformer takes {config['in_channels']} channels and {config['text_dim']}-wide "
                         "text; build the dataset with the same --baseline", "dataset")
    with init_empty_weights():
        model = WanTransformer3DModel.from_config(config)
    unknown = [t for t, layers in lora_layers(model, targets).items() if not layers]
    if unknown:
        linears = [name for name, module in model.named_modules() if isinstance(module, torch.nn.Linear)]
        examples = sorted({n.split(".", 2)[-1] for n in linears if n.startswith("blocks.0.")})
        raise InputError(f"{', '.join(unknown)} name no Linear layer of the {preset.label} transformer; "
                         f"per-block layers are {', '.join(examples)} (and proj_out)", "target_modules")


def lora_layers(model: torch.nn.Module, targets: tuple[str, ...]) -> dict[str, list[torch.nn.Linear]]:
    """The Linear layers each target names, matched as peft matches `target_modules`: the whole
    module name or its dotted suffix (so `to_q` is every block's attn1.to_q and attn2.to_q)."""
    return {target: [module for name, module in model.named_modules() if isinstance(module, torch.nn.Linear)
                     and (name == target or name.endswith("." + target))] for target in targets}


def split_rows(rows: list[dict[str, Any]], fraction: float) -> tuple[list[dict], list[dict]]:
    """Hold back a fixed share for validation, chosen by row key (a hash), so reruns agree. A
    one-shot dataset validates on its only shot."""
    ordered = sorted(rows, key=lambda r: r["key"])
    if len(ordered) == 1:
        return ordered, ordered
    count = min(len(ordered) - 1, max(1, round(len(ordered) * fraction)))
    return ordered[count:], ordered[:count]


def dataset_fingerprint(plan: TrainingPlan) -> str:
    keys = sorted(r["key"] for r in plan.train_rows) + ["|val|"] + sorted(r["key"] for r in plan.val_rows)
    return hashlib.sha256("\n".join(keys).encode()).hexdigest()[:16]
