"""`load_generator`: a `SideBySideGenerator` from a `StudioConfig`.

Loading is where the slow and failure-prone work happens (hub look-ups, reading weights, fitting a
LoRA to the baseline), so it is kept apart from what the generator does once loaded: every check
that refuses a mismatched baseline, preset or finetune runs here, before a single step is rendered.
What it loads becomes one `LoadedModels`, placed on its devices, which the generator's renderer and
run writer are handed. Which generator stays loaded is the model registry's business
(`studio.session.SharedModels`), not this module's.
"""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path

import torch

from ..config import StudioConfig
from ..errors import InputError, ModelLoadError, StudioError
from ..hub import resolve_model_location
from ..tiny.locations import model_locations
from . import finetune as ft
from . import hardware
from . import speed_adapter as sa
from .generator import SideBySideGenerator
from .loaded import LoadedModels
from .placement import module_bytes, place_modules
from .precision import check_precision, store_weights
from .presets import DEFAULT_PRESET, Preset, get_preset

log = logging.getLogger("studio.generation")


def load_generator(config: StudioConfig, preset_name: str | None = None) -> SideBySideGenerator:
    """Load the baseline once and the finetuned transformer(s); refuse weights that do not fit."""
    from diffusers import AutoencoderKLWan, WanPipeline

    started = time.perf_counter()
    locations = model_locations(config)
    preset = locations.preset(preset_name or DEFAULT_PRESET)
    # The machine and precision checks come first: nothing is built or read before they pass
    # (not even the tiny checkpoints).
    device, dtype = config.resolved_device(), config.resolved_dtype()
    if device == "cuda" and not torch.cuda.is_available():
        raise InputError("cuda was asked for but no CUDA GPU is available; use auto or cpu", "device")
    attention_backend = hardware.resolve_attention_backend(config.attention, cuda=device == "cuda")
    check_precision(config.precision)
    hardware.check_parallel(config.parallel, hardware.cuda_device_count())
    baseline, finetuned = locations.baseline(preset.name), locations.finetuned(preset.name)
    # Cheap path checks before loading anything; no finetune at all is allowed (prompt and
    # baseline modes need none).
    source = ft.classify_finetuned(finetuned) if str(finetuned or "").strip() else None
    speed = sa.describe_speed_adapter(config.speed_adapter)
    if Path(baseline).expanduser().exists() is False and (baseline.startswith(("/", ".", "~"))):
        raise InputError(f"{baseline} does not exist", "baseline")
    baseline = resolve_model_location(baseline, "CHAI_STUDIO_BASELINE or --baseline")
    log.info("loading generator: baseline %s, preset %s, device %s", baseline, preset.name, device)
    try:
        # Wan's VAE stays in float32 (bf16 decoding visibly bands); everything else in `dtype`.
        vae = AutoencoderKLWan.from_pretrained(baseline, subfolder="vae", dtype=torch.float32)
        pipe = WanPipeline.from_pretrained(baseline, vae=vae, dtype=dtype)
    except StudioError:
        raise
    except Exception as exc:  # noqa: BLE001 - hub/IO/config errors all become one load error
        raise ModelLoadError(f"could not load baseline {baseline!r} ({type(exc).__name__}: {exc}); "
                             "check --baseline / CHAI_STUDIO_BASELINE") from exc
    _check_preset(pipe, preset, baseline)
    base_transformers = [t for t in (pipe.transformer, pipe.transformer_2) if t is not None]
    baseline_name = f"{baseline} ({preset.label})"
    finetuned_transformers = _load_finetune(pipe, source, base_transformers, dtype, baseline_name)
    if speed is not None:
        distinct_sets = [base_transformers] + ([] if source is None or source.kind == "lora"
                                               else [finetuned_transformers])
        _load_speed_adapter(speed, distinct_sets, pipe.scheduler, baseline_name)
    # After the LoRAs: they are fitted to the full-precision layers, then only their base layers are stored in fp8.
    store_weights(base_transformers + finetuned_transformers, config.precision)

    shares_base = source is not None and source.kind == "lora"
    distinct = [pipe.text_encoder, vae] + base_transformers + ([] if shares_base else finetuned_transformers)
    resident = sum(module_bytes(m) for m in distinct)
    finetuned_bytes = 0 if shares_base else sum(module_bytes(m) for m in finetuned_transformers)
    largest = max(module_bytes(pipe.text_encoder), sum(module_bytes(t) for t in base_transformers))
    free = hardware.cuda_free_bytes() if device == "cuda" else []
    placement = hardware.plan_placement(free, resident, finetuned_bytes, largest, config.memory_mode, shares_base)
    vae_tiling = config.vae_tiling == "on" or (config.vae_tiling == "auto" and device == "cuda")
    models = LoadedModels(
        preset=preset, tokenizer=pipe.tokenizer, text_encoder=pipe.text_encoder, vae=vae,
        scheduler_class=type(pipe.scheduler), scheduler_config=dict(pipe.scheduler.config),
        baseline_transformers=base_transformers, finetuned_transformers=finetuned_transformers, finetune=source,
        speed_adapter=speed, lora_scale=config.lora_scale, baseline_location=baseline,
        baseline_revision=_revision(pipe.config.get("_name_or_path")), placement=placement,
        attention=config.attention, first_block_cache=config.first_block_cache, vae_tiling=vae_tiling,
        settings_dir=Path(config.settings_dir), precision=config.precision,
    )
    prepare_modules(models, attention_backend, compile_blocks=config.compile)
    log.info("generator loaded in %.1f s: finetune %s, speed adapter %s, memory mode %s",
             time.perf_counter() - started, source.kind if source else "none",
             speed.location if speed else "none", placement.mode)
    return SideBySideGenerator(models)


