from __future__ import annotations

import argparse
import dataclasses

from .caption import add_caption_file_arguments, emit, open_caption_task, warn

HELP = "Revise caption aspects from a critique (the model's own when none is given); history is kept."
MODELS = ("captioner",)  # loaded by run; the CLI says first when they would run on the CPU


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_caption_file_arguments(parser, "revise", "write the revised caption JSON here instead of stdout")
    parser.add_argument("--critique", default=None,
                        help="critique text to apply (needs exactly one --aspect); default: ask the model")


def run(args: argparse.Namespace) -> int:
    from ..errors import InputError

    # A given critique is about one aspect; checked before the clip is sampled and the model loaded.
    if args.critique is not None and len(args.aspect or ()) != 1:
        raise InputError("a given critique applies to one aspect; add exactly one --aspect", "--critique")
    task = open_caption_task(args, "revise", args.critique)
    if args.critique is not None and not task.requests[0].critique:
        raise InputError(f"write a critique for {task.requests[0].aspect} before revising", "--critique")
    for request in task.requests:
        if not request.critique:
            request = dataclasses.replace(request, critique=task.session.critique(request))
        if not task.session.needs_change(request.critique):
            warn(f"{request.aspect}: the critique asks for no change; kept as it was")
            continue
        task.session.revise(request, task.caption)
    task.caption.provenance.models.setdefault("captioner", task.session.models.captioner().model_id)
    emit(task.caption.to_json(), args.out)
    return 0
