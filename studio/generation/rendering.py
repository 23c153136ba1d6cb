"""Rendering: prompts in, float frames out, in the stages of diffusers' `WanPipeline.__call__`.

`SideBySideRenderer` is handed the `LoadedModels` and never loads anything itself. `render_sides`
runs the named stages in order: check inputs -> encode prompt -> prepare latents (the seed's
initial noise) -> denoise (once per side) -> decode. The stages are split from the pipeline's one
call because the two sides share what the pipeline would repeat: the prompt is encoded once for
both, and both start from the same noise. Nothing here writes files.

`check_inputs` is the one check of a render against the loaded weights (prompt, sizes the
transformers accept, a start image the preset can use, the finetune and calibrations a side
needs); `generate` and the calibration command go through it too, so no caller repeats it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from ..errors import InputError, StudioError
from ..video.framing import cover_crop
from . import finetune as ft
from . import speed_adapter as sa
from .calibration import Calibration, find_calibration
from .comparison import BASELINE_MODEL, FINETUNED_MODEL, Side, plan_sides
from .loaded import LoadedModels
from .placement import device_for, offload_hooks, vae_placed
from .preview import LatentPreviewer
from .run_records import MAX_PROMPT_CHARS
from .settings import GenerationSettings
from .step_caches import StepCache, cached_steps

log = logging.getLogger("studio.generation")
StepCallback = Callable[[str, int, int, "Image.Image | None"], None]


class Cancelled(StudioError):
    """The user stopped the generation before any side was finished; nothing was written."""


@dataclass
class RenderedPair:
    """Both videos as float frames (F, H, W, 3) in [0, 1], before encoding to mp4."""

    baseline: np.ndarray
    finetuned: np.ndarray
    settings: GenerationSettings
    timings: dict[str, float]


class SideBySideRenderer:
    """The denoising path over one `LoadedModels`: every side from the same prompt embeddings and noise."""

    def __init__(self, models: LoadedModels):
        from diffusers import WanImageToVideoPipeline, WanPipeline
        from diffusers.video_processor import VideoProcessor

        self.models = models
        self._t2v_class = pinned_pipeline_class(WanPipeline)
        self._i2v_class = pinned_pipeline_class(WanImageToVideoPipeline)
        self._previewer: LatentPreviewer | None = None
        # Encodes text only (no transformer): the one place the text encoder runs.
        self.encoder_pipe = WanPipeline(tokenizer=models.tokenizer, text_encoder=models.text_encoder, vae=models.vae,
                                        scheduler=models.scheduler_class.from_config(models.scheduler_config),
                                        transformer=None, transformer_2=None)
        self.video_processor = VideoProcessor(vae_scale_factor=models.vae.config.scale_factor_spatial)

    def render(self, prompt: str, settings: GenerationSettings, image: Image.Image | None = None,
               on_step: StepCallback | None = None, cancel: threading.Event | None = None) -> RenderedPair:
        """Both models on one prompt (finetuned mode), frames in memory (no files)."""
        sides = plan_sides("finetuned", prompt, None, True)
        frames, timings = self.render_sides(sides, settings, image=image, on_step=on_step, cancel=cancel)
        missing = [side.key for side in sides if side.key not in frames]
        if missing:  # a pair in memory is both sides or nothing
            raise Cancelled(f"generation cancelled before the {missing[0]} run finished")
        return RenderedPair(frames[BASELINE_MODEL], frames[FINETUNED_MODEL], settings, timings)

    def render_sides(self, sides: list[Side], settings: GenerationSettings, image: Image.Image | None = None,
                     on_step: StepCallback | None = None, cancel: threading.Event | None = None
                     ) -> tuple[dict[str, np.ndarray], dict[str, float]]:
        """Every side from the same seed's noise and settings; frames (F, H, W, 3) per side key.

        `on_step(side_key, step, total, preview)` is called after every step; `preview` is a
        latent preview image every `settings.preview_every` steps (and at the last), else None.
        A cancel keeps the sides that had finished all their steps: their keys are in the result
        and the others are not. Cancelled is raised only when no side had finished.
        """
        self.check_inputs(sides, settings, image)
        # WanImageToVideoPipeline resizes its image to the output size, stretching any other aspect;
        # covered and centre-cropped first, it is only ever scaled (Wan2.2's own TI2V framing).
        image = cover_crop(image, settings.width, settings.height) if image is not None else None
        timings: dict[str, float] = {}
        with self.models.lock:
            begin = time.perf_counter()
            embeds_by_prompt, negative = self._encode_prompts(sides, settings)
            timings["encode_s"] = time.perf_counter() - begin
            noise = self.initial_noise(settings)
            latents = self._denoise_sides(sides, embeds_by_prompt, negative, noise, settings, image, on_step,
                                          cancel, timings)
            frames = self._decode_sides(sides, latents, timings)
        return frames, timings

    # -- the stages, in the order render_sides calls them ---------------------------------------
    def check_inputs(self, sides: list[Side], settings: GenerationSettings, image: Image.Image | None) -> None:
        """Refuse, before any step, what these weights cannot render; each check is made here only."""
        models = self.models
        for side in sides:
            _check_prompt(side.prompt)
        multiple = models.size_multiple
        for name in ("height", "width"):
            if getattr(settings, name) % multiple:
                raise InputError(f"must be a multiple of {multiple} for this model, got {getattr(settings, name)}", name)
        if (settings.num_frames - 1) % models.vae.config.scale_factor_temporal:
            raise InputError(f"must be 4k+1 frames, got {settings.num_frames}", "frames")
        # A size past the transformer's position table fails deep in the model; refuse it here.
        max_side, max_frames = models.size_limits
        why = f"the transformer of {models.baseline_location} (rope_max_seq_len " \
              f"{models.baseline_transformers[0].config.rope_max_seq_len})"
        for name in ("height", "width"):
            if getattr(settings, name) > max_side:
                raise InputError(f"must be at most {max_side} pixels for {why}, got {getattr(settings, name)}", name)
        if settings.num_frames > max_frames:
            raise InputError(f"must be at most {max_frames} for {why}, got {settings.num_frames}", "frames")
        if models.preset.two_experts and settings.guidance_2 is None:
            raise InputError(f"{models.preset.label} needs a low-noise guidance scale", "guidance_2")
        if image is not None:
            if not models.preset.supports_image:
                raise InputError(f"{models.preset.label} generates from text only; use the ti2v-5b preset to start "
                                 "from an image", "image")
            if not isinstance(image, Image.Image):
                raise InputError("expected an image", "image")
        if settings.step_cache and models.first_block_cache > 0:
            raise InputError("this server runs every generation with --first-block-cache; unset it to choose a "
                             "step cache (or a profile with one) per run", "step_cache")
        for model in dict.fromkeys(side.model for side in sides):
            if model == FINETUNED_MODEL and not models.has_finetune:
                raise InputError("no finetuned weights are loaded; use prompt or baseline mode", "mode")
            self.magcache_calibration(model, settings)  # refused here, before any step, when missing

    def _encode_prompts(self, sides: list[Side], settings: GenerationSettings
                        ) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
        """Each distinct prompt once (two sides may share one), keyed by the prompt."""
        distinct = list(dict.fromkeys(side.prompt for side in sides))
        embeds, negative = self.encode_many(distinct, settings)
        return dict(zip(distinct, embeds)), negative

    @torch.no_grad()
    def encode(self, prompt: str, settings: GenerationSettings) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Prompt and negative prompt through the text encoder in one batched forward."""
        embeds, negative = self.encode_many([prompt], settings)
        return embeds[0], negative

    @torch.no_grad()
    def encode_many(self, prompts: list[str], settings: GenerationSettings
                    ) -> tuple[list[torch.Tensor], torch.Tensor | None]:
        """Distinct prompts and the negative prompt through the text encoder in one batched forward."""
        with offload_hooks(self.models.placement, self.encoder_pipe):
            use_negative = settings.guidance > 1.0
            texts = list(prompts) + ([settings.negative_prompt] if use_negative else [])
            device = device_for(self.models.placement, BASELINE_MODEL)
            # Mirrors diffusers 0.42 WanPipeline.encode_prompt, which calls this private helper
            # once per prompt; called directly so all texts go through in one batch.
            embeds = self.encoder_pipe._get_t5_prompt_embeds(
                prompt=texts, max_sequence_length=settings.max_sequence_length, device=device)
        count = len(prompts)
        return [embeds[i:i + 1] for i in range(count)], (embeds[count:] if use_negative else None)

    def initial_noise(self, settings: GenerationSettings) -> torch.Tensor:
        """The seed's starting latents, drawn on the CPU so every device sees the same noise."""
        from diffusers.utils.torch_utils import randn_tensor

        temporal = self.models.vae.config.scale_factor_temporal
        spatial = self.models.vae.config.scale_factor_spatial
        # Mirrors diffusers 0.42 WanPipeline.prepare_latents: the same latent shape.
        shape = (1, self.models.baseline_transformers[0].config.out_channels, (settings.num_frames - 1) // temporal + 1,
                 settings.height // spatial, settings.width // spatial)
        generator = torch.Generator("cpu").manual_seed(settings.seed)
        return randn_tensor(shape, generator=generator, device=torch.device("cpu"), dtype=torch.float32)

    def _denoise_sides(self, sides: list[Side], embeds_by_prompt, negative, noise, settings, image, on_step,
                       cancel, timings: dict[str, float]) -> dict[str, torch.Tensor]:
        """One denoising loop per side: concurrently on two GPUs when placed so, else in turn. The
        latents of every side that finished; a side cancelled part-way (or never begun) is left out."""
        latents: dict[str, torch.Tensor] = {}
        cancelled: list[Cancelled] = []

        def run(side: Side) -> None:
            log.info("render %s: start (%s, %d steps)", side.key, side.model, settings.steps)
            begin = time.perf_counter()
            latents[side.key] = self._denoise(side.model, embeds_by_prompt[side.prompt], negative, noise, settings,
                                              image, on_step, cancel, report_as=side.key)
            timings[f"{side.key}_denoise_s"] = time.perf_counter() - begin
            log.info("render %s: denoised in %.1f s", side.key, timings[f"{side.key}_denoise_s"])

        if self.runs_concurrently(sides, image):
            errors: list[BaseException] = []

            def guarded(side: Side) -> None:
                try:
                    run(side)
                except Cancelled as exc:  # the other side may still finish, and is kept
                    cancelled.append(exc)
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
            for side in run_order(sides):
                if cancel is not None and cancel.is_set():  # pressed as the previous side finished
                    cancelled.append(Cancelled(f"generation cancelled before the {side.key} run; nothing was written"))
                    break
                try:
                    run(side)
                except Cancelled as exc:
                    cancelled.append(exc)
                    break
        if cancelled and not latents:
            raise cancelled[0]
        return latents

    def runs_concurrently(self, sides: list[Side], image: Image.Image | None) -> bool:
        """Two GPUs: the finetuned loop runs on the second one at the same time. The shared VAE is
        not thread-safe, so image-conditioned runs (which encode the image) stay sequential."""
        models = {side.model for side in sides}
        return self.models.placement.concurrent and image is None and models == {BASELINE_MODEL, FINETUNED_MODEL}

    def _decode_sides(self, sides: list[Side], latents: dict[str, torch.Tensor],
                      timings: dict[str, float]) -> dict[str, np.ndarray]:
        frames = {}
        for side in sides:
            begin = time.perf_counter()
            if side.key not in latents:
                continue  # cancelled before it finished
            frames[side.key] = self.decode(latents[side.key])
            timings[f"{side.key}_decode_s"] = time.perf_counter() - begin
        return frames

    # -- step caches -------------------------------------------------------------------------------
    def magcache_calibration(self, which: str, settings: GenerationSettings) -> Calibration | None:
        """The calibration a MagCache run of model `which` uses; None for any other step cache."""
        cache = StepCache.parse(settings.step_cache)
        if cache is None or not cache.needs_calibration:
            return None
        found = find_calibration(self.models.settings_dir, self.models.preset.name, self.models.preset.tiny, which,
                                 self.models.model_location(which), settings.steps)
        if len(found.ratios) != len(self.models.transformers_of(which)):
            raise InputError(f"{found.path} holds ratios for {len(found.ratios)} transformer(s), the {which} model has "
                             f"{len(self.models.transformers_of(which))}; run `python -m studio calibrate-cache` again",
                             "step_cache")
        return found

    def expert_steps(self, settings: GenerationSettings) -> list[int]:
        """How many of the run's steps each transformer denoises."""
        if not self.models.preset.two_experts:
            return [settings.steps]
        # Mirrors diffusers 0.42 WanPipeline.__call__: the high-noise `transformer` takes every
        # timestep at or above boundary_ratio x num_train_timesteps, `transformer_2` the rest.
        scheduler = self.models.scheduler_class.from_config(self.models.scheduler_config, flow_shift=settings.shift)
        scheduler.set_timesteps(settings.steps)
        boundary = self.models.preset.boundary_ratio * scheduler.config.num_train_timesteps
        high = int((scheduler.timesteps >= boundary).sum())
        return [high, settings.steps - high]

    def _step_cache(self, which: str, settings: GenerationSettings):
        calibration = self.magcache_calibration(which, settings)
        ratios = None if calibration is None else [list(expert) for expert in calibration.ratios]
        return cached_steps(self.models.transformers_of(which), settings.step_cache, ratios, self.expert_steps(settings))

    @torch.no_grad()
    def calibrate_magcache(self, which: str, prompt: str, settings: GenerationSettings) -> list[list[float]]:
        """One uncached generation on model `which` with MagCache measuring: each transformer's
        magnitude ratios over the steps it ran (what `calibration.save_calibration` writes)."""
        from .step_caches import calibrating_steps

        settings = settings.replace(step_cache="")
        if which == FINETUNED_MODEL and not self.models.has_finetune:
            raise InputError("no finetuned weights are loaded to calibrate", "finetuned")
        self.check_inputs([Side(which, which, which, prompt)], settings, None)
        ratios: list[list[float]] = []
        with self.models.lock:
            embeds, negative = self.encode(prompt, settings)
            self._denoise(which, embeds, negative, self.initial_noise(settings), settings, None, None, None,
                          step_cache=calibrating_steps(self.models.transformers_of(which), settings.steps, into=ratios))
        return ratios

    # -- one denoising loop ------------------------------------------------------------------------
    def _pipeline(self, which: str, settings: GenerationSettings, image: Image.Image | None):
        transformers = self.models.finetuned_transformers if which == FINETUNED_MODEL else self.models.baseline_transformers
        # A fresh scheduler per run: schedulers keep per-run state, and the shift is a setting.
        scheduler = self.models.scheduler_class.from_config(self.models.scheduler_config, flow_shift=settings.shift)
        common = {"tokenizer": None, "text_encoder": None, "vae": self.models.vae, "scheduler": scheduler,
                  "transformer": transformers[0], "transformer_2": transformers[1] if len(transformers) > 1 else None,
                  "boundary_ratio": self.models.preset.boundary_ratio, "expand_timesteps": self.models.preset.expand_timesteps}
        pipe = self._i2v_class(**common) if image is not None else self._t2v_class(**common)
        pipe.set_progress_bar_config(disable=True)
        if self.models.placement.mode != "cpu":
            pipe.pinned_device = device_for(self.models.placement, which)
        return pipe

    def active_adapters(self, which: str) -> tuple[list[str], list[float]] | None:
        """The LoRA adapters (and weights) model `which` runs with on the shared base transformers;
        None when nothing is switched there (no LoRA finetune: the speed adapter alone, if any, is
        always on in every transformer it was loaded into)."""
        if not self.models.shares_base:
            return None
        if self.models.speed_adapter is None:
            return ([ft.ADAPTER_NAME], [self.models.lora_scale]) if which == FINETUNED_MODEL else ([], [])
        if which == FINETUNED_MODEL:
            return [sa.ADAPTER_NAME, ft.ADAPTER_NAME], [1.0, self.models.lora_scale]
        return [sa.ADAPTER_NAME], [1.0]

    @contextlib.contextmanager
    def _adapter(self, which: str):
        """LoRA finetune: the adapter is off for the zero-shot run and on, at the scale, for the other;
        a speed adapter stays on under both."""
        plan = self.active_adapters(which)
        if plan is None:
            yield
            return
        names, weights = plan
        for transformer in self.models.baseline_transformers:
            if names:
                transformer.enable_adapters()
                transformer.set_adapters(names, weights=weights)
            else:
                transformer.disable_adapters()
        try:
            yield
        finally:
            for transformer in self.models.baseline_transformers:
                transformer.enable_adapters()

    @torch.no_grad()
    def _denoise(self, which: str, embeds, negative, noise, settings, image, on_step, cancel,
                 report_as: str | None = None, step_cache=None) -> torch.Tensor:
        """One denoising loop on model `which`; progress is reported under `report_as` (the side).
        `step_cache` (a context manager) replaces the settings' step cache, e.g. a calibration."""
        report_as = report_as or which
        pipe = self._pipeline(which, settings, image)
        device = device_for(self.models.placement, which)
        total = settings.steps
        steps_done = [0]

        def callback(pipeline, index, timestep, tensors):
            steps_done[0] = index + 1
            if on_step is not None:
                preview = None
                if settings.preview_every and ((index + 1) % settings.preview_every == 0 or index + 1 == total):
                    latents = tensors["latents"]
                    preview = self.previewer(latents, frame=latents.shape[2] // 2)
                on_step(report_as, index + 1, total, preview)
            # Checked after reporting, so a cancel pressed during this step stops the next one.
            if cancel is not None and cancel.is_set():
                # Mirrors diffusers 0.42 WanPipeline.__call__: its loop skips every remaining step
                # while the private `_interrupt` flag is set (the pipeline has no public stop).
                pipeline._interrupt = True
            return {}

        for transformer in self.models.finetuned_transformers if which == FINETUNED_MODEL else self.models.baseline_transformers:
            # Mirrors diffusers 0.42 CacheMixin: the first-block cache keeps the previous run's
            # residuals in hook state, which this private method clears between two runs.
            if hasattr(transformer, "_reset_stateful_cache") and self.models.first_block_cache > 0:
                transformer._reset_stateful_cache()
        kwargs = {
            "prompt_embeds": embeds.to(device), "negative_prompt_embeds": None if negative is None else negative.to(device),
            "height": settings.height, "width": settings.width, "num_frames": settings.num_frames,
            "num_inference_steps": settings.steps, "guidance_scale": settings.guidance,
            "latents": noise.clone(), "output_type": "latent", "callback_on_step_end": callback,
            "max_sequence_length": settings.max_sequence_length,
        }
        if self.models.preset.two_experts:
            kwargs["guidance_scale_2"] = settings.guidance_2
        if image is not None:
            kwargs["image"] = image
        step_cache = step_cache if step_cache is not None else self._step_cache(which, settings)
        with self._adapter(which), offload_hooks(self.models.placement, pipe), step_cache:
            latents = pipe(**kwargs).frames
        # A cancel pressed at the last step stopped nothing: the side is whole and is kept.
        if cancel is not None and cancel.is_set() and steps_done[0] < total:
            raise Cancelled(f"generation cancelled during the {report_as} run; nothing was written")
        return latents

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> np.ndarray:
        """Latents -> float frames (F, H, W, 3)."""
        vae = self.models.vae
        with vae_placed(self.models.placement, vae):
            device = next(vae.parameters()).device
            latents = latents.to(device, dtype=vae.dtype)
            # Mirrors diffusers 0.42 WanPipeline.__call__ (its decode after the loop): latents are
            # un-normalised with the VAE config's latents_mean/latents_std before vae.decode.
            shape = (1, vae.config.z_dim, 1, 1, 1)
            latents_mean = torch.tensor(vae.config.latents_mean).view(shape).to(latents.device, latents.dtype)
            latents_std = 1.0 / torch.tensor(vae.config.latents_std).view(shape).to(latents.device, latents.dtype)
            latents = latents / latents_std + latents_mean
            video = vae.decode(latents, return_dict=False)[0]
            return self.video_processor.postprocess_video(video, output_type="np")[0]

    @property
    def previewer(self) -> LatentPreviewer:
        if self._previewer is None:
            self._previewer = LatentPreviewer.fit(self.models.vae)
        return self._previewer


def run_order(sides: list[Side]) -> list[Side]:
    """The order sides render in when they take turns: the baseline first, the order users know."""
    return sorted(sides, key=lambda side: side.model != BASELINE_MODEL)


def _check_prompt(prompt: str) -> None:
    if not isinstance(prompt, str) or not prompt.strip():
        raise InputError("is empty; write or compose a prompt first", "prompt")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise InputError(f"is {len(prompt)} characters; keep it under {MAX_PROMPT_CHARS}", "prompt")


def pinned_pipeline_class(base: type) -> type:
    """A pipeline class whose execution device can be pinned: in a two-GPU run the finetuned
    pipeline computes on the second GPU while its shared VAE stays on the first."""

    class Pinned(base):
        pinned_device: torch.device | None = None

        # Mirrors diffusers 0.42 DiffusionPipeline._execution_device (a private property every Wan
        # pipeline reads to place its tensors): overridden to pin the device.
        @property
        def _execution_device(self):
            return self.pinned_device if self.pinned_device is not None else super()._execution_device

    Pinned.__name__ = Pinned.__qualname__ = base.__name__
    return Pinned
