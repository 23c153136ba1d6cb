from __future__ import annotations

import argparse
import sys

HELP = ("Build a LoRA training dataset: split clips into shots, caption each with the CHAI captioner, cache "
        "VAE latents and prompt embeddings.")
MODELS = ("captioner", "encoders")  # loaded by run; the CLI says first when they would run on the CPU


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..generation.presets import DEFAULT_PRESET, PRESETS

    parser.add_argument("clips", metavar="CLIPS", help="a folder of clips, or a .csv / .jsonl list of paths "
                        "(columns: path, optional start, end, caption)")
    parser.add_argument("--out", metavar="DATASET", required=True, help="the dataset folder (created or resumed)")
    parser.add_argument("--preset", choices=list(PRESETS), default=DEFAULT_PRESET,
                        help=f"Wan2.2 family the dataset is for (default: {DEFAULT_PRESET})")
    parser.add_argument("--height", metavar="H", help="training height in pixels (default: the preset's)")
    parser.add_argument("--width", metavar="W", help="training width in pixels (default: the preset's)")
    parser.add_argument("--frames", metavar="N", help="frames per training window, snapped to 4k+1 "
                        "(default: the preset's)")
    parser.add_argument("--best-of", metavar="N", default=1,
                        help="sample N captions per aspect and keep the one with the highest reward (default: 1)")
    parser.add_argument("--max-new-tokens", metavar="N", default=None,
                        help="cap on each caption's tokens (default: the captioner's own limit)")
    parser.add_argument("--two-stage", action=argparse.BooleanOptionalAction, default=True,
                        help="caption in CHAI's two-stage order (the default; --no-two-stage: all aspects at once)")
    parser.add_argument("--min-shot-seconds", metavar="S", default=None,
                        help="skip shots shorter than this (default: the training window)")
    parser.add_argument("--max-shot-seconds", metavar="S", default=60.0,
                        help="skip shots longer than this (default: 60)")
    parser.add_argument("--threshold", metavar="T", default=27.0,
                        help="PySceneDetect content threshold for cuts (default: 27)")
    parser.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                        help="run captioning and encoding as Ray Data stages, one model actor per GPU "
                             "(a local Ray without ADDRESS)")
    parser.add_argument("--workers", metavar="N", type=int, default=None,
                        help="actors per Ray stage (default: one per GPU, or 1)")
    from ..config import StudioConfig

    StudioConfig.add_arguments(parser, only=("captioner", "caption_prompts", "baseline", "device", "dtype", "tiny",
                                             "tiny_dir", "max_aspect_chars", "prompt_words"))


def run(args: argparse.Namespace) -> int:
    from ..config import StudioConfig
    from ..errors import InputError
    from ..training.dataset import DatasetSpec

    config = StudioConfig.from_args(args)
    spec = DatasetSpec.from_user(config, args.preset, height=args.height, width=args.width, frames=args.frames,
                                 best_of=args.best_of, two_stage=args.two_stage,
                                 min_shot_seconds=args.min_shot_seconds, max_shot_seconds=args.max_shot_seconds,
                                 shot_threshold=args.threshold, max_new_tokens=args.max_new_tokens)
    if args.workers is not None and args.workers < 1:
        raise InputError(f"must be 1 or more, got {args.workers}", "--workers")
    if args.ray is not None:
        from ..ray_cluster import require_ray

        require_ray()
    print(f"dataset for {spec.preset}: {spec.frames} frames at {spec.width}x{spec.height}, {spec.fps} fps "
          f"({spec.window_seconds:.2f} s windows)", file=sys.stderr)
    from ..logging_setup import quiet_loaded_libraries
    from ..progress import progress_bar

    quiet_loaded_libraries()

    if args.ray is not None:
        from ..training.ray_stages import build_dataset_on_ray

        summary = build_dataset_on_ray(config, args.clips, args.out, spec, address=args.ray or None,
                                       workers=args.workers, progress=progress_bar)
    else:
        from ..training.stages import build_dataset

        summary = build_dataset(config, args.clips, args.out, spec, progress=progress_bar)
    for line in summary.lines():
        print(line, file=sys.stderr)
    print(args.out)
    return 0
