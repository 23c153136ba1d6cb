"""CHAI Cinematic Prompt Studio: the web page (the same as `studio serve`).

    python app.py             # real models (loaded on first use)
    python app.py --tiny      # offline wiring check on tiny random-weight checkpoints

Every studio setting is also a flag (see --help) and a CHAI_STUDIO_* environment variable.
A Hugging Face Space runs this file; an installed package runs `studio serve`.
"""

from __future__ import annotations

import argparse
import sys

from studio.cli import build_parser
from studio.cli import main as studio_main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    argv = sys.argv[1:] if argv is None else argv
    return build_parser("serve").parse_args(["serve", *argv])


def main(argv: list[str] | None = None) -> int:
    return studio_main(["serve", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
