from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = ("Generate a comparison run: the CHAI-finetuned beside the zero-shot Wan2.2 (finetuned mode), or the "
        "CHAI prompt beside a short plain prompt on one model (prompt mode); same seed and settings.")
MODELS = ("generator",)  # loaded by run; the CLI says first when they would run on the CPU

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
    from ..generation.profiles import PROFILES
    from ..generation.step_caches import CACHES

    parser.add_argument("--profile", choices=list(PROFILES), default=None,
                        help="speed profile: " + "; ".join(f"{p.name}: {p.description}" for p in PROFILES.values())
                             + ". Explicit flags win. With --from-run: the recorded run again at this profile "
                               "(same prompt, seed and start image), e.g. a kept draft at final")
    parser.add_argument("--step-cache", metavar="NAME[:K=V,...]", default=None,
                        help=f"skip near-duplicate denoising work: {', '.join(CACHES)} or none "
                             "(default: the profile's); magcache needs `calibrate-cache` run first")
    parser.add_argument("--out", metavar="DIR", default=None,
                        help="a new run directory is created under DIR (default: the output_dir setting, "
                             "CHAI_STUDIO_OUTPUT_DIR / --output-dir, itself outputs/ by default)")
    from ..config import StudioConfig

    StudioConfig.add_arguments(parser, only=(
        "baseline", "finetuned", "speed_adapter", "lora_scale", "device", "dtype", "memory_mode", "attention",
        "compile", "first_block_cache", "vae_tiling", "precision", "parallel", "tiny", "tiny_dir", "settings_dir",
        "prompt_words", "output_dir"))


def output_root(out: str | Path | None, config) -> Path:
    """--out, or the output_dir setting; a path that is an existing file is refused."""
    from ..errors import InputError

    root = Path(out).expanduser() if out else Path(config.output_dir)
    if root.exists() and not root.is_dir():
        raise InputError(f"{root} is a file; give a folder for the run directories", "--out")
    return root


def request_from_args(args: argparse.Namespace):
    """(session, GenerateRequest, recorded frame hashes): every flag checked by the session's own
    rules, without torch (a bad flag costs no model import)."""
    from ..config import StudioConfig
    from ..errors import InputError
    from ..generation.presets import DEFAULT_PRESET
    from ..session import ComposeRequest, GenerateRequest, Session, SharedModels

    config = StudioConfig.from_args(args)
    config = config.replace(output_dir=output_root(args.out, config))
    if args.from_run:
        given = [f"--{name.replace('_', '-')}" for name in SETTING_FLAGS if getattr(args, name, None) is not None]
        if given:
            raise InputError(f"takes every setting from the recorded run; drop {', '.join(given)}", "--from-run")
        return request_from_run(args.from_run, config, args.profile, args.step_cache)
    if not args.caption and args.prompt is None:
        raise InputError("give --prompt TEXT, --caption FILE or --from-run RUN_DIR", "generate")
    # The generator brings its own tokenizer: the prompt is counted exactly once it is loaded.
    session = Session(config, SharedModels(config, load_tokenizer=False))
    caption, prompt = None, args.prompt
    if args.caption:
        from ..caption.structured import StructuredCaption

        caption = StructuredCaption.load(args.caption)
        prompt = session.compose(ComposeRequest.from_user(caption, session.limits)).prompt
    request = GenerateRequest.from_user(
        session.limits, prompt, args.preset or DEFAULT_PRESET, locations=session.locations, seconds=args.duration,
        frames=args.frames, width=args.width, height=args.height, steps=args.steps, guidance=args.guidance,
        guidance_2=args.guidance_2, shift=args.shift, seed=args.seed, negative_prompt=args.negative_prompt,
        mode=args.mode, short_prompt=args.short_prompt, caption=caption, image=args.image, profile=args.profile,
        step_cache=args.step_cache, speed_adapter=config.speed_adapter)
    if config.finetuned.strip():
        from ..generation.finetune import classify_finetuned

        classify_finetuned(config.finetuned)
    return session, request, {}


