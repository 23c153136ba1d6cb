from __future__ import annotations

import argparse
import json

from .caption import add_clip_arguments, clip_for, emit, load_caption_file

HELP = "Critique a caption's aspects against the clip (the model says when nothing needs changing)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_clip_arguments(parser)
    parser.add_argument("--caption", required=True, help="StructuredCaption / CHAI record / {aspect: text} JSON, or -")
    parser.add_argument("--aspect", action="append", default=None,
                        help="aspect to critique (repeatable; default: every non-empty aspect)")
    parser.add_argument("--out", default=None, help="write the JSON here instead of stdout")


def selected_aspects(args: argparse.Namespace, caption) -> list[str]:
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


def run(args: argparse.Namespace) -> int:
    from ..captioner import get_captioner, says_no_change
    from ..config import StudioConfig

    config = StudioConfig.from_args(args)
    caption = load_caption_file(args.caption, config)
    aspects = selected_aspects(args, caption)
    clip = clip_for(args, config, caption)
    captioner = get_captioner(config)
    result = {}
    for aspect in aspects:
        text = captioner.critique(clip, aspect, caption[aspect].text, max_new_tokens=args.max_new_tokens)
        result[aspect] = {"critique": text, "needs_change": not says_no_change(text)}
    emit(json.dumps(result, indent=2, ensure_ascii=False), args.out)
    return 0
