from __future__ import annotations

import argparse
import json

from .caption import add_caption_file_arguments, emit, open_caption_task

HELP = "Critique a caption's aspects against the clip (the model says when nothing needs changing)."
MODELS = ("captioner",)  # loaded by run; the CLI says first when they would run on the CPU


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_caption_file_arguments(parser, "critique", "write the JSON here instead of stdout")


def run(args: argparse.Namespace) -> int:
    task = open_caption_task(args, "critique")
    result = {}
    for request in task.requests:
        text = task.session.critique(request)
        result[request.aspect] = {"critique": text, "needs_change": task.session.needs_change(text)}
    emit(json.dumps(result, indent=2, ensure_ascii=False), args.out)
    return 0
