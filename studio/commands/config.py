from __future__ import annotations

import argparse
import dataclasses
import json

from ..config import StudioConfig

HELP = "Print the effective settings (defaults < CHAI_STUDIO_* variables < flags)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--markdown", action="store_true", help="print the settings table for the README")
    StudioConfig.add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    if args.markdown:
        print(StudioConfig.markdown_table())
        return 0
    config = StudioConfig.from_args(args)
    print(json.dumps({k: str(v) if not isinstance(v, (int, float, bool)) else v
                      for k, v in dataclasses.asdict(config).items()}, indent=2))
    return 0
