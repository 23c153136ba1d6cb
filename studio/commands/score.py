from __future__ import annotations

import argparse
import json

from .caption import add_caption_file_arguments, emit, open_caption_task

HELP = "Score caption aspects against the clip: P(Yes) that the caption matches (CHAI reward)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_caption_file_arguments(parser, "score",
                               "write the caption JSON with the rewards filled in here (default: print the scores)")


def run(args: argparse.Namespace) -> int:
    task = open_caption_task(args)
    scores = {}
    for aspect in task.aspects:
        text = task.caption[aspect].text
        scores[aspect] = round(task.captioner.reward(task.clip, aspect, text), 6)
        task.caption[aspect].reward, task.caption[aspect].reward_text = scores[aspect], text
    if args.out:
        emit(task.caption.to_json(), args.out)
    else:
        print(json.dumps(scores, indent=2))
    return 0
