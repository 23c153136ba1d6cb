"""Validation renders during training: the base model beside the LoRA so far, on fixed prompts.

Apart from the training loop because it borrows the studio's generator: the training
transformer(s) become the `LoadedModels` of a `SideBySideGenerator` (adapter off for the base run,
on for the other), so no second copy of the weights is loaded, and each render is an ordinary run
folder. The trainer passes in what a render needs; nothing here reads the trainer itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..generation.finetune import ADAPTER_NAME

if TYPE_CHECKING:
    from ..generation.generator import SideBySideGenerator
    from ..generation.presets import Preset
    from ..generation.settings import GenerationSettings
    from .options import TrainOptions


def validation_settings(preset, header: dict[str, Any], options: TrainOptions, number: int) -> GenerationSettings:
    """The settings of validation prompt `number`: the dataset's size, `--render-steps`, and a seed
    of its own, so a render can be made again outside training with the saved LoRA."""
    from ..generation.settings import GenerationSettings

    return GenerationSettings.from_user(preset, height=header["height"], width=header["width"],
                                        frames=header["frames"], steps=options.render_steps,
                                        seed=options.seed + number)


def render_validation(generator: SideBySideGenerator, transformers: list, prompts: list[str], preset: Preset,
                      header: dict[str, Any], options: TrainOptions, out_dir: Path) -> None:
    """Base vs the LoRA so far on each of `prompts`, written as studio run folders under `out_dir`."""
    for number, prompt in enumerate(prompts):
        generator.generate(prompt, validation_settings(preset, header, options, number), out_dir=out_dir)
    for model in transformers:  # the generator toggles adapters; training needs ours on
        model.enable_adapters()
        model.set_adapters([ADAPTER_NAME], weights=[1.0])


def build_validation_generator(location: str, preset: Preset, transformers: list, device: str, weight_dtype,
                               lora_folder: Path) -> SideBySideGenerator:
    """The studio's side-by-side generator around the training transformer(s): the adapter is off for
    the base run and on for the other, so no second copy of the weights is loaded."""
    from diffusers import AutoencoderKLWan, WanPipeline

    from ..generation import hardware
    from ..generation.finetune import FinetuneSource
    from ..generation.generator import SideBySideGenerator
    from ..generation.loaded import LoadedModels

    vae = AutoencoderKLWan.from_pretrained(location, subfolder="vae", dtype=torch.float32).to(device)
    pipe = WanPipeline.from_pretrained(location, vae=vae, transformer=None, transformer_2=None, dtype=weight_dtype)
    pipe.text_encoder.to(device)
    mode = "cpu" if device == "cpu" else "gpu"
    return SideBySideGenerator(LoadedModels(
        preset=preset, tokenizer=pipe.tokenizer, text_encoder=pipe.text_encoder, vae=vae,
        scheduler_class=type(pipe.scheduler), scheduler_config=dict(pipe.scheduler.config),
        baseline_transformers=transformers, finetuned_transformers=transformers,
        finetune=FinetuneSource("lora", str(lora_folder)), baseline_location=location,
        placement=hardware.Placement(mode, device, device, False)))
