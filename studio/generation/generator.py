"""`SideBySideGenerator`: one prompt, one seed, one set of settings, two Wan2.2 models.

Everything but the transformers is loaded once and shared: tokenizer, umT5 text encoder, VAE and
the scheduler config. The prompt and negative prompt go through the text encoder once (one
batched forward) and both runs receive the embeddings; both start from the same initial noise,
drawn on the CPU from the seed so it does not depend on the device. A LoRA finetune shares even
the base transformer weights: the adapter is disabled for the zero-shot run and enabled (at
`lora_scale`) for the finetuned one.
"""

from __future__ import annotations

import contextlib
import gc
import platform
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..config import StudioConfig
from ..errors import InputError, ModelLoadError, StudioError
from ..hub import resolve_model_location
from . import finetune as ft
from . import hardware, outputs, provenance
from .comparison import BASELINE_MODEL, FINETUNED_MODEL, Side, plan_sides, resolve_mode
from .presets import DEFAULT_PRESET, Preset, get_preset, size_limits
from .preview import LatentPreviewer
from .settings import GenerationSettings

StepCallback = Callable[[str, int, int, "Image.Image | None"], None]
BASELINE, FINETUNED = BASELINE_MODEL, FINETUNED_MODEL
TINY_FOLDERS = {"ti2v-5b": ("wan-ti2v", "finetuned-lora"), "t2v-a14b": ("wan-a14b", "finetuned-lora-a14b")}
MAX_PROMPT_CHARS = 20000


class Cancelled(StudioError):
    """The user stopped the generation; nothing was written."""


@dataclass
class RenderedPair:
    """Both videos as float frames (F, H, W, 3) in [0, 1], before encoding to mp4."""

    baseline: np.ndarray
    finetuned: np.ndarray
    settings: GenerationSettings
    timings: dict[str, float]


@dataclass
class RunResult:
    run_dir: Path
    baseline_video: Path | None  # None in prompt mode (its sides are chai_prompt and short_prompt)
    finetuned_video: Path | None  # None outside finetuned mode
    side_by_side_video: Path | None  # None for a one-sided (baseline) run
    run_json: Path
    posters: dict[str, Path]
    seed: int
    settings: GenerationSettings
    timings: dict[str, float] = field(default_factory=dict)
    mode: str = "finetuned"
    sides: list[Side] = field(default_factory=list)
    videos: dict[str, Path] = field(default_factory=dict)  # side key -> video, left first

    @property
    def left_video(self) -> Path:
        return self.videos[self.sides[0].key]

    @property
    def right_video(self) -> Path | None:
        return self.videos[self.sides[1].key] if len(self.sides) > 1 else None


def _pinned(base: type) -> type:
    """A pipeline class whose execution device can be pinned: in a two-GPU run the finetuned
    pipeline computes on the second GPU while its shared VAE stays on the first."""

    class Pinned(base):
        pinned_device: torch.device | None = None

        @property
        def _execution_device(self):
            return self.pinned_device if self.pinned_device is not None else super()._execution_device

    Pinned.__name__ = Pinned.__qualname__ = base.__name__
    return Pinned


def module_bytes(module: torch.nn.Module | None) -> int:
    if module is None:
        return 0
    return sum(t.numel() * t.element_size() for t in list(module.parameters()) + list(module.buffers()))


def _revision(location: str, loaded_path: str | None) -> str | None:
    """The hub commit of a snapshot (…/snapshots/<hash>/…); None for local folders."""
    if loaded_path and "/snapshots/" in str(loaded_path):
        return str(loaded_path).split("/snapshots/")[1].split("/")[0]
    return None


def library_versions() -> dict[str, str]:
    import importlib.metadata as md

    versions = {"python": platform.python_version()}
    for name in ("torch", "diffusers", "transformers", "peft", "av", "numpy", "accelerate"):
        try:
            versions[name] = md.version(name)
        except md.PackageNotFoundError:
            pass
    return versions


