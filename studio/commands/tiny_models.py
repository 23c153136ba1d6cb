from __future__ import annotations

import argparse

HELP = "Write tiny random-weight checkpoints (same classes as the real models) for offline checks."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", help="folder to write the checkpoints into")
    parser.add_argument("--only", nargs="*", help="build only these folders")
    parser.add_argument("--force", action="store_true", help="rebuild folders that already exist")


def run(args: argparse.Namespace) -> int:
    from ..tiny import BUILDERS, build_tiny_models

    if args.only:
        unknown = sorted(set(args.only) - set(BUILDERS))
        if unknown:
            from ..errors import InputError

            raise InputError(f"unknown checkpoint(s) {', '.join(unknown)}; known: {', '.join(BUILDERS)}", "--only")
    for name, folder in build_tiny_models(args.dir, args.only, args.force).items():
        print(f"{name}: {folder}")
    return 0
