"""`LoadedModels`: what `load_generator` loaded, as one plain object the renderer and run writer share.

Everything but the transformers is loaded once and shared by both sides: tokenizer, umT5 text
encoder, VAE and the scheduler config. A LoRA finetune shares even the base transformer weights
(its adapter is switched per side), so `finetuned_transformers` is then the same list of objects
as `baseline_transformers`. Nothing here renders or writes; the small facts both of those read
(sizes the transformers accept, which weights a side runs on) are answered here, once.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import InputError
from . import finetune as ft
from . import hardware
from . import speed_adapter as sa
from .comparison import FINETUNED_MODEL
from .placement import module_bytes
from .presets import Preset, size_limits


@dataclass(eq=False)
class LoadedModels:
    """The loaded modules of one preset, where they are placed, and the weights they came from."""

    preset: Preset
    tokenizer: Any
    text_encoder: torch.nn.Module
    vae: torch.nn.Module
    scheduler_class: type  # a fresh scheduler is made per run: schedulers keep per-run state
    scheduler_config: dict[str, Any]
    baseline_transformers: list[torch.nn.Module]
    finetuned_transformers: list[torch.nn.Module]  # empty without a finetune
    finetune: ft.FinetuneSource | None
    speed_adapter: sa.SpeedAdapter | None = None  # loaded under both sides
    lora_scale: float = 1.0
    baseline_location: str = ""
    baseline_revision: str | None = None
    placement: hardware.Placement = field(default_factory=lambda: hardware.Placement("cpu", "cpu", "cpu", False))
    attention: str = "sdpa"
    attention_backend: str = "native"  # what `attention` resolved to on this machine
    compiled: bool = False
    first_block_cache: float = 0.0
    vae_tiling: bool = False
    settings_dir: Path = Path(".studio")  # where MagCache calibrations are looked up (read per run)
    precision: str = "default"  # how the transformers' weights are stored (see precision)
    # One render at a time: both sides and every caller share these modules.
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def shares_base(self) -> bool:
        return self.finetune is not None and self.finetune.kind == "lora"

    @property
    def has_finetune(self) -> bool:
        return self.finetune is not None

    @property
    def fps(self) -> int:
        return self.preset.fps

    @property
    def size_multiple(self) -> int:
        patch = self.baseline_transformers[0].config.patch_size
        return self.vae.config.scale_factor_spatial * patch[1]

    @property
    def size_limits(self) -> tuple[int, int]:
        """(largest side, most frames) the loaded transformers' rotary position tables cover."""
        limits = [size_limits(t.config.rope_max_seq_len, t.config.patch_size, self.vae.config.scale_factor_spatial,
                              self.vae.config.scale_factor_temporal)
                  for t in self.baseline_transformers + self.finetuned_transformers]
        return min(side for side, _ in limits), min(frames for _, frames in limits)

    def set_lora_scale(self, scale: float) -> None:
        if not 0.0 <= float(scale) <= 2.0:
            raise InputError(f"must be between 0 and 2, got {scale}", "lora_scale")
        self.lora_scale = float(scale)

    def transformers_of(self, which: str) -> list[torch.nn.Module]:
        return self.finetuned_transformers if which == FINETUNED_MODEL else self.baseline_transformers

    def model_location(self, which: str) -> str:
        """Where model `which` was loaded from (what its MagCache calibration is keyed by)."""
        return self.finetune.location if which == FINETUNED_MODEL else self.baseline_location

    def distinct_modules(self) -> list[torch.nn.Module]:
        modules = [self.text_encoder, self.vae] + self.baseline_transformers
        if not self.shares_base:
            modules += self.finetuned_transformers
        return modules

    def resident_bytes(self) -> int:
        return sum(module_bytes(m) for m in self.distinct_modules())
