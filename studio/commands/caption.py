from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

HELP = "Caption a reference clip aspect by aspect with the CHAI captioner (StructuredCaption JSON)."

# Settings every captioner command accepts (flags and CHAI_STUDIO_* variables).
SETTINGS = ("captioner", "device", "dtype", "tiny", "tiny_dir", "max_clip_seconds", "max_aspect_chars")


def add_clip_arguments(parser: argparse.ArgumentParser) -> None:
    """CLIP, the range or shot to use, and the captioner settings."""
    parser.add_argument("clip", help="reference video file (mp4, mov, webm, mkv)")
    parser.add_argument("--start", type=float, default=None, help="start of the range, seconds")
    parser.add_argument("--end", type=float, default=None, help="end of the range, seconds")
    parser.add_argument("--shot", type=int, default=None, help="use detected shot N (see `python -m studio shots`)")
    parser.add_argument("--fps", type=float, default=2.0, help="frames sampled per second (default 2)")
    parser.add_argument("--max-new-tokens", type=int, default=None, help="cap on generated tokens per answer")
    from ..config import StudioConfig

    StudioConfig.add_arguments(parser, only=SETTINGS)


def add_caption_file_arguments(parser: argparse.ArgumentParser, verb: str, out_help: str) -> None:
    """For the commands that work on an existing caption: CLIP, --caption, --aspect and --out."""
    add_clip_arguments(parser)
    parser.add_argument("--caption", required=True, help="StructuredCaption / CHAI record / {aspect: text} JSON, or -")
    parser.add_argument("--aspect", action="append", default=None,
                        help=f"aspect to {verb} (repeatable; default: every non-empty aspect)")
    parser.add_argument("--out", default=None, help=out_help)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_clip_arguments(parser)
    parser.add_argument("--aspects", nargs="+", default=None, help="aspects to write (default: all five)")
    parser.add_argument("--two-stage", action="store_true",
                        help="CHAI order: Subject, Scene, Camera first; then Motion and Spatial given them")
    parser.add_argument("--stream", action="store_true", help="print each aspect's text to stderr as it is written")
    parser.add_argument("--out", default=None, help="write the JSON here instead of stdout")


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def emit(text: str, out: str | None) -> None:
    if out:
        from pathlib import Path

        path = Path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n", encoding="utf-8")
        print(f"wrote {path}", file=sys.stderr)
    else:
        print(text)


def check_clip_arguments(args: argparse.Namespace) -> None:
    """Numbers a model run needs, checked before a clip is read or a model is loaded."""
    from ..errors import InputError

    if args.max_new_tokens is not None and args.max_new_tokens < 1:
        raise InputError(f"must be a positive number of tokens, got {args.max_new_tokens}", "--max-new-tokens")
    if not 0 < args.fps <= 30:
        raise InputError(f"must be more than 0 and at most 30 frames per second, got {args.fps:g}", "--fps")
    if args.shot is not None and args.shot < 0:
        raise InputError(f"shots are numbered from 0 (see `python -m studio shots`), got {args.shot}", "--shot")


def load_caption_file(path: str, config):
    from ..caption import StructuredCaption

    if path == "-":
        return StructuredCaption.from_json(sys.stdin.read(), config.max_aspect_chars)
    return StructuredCaption.load(path, config.max_aspect_chars)


def selected_aspects(args: argparse.Namespace, caption) -> list[str]:
    """The --aspect names, or every aspect with text; an empty one asked for is an input error."""
    from ..caption.structured import ASPECTS, aspect_name
    from ..errors import InputError

    if args.aspect:
        names = [aspect_name(a) for a in args.aspect]
    else:
        names = [a for a in ASPECTS if caption[a].text.strip()]
    for name in names:
        if not caption[name].text.strip():
            raise InputError(f"the {name} caption is empty; write it or caption the clip first", "--aspect")
    return names


@dataclass
class CaptionTask:
    """What critique, revise and score each start from: the caption, its aspects, the clip, the model."""

    config: object
    caption: object
    aspects: list[str]
    clip: object
    captioner: object


def open_caption_task(args: argparse.Namespace) -> CaptionTask:
    """Read the caption and check the aspects before the slow part (sampling the clip, loading the model)."""
    from ..captioner import get_captioner
    from ..config import StudioConfig

    config = StudioConfig.from_args(args)
    check_clip_arguments(args)
    caption = load_caption_file(args.caption, config)
    aspects = selected_aspects(args, caption)
    clip = clip_for(args, config, caption)
    return CaptionTask(config, caption, aspects, clip, get_captioner(config))


def clip_for(args: argparse.Namespace, config, caption=None):
    """Sample the clip; without --start/--end/--shot, reuse the range recorded in the caption file."""
    from ..captioner import load_clip

    start, end = args.start, args.end
    if caption is not None and args.shot is None and start is None and end is None:
        start, end = caption.provenance.start, caption.provenance.end
    clip = load_clip(config, args.clip, start, end, args.shot, fps=args.fps)
    for message in clip.warnings:
        warn(message)
    return clip


def _stderr_stream():
    """An `on_text` callback that prints each aspect's growing text, a line every few words."""
    printed: dict[str, int] = {}

    def on_text(aspect: str, text: str) -> None:
        if len(text) - printed.get(aspect, 0) >= 40:
            printed[aspect] = len(text)
            print(f"[{aspect}] {text}", file=sys.stderr)

    return on_text


def run(args: argparse.Namespace) -> int:
    from ..captioner import caption_clip
    from ..config import StudioConfig

    config = StudioConfig.from_args(args)
    check_clip_arguments(args)
    on_text = _stderr_stream() if args.stream else None
    caption = caption_clip(config, args.clip, args.start, args.end, args.shot,
                           aspects=args.aspects or ("Subject", "Scene", "Motion", "Spatial", "Camera"),
                           two_stage=args.two_stage, on_text=on_text, on_warning=warn,
                           fps=args.fps, max_new_tokens=args.max_new_tokens)
    emit(caption.to_json(), args.out)
    return 0