class SideBySideGenerator:
    """Holds the shared components and the two models; `generate` writes one comparison run."""

    def __init__(self, *, preset: Preset, tokenizer, text_encoder, vae, scheduler, baseline_transformers: list,
                 finetuned_transformers: list, finetune: ft.FinetuneSource | None, lora_scale: float = 1.0,
                 baseline_location: str = "", baseline_revision: str | None = None,
                 placement: hardware.Placement | None = None, attention: str = "sdpa",
                 first_block_cache: float = 0.0, vae_tiling: bool = False):
        from diffusers import WanImageToVideoPipeline, WanPipeline

        self.preset = preset
        self.tokenizer = tokenizer
        self.text_encoder = text_encoder
        self.vae = vae
        self.scheduler_config = dict(scheduler.config)
        self.scheduler_class = type(scheduler)
        self.baseline_transformers = list(baseline_transformers)
        self.finetuned_transformers = list(finetuned_transformers)
        self.finetune = finetune
        self.lora_scale = lora_scale
        self.baseline_location = baseline_location
        self.baseline_revision = baseline_revision
        self.placement = placement or hardware.Placement("cpu", "cpu", "cpu", False)
        self.attention = attention
        self.first_block_cache = first_block_cache
        self.vae_tiling = vae_tiling
        self._t2v_class = _pinned(WanPipeline)
        self._i2v_class = _pinned(WanImageToVideoPipeline)
        self._lock = threading.Lock()  # one generation at a time: the modules are shared
        self._previewer: LatentPreviewer | None = None
        self._hashes: dict[str, str | None] | None = None
        # Encodes text only (no transformer): the one place the text encoder runs.
        self.encoder_pipe = WanPipeline(tokenizer=tokenizer, text_encoder=text_encoder, vae=vae,
                                        scheduler=scheduler, transformer=None, transformer_2=None)
        from diffusers.video_processor import VideoProcessor

        self.video_processor = VideoProcessor(vae_scale_factor=vae.config.scale_factor_spatial)

    # -- loading --------------------------------------------------------------------------------
    @classmethod
    def from_config(cls, config: StudioConfig, preset_name: str | None = None) -> SideBySideGenerator:
        """Load the baseline once and the finetuned transformer(s); refuse weights that do not fit."""
        from diffusers import AutoencoderKLWan, WanPipeline

        preset = get_preset(preset_name or DEFAULT_PRESET, tiny=config.tiny)
        baseline, finetuned = config.baseline, config.finetuned
        if config.tiny:
            baseline, finetuned = _tiny_locations(config, preset, finetuned)
        # Cheap path checks before loading anything; no finetune at all is allowed (prompt and
        # baseline modes need none).
        source = ft.classify_finetuned(finetuned) if str(finetuned or "").strip() else None
        device, dtype = config.resolved_device(), config.resolved_dtype()
        if device == "cuda" and not torch.cuda.is_available():
            raise InputError("cuda was asked for but no CUDA GPU is available; use auto or cpu", "device")
        attention_backend = hardware.resolve_attention_backend(config.attention, cuda=device == "cuda")
        if Path(baseline).expanduser().exists() is False and (baseline.startswith(("/", ".", "~"))):
            raise InputError(f"{baseline} does not exist", "baseline")
        baseline = resolve_model_location(baseline, "CHAI_STUDIO_BASELINE or --baseline")
        try:
            # Wan's VAE stays in float32 (bf16 decoding visibly bands); everything else in `dtype`.
            vae = AutoencoderKLWan.from_pretrained(baseline, subfolder="vae", dtype=torch.float32)
            pipe = WanPipeline.from_pretrained(baseline, vae=vae, dtype=dtype)
        except StudioError:
            raise
        except Exception as exc:  # noqa: BLE001 - hub/IO/config errors all become one load error
            raise ModelLoadError(f"could not load baseline {baseline!r} ({type(exc).__name__}: {exc}); "
                                 "check --baseline / CHAI_STUDIO_BASELINE") from None
        _check_preset(pipe, preset, baseline)
        base_transformers = [t for t in (pipe.transformer, pipe.transformer_2) if t is not None]
        baseline_name = f"{baseline} ({preset.label})"

        if source is None:
            finetuned_transformers = []
        elif source.kind == "lora":
            state_dicts = [ft.read_lora(source, WanPipeline, expert=n) for n in (1, 2)[: len(base_transformers)]]
            for state_dict, transformer in zip(state_dicts, base_transformers):
                ft.check_lora_fits(state_dict, transformer, source.location, baseline_name)
            try:
                pipe.load_lora_weights(dict(state_dicts[0]), adapter_name=ft.ADAPTER_NAME)
                if pipe.transformer_2 is not None:
                    pipe.load_lora_weights(dict(state_dicts[1]), adapter_name=ft.ADAPTER_NAME,
                                           load_into_transformer_2=True)
            except Exception as exc:  # noqa: BLE001 - peft raises many kinds for a bad adapter
                raise InputError(f"LoRA {source.location} could not be applied to baseline {baseline_name}: {exc}",
                                 "finetuned") from None
            finetuned_transformers = base_transformers  # the same objects: adapter on/off per run
        else:
            finetuned_transformers = ft.load_finetuned_transformers(source, base_transformers, dtype, baseline_name)

        shares_base = source is not None and source.kind == "lora"
        distinct = [pipe.text_encoder, vae] + base_transformers + ([] if shares_base else finetuned_transformers)
        resident = sum(module_bytes(m) for m in distinct)
        finetuned_bytes = 0 if shares_base else sum(module_bytes(m) for m in finetuned_transformers)
        largest = max(module_bytes(pipe.text_encoder), sum(module_bytes(t) for t in base_transformers))
        free = hardware.cuda_free_bytes() if device == "cuda" else []
        placement = hardware.plan_placement(free, resident, finetuned_bytes, largest, config.memory_mode, shares_base)
        vae_tiling = config.vae_tiling == "on" or (config.vae_tiling == "auto" and device == "cuda")
        generator = cls(
            preset=preset, tokenizer=pipe.tokenizer, text_encoder=pipe.text_encoder, vae=vae,
            scheduler=pipe.scheduler, baseline_transformers=base_transformers,
            finetuned_transformers=finetuned_transformers, finetune=source, lora_scale=config.lora_scale,
            baseline_location=baseline, baseline_revision=_revision(baseline, pipe.config.get("_name_or_path")),
            placement=placement, attention=config.attention, first_block_cache=config.first_block_cache,
            vae_tiling=vae_tiling,
        )
        generator._prepare_modules(attention_backend)
        return generator

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

    def distinct_modules(self) -> list[torch.nn.Module]:
        modules = [self.text_encoder, self.vae] + self.baseline_transformers
        if not self.shares_base:
            modules += self.finetuned_transformers
        return modules

    def resident_bytes(self) -> int:
        return sum(module_bytes(m) for m in self.distinct_modules())

    def _prepare_modules(self, attention_backend: str) -> None:
        """Apply the placement, attention kernel, cache and VAE tiling to the loaded modules."""
        for transformer in self.baseline_transformers + self.finetuned_transformers:
            if attention_backend != "native":
                transformer.set_attention_backend(attention_backend)
        if self.first_block_cache > 0:
            from diffusers import FirstBlockCacheConfig

            seen = set()
            for transformer in self.baseline_transformers + self.finetuned_transformers:
                if id(transformer) not in seen:
                    seen.add(id(transformer))
                    transformer.enable_cache(FirstBlockCacheConfig(threshold=self.first_block_cache))
        if self.vae_tiling:
            self.vae.enable_tiling()
        mode = self.placement.mode
        if mode == "gpu":
            for module in [self.text_encoder, self.vae] + self.baseline_transformers:
                module.to(self.placement.shared_device)
            for transformer in self.finetuned_transformers:
                transformer.to(self.placement.finetuned_device)
        elif mode == "group_offload":
            from diffusers.hooks import apply_group_offloading

            # Stream each layer's weights in just before it runs, overlapping copy and compute.
            for module in [self.text_encoder] + self.baseline_transformers + (
                    [] if self.shares_base else self.finetuned_transformers):
                apply_group_offloading(module, onload_device=torch.device(self.placement.shared_device),
                                       offload_device=torch.device("cpu"), offload_type="leaf_level",
                                       use_stream=True)
            self.vae.to(self.placement.shared_device)
        # "cpu": nothing to move. "model_offload": hooks are installed around each phase.

    def set_lora_scale(self, scale: float) -> None:
        if not 0.0 <= float(scale) <= 2.0:
            raise InputError(f"must be between 0 and 2, got {scale}", "lora_scale")
        self.lora_scale = float(scale)

    # -- one phase at a time ----------------------------------------------------------------------
    @contextlib.contextmanager
    def _offload_hooks(self, pipe):
        """Model CPU offload for one phase: each module moves to the GPU when called."""
        if self.placement.mode != "model_offload":
            yield
            return
        pipe.enable_model_cpu_offload(device=self.placement.shared_device)
        try:
            yield
        finally:
            pipe.maybe_free_model_hooks()
            pipe.remove_all_hooks()

    def _device_for(self, which: str) -> torch.device:
        if self.placement.mode == "cpu":
            return torch.device("cpu")
        return torch.device(self.placement.finetuned_device if which == FINETUNED else self.placement.shared_device)

    @torch.no_grad()
    def encode(self, prompt: str, settings: GenerationSettings) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Prompt and negative prompt through the text encoder in one batched forward."""
        embeds, negative = self.encode_many([prompt], settings)
        return embeds[0], negative

    @torch.no_grad()
    def encode_many(self, prompts: list[str], settings: GenerationSettings
                    ) -> tuple[list[torch.Tensor], torch.Tensor | None]:
        """Distinct prompts and the negative prompt through the text encoder in one batched forward."""
        with self._offload_hooks(self.encoder_pipe):
            use_negative = settings.guidance > 1.0
            texts = list(prompts) + ([settings.negative_prompt] if use_negative else [])
            device = self._device_for(BASELINE)
            embeds = self.encoder_pipe._get_t5_prompt_embeds(
                prompt=texts, max_sequence_length=settings.max_sequence_length, device=device)
        count = len(prompts)
        return [embeds[i:i + 1] for i in range(count)], (embeds[count:] if use_negative else None)

    def initial_noise(self, settings: GenerationSettings) -> torch.Tensor:
        """The seed's starting latents, drawn on the CPU so every device sees the same noise."""
        from diffusers.utils.torch_utils import randn_tensor

        temporal = self.vae.config.scale_factor_temporal
        spatial = self.vae.config.scale_factor_spatial
        shape = (1, self.baseline_transformers[0].config.out_channels, (settings.num_frames - 1) // temporal + 1,
                 settings.height // spatial, settings.width // spatial)
        generator = torch.Generator("cpu").manual_seed(settings.seed)
        return randn_tensor(shape, generator=generator, device=torch.device("cpu"), dtype=torch.float32)

    def _pipeline(self, which: str, settings: GenerationSettings, image: Image.Image | None):
        transformers = self.finetuned_transformers if which == FINETUNED else self.baseline_transformers
        # A fresh scheduler per run: schedulers keep per-run state, and the shift is a setting.
        scheduler = self.scheduler_class.from_config(self.scheduler_config, flow_shift=settings.shift)
        common = {"tokenizer": None, "text_encoder": None, "vae": self.vae, "scheduler": scheduler,
                      "transformer": transformers[0], "transformer_2": transformers[1] if len(transformers) > 1 else None,
                      "boundary_ratio": self.preset.boundary_ratio, "expand_timesteps": self.preset.expand_timesteps}
        pipe = self._i2v_class(**common) if image is not None else self._t2v_class(**common)
        pipe.set_progress_bar_config(disable=True)
        if self.placement.mode != "cpu":
            pipe.pinned_device = self._device_for(which)
        return pipe

    @contextlib.contextmanager
    def _adapter(self, which: str):
        """LoRA finetune: the adapter is off for the zero-shot run and on, at the scale, for the other."""
        if not self.shares_base:
            yield
            return
        for transformer in self.baseline_transformers:
            if which == FINETUNED:
                transformer.enable_adapters()
                transformer.set_adapters([ft.ADAPTER_NAME], weights=[self.lora_scale])
            else:
                transformer.disable_adapters()
        try:
            yield
        finally:
            for transformer in self.baseline_transformers:
                transformer.enable_adapters()

    @torch.no_grad()
    def _denoise(self, which: str, embeds, negative, noise, settings, image, on_step, cancel,
                 report_as: str | None = None) -> torch.Tensor:
        """One denoising loop on model `which`; progress is reported under `report_as` (the side)."""
        report_as = report_as or which
        pipe = self._pipeline(which, settings, image)
        device = self._device_for(which)
        total = settings.steps

        def callback(pipeline, index, timestep, tensors):
            if on_step is not None:
                preview = None
                if settings.preview_every and ((index + 1) % settings.preview_every == 0 or index + 1 == total):
                    latents = tensors["latents"]
                    preview = self.previewer(latents, frame=latents.shape[2] // 2)
                on_step(report_as, index + 1, total, preview)
            # Checked after reporting, so a cancel pressed during this step stops the next one.
            if cancel is not None and cancel.is_set():
                pipeline._interrupt = True  # the pipeline's loop skips the remaining steps
            return {}

        for transformer in self.finetuned_transformers if which == FINETUNED else self.baseline_transformers:
            if hasattr(transformer, "_reset_stateful_cache") and self.first_block_cache > 0:
                transformer._reset_stateful_cache()
        kwargs = {
            "prompt_embeds": embeds.to(device), "negative_prompt_embeds": None if negative is None else negative.to(device),
            "height": settings.height, "width": settings.width, "num_frames": settings.num_frames,
            "num_inference_steps": settings.steps, "guidance_scale": settings.guidance,
            "latents": noise.clone(), "output_type": "latent", "callback_on_step_end": callback,
            "max_sequence_length": settings.max_sequence_length,
        }
        if self.preset.two_experts:
            kwargs["guidance_scale_2"] = settings.guidance_2
        if image is not None:
            kwargs["image"] = image
        with self._adapter(which), self._offload_hooks(pipe):
            latents = pipe(**kwargs).frames
        if cancel is not None and cancel.is_set():
            raise Cancelled(f"generation cancelled during the {report_as} run; nothing was written")
        return latents

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> np.ndarray:
        """Latents -> float frames (F, H, W, 3), the same arithmetic as WanPipeline's decode."""
        vae = self.vae
        offload = self.placement.mode == "model_offload"
        if offload:
            vae.to(self.placement.shared_device)
        try:
            device = next(vae.parameters()).device
            latents = latents.to(device, dtype=vae.dtype)
            latents_mean = torch.tensor(vae.config.latents_mean).view(1, vae.config.z_dim, 1, 1, 1).to(
                latents.device, latents.dtype)
            latents_std = 1.0 / torch.tensor(vae.config.latents_std).view(1, vae.config.z_dim, 1, 1, 1).to(
                latents.device, latents.dtype)
            latents = latents / latents_std + latents_mean
            video = vae.decode(latents, return_dict=False)[0]
            return self.video_processor.postprocess_video(video, output_type="np")[0]
        finally:
            if offload:
                vae.to("cpu")

    @property
    def previewer(self) -> LatentPreviewer:
        if self._previewer is None:
            self._previewer = LatentPreviewer.fit(self.vae)
        return self._previewer

    # -- the public entry points --------------------------------------------------------------------
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

    def render(self, prompt: str, settings: GenerationSettings, image: Image.Image | None = None,
               on_step: StepCallback | None = None, cancel: threading.Event | None = None) -> RenderedPair:
        """Both models on one prompt (finetuned mode), frames in memory (no files)."""
        if not self.has_finetune:
            raise InputError("no finetuned weights are loaded; use prompt or baseline mode", "mode")
        sides = plan_sides("finetuned", prompt, None, True)
        frames, timings = self.render_sides(sides, settings, image=image, on_step=on_step, cancel=cancel)
        return RenderedPair(frames[BASELINE], frames[FINETUNED], settings, timings)

    def plan(self, prompt: str, mode: str | None = None, short_prompt: str | None = None) -> tuple[str, list[Side]]:
        """The mode this generator runs for these inputs, and its sides (left first)."""
        chosen = resolve_mode(mode, self.has_finetune, short_prompt)
        return chosen, plan_sides(chosen, prompt, short_prompt, self.has_finetune)

    def render_sides(self, sides: list[Side], settings: GenerationSettings, image: Image.Image | None = None,
                     on_step: StepCallback | None = None, cancel: threading.Event | None = None
                     ) -> tuple[dict[str, np.ndarray], dict[str, float]]:
        """Every side from the same seed's noise and settings; frames (F, H, W, 3) per side key."""
        for side in sides:
            self.check_request(side.prompt, settings, image)
            if side.model == FINETUNED and not self.has_finetune:
                raise InputError("no finetuned weights are loaded; use prompt or baseline mode", "mode")
        if image is not None:
            image = image.convert("RGB")
        timings: dict[str, float] = {}
        with self._lock:
            start = time.perf_counter()
            distinct = list(dict.fromkeys(side.prompt for side in sides))
            embeds, negative = self.encode_many(distinct, settings)
            by_prompt = dict(zip(distinct, embeds))
            timings["encode_s"] = time.perf_counter() - start
            noise = self.initial_noise(settings)
            latents: dict[str, torch.Tensor] = {}

            def run(side: Side) -> None:
                begin = time.perf_counter()
                latents[side.key] = self._denoise(side.model, by_prompt[side.prompt], negative, noise, settings,
                                                  image, on_step, cancel, report_as=side.key)
                timings[f"{side.key}_denoise_s"] = time.perf_counter() - begin

            # Two GPUs: the finetuned loop runs on the second one at the same time. The shared VAE
            # is not thread-safe, so image-conditioned runs (which encode the image) stay sequential.
            models = {side.model for side in sides}
            if self.placement.concurrent and image is None and models == {BASELINE, FINETUNED}:
                errors: list[BaseException] = []

                def guarded(side: Side) -> None:
                    try:
                        run(side)
                    except BaseException as exc:  # noqa: BLE001 - re-raised in the calling thread
                        errors.append(exc)

                begin = time.perf_counter()
                threads = [threading.Thread(target=guarded, args=(side,)) for side in reversed(sides)]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
                timings["denoise_wall_s"] = time.perf_counter() - begin
                if errors:
                    raise errors[0]
            else:
                # The baseline first, as before modes existed: the progress order users know.
                for side in sorted(sides, key=lambda s: s.model != BASELINE):
                    run(side)
            frames = {}
            for side in sides:
                begin = time.perf_counter()
                frames[side.key] = self.decode(latents[side.key])
                timings[f"{side.key}_decode_s"] = time.perf_counter() - begin
        return frames, timings

    def generate(self, prompt: str, settings: GenerationSettings, caption=None, image: Image.Image | None = None,
                 on_step: StepCallback | None = None, cancel: threading.Event | None = None,
                 out_dir: str | Path | None = None, image_source: str | None = None, mode: str | None = None,
                 short_prompt: str | None = None, reference: dict[str, Any] | None = None) -> RunResult:
        """Render the sides of `mode` and write a new run directory under `out_dir` (default: outputs/).

        `mode` None picks finetuned with a finetune, else prompt with a short prompt, else baseline.
        `reference` ({"clip": path, "start": s, "end": s}) names the clip the caption came from;
        its hash goes into the record and the judge uses it as the ceiling.
        """
        started = time.perf_counter()
        created = datetime.now(UTC).isoformat(timespec="seconds")
        out_dir = out_dir or "outputs"
        self.check_request(prompt, settings, image)
        outputs.check_writable(out_dir, outputs.estimate_run_bytes(settings))  # before the long render
        mode, sides = self.plan(prompt, mode, short_prompt)
        frames, timings = self.render_sides(sides, settings, image=image, on_step=on_step, cancel=cancel)
        begin = time.perf_counter()
        videos = {side.key: outputs.to_uint8(frames[side.key]) for side in sides}
        if len(sides) == 2:
            videos["side_by_side"] = outputs.side_by_side(videos[sides[0].key], videos[sides[1].key],
                                                          labels=(sides[0].label, sides[1].label))
        record = self.run_record(prompt, settings, caption, created, image_source if image is not None else None)
        record["comparison"] = {"mode": mode, "short_prompt": (short_prompt or "").strip() or None,
                                "sides": [{**side.to_dict(), "video": outputs.video_file(side.key),
                                           "frames_sha256": frames_hash(videos[side.key])} for side in sides]}
        record["reference"] = _reference_record(reference)
        if image is not None:
            record["image"]["file"] = "start_image.png"
        comment = outputs.json.dumps(record, ensure_ascii=False)
        with outputs.staged_run(out_dir, prompt) as run:
            if image is not None:
                image.convert("RGB").save(run.path("start_image.png"))
            names = {key: (run.video(key, video, settings.fps, comment), run.poster(key, video))
                     for key, video in videos.items()}
            timings["write_s"] = time.perf_counter() - begin
            timings["total_s"] = time.perf_counter() - started
            record["timings"] = {k: round(v, 4) for k, v in timings.items()}
            run_dir = run.commit(record)
        paths = {key: run_dir / video for key, (video, _) in names.items()}
        posters = {key: run_dir / poster for key, (_, poster) in names.items()}
        run_json = run_dir / "run.json"
        return RunResult(run_dir, paths.get(BASELINE), paths.get(FINETUNED), paths.get("side_by_side"), run_json,
                         posters, settings.seed, settings, timings, mode=mode, sides=sides,
                         videos={side.key: paths[side.key] for side in sides})

    def content_hashes(self) -> dict[str, str | None]:
        """sha256 of the local baseline folder and finetuned weights (computed once per generator)."""
        if self._hashes is None:
            finetuned = None
            if self.finetune is not None:
                finetuned = provenance.local_content_hash(
                    str(self.finetune.weight_file) if self.finetune.weight_file else self.finetune.location)
            self._hashes = {"baseline": provenance.local_content_hash(self.baseline_location),
                            "finetuned": finetuned}
        return self._hashes

    def run_record(self, prompt: str, settings: GenerationSettings, caption, created: str,
                   image_source: str | None) -> dict[str, Any]:
        caption_dict = caption.to_dict() if caption is not None and hasattr(caption, "to_dict") else caption
        finetuned = None if self.finetune is None else {
            "location": self.finetune.location, "kind": self.finetune.kind,
            "lora_scale": self.lora_scale if self.shares_base else None}
        return {
            "schema": outputs.RUN_SCHEMA, "version": outputs.RUN_SCHEMA_VERSION, "created": created,
            "prompt": prompt, "caption": caption_dict, "seed": settings.seed, "preset": self.preset.name,
            "settings": settings.to_dict(),
            "models": {
                "baseline": {"location": self.baseline_location, "revision": self.baseline_revision,
                             "label": self.preset.label},
                "finetuned": finetuned,
            },
            "image": {"source": image_source} if image_source is not None else None,
            "runtime": {"memory_mode": self.placement.mode, "devices": [self.placement.shared_device,
                        self.placement.finetuned_device], "concurrent": self.placement.concurrent,
                        "attention": self.attention, "first_block_cache": self.first_block_cache,
                        "vae_tiling": self.vae_tiling, "dtype": str(self.baseline_transformers[0].dtype)},
            "versions": {**library_versions(), "ffmpeg": provenance.ffmpeg_version()},
            "studio": provenance.studio_version(),
            "hashes": self.content_hashes(),
            "gpu": provenance.gpu_info(),
        }


def frames_hash(frames: np.ndarray) -> str:
    """sha256 of the uint8 frames before encoding: what `--from-run` compares (H.264 encoding on a
    shared machine is not always bit-stable, the model's output is)."""
    import hashlib

    digest = hashlib.sha256(str(frames.shape).encode())
    digest.update(np.ascontiguousarray(frames).tobytes())
    return digest.hexdigest()


def _reference_record(reference: dict[str, Any] | None) -> dict[str, Any] | None:
    """The reference clip's path, range and content hash, when the prompt came from one."""
    if not reference or not reference.get("clip"):
        return None
    clip = Path(reference["clip"])
    return {"clip": str(clip), "start": reference.get("start"), "end": reference.get("end"),
            "shot": reference.get("shot"), "sha256": provenance.content_hash(clip) if clip.is_file() else None}


def _check_preset(pipe, preset: Preset, baseline: str) -> None:
    two = pipe.transformer_2 is not None
    expand = bool(pipe.config.get("expand_timesteps", False))
    if pipe.transformer is None or two != preset.two_experts or expand != preset.expand_timesteps:
        kind = "a two-expert (A14B-style)" if two else ("a TI2V-5B-style" if expand else "a one-expert Wan")
        raise InputError(f"baseline {baseline} is {kind} pipeline, which does not match preset {preset.name} "
                         f"({preset.label}); choose the matching --preset", "preset")


def _tiny_locations(config: StudioConfig, preset: Preset, finetuned: str) -> tuple[str, str]:
    """Offline mode: the tiny checkpoints (built on first use) replace the real ones."""
    from ..tiny import build_tiny_models

    base_name, lora_name = TINY_FOLDERS[preset.name]
    needed = [base_name] + ([] if finetuned else [lora_name])
    folders = build_tiny_models(config.tiny_dir, only=needed)
    return str(folders[base_name]), finetuned or str(folders[lora_name])


def baseline_location(config: StudioConfig, preset: Preset) -> str:
    """The baseline folder or hub id for `preset`: the tiny checkpoint (built on first use) in tiny mode."""
    if config.tiny:
        return _tiny_locations(config, preset, "unused")[0]
    return resolve_model_location(config.baseline, "CHAI_STUDIO_BASELINE or --baseline")


def load_tokenizer(config: StudioConfig, preset: str | None = None):
    """The baseline's umT5 tokenizer alone (for token counts before any model is loaded)."""
    from transformers import AutoTokenizer

    baseline = config.baseline
    try:
        baseline = baseline_location(config, get_preset(preset or DEFAULT_PRESET))
        return AutoTokenizer.from_pretrained(baseline, subfolder="tokenizer")
    except Exception as exc:  # noqa: BLE001 - any failure means no tokenizer
        raise ModelLoadError(f"could not load the tokenizer of baseline {baseline!r} ({exc}); check --baseline") from None


# -- one shared generator for the UI and CLI -------------------------------------------------------
_CACHE: dict[str, Any] = {"key": None, "generator": None}
_CACHE_LOCK = threading.Lock()


def get_generator(config: StudioConfig, preset: str | None = None) -> SideBySideGenerator:
    """The loaded generator for (config, preset); loading another pair first frees the old one.
    A changed LoRA scale is applied in place, without reloading."""
    key = (config.baseline, config.finetuned, config.tiny, str(config.tiny_dir), config.device, config.dtype,
           config.memory_mode, config.attention, config.first_block_cache, config.vae_tiling,
           preset or DEFAULT_PRESET)
    with _CACHE_LOCK:
        if _CACHE["key"] != key:
            _unload_locked()
            _CACHE["generator"] = SideBySideGenerator.from_config(config, preset)
            _CACHE["key"] = key
        generator = _CACHE["generator"]
        generator.set_lora_scale(config.lora_scale)
        return generator


def unload_generator() -> None:
    with _CACHE_LOCK:
        _unload_locked()


def _unload_locked() -> None:
    _CACHE["key"] = None
    _CACHE["generator"] = None
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
