from __future__ import annotations

import argparse
import json

from .caption import add_caption_file_arguments, emit, open_caption_task

HELP = "Score caption aspects against the clip: P(Yes) that the caption matches (CHAI reward)."
MODELS = ("captioner",)  # loaded by run; the CLI says first when they would run on the CPU


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_caption_file_arguments(parser, "score",
                               "write the caption JSON with the rewards filled in here (default: print the scores)")


def run(args: argparse.Namespace) -> int:
    task = open_caption_task(args, "score")
    scores = {}
    for request in task.requests:
        entry = task.caption[request.aspect]
        scores[request.aspect] = entry.reward = round(task.session.score(request), 6)
        entry.reward_text = entry.text
    if args.out:
        emit(task.caption.to_json(), args.out)
    else:
        print(json.dumps(scores, indent=2))
    return 0
