from __future__ import annotations

import argparse
import json

from .caption import add_clip_arguments, clip_for, emit, load_caption_file
from .critique import selected_aspects

HELP = "Score caption aspects against the clip: P(Yes) that the caption matches (CHAI reward)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_clip_arguments(parser)
    parser.add_argument("--caption", required=True, help="StructuredCaption / CHAI record / {aspect: text} JSON, or -")
    parser.add_argument("--aspect", action="append", default=None,
                        help="aspect to score (repeatable; default: every non-empty aspect)")
    parser.add_argument("--out", default=None,
                        help="write the caption JSON with the rewards filled in here (default: print the scores)")


def run(args: argparse.Namespace) -> int:
    from ..captioner import get_captioner
    from ..config import StudioConfig

    config = StudioConfig.from_args(args)
    caption = load_caption_file(args.caption, config)
    aspects = selected_aspects(args, caption)
    clip = clip_for(args, config, caption)
    captioner = get_captioner(config)
    scores = {}
    for aspect in aspects:
        text = caption[aspect].text
        scores[aspect] = round(captioner.reward(clip, aspect, text), 6)
        caption[aspect].reward, caption[aspect].reward_text = scores[aspect], text
    if args.out:
        emit(caption.to_json(), args.out)
    else:
        print(json.dumps(scores, indent=2))
    return 0
