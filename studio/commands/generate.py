from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = ("Generate a comparison run: the CHAI-finetuned beside the zero-shot Wan2.2 (finetuned mode), or the "
        "CHAI prompt beside a short plain prompt on one model (prompt mode); same seed and settings.")

# Flags that set a generation setting; --from-run takes all of them from the recorded run.
SETTING_FLAGS = ("preset", "duration", "frames", "height", "width", "steps", "guidance", "guidance_2", "shift",
                 "seed", "negative_prompt", "image", "mode", "short_prompt")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..generation import DEFAULT_PRESET, PRESETS

    source = parser.add_mutually_exclusive_group()
    source.add_argument("--caption", metavar="FILE", help="structured caption JSON, composed into the prompt")
    source.add_argument("--prompt", metavar="TEXT", help="the prompt text")
    source.add_argument("--from-run", metavar="RUN_DIR",
                        help="regenerate a recorded run with every recorded setting (start image included)")
    parser.add_argument("--mode", metavar="MODE", default=None,
                        help="finetuned (finetuned vs zero-shot, same prompt) or prompt (CHAI prompt vs "
                             "--short-prompt on one model); default: finetuned when finetuned weights are set, "
                             "else prompt with --short-prompt, else the zero-shot model alone")
    parser.add_argument("--short-prompt", metavar="TEXT", help="the plain prompt prompt mode compares against")
    parser.add_argument("--preset", choices=list(PRESETS), default=None,
                        help=f"baseline model family (default: {DEFAULT_PRESET})")
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--duration", metavar="S", help="video length in seconds (snapped to 4k+1 frames)")
    length.add_argument("--frames", metavar="N", help="number of frames (snapped to 4k+1)")
    parser.add_argument("--height", metavar="H", help="pixels (snapped to the model's multiple)")
    parser.add_argument("--width", metavar="W", help="pixels (snapped to the model's multiple)")
    steps = ", ".join(f"{p.steps} for {name}" for name, p in PRESETS.items())
    parser.add_argument("--steps", metavar="N", help=f"denoising steps (default: the preset's, {steps})")
    parser.add_argument("--guidance", metavar="G", help="classifier-free guidance (high-noise expert for A14B)")
    parser.add_argument("--guidance-2", metavar="G", help="low-noise expert guidance (t2v-a14b only)")
    parser.add_argument("--shift", metavar="S", help="flow-matching timestep shift")
    parser.add_argument("--seed", metavar="N", default=None, help="random seed; -1 draws one (always reported; "
                                                                 "default -1)")
    parser.add_argument("--negative-prompt", metavar="T", help="what to steer away from (default: the studio's)")
    parser.add_argument("--image", metavar="PNG", help="start from this image (ti2v-5b only)")
    parser.add_argument("--out", metavar="DIR", default=None,
                        help="a new run directory is created under DIR (default: the output_dir setting, "
                             "CHAI_STUDIO_OUTPUT_DIR / --output-dir, itself outputs/ by default)")
    from ..config import StudioConfig

    StudioConfig.add_arguments(parser, only=(
        "baseline", "finetuned", "lora_scale", "device", "dtype", "memory_mode", "attention",
        "first_block_cache", "vae_tiling", "tiny", "tiny_dir", "prompt_words", "output_dir"))


def load_image(path: str | Path, field: str = "--image"):
    from PIL import Image, UnidentifiedImageError

    from ..errors import InputError

    if not Path(path).is_file():
        raise InputError(f"{path} does not exist", field)
    try:
        with Image.open(path) as image:
            image.load()
            return image.convert("RGB")
    except (UnidentifiedImageError, OSError):
        raise InputError(f"{path} is not an image (PNG or JPEG expected)", field) from None


def output_root(out: str | Path | None, config) -> Path:
    """--out, or the output_dir setting; a path that is an existing file is refused."""
    from ..errors import InputError

    root = Path(out).expanduser() if out else Path(config.output_dir)
    if root.exists() and not root.is_dir():
        raise InputError(f"{root} is a file; give a folder for the run directories", "--out")
    return root


class Request:
    """Everything one generation needs, checked without torch (bad flags cost no model import)."""

    def __init__(self, config, preset: str, settings, prompt: str | None, caption, image, image_source,
                 mode: str | None, short_prompt: str | None, reference=None):
        self.config, self.preset, self.settings = config, preset, settings
        self.prompt, self.caption, self.image, self.image_source = prompt, caption, image, image_source
        self.mode, self.short_prompt, self.reference = mode, short_prompt, reference
        self.recorded_frames: dict[str, str] = {}  # side key -> frames hash of the run being reproduced