def request_from_run(run_dir: str | Path, config, profile: str | None = None, step_cache: str | None = None):
    """The recorded run's request (`request_again`) on a session of the models it recorded, and
    the frame hashes it recorded when it is reproduced exactly (none at another profile)."""
    from ..errors import InputError
    from ..generation.run_records import load_run
    from ..session import Session
    from ..session.requests import request_again

    run = load_run(run_dir)
    record = run["record"]
    models = record.get("models") or {}
    finetuned = models.get("finetuned") or {}
    runtime = record.get("runtime") or {}
    baseline = (models.get("baseline") or {}).get("location")
    if not baseline:
        raise InputError(f"{run_dir}/run.json names no baseline model", "--from-run")
    speed = record.get("speed_adapter") if isinstance(record.get("speed_adapter"), dict) else {}
    overrides = {"baseline": baseline, "finetuned": finetuned.get("location") or "", "tiny": False,
                 "speed_adapter": str(speed.get("location") or "")}
    from ..generation.speed_adapter import describe_speed_adapter

    adapter = describe_speed_adapter(overrides["speed_adapter"])  # still there and still a LoRA
    if finetuned.get("lora_scale") is not None:
        overrides["lora_scale"] = float(finetuned["lora_scale"])
    dtype = str(runtime.get("dtype", "")).replace("torch.", "")
    if dtype in ("bfloat16", "float16", "float32"):
        overrides["dtype"] = dtype
    for name in ("attention", "first_block_cache", "precision"):
        if runtime.get(name) is not None:
            overrides[name] = runtime[name]
    if runtime.get("vae_tiling") is not None:
        overrides["vae_tiling"] = "on" if runtime["vae_tiling"] else "off"
    session = Session(config.replace(**overrides))
    request = request_again(run, Path(run_dir), profile, step_cache,
                            adapter_defaults=adapter.defaults() if adapter else None)
    if request.settings is not run["settings"]:
        return session, request, {}
    sides = (record.get("comparison") or {}).get("sides", [])
    recorded = {s["key"]: s["frames_sha256"] for s in sides if s.get("frames_sha256")}
    return session, request, recorded


def reproduction_line(recorded: dict[str, str], run_json: Path) -> str:
    """Whether each side's frames equal the recorded run's (compared by hash before encoding)."""
    import json

    new = {s["key"]: s.get("frames_sha256") for s in json.loads(run_json.read_text())["comparison"]["sides"]}
    verdicts = [f"{key} {'identical' if new.get(key) == value else 'DIFFERENT'}" for key, value in recorded.items()]
    return "frames versus the recorded run: " + ", ".join(verdicts)


def run(args: argparse.Namespace) -> int:
    from ..logging_setup import quiet_loaded_libraries
    from ..session import Done, Plan, SideStep, Status

    session, request, recorded = request_from_args(args)
    quiet_loaded_libraries()  # stderr carries the studio's own progress lines
    s = request.settings
    print(f"{s.num_frames} frames at {s.width}x{s.height}, {s.steps} steps, seed {s.seed}", file=sys.stderr)
    for event in session.generate(request):
        if isinstance(event, Status):
            print(event.message, file=sys.stderr, flush=True)
        elif isinstance(event, Plan):
            order = " then ".join(event.order) if event.order else "all sides at once"
            print(f"{event.mode} mode: {' | '.join(label for _, label in event.sides)}; runs {order}",
                  file=sys.stderr, flush=True)
        elif isinstance(event, SideStep):
            left = "" if event.eta_s is None else f" (about {event.eta_s:.0f} s left)"
            print(f"{event.side}: step {event.step}/{event.total}{left}", file=sys.stderr, flush=True)
        elif isinstance(event, Done):
            result = event.result
    shown = result.side_by_side_video or result.left_video
    print(f"wrote {shown} (seed {result.seed}, {result.timings['total_s']:.1f} s)", file=sys.stderr)
    if recorded:
        print(reproduction_line(recorded, result.run_json), file=sys.stderr)
    print(result.run_dir)
    return 0
