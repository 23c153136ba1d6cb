from __future__ import annotations

import argparse
import sys
from pathlib import Path
from dataclasses import dataclass

HELP = "Caption a reference clip aspect by aspect with the CHAI captioner (StructuredCaption JSON)."
MODELS = ("captioner",)  # loaded by run; the CLI says first when they would run on the CPU

# Settings every captioner command accepts (flags and CHAI_STUDIO_* variables).
SETTINGS = ("captioner", "caption_prompts", "device", "dtype", "tiny", "tiny_dir", "max_clip_seconds",
            "max_aspect_chars")


def add_clip_arguments(parser: argparse.ArgumentParser) -> None:
    """CLIP, the range or shot to use, and the captioner settings."""
    parser.add_argument("clip", help="reference video file (mp4, mov, webm, mkv)")
    parser.add_argument("--start", type=float, default=None, help="start of the range, seconds")
    parser.add_argument("--end", type=float, default=None, help="end of the range, seconds")
    parser.add_argument("--shot", type=int, default=None, metavar="N",
                        help="use shot N as `python -m studio shots` and the page number it (from 1)")
    from ..captioner.model import DEFAULT_MAX_NEW_TOKENS  # no torch import: --help stays fast

    parser.add_argument("--fps", type=float, default=None,
                        help="frames sampled per second (default: the prompt pack's rate, as on the page; "
                             "`python -m studio prompts show` prints it)")
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
    parser.add_argument("--caption", required=True, help="StructuredCaption / CHAI record / {aspect: text} JSON, - for stdin, or a shot library "
                                                        "name such as dolly_zoom")
    add_aspect_argument(parser, f"aspect to {verb} (repeatable; default: every non-empty aspect)")
    parser.add_argument("--out", default=None, help=out_help)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_clip_arguments(parser)
    add_aspect_argument(parser, "aspect to write (repeatable; default: all five)")
    # The old spelling `--aspects A B`, still accepted; hidden so --help shows one way.
    parser.add_argument("--aspects", nargs="+", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--two-stage", action=argparse.BooleanOptionalAction, default=True,
                        help="CHAI's order, the default: Subject, Scene, Camera first; then Motion given the "
                             "Subject caption and Spatial given Subject and Scene (--no-two-stage: all at once)")
    parser.add_argument("--stream", action="store_true",
                        help="print each aspect's new text to stderr as it is written")
    parser.add_argument("--out", default=None, help="write the JSON here instead of stdout")


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def emit(text: str, out: str | None) -> None:
    if out:
        path = Path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n", encoding="utf-8")
        print(f"wrote {path}", file=sys.stderr)
    else:
        print(text)


def load_caption_file(path: str, config):
    """A caption file, `-` for stdin, or a shot library name (`dolly_zoom`) when no such file exists."""
    from ..caption import StructuredCaption
    from ..shot_library import is_preset_name, load_preset

    if path == "-":
        return StructuredCaption.from_json(sys.stdin.read(), config.max_aspect_chars)
    if not Path(path).exists() and is_preset_name(path):
        return load_preset(path)
    return StructuredCaption.load(path, config.max_aspect_chars)


def open_session(args: argparse.Namespace):
    """The session this command drives (its flags and CHAI_STUDIO_* settings)."""
    from ..config import StudioConfig
    from ..session import Session

    return Session(StudioConfig.from_args(args))


def clip_range(args: argparse.Namespace, session, caption=None):
    """CLIP and --start/--end/--shot, checked by the page's own rules; without a range or a shot,
    the range recorded in the caption file."""
    start, end = args.start, args.end
    if caption is not None and args.shot is None and start is None and end is None:
        start, end = caption.provenance.start, caption.provenance.end
    return session.clip(args.clip, start, end, args.shot)


def selected_aspects(args: argparse.Namespace, caption) -> list[str]:
    """The --aspect names, or every aspect with text."""
    from ..caption.structured import ASPECTS, aspect_name

    if args.aspect:
        return list(dict.fromkeys(aspect_name(a) for a in args.aspect))
    return [a for a in ASPECTS if caption[a].text.strip()]


@dataclass
class CaptionTask:
    """What critique, revise and score each start from: the session, the caption and one checked
    request per chosen aspect (all refused before the clip is sampled or a model is loaded)."""

    session: object
    caption: object
    requests: list


def open_caption_task(args: argparse.Namespace, verb: str, critique: str | None = None) -> CaptionTask:
    import dataclasses

    from ..session import AspectRequest, CaptionRequest

    session = open_session(args)
    caption = load_caption_file(args.caption, session.config)
    clip = clip_range(args, session, caption)
    # --fps is checked by the caption request's rule, then every step of this session samples at it.
    fps = CaptionRequest.from_user(clip, session.limits, fps=args.fps).fps
    session.limits = dataclasses.replace(session.limits, caption_fps=fps)
    requests = [AspectRequest.from_user(clip, session.limits, aspect, caption[aspect].text, critique, verb=verb,
                                        max_new_tokens=args.max_new_tokens)
                for aspect in selected_aspects(args, caption)]
    for message in session.sample(clip).warnings:
        warn(message)
    return CaptionTask(session, caption, requests)


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
    from ..session import CaptionRequest, CaptionText, Done, Status

    session = open_session(args)
    clip = clip_range(args, session)
    request = CaptionRequest.from_user(clip, session.limits, (args.aspect or []) + (args.aspects or []),
                                       args.two_stage, args.fps, args.max_new_tokens)
    stream = StderrStream() if args.stream else None
    for event in session.caption(request):
        if isinstance(event, CaptionText) and stream is not None:
            for aspect, text in event.texts.items():
                stream(aspect, text)
        elif isinstance(event, Status):
            print(event.message, file=sys.stderr, flush=True)
        elif isinstance(event, Done):
            caption = event.result
    if stream is not None:
        stream.finish()
    emit(caption.to_json(), args.out)
    return 0