def request_from_args(args: argparse.Namespace):
    from ..config import StudioConfig
    from ..errors import InputError
    from ..generation.comparison import resolve_mode
    from ..generation.presets import DEFAULT_PRESET, get_preset
    from ..generation.settings import GenerationSettings

    config = StudioConfig.from_args(args)
    if args.from_run:
        given = [f"--{name.replace('_', '-')}" for name in SETTING_FLAGS if getattr(args, name, None) is not None]
        if given:
            raise InputError(f"takes every setting from the recorded run; drop {', '.join(given)}", "--from-run")
        return request_from_run(args.from_run, config)
    if not args.caption and args.prompt is None:
        raise InputError("give --prompt TEXT, --caption FILE or --from-run RUN_DIR", "generate")
    caption = None
    if args.caption:
        from ..caption.structured import StructuredCaption

        caption = StructuredCaption.load(args.caption)
    elif not args.prompt.strip():
        raise InputError("is empty", "--prompt")
    preset = get_preset(args.preset or DEFAULT_PRESET, tiny=config.tiny)  # tiny: sizes the tiny models handle
    has_finetune = bool(config.finetuned.strip()) or config.tiny
    resolve_mode(args.mode, has_finetune, args.short_prompt)  # an impossible mode fails here, before loading
    if config.finetuned.strip():
        from ..generation.finetune import classify_finetuned

        classify_finetuned(config.finetuned)
    settings = GenerationSettings.from_user(
        preset, duration=args.duration, frames=args.frames, height=args.height, width=args.width,
        steps=args.steps, guidance=args.guidance, guidance_2=args.guidance_2, shift=args.shift,
        seed=-1 if args.seed is None else args.seed, negative_prompt=args.negative_prompt)
    image = load_image(args.image) if args.image else None
    if image is not None and not preset.supports_image:
        raise InputError(f"{preset.label} generates from text only; use --preset ti2v-5b", "--image")
    return Request(config, preset.name, settings, args.prompt if caption is None else None, caption, image,
                   args.image, args.mode, args.short_prompt)


def request_from_run(run_dir: str | Path, config) -> Request:
    """The recorded run's prompt, caption, settings, mode, start image and model locations."""
    from ..errors import InputError
    from ..generation.run_records import load_run

    run = load_run(run_dir)
    record = run["record"]
    models = record.get("models") or {}
    finetuned = models.get("finetuned") or {}
    runtime = record.get("runtime") or {}
    baseline = (models.get("baseline") or {}).get("location")
    if not baseline:
        raise InputError(f"{run_dir}/run.json names no baseline model", "--from-run")
    overrides = {"baseline": baseline, "finetuned": finetuned.get("location") or "", "tiny": False}
    if finetuned.get("lora_scale") is not None:
        overrides["lora_scale"] = float(finetuned["lora_scale"])
    dtype = str(runtime.get("dtype", "")).replace("torch.", "")
    if dtype in ("bfloat16", "float16", "float32"):
        overrides["dtype"] = dtype
    for name in ("attention", "first_block_cache"):
        if runtime.get(name) is not None:
            overrides[name] = runtime[name]
    if runtime.get("vae_tiling") is not None:
        overrides["vae_tiling"] = "on" if runtime["vae_tiling"] else "off"
    config = config.replace(**overrides)
    image, image_source = None, None
    image_record = record.get("image") or {}
    if image_record.get("file"):
        image = load_image(Path(run_dir) / image_record["file"], "--from-run")
        image_source = image_record.get("source")
    comparison = record.get("comparison") or {"mode": "finetuned"}
    request = Request(config, run["preset"] or "ti2v-5b", run["settings"], run["prompt"], run["caption"], image,
                      image_source, comparison.get("mode"), comparison.get("short_prompt"), record.get("reference"))
    request.recorded_frames = {s["key"]: s["frames_sha256"] for s in comparison.get("sides", [])
                               if s.get("frames_sha256")}
    return request


def reproduction_line(recorded: dict[str, str], run_json: Path) -> str:
    """Whether each side's frames equal the recorded run's (compared by hash before encoding)."""
    import json

    new = {s["key"]: s.get("frames_sha256") for s in json.loads(run_json.read_text())["comparison"]["sides"]}
    verdicts = [f"{key} {'identical' if new.get(key) == value else 'DIFFERENT'}" for key, value in recorded.items()]
    return "frames versus the recorded run: " + ", ".join(verdicts)


def run(args: argparse.Namespace) -> int:
    from ..errors import InputError

    request = request_from_args(args)
    out = output_root(args.out, request.config)

    from ..generation import get_generator
    from ..logging_setup import quiet_loaded_libraries

    quiet_loaded_libraries()  # stderr carries the studio's own progress lines

    generator = get_generator(request.config, request.preset)
    prompt = request.prompt
    if prompt is None:
        from ..compose import ComposeOptions, compose

        prompt = compose(request.caption, ComposeOptions(max_words=request.config.prompt_words),
                         tokenizer=generator.tokenizer).prompt
        if not prompt.strip():
            raise InputError(f"{args.caption} has no caption text to compose", "--caption")
    settings = request.settings
    mode, sides = generator.plan(prompt, request.mode, request.short_prompt)
    print(f"{mode} mode: {' | '.join(side.label for side in sides)}; seed {settings.seed}; {settings.num_frames} "
          f"frames at {settings.width}x{settings.height}, {settings.steps} steps", file=sys.stderr)

    def progress(side: str, step: int, total: int, preview) -> None:
        print(f"{side}: step {step}/{total}", file=sys.stderr, flush=True)

    result = generator.generate(prompt, settings, caption=request.caption, image=request.image, on_step=progress,
                                out_dir=out, image_source=request.image_source, mode=mode,
                                short_prompt=request.short_prompt, reference=request.reference)
    shown = result.side_by_side_video or result.left_video
    print(f"wrote {shown} (seed {result.seed}, {result.timings['total_s']:.1f} s)", file=sys.stderr)
    if request.recorded_frames:
        print(reproduction_line(request.recorded_frames, result.run_json), file=sys.stderr)
    print(result.run_dir)
    return 0
