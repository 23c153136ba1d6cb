from __future__ import annotations

import argparse
import contextlib
import re
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
    parser.add_argument("--shot", type=int, default=None, metavar="N",
                        help="use shot N as `python -m studio shots` and the page number it (from 1)")
    from ..captioner.model import DEFAULT_MAX_NEW_TOKENS  # no torch import: --help stays fast

    parser.add_argument("--fps", type=float, default=2.0, help="frames sampled per second (default 2)")
    parser.add_argument("--max-new-tokens", type=int, default=None, metavar="N",
                        help=f"cap on generated tokens per answer (default: the checkpoint's generation config, "
                             f"else {DEFAULT_MAX_NEW_TOKENS})")
    from ..config import StudioConfig

    StudioConfig.add_arguments(parser, only=SETTINGS)


def add_aspect_argument(parser: argparse.ArgumentParser, help: str) -> None:
    """`--aspect A`, repeatable: the same flag on every command that picks aspects."""
    parser.add_argument("--aspect", action="append", default=None, metavar="A", help=help)


def add_caption_file_arguments(parser: argparse.ArgumentParser, verb: str, out_help: str) -> None:
    """For the commands that work on an existing caption: CLIP, --caption, --aspect and --out."""
    add_clip_arguments(parser)
    parser.add_argument("--caption", required=True, help="StructuredCaption / CHAI record / {aspect: text} JSON, or -")
    add_aspect_argument(parser, f"aspect to {verb} (repeatable; default: every non-empty aspect)")
    parser.add_argument("--out", default=None, help=out_help)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_clip_arguments(parser)
    add_aspect_argument(parser, "aspect to write (repeatable; default: all five)")
    # The old spelling `--aspects A B`, still accepted; hidden so --help shows one way.
    parser.add_argument("--aspects", nargs="+", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--two-stage", action="store_true",
                        help="CHAI order: Subject, Scene, Camera first; then Motion and Spatial given them")
    parser.add_argument("--stream", action="store_true",
                        help="print each aspect's new text to stderr as it is written")
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
    shot_index(args.shot)  # numbered from 1, as `shots` prints them


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
    with shot_numbering():
        clip = load_clip(config, args.clip, start, end, shot_index(args.shot), fps=args.fps)
    for message in clip.warnings:
        warn(message)
    return clip


def shot_index(number: int | None) -> int | None:
    """`--shot N` counts from 1, as `shots` and the page print it; the library indexes from 0."""
    if number is None:
        return None
    if number < 1:
        from ..errors import InputError

        raise InputError(f"shots are numbered from 1, got {number}", "--shot")
    return number - 1


@contextlib.contextmanager
def shot_numbering():
    """Say "no shot N" in the numbering the user typed (from 1), not the library's index."""
    from ..errors import InputError

    try:
        yield
    except InputError as exc:
        if exc.field != "shot":
            raise
        match = re.match(r"shot: there is no shot (\d+); the clip has (\d+) shot", str(exc))
        if match is None:
            raise
        wanted, count = int(match.group(1)) + 1, int(match.group(2))
        raise InputError(f"there is no shot {wanted}; the clip has {count} shot(s), numbered 1 to {count}",
                         "--shot") from None


class StderrStream:
    """An `on_text` callback that prints only the text each aspect added since its last line.

    Lines are `[Aspect] new text`, one every few words (aspects are written side by side, so
    each line names its aspect); `finish()` prints what is left. Joined per aspect, the pieces
    are the aspect's whole text.
    """

    MIN_CHARS = 40

    def __init__(self, out=None):
        self.out = out or sys.stderr
        self.printed: dict[str, int] = {}
        self.latest: dict[str, str] = {}

    def __call__(self, aspect: str, text: str) -> None:
        self.latest[aspect] = text
        if len(text) - self.printed.get(aspect, 0) >= self.MIN_CHARS:
            self._print(aspect)

    def _print(self, aspect: str) -> None:
        text = self.latest[aspect]
        new = text[self.printed.get(aspect, 0):]
        self.printed[aspect] = len(text)
        if new:
            print(f"[{aspect}] {new.replace(chr(10), ' ')}", file=self.out, flush=True)

    def finish(self) -> None:
        for aspect in self.latest:
            self._print(aspect)


def run(args: argparse.Namespace) -> int:
    from ..captioner import caption_clip
    from ..config import StudioConfig

    config = StudioConfig.from_args(args)
    check_clip_arguments(args)
    stream = StderrStream() if args.stream else None
    aspects = (args.aspect or []) + (args.aspects or [])
    with shot_numbering():
        caption = caption_clip(config, args.clip, args.start, args.end, shot_index(args.shot),
                               aspects=aspects or ("Subject", "Scene", "Motion", "Spatial", "Camera"),
                               two_stage=args.two_stage, on_text=stream, on_warning=warn,
                               fps=args.fps, max_new_tokens=args.max_new_tokens)
    if stream is not None:
        stream.finish()
    emit(caption.to_json(), args.out)
    return 0
