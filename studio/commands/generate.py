from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = ("Generate the same prompt with the CHAI-finetuned and the zero-shot Wan2.2 (same seed and settings) "
        "and write a side-by-side run directory.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..generation import DEFAULT_PRESET, PRESETS

    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--caption", metavar="FILE", help="structured caption JSON, composed into the prompt")
    source.add_argument("--prompt", metavar="TEXT", help="the prompt text")
    parser.add_argument("--preset", choices=list(PRESETS), default=DEFAULT_PRESET, help="baseline model family")
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--duration", metavar="S", help="video length in seconds (snapped to 4k+1 frames)")
    length.add_argument("--frames", metavar="N", help="number of frames (snapped to 4k+1)")
    parser.add_argument("--height", metavar="H", help="pixels (snapped to the model's multiple)")
    parser.add_argument("--width", metavar="W", help="pixels (snapped to the model's multiple)")
    parser.add_argument("--steps", metavar="N", help="denoising steps")
    parser.add_argument("--guidance", metavar="G", help="classifier-free guidance (high-noise expert for A14B)")
    parser.add_argument("--guidance-2", metavar="G", help="low-noise expert guidance (t2v-a14b only)")
    parser.add_argument("--shift", metavar="S", help="flow-matching timestep shift")
    parser.add_argument("--seed", metavar="N", default="-1", help="random seed; -1 draws one (always reported)")
    parser.add_argument("--negative-prompt", metavar="T", help="what to steer away from (default: the studio's)")
    parser.add_argument("--image", metavar="PNG", help="start from this image (ti2v-5b only)")
    parser.add_argument("--out", metavar="DIR", required=True, help="a new run directory is created under DIR")
    from ..config import StudioConfig

    StudioConfig.add_arguments(parser, only=(
        "baseline", "finetuned", "lora_scale", "device", "dtype", "memory_mode", "attention",
        "first_block_cache", "vae_tiling", "tiny", "tiny_dir", "prompt_words"))


def _load_image(path: str):
    from PIL import Image, UnidentifiedImageError

    from ..errors import InputError

    if not Path(path).is_file():
        raise InputError(f"{path} does not exist", "--image")
    try:
        with Image.open(path) as image:
            image.load()
            return image.convert("RGB")
    except (UnidentifiedImageError, OSError):
        raise InputError(f"{path} is not an image (PNG or JPEG expected)", "--image") from None


def run(args: argparse.Namespace) -> int:
    from ..config import StudioConfig
    from ..errors import InputError

    config = StudioConfig.from_args(args)
    caption = None
    if args.caption:
        from ..caption.structured import StructuredCaption

        caption = StructuredCaption.load(args.caption)
    elif not args.prompt.strip():
        raise InputError("is empty", "--prompt")
    image = _load_image(args.image) if args.image else None

    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    from ..generation import GenerationSettings, get_generator, get_preset

    # stderr carries the studio's own progress lines; the libraries' bars would drown them.
    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()
    diffusers_logging.set_verbosity_error()

    preset = get_preset(args.preset, tiny=config.tiny)
    if image is not None and not preset.supports_image:
        raise InputError(f"{preset.label} generates from text only; use --preset ti2v-5b", "--image")
    settings = GenerationSettings.from_user(
        preset, duration=args.duration, frames=args.frames, height=args.height, width=args.width,
        steps=args.steps, guidance=args.guidance, guidance_2=args.guidance_2, shift=args.shift, seed=args.seed,
        negative_prompt=args.negative_prompt)
    generator = get_generator(config, args.preset)
    if caption is not None:
        from ..compose import ComposeOptions, compose

        prompt = compose(caption, ComposeOptions(max_words=config.prompt_words), tokenizer=generator.tokenizer).prompt
        if not prompt.strip():
            raise InputError(f"{args.caption} has no caption text to compose", "--caption")
    else:
        prompt = args.prompt
    print(f"seed {settings.seed}; {settings.num_frames} frames at {settings.width}x{settings.height}, "
          f"{settings.steps} steps", file=sys.stderr)

    def progress(model: str, step: int, total: int, preview) -> None:
        print(f"{model}: step {step}/{total}", file=sys.stderr, flush=True)

    result = generator.generate(prompt, settings, caption=caption, image=image, on_step=progress, out_dir=args.out,
                                image_source=args.image)
    print(f"wrote {result.side_by_side_video} (seed {result.seed}, {result.timings['total_s']:.1f} s)",
          file=sys.stderr)
    print(result.run_dir)
    return 0
