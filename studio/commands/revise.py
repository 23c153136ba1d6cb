from __future__ import annotations

import argparse

from .caption import add_clip_arguments, clip_for, emit, load_caption_file, warn
from .critique import selected_aspects

HELP = "Revise caption aspects from a critique (the model's own when none is given); history is kept."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_clip_arguments(parser)
    parser.add_argument("--caption", required=True, help="StructuredCaption / CHAI record / {aspect: text} JSON, or -")
    parser.add_argument("--aspect", action="append", default=None,
                        help="aspect to revise (repeatable; default: every non-empty aspect)")
    parser.add_argument("--critique", default=None,
                        help="critique text to apply (needs exactly one --aspect); default: ask the model")
    parser.add_argument("--out", default=None, help="write the revised caption JSON here instead of stdout")


def run(args: argparse.Namespace) -> int:
    from ..captioner import get_captioner, says_no_change
    from ..config import StudioConfig
    from ..errors import InputError

    config = StudioConfig.from_args(args)
    caption = load_caption_file(args.caption, config)
    aspects = selected_aspects(args, caption)
    if args.critique is not None and len(aspects) != 1:
        raise InputError("a given critique applies to one aspect; add exactly one --aspect", "--critique")
    if args.critique is not None and not args.critique.strip():
        raise InputError("must be non-empty text", "--critique")
    clip = clip_for(args, config, caption)
    captioner = get_captioner(config)
    for aspect in aspects:
        critique = args.critique or captioner.critique(clip, aspect, caption[aspect].text,
                                                       max_new_tokens=args.max_new_tokens)
        if says_no_change(critique):
            warn(f"{aspect}: the critique asks for no change; kept as it was")
            continue
        captioner.revise(clip, aspect, caption[aspect].text, critique, structured=caption,
                         max_new_tokens=args.max_new_tokens)
    caption.provenance.models.setdefault("captioner", captioner.model_id)
    emit(caption.to_json(), args.out)
    return 0
