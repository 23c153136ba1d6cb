"""What a training run leaves in LORA_DIR: metrics, loss plot, checkpoints, the LoRA and its card.

    LORA_DIR/
      pytorch_lora_weights.safetensors          the LoRA (diffusers format; the high-noise expert for A14B)
      pytorch_lora_weights_transformer_2.safetensors   A14B only: the low-noise expert's LoRA
      README.md          model card: dataset, hyper-parameters, base model and revision, final losses
      training.json      the same facts for programs
      metrics.jsonl      one row per logged step: step, loss, lr, ...; val_loss on validation steps
      loss.png           training and validation loss
      checkpoints/step-NNNNNN/state.pt   LoRA, optimizer and schedule state for --resume
      validation/step-NNNNNN/...         side-by-side renders (base vs LoRA so far)
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..generation.finetune import LORA_WEIGHT_NAME, LORA_WEIGHT_NAME_2

METRICS = "metrics.jsonl"
PLOT = "loss.png"
CARD = "README.md"
SUMMARY = "training.json"
CHECKPOINTS = "checkpoints"
STATE_FILE = "state.pt"


class MetricsLog:
    def __init__(self, root: Path):
        self.path = root / METRICS

    def rows(self) -> list[dict[str, Any]]:
        if not self.path.is_file():
            return []
        rows = []
        for line in self.path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except ValueError:  # a line cut short by a killed run
                continue
        return rows

    def truncate_after(self, step: int) -> None:
        """Drop rows past a checkpoint we resume from: those steps will be trained again."""
        kept = [r for r in self.rows() if r.get("step", 0) <= step]
        self.path.write_text("".join(json.dumps(r) + "\n" for r in kept))

    def append(self, row: dict[str, Any]) -> None:
        with open(self.path, "a") as handle:
            handle.write(json.dumps(row) + "\n")


def checkpoint_dirs(root: Path) -> list[Path]:
    folder = root / CHECKPOINTS
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("step-*") if (p / STATE_FILE).is_file())


def save_checkpoint(root: Path, step: int, state: dict[str, Any], keep: int, rank: int = 0,
                    optimizer_shard: dict[str, Any] | None = None, barrier=lambda: None) -> Path:
    """Write checkpoints/step-N/state.pt (rank 0) and, under FSDP, each rank's optimizer-rankR.pt, through
    a temporary folder renamed into place once all are written; then prune old checkpoints.
    Every rank calls this; `barrier` waits for all of them."""
    import torch

    final = root / CHECKPOINTS / f"step-{step:06d}"
    staging = root / CHECKPOINTS / f".step-{step:06d}.partial"
    if rank == 0:
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        torch.save(state, staging / STATE_FILE)
    barrier()
    if optimizer_shard is not None:
        torch.save(optimizer_shard, staging / f"optimizer-rank{rank}.pt")
    barrier()
    if rank == 0:
        shutil.rmtree(final, ignore_errors=True)
        staging.rename(final)
        for old in checkpoint_dirs(root)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    barrier()
    return final


def load_optimizer_shard(root: Path, rank: int) -> dict[str, Any]:
    import torch

    return torch.load(checkpoint_dirs(root)[-1] / f"optimizer-rank{rank}.pt", map_location="cpu", weights_only=False)


def load_latest_checkpoint(root: Path) -> dict[str, Any] | None:
    import torch

    found = checkpoint_dirs(root)
    if not found:
        return None
    return torch.load(found[-1] / STATE_FILE, map_location="cpu", weights_only=False)


def save_lora(root: Path, layers: list[dict[str, Any]], configs: list[dict[str, Any]]) -> list[Path]:
    """The LoRA in diffusers' format, one file per expert, readable by `pipe.load_lora_weights`.

    `configs` are the experts' peft `LoraConfig.to_dict()`: diffusers writes each into its file's
    safetensors header and `load_lora_weights` rebuilds the adapter from it, so rank, alpha (the
    alpha / rank scale) and targets come back as trained. Without it the loader would guess
    alpha = rank from the tensor shapes, a scale of 1 whatever alpha was trained with."""
    from diffusers import WanPipeline

    names = [LORA_WEIGHT_NAME, LORA_WEIGHT_NAME_2][: len(layers)]
    for name, state_dict, config in zip(names, layers, configs, strict=True):
        WanPipeline.save_lora_weights(root, transformer_lora_layers=state_dict, weight_name=name,
                                      transformer_lora_adapter_metadata=dict(config))
    return [root / n for n in names]


def write_loss_plot(rows: list[dict[str, Any]], path: Path, width: int = 720, height: int = 360) -> Path:
    """Training loss (grey) and validation loss (orange) against step, log-scaled, drawn with PIL."""
    from PIL import Image, ImageDraw

    train = [(r["step"], r["loss"]) for r in rows if _finite(r.get("loss"))]
    val = [(r["step"], r["val_loss"]) for r in rows if _finite(r.get("val_loss"))]
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    left, top, right, bottom = 60, 20, width - 20, height - 40
    draw.rectangle((left, top, right, bottom), outline=(120, 120, 120))
    points = train + val
    if points:
        steps = [s for s, _ in points]
        values = [math.log10(max(v, 1e-12)) for _, v in points]
        s_lo, s_hi = min(steps), max(max(steps), min(steps) + 1)
        v_lo, v_hi = min(values), max(max(values), min(values) + 1e-6)

        def xy(step: float, value: float) -> tuple[float, float]:
            x = left + (step - s_lo) / (s_hi - s_lo) * (right - left)
            y = bottom - (math.log10(max(value, 1e-12)) - v_lo) / (v_hi - v_lo) * (bottom - top)
            return x, y

        for series, colour in ((train, (110, 110, 110)), (val, (230, 120, 20))):
            coords = [xy(s, v) for s, v in series]
            if len(coords) > 1:
                draw.line(coords, fill=colour, width=2)
            for x, y in coords[-1:] if series is train else coords:
                draw.ellipse((x - 3, y - 3, x + 3, y + 3), fill=colour)
        draw.text((left, bottom + 8), f"step {s_lo}", fill="black")
        draw.text((right - 80, bottom + 8), f"step {s_hi}", fill="black")
        draw.text((4, top), f"{10 ** v_hi:.3g}", fill="black")
        draw.text((4, bottom - 10), f"{10 ** v_lo:.3g}", fill="black")
    draw.text((left + 8, top + 4), "loss (grey: training, orange: validation; log scale)", fill="black")
    image.save(path)
    return path


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def write_model_card(root: Path, summary: dict[str, Any]) -> Path:
    """README.md for the LoRA folder: enough to know what it is, how it was made and how to load it."""
    options, dataset, base = summary["options"], summary["dataset"], summary["base_model"]
    losses = summary["final"]
    rows = "\n".join(f"| `{k}` | `{v}` |" for k, v in options.items())
    files = ", ".join(f"`{Path(f).name}`" for f in summary["files"])
    targets = ", ".join(f"`{t}`" for t in options["target_modules"])
    text = f"""---
