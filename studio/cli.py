"""`python -m studio`: the command line.

Each subcommand lives in `studio/commands/<name>.py` with `HELP`, `add_arguments(parser)` and
`run(args) -> int`. Modules import their heavy dependencies (torch, transformers, diffusers)
inside `run`, so `--help`, `spec` and `compose` stay fast.

A `StudioError` (bad input or configuration) is printed to stderr as one line, with exit code 2;
it never shows a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from .errors import StudioError
from .logging_setup import add_verbose_flag
from .logging_setup import configure as configure_logging

# Subcommand name -> module under studio.commands (dashes become underscores), listed in the
# order of the workflow: the page, offline set-up, the reference clip and its caption, the prompt,
# the videos and their comparison, making a CHAI-finetuned model, then reference material. A new
# workflow command slots in at its stage.
COMMANDS = ("serve", "tiny-models", "prompts", "shots", "caption", "critique", "revise", "score", "compose",
            "calibrate-cache", "generate", "explore", "batch", "judge", "dataset", "train", "spec", "config")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The full parser, or with `only` just that subcommand's (so one command imports one module)."""
    # No abbreviated flags: argparse would take `--frame 9` for `--frames 9`, and a later flag
    # sharing the prefix would silently change what an old command line means.
    parser = argparse.ArgumentParser(
        prog="studio" if Path(sys.argv[0]).name == "studio" else "python -m studio",  # the console script
        description="CHAI Cinematic Prompt Studio: caption, refine, compose and compare cinematic shot prompts.",
        allow_abbrev=False,
    )
    add_verbose_flag(parser)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS if only is None else (only,):
        module = importlib.import_module(f"studio.commands.{name.replace('-', '_')}")
        sub = subparsers.add_parser(name, help=module.HELP, description=module.HELP, allow_abbrev=False)
        module.add_arguments(sub)
        add_verbose_flag(sub, default=argparse.SUPPRESS)  # also accepted after the command name
        sub.set_defaults(run=module.run)
    return parser


def where_models_run(args: argparse.Namespace):
    """When the command loads a real model on a machine without a usable GPU, it says so first in one line."""
    models = getattr(importlib.import_module(args.run.__module__), "MODELS", ())
    if getattr(args, "ray", None):  # with --ray they load on the cluster's workers
        models = ()
    from .config import StudioConfig
    from .gpu_check import said_when_models_load

    return said_when_models_load(StudioConfig.from_args(args) if models else None, models)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    chosen = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(chosen if chosen in COMMANDS else None)
    args = parser.parse_args(argv)
    configure_logging(verbose=args.verbose)
    try:
        with where_models_run(args):
            return int(args.run(args) or 0)
    except StudioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `python -m studio spec | head` closed our stdout early: not an error for the user.
        sys.stderr.close()
        return 0