def _load_finetune(pipe, source: ft.FinetuneSource | None, base_transformers: list, dtype,
                   baseline_name: str) -> list:
    """The finetuned transformer(s): none, the base ones carrying a LoRA adapter, or full copies."""
    from diffusers import WanPipeline

    if source is None:
        return []
    if source.kind != "lora":
        return ft.load_finetuned_transformers(source, base_transformers, dtype, baseline_name)
    experts = (1, 2)[: len(base_transformers)]
    for expert, transformer in zip(experts, base_transformers):
        ft.check_lora_fits(ft.read_lora(source, WanPipeline, expert), transformer, source.location, baseline_name)
    try:
        for expert in experts:
            # Loaded from the file, not from the state dict read above: only the file's header holds
            # the adapter config (rank, alpha, targets) the LoRA was trained with; from tensors alone
            # diffusers would assume alpha = rank.
            weight_file = ft.lora_file(source, expert)
            pipe.load_lora_weights(str(weight_file.parent), weight_name=weight_file.name,
                                   adapter_name=ft.ADAPTER_NAME, load_into_transformer_2=expert == 2)
    except Exception as exc:  # noqa: BLE001 - peft raises many kinds for a bad adapter
        raise InputError(f"LoRA {source.location} could not be applied to baseline {baseline_name}: {exc}",
                         "finetuned") from exc
    return base_transformers  # the same objects: the adapter is switched on/off per run


