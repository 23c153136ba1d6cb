from __future__ import annotations

import argparse

from .caption import add_caption_file_arguments, emit, open_caption_task, warn

HELP = "Revise caption aspects from a critique (the model's own when none is given); history is kept."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_caption_file_arguments(parser, "revise", "write the revised caption JSON here instead of stdout")
    parser.add_argument("--critique", default=None,
                        help="critique text to apply (needs exactly one --aspect); default: ask the model")


def run(args: argparse.Namespace) -> int:
    from ..captioner import says_no_change
    from ..errors import InputError

    # A given critique is about one aspect; checked before the clip is sampled and the model loaded.
    if args.critique is not None and len(args.aspect or ()) != 1:
        raise InputError("a given critique applies to one aspect; add exactly one --aspect", "--critique")
    if args.critique is not None and not args.critique.strip():
        raise InputError("must be non-empty text", "--critique")
    task = open_caption_task(args)
    for aspect in task.aspects:
        critique = args.critique or task.captioner.critique(task.clip, aspect, task.caption[aspect].text,
                                                            max_new_tokens=args.max_new_tokens)
        if says_no_change(critique):
            warn(f"{aspect}: the critique asks for no change; kept as it was")
            continue
        task.captioner.revise(task.clip, aspect, task.caption[aspect].text, critique, structured=task.caption,
                              max_new_tokens=args.max_new_tokens)
    task.caption.provenance.models.setdefault("captioner", task.captioner.model_id)
    emit(task.caption.to_json(), args.out)
    return 0
