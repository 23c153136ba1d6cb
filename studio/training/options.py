"""`TrainOptions`: every hyper-parameter of a LoRA run, checked before anything is loaded."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from ..errors import InputError

LR_SCHEDULES = ("constant", "constant_with_warmup", "linear", "cosine")
MIXED_PRECISION = ("auto", "no", "bf16")
# The layers DiffSynth-Studio's Wan LoRA recipe adapts (q, k, v, o, ffn.0, ffn.2), in diffusers'
# WanTransformer3DModel names. A suffix matches in every block, so the four projections are those
# of both the self-attention (attn1) and the cross-attention (attn2), as DiffSynth's q, k, v, o
# match both of its attention modules: the cross-attention is where the prompt's shot language
# enters, the self-attention and the feed-forward are where motion and framing are formed.
DEFAULT_TARGETS = ("to_q", "to_k", "to_v", "to_out.0", "ffn.net.0.proj", "ffn.net.2")
# Options that change what the weights become: a resumed run must keep them, or it is another run.
RESUME_KEYS = ("rank", "alpha", "target_modules", "learning_rate", "lr_schedule", "warmup_steps", "batch_size",
               "gradient_accumulation", "mixed_precision", "seed", "shift", "first_frame_prob", "max_grad_norm",
               "weight_decay", "val_fraction", "steps")


@dataclass(frozen=True)
class TrainOptions:
    steps: int = 1000
    rank: int = 32
    alpha: float = 32.0
    target_modules: tuple[str, ...] = DEFAULT_TARGETS
    learning_rate: float = 1e-4
    lr_schedule: str = "constant_with_warmup"
    warmup_steps: int = 0
    batch_size: int = 1
    gradient_accumulation: int = 1
    gradient_checkpointing: bool = True
    mixed_precision: str = "auto"  # auto = bf16 on CUDA, no (float32) on the CPU
    seed: int = 0
    shift: float | None = None  # timestep shift for drawing sigmas; None = the preset's inference shift
    first_frame_prob: float = 0.5  # TI2V: share of samples whose first latent frame stays clean
    max_grad_norm: float = 1.0
    weight_decay: float = 0.0
    checkpoint_every: int = 250
    keep_checkpoints: int = 3
    validate_every: int = 250
    render_every: int = 500  # side-by-side renders of fixed prompts; 0 = never
    render_steps: int = 20
    validation_prompts: int = 2
    val_fraction: float = 0.1
    log_every: int = 10

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["target_modules"] = list(self.target_modules)
        return data

    def resume_fingerprint(self) -> dict[str, Any]:
        data = self.to_dict()
        return {k: data[k] for k in RESUME_KEYS if k != "steps"}

    @classmethod
    def from_user(cls, **values: Any) -> TrainOptions:
        """Convert flag values (strings or numbers; None = default) and check every one."""
        from .. import values as numbers

        defaults = cls()
        out: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = values.get(f.name)
            if raw is None:
                continue
            if f.name == "target_modules":
                names = [n.strip() for n in (raw.split(",") if isinstance(raw, str) else raw) if n.strip()]
                if not names:
                    raise InputError("name at least one module (e.g. to_q,to_k,to_v,to_out.0)", "target_modules")
                out[f.name] = tuple(names)
            elif f.name in ("lr_schedule", "mixed_precision"):
                out[f.name] = str(raw)
            elif isinstance(getattr(defaults, f.name), bool):
                out[f.name] = bool(raw)
            elif f.name in ("alpha", "learning_rate", "shift", "first_frame_prob", "max_grad_norm", "weight_decay",
                            "val_fraction"):
                out[f.name] = numbers.number(raw, f.name, say_text=False)
            else:
                out[f.name] = numbers.whole(raw, f.name, say_text=False)
        if "alpha" not in out and "rank" in out:
            out["alpha"] = float(out["rank"])  # alpha = rank: a scale of 1, the usual starting point
        options = cls(**out)
        options.check()
        return options

    def check(self) -> None:
        def need(ok: bool, name: str, message: str) -> None:
            if not ok:
                raise InputError(message, name)

        need(1 <= self.steps <= 10_000_000, "steps", f"must be from 1 to 10,000,000, got {self.steps}")
        need(1 <= self.rank <= 1024, "rank", f"must be from 1 to 1024, got {self.rank}")
        need(0 < self.alpha <= 4096, "alpha", f"must be more than 0 and at most 4096, got {self.alpha:g}")
        need(0 < self.learning_rate <= 1.0, "learning_rate",
             f"must be more than 0 and at most 1 (try 1e-4), got {self.learning_rate:g}")
        need(self.lr_schedule in LR_SCHEDULES, "lr_schedule",
             f"must be one of {', '.join(LR_SCHEDULES)}, got {self.lr_schedule!r}")
        need(0 <= self.warmup_steps <= self.steps, "warmup_steps",
             f"must be from 0 to the number of steps ({self.steps}), got {self.warmup_steps}")
        need(1 <= self.batch_size <= 1024, "batch_size", f"must be from 1 to 1024, got {self.batch_size}")
        need(1 <= self.gradient_accumulation <= 1024, "gradient_accumulation",
             f"must be from 1 to 1024, got {self.gradient_accumulation}")
        need(self.mixed_precision in MIXED_PRECISION, "mixed_precision",
             f"must be one of {', '.join(MIXED_PRECISION)}, got {self.mixed_precision!r}")
        need(0 <= self.seed <= 2**32 - 1, "seed", f"must be from 0 to {2**32 - 1}, got {self.seed}")
        need(self.shift is None or 0.5 <= self.shift <= 30, "shift", f"must be from 0.5 to 30, got {self.shift}")
        need(0 <= self.first_frame_prob <= 1, "first_frame_prob",
             f"must be from 0 to 1, got {self.first_frame_prob:g}")
        need(self.max_grad_norm > 0 and math.isfinite(self.max_grad_norm), "max_grad_norm",
             f"must be more than 0, got {self.max_grad_norm:g}")
        need(0 <= self.weight_decay <= 1, "weight_decay", f"must be from 0 to 1, got {self.weight_decay:g}")
        for name in ("checkpoint_every", "validate_every", "log_every"):
            need(getattr(self, name) >= 1, name, f"must be 1 or more, got {getattr(self, name)}")
        need(self.render_every >= 0, "render_every", f"must be 0 (never) or more, got {self.render_every}")
        need(1 <= self.render_steps <= 200, "render_steps", f"must be from 1 to 200, got {self.render_steps}")
        need(0 <= self.validation_prompts <= 16, "validation_prompts",
             f"must be from 0 to 16, got {self.validation_prompts}")
        need(1 <= self.keep_checkpoints <= 1000, "keep_checkpoints",
             f"must be from 1 to 1000, got {self.keep_checkpoints}")
        need(0 < self.val_fraction < 1, "val_fraction", f"must be between 0 and 1, got {self.val_fraction:g}")
