"""`SideBySideGenerator`: one prompt, one seed, one set of settings, two Wan2.2 models.

Everything but the transformers is loaded once and shared: tokenizer, umT5 text encoder, VAE and
the scheduler config. The prompt and negative prompt go through the text encoder once (one
batched forward) and both runs receive the embeddings; both start from the same initial noise,
drawn on the CPU from the seed so it does not depend on the device. A LoRA finetune shares even
the base transformer weights: the adapter is disabled for the zero-shot run and enabled (at
`lora_scale`) for the finetuned one.

The class is composed of one mixin per concern, each in its own module: `loading` (from_config
and the checks that refuse a mismatched model), `placement` (devices and offload hooks),
`rendering` (the denoising stages) and `run_writing` (generate and the run record). This module
holds what they share: the loaded modules and the checks on a request.
"""

from __future__ import annotations

import threading
from pathlib import Path

from PIL import Image

from ..errors import InputError
from . import finetune as ft
from . import hardware
from . import speed_adapter as sa
from .comparison import Side, plan_sides, resolve_mode
from .loading import LoadingMixin, pinned_pipeline_class
from .placement import PlacementMixin
from .presets import Preset, size_limits
from .preview import LatentPreviewer
from .rendering import RenderingMixin
from .run_records import MAX_PROMPT_CHARS
from .run_writing import RunWritingMixin
from .settings import GenerationSettings



class SideBySideGenerator(LoadingMixin, PlacementMixin, RenderingMixin, RunWritingMixin):
    """Holds the shared components and the two models; `generate` writes one comparison run."""

    def __init__(self, *, preset: Preset, tokenizer, text_encoder, vae, scheduler, baseline_transformers: list,
                 finetuned_transformers: list, finetune: ft.FinetuneSource | None, lora_scale: float = 1.0,
                 baseline_location: str = "", baseline_revision: str | None = None,
                 placement: hardware.Placement | None = None, attention: str = "sdpa",
                 first_block_cache: float = 0.0, vae_tiling: bool = False, settings_dir: str | Path = ".studio",
                 precision: str = "default", speed_adapter: sa.SpeedAdapter | None = None):
        from diffusers import WanImageToVideoPipeline, WanPipeline
        from diffusers.video_processor import VideoProcessor

        self.preset = preset
        self.tokenizer = tokenizer
        self.text_encoder = text_encoder
        self.vae = vae
        self.scheduler_config = dict(scheduler.config)
        self.scheduler_class = type(scheduler)
        self.baseline_transformers = list(baseline_transformers)
        self.finetuned_transformers = list(finetuned_transformers)
        self.finetune = finetune
        self.speed_adapter = speed_adapter  # loaded under both sides (see speed_adapter)
        self.lora_scale = lora_scale
        self.baseline_location = baseline_location
        self.baseline_revision = baseline_revision
        self.placement = placement or hardware.Placement("cpu", "cpu", "cpu", False)
        self.attention = attention
        self.attention_backend = "native"  # what `attention` resolved to on this machine (set when prepared)
        self.compiled = False
        self.first_block_cache = first_block_cache
        self.vae_tiling = vae_tiling
        self.settings_dir = Path(settings_dir)  # where MagCache calibrations are looked up
        self.precision = precision  # how the transformers' weights are stored (see precision)
        self._t2v_class = pinned_pipeline_class(WanPipeline)
        self._i2v_class = pinned_pipeline_class(WanImageToVideoPipeline)
        self._lock = threading.Lock()  # one generation at a time: the modules are shared
        self._previewer: LatentPreviewer | None = None
        self._hashes: dict[str, str | None] | None = None
        # Encodes text only (no transformer): the one place the text encoder runs.
        self.encoder_pipe = WanPipeline(tokenizer=tokenizer, text_encoder=text_encoder, vae=vae,
                                        scheduler=scheduler, transformer=None, transformer_2=None)
        self.video_processor = VideoProcessor(vae_scale_factor=vae.config.scale_factor_spatial)

    @property
    def shares_base(self) -> bool:
        return self.finetune is not None and self.finetune.kind == "lora"

    @property
    def has_finetune(self) -> bool:
        return self.finetune is not None

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

    @property
    def fps(self) -> int:
        return self.preset.fps

    def set_lora_scale(self, scale: float) -> None:
        if not 0.0 <= float(scale) <= 2.0:
            raise InputError(f"must be between 0 and 2, got {scale}", "lora_scale")
        self.lora_scale = float(scale)

    def plan(self, prompt: str, mode: str | None = None, short_prompt: str | None = None) -> tuple[str, list[Side]]:
        """The mode this generator runs for these inputs, and its sides (left first)."""
        chosen = resolve_mode(mode, self.has_finetune, short_prompt)
        return chosen, plan_sides(chosen, prompt, short_prompt, self.has_finetune)

    def check_request(self, prompt: str, settings: GenerationSettings, image: Image.Image | None) -> None:
        if not isinstance(prompt, str) or not prompt.strip():
            raise InputError("is empty; write or compose a prompt first", "prompt")
        if len(prompt) > MAX_PROMPT_CHARS:
            raise InputError(f"is {len(prompt)} characters; keep it under {MAX_PROMPT_CHARS}", "prompt")
        multiple = self.size_multiple
        for name in ("height", "width"):
            if getattr(settings, name) % multiple:
                raise InputError(f"must be a multiple of {multiple} for this model, got {getattr(settings, name)}", name)
        if (settings.num_frames - 1) % self.vae.config.scale_factor_temporal:
            raise InputError(f"must be 4k+1 frames, got {settings.num_frames}", "frames")
        # A size past the transformer's position table fails deep in the model; refuse it here.
        max_side, max_frames = self.size_limits
        why = f"the transformer of {self.baseline_location} (rope_max_seq_len " \
              f"{self.baseline_transformers[0].config.rope_max_seq_len})"
        for name in ("height", "width"):
            if getattr(settings, name) > max_side:
                raise InputError(f"must be at most {max_side} pixels for {why}, got {getattr(settings, name)}", name)
        if settings.num_frames > max_frames:
            raise InputError(f"must be at most {max_frames} for {why}, got {settings.num_frames}", "frames")
        if self.preset.two_experts and settings.guidance_2 is None:
            raise InputError(f"{self.preset.label} needs a low-noise guidance scale", "guidance_2")
        if image is not None:
            if not self.preset.supports_image:
                raise InputError(f"{self.preset.label} generates from text only; use the ti2v-5b preset to start "
                                 "from an image", "image")
            if not isinstance(image, Image.Image):
                raise InputError("expected an image", "image")

