"""Validation renders during training: the base model beside the LoRA so far, on fixed prompts.

Apart from the training loop because it borrows the studio's generator: the training
transformer(s) are handed to a `SideBySideGenerator` (adapter off for the base run, on for the
other), so no second copy of the weights is loaded, and each render is an ordinary run folder.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from ..generation.finetune import ADAPTER_NAME

if TYPE_CHECKING:
    from ..generation.settings import GenerationSettings
    from .options import TrainOptions
    from .trainer import LoraTrainer


def validation_settings(preset, header: dict[str, Any], options: TrainOptions, number: int) -> GenerationSettings:
    """The settings of validation prompt `number`: the dataset's size, `--render-steps`, and a seed
    of its own, so a render can be made again outside training with the saved LoRA."""
    from ..generation.settings import GenerationSettings

    return GenerationSettings.from_user(preset, height=header["height"], width=header["width"],
                                        frames=header["frames"], steps=options.render_steps,
                                        seed=options.seed + number)


def render_validation(trainer: LoraTrainer, step: int) -> None:
    """Base vs the LoRA so far on fixed prompts, written as studio run folders."""
    if trainer.generator is None:
        trainer.generator = build_validation_generator(trainer, trainer.transformers)
    prompts = [r["prompt"] for r in trainer.plan.val_rows[: trainer.options.validation_prompts]]
    for number, prompt in enumerate(prompts):
        settings = validation_settings(trainer.preset, trainer.plan.header, trainer.options, number)
        trainer.generator.generate(prompt, settings, out_dir=trainer.plan.out / "validation" / f"step-{step:06d}")
    for model in trainer.transformers:  # the generator toggles adapters; training needs ours on
        model.enable_adapters()
        model.set_adapters([ADAPTER_NAME], weights=[1.0])


def build_validation_generator(trainer: LoraTrainer, transformers: list):
    """The studio's side-by-side generator around the training transformer(s): the adapter is off for
    the base run and on for the other, so no second copy of the weights is loaded."""
    from diffusers import AutoencoderKLWan, WanPipeline

    from ..generation import hardware
    from ..generation.finetune import FinetuneSource
    from ..generation.generator import SideBySideGenerator

    device = str(trainer.accelerator.device)
    vae = AutoencoderKLWan.from_pretrained(trainer.location, subfolder="vae", dtype=torch.float32).to(device)
    pipe = WanPipeline.from_pretrained(trainer.location, vae=vae, transformer=None, transformer_2=None,
                                       dtype=trainer.weight_dtype)
    pipe.text_encoder.to(device)
    mode = "cpu" if device == "cpu" else "gpu"
    return SideBySideGenerator(
        preset=trainer.preset, tokenizer=pipe.tokenizer, text_encoder=pipe.text_encoder, vae=vae,
        scheduler=pipe.scheduler, baseline_transformers=transformers, finetuned_transformers=transformers,
        finetune=FinetuneSource("lora", str(trainer.plan.out)), baseline_location=trainer.location,
        placement=hardware.Placement(mode, device, device, False))