def _load_speed_adapter(speed: sa.SpeedAdapter, transformer_sets: list[list], scheduler,
                        baseline_name: str) -> None:
    """The speed LoRA into every transformer that renders (each set: one model's expert or experts),
    fitted to the baseline from its tensor shapes before any of it is loaded."""
    from diffusers import WanPipeline

    source = speed.source
    experts = (1, 2)[: len(transformer_sets[0])]
    for expert, transformer in zip(experts, transformer_sets[0]):
        ft.check_lora_fits(ft.read_lora(source, WanPipeline, expert, field=sa.FIELD), transformer, source.location,
                           baseline_name, field=sa.FIELD)
    try:
        with warnings.catch_warnings():
            # peft warns about a second adapter in one model; two (speed + finetune) is the point here.
            warnings.filterwarnings("ignore", message="Already found a `peft_config`")
            for transformers in transformer_sets:
                # A pipeline around just these transformers: the Wan loader puts a LoRA into a
                # pipeline's transformer or transformer_2, reading the adapter config from the file.
                holder = WanPipeline(tokenizer=None, text_encoder=None, vae=None, scheduler=scheduler,
                                     transformer=transformers[0],
                                     transformer_2=transformers[1] if len(transformers) > 1 else None)
                for expert in experts:
                    weight_file = ft.lora_file(source, expert)
                    holder.load_lora_weights(str(weight_file.parent), weight_name=weight_file.name,
                                             adapter_name=sa.ADAPTER_NAME, load_into_transformer_2=expert == 2)
    except Exception as exc:  # noqa: BLE001 - peft raises many kinds for a bad adapter
        raise InputError(f"speed LoRA {source.location} could not be applied to baseline {baseline_name}: {exc}",
                         sa.FIELD) from exc


def prepare_modules(models: LoadedModels, attention_backend: str, compile_blocks: bool = False) -> None:
    """Apply the attention kernel, step cache, compilation, VAE tiling and placement to freshly loaded modules."""
    models.attention_backend = attention_backend
    distinct = list({id(t): t for t in models.baseline_transformers + models.finetuned_transformers}.values())
    for transformer in distinct:
        if attention_backend != "native":
            transformer.set_attention_backend(attention_backend)
        if compile_blocks:
            # Once per loaded model (the generator is cached per config), never per run: regional
            # compilation compiles one block and reuses it for the other identical blocks.
            transformer.compile_repeated_blocks(fullgraph=True)
    models.compiled = compile_blocks
    if models.first_block_cache > 0:
        from diffusers import FirstBlockCacheConfig

        for transformer in distinct:
            transformer.enable_cache(FirstBlockCacheConfig(threshold=models.first_block_cache))
    if models.vae_tiling:
        models.vae.enable_tiling()
    place_modules(models.placement, models.text_encoder, models.vae, models.baseline_transformers,
                  models.finetuned_transformers, models.shares_base)


def _revision(loaded_path: str | None) -> str | None:
    """The hub commit of a snapshot (…/snapshots/<hash>/…); None for local folders."""
    if loaded_path and "/snapshots/" in str(loaded_path):
        return str(loaded_path).split("/snapshots/")[1].split("/")[0]
    return None


def _check_preset(pipe, preset: Preset, baseline: str) -> None:
    two = pipe.transformer_2 is not None
    expand = bool(pipe.config.get("expand_timesteps", False))
    if pipe.transformer is None or two != preset.two_experts or expand != preset.expand_timesteps:
        kind = "a two-expert (A14B-style)" if two else ("a TI2V-5B-style" if expand else "a one-expert Wan")
        raise InputError(f"baseline {baseline} is {kind} pipeline, which does not match preset {preset.name} "
                         f"({preset.label}); choose the matching --preset", "preset")


def baseline_location(config: StudioConfig, preset: Preset) -> str:
    """The baseline folder or hub id for `preset`, as the configuration's model locations give it."""
    return model_locations(config).resolved_baseline(preset.name)


def load_tokenizer(config: StudioConfig, preset: str | None = None):
    """The baseline's umT5 tokenizer alone (for token counts before any model is loaded)."""
    from transformers import AutoTokenizer

    baseline = config.baseline
    try:
        baseline = baseline_location(config, get_preset(preset or DEFAULT_PRESET))
        return AutoTokenizer.from_pretrained(baseline, subfolder="tokenizer")
    except Exception as exc:  # noqa: BLE001 - any failure means no tokenizer
        raise ModelLoadError(f"could not load the tokenizer of baseline {baseline!r} ({exc}); "
                             "check --baseline") from exc
