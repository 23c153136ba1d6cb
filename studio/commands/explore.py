from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = ("Explore seeds: N draft side-by-sides of one caption or prompt, each judged per aspect by the CHAI "
        "captioner, ranked; prints the best run last (render it with generate --from-run BEST --profile final).")
MODELS = ("generator", "captioner")  # loaded by run; the CLI says first when they would run on the CPU


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..generation.presets import PRESETS
    from ..generation.profiles import PROFILES

    parser.add_argument("source", metavar="CAPTION_OR_PROMPT",
                        help="a structured caption JSON file (composed into the prompt and judged aspect by "
                             "aspect), or the prompt text")
    parser.add_argument("--seeds", metavar="N", default="4", help="how many seeds to render (1-16, default 4)")
    parser.add_argument("--seed", metavar="S", default=None, help="the first seed (then S+1, ...); default: random")
    parser.add_argument("--profile", choices=list(PROFILES), default="draft", help="speed profile (default: draft)")
    parser.add_argument("--step-cache", metavar="NAME[:K=V,...]", default=None, help="override the profile's cache")
    parser.add_argument("--preset", choices=list(PRESETS), default=None, help="the model family (default ti2v-5b)")
    parser.add_argument("--mode", metavar="MODE", default=None, help="comparison mode (as generate's --mode)")
    parser.add_argument("--short-prompt", metavar="TEXT", help="the plain prompt prompt mode compares against")
    parser.add_argument("--image", metavar="PNG", help="start every seed from this image (ti2v-5b only)")
    parser.add_argument("--out", metavar="DIR", default=None, help="folder for the runs and explore.json")
    from ..config import StudioConfig

    StudioConfig.add_arguments(parser, only=(
        "baseline", "finetuned", "speed_adapter", "lora_scale", "captioner", "caption_prompts", "device", "dtype",
        "memory_mode", "attention", "compile", "vae_tiling", "precision", "tiny", "tiny_dir", "settings_dir",
        "prompt_words", "output_dir"))


def run(args: argparse.Namespace) -> int:
    from ..config import StudioConfig
    from ..generation.presets import DEFAULT_PRESET
    from ..research.explore import EXPLORE_FILE, draw_seeds, explore
    from ..session import ComposeRequest, Done, GenerateRequest, Session, Status
    from .generate import output_root

    seeds = draw_seeds(args.seeds, args.seed)  # checked before anything loads
    config = StudioConfig.from_args(args)
    config = config.replace(output_dir=output_root(args.out, config))
    session = Session(config)
    caption, prompt = None, args.source
    if Path(args.source).suffix.lower() == ".json" or Path(args.source).is_file():
        from ..caption.structured import StructuredCaption

        caption = StructuredCaption.load(args.source)
        prompt = session.compose(ComposeRequest.from_user(caption, session.limits)).prompt
    request = GenerateRequest.from_user(session.limits, prompt, args.preset or DEFAULT_PRESET,
                                        locations=session.locations,
                                        seed=seeds[0], mode=args.mode, short_prompt=args.short_prompt,
                                        caption=caption, image=args.image, profile=args.profile,
                                        step_cache=args.step_cache, speed_adapter=config.speed_adapter)
    for event in explore(session, request, seeds):
        if isinstance(event, Status):
            print(event.message, file=sys.stderr, flush=True)
        elif isinstance(event, Done):
            report = event.result
            print(event.message, file=sys.stderr)
    for place, entry in enumerate(report["ranking"], 1):
        margin = "" if entry["margin"] is None else f", margin over zero-shot {entry['margin']:+.3f}"
        print(f"{place}. seed {entry['seed']}: {entry['ranked_side']} {entry['score']:.3f}{margin}  {entry['run']}",
              file=sys.stderr)
    print(f"wrote {Path(config.output_dir) / EXPLORE_FILE}", file=sys.stderr)
    print(report["ranking"][0]["run_dir"])
    return 0