base_model: {base['location']}
library_name: diffusers
tags:
  - lora
  - wan2.2
  - text-to-video
  - chai
---

# CHAI-finetuned {base['label']} (LoRA)

A LoRA for the {base['label']} transformer trained with CHAI Cinematic Prompt Studio on structured
captions written by the CHAI captioner, so that the model follows precise shot language (shot size,
focus, angle, camera movement and speed).

- **Base model:** `{base['location']}` (revision `{base.get('revision') or 'local'}`), preset `{base['preset']}`
- **Files:** {files}
- **LoRA:** rank {options['rank']}, alpha {options['alpha']:g} (updates scaled by {options['alpha'] / options['rank']:g}),
  on {targets} in every transformer block; rank, alpha and targets are also in each file's header
- **Dataset:** `{dataset['path']}`: {dataset['train_rows']} training and {dataset['val_rows']} validation shots
  from {dataset['clips']} clips, {dataset['frames']} frames at {dataset['width']}x{dataset['height']}
  ({dataset['fps']} fps), captioned by `{dataset['captioner']}`
- **Training:** {summary['steps']} steps on {summary['world_size']} process(es), {summary['seconds'] / 60:.1f} min
- **Final losses:** training {_fmt(losses.get('loss'))}, validation {_fmt(losses.get('val_loss'))}
  (validation before training: {_fmt(losses.get('first_val_loss'))})

## Use

```bash
python -m studio generate --prompt "..." --finetuned {root}
```

or in diffusers: `pipe.load_lora_weights("{root}", weight_name="{LORA_WEIGHT_NAME}")`.

## Hyper-parameters

| option | value |
|---|---|
{rows}
"""
    path = root / CARD
    path.write_text(text)
    (root / SUMMARY).write_text(json.dumps(summary, indent=2) + "\n")
    return path


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if _finite(value) else "n/a"


def check_output_folder(root: Path, resume: bool) -> None:
    if root.exists() and not root.is_dir():
        raise InputError(f"{root} is a file; --out must name a folder", "out")
    if resume:
        if not checkpoint_dirs(root):
            raise InputError(f"{root} has no checkpoint to resume from; run without --resume to start", "resume")
        return
    if root.is_dir() and (checkpoint_dirs(root) or (root / LORA_WEIGHT_NAME).exists()):
        raise InputError(f"{root} already holds a training run; pass --resume to continue it or choose another "
                         "--out", "out")
