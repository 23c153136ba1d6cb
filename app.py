"""CHAI Cinematic Prompt Studio: the web page.

    python app.py             # real models (loaded on first use)
    python app.py --tiny      # offline wiring check on tiny random-weight checkpoints

Every studio setting is also a flag (see --help) and a CHAI_STUDIO_* environment variable.
"""

from __future__ import annotations

import argparse
import os
import sys

from studio.config import StudioConfig
from studio.errors import StudioError
from studio.logging_setup import add_verbose_flag
from studio.logging_setup import configure as configure_logging


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    # Flags are spelt out in full (no `--port` taken from `--po`), as on `python -m studio`.
    parser = argparse.ArgumentParser(description="Serve the CHAI Cinematic Prompt Studio page.", allow_abbrev=False)
    # On a Space the platform sets GRADIO_SERVER_NAME/PORT; locally the page binds to loopback only.
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                        help="Address to bind (default 127.0.0.1; use 0.0.0.0 in a container).")
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
                        help="Port to serve on (default 7860).")
    parser.add_argument("--share", action="store_true", help="Also open a temporary public gradio.live link.")
    add_verbose_flag(parser)
    parser.add_argument("--auth", action="append", default=None, metavar="USER:PASSWORD or FILE",
                        help="Ask for a login: a USER:PASSWORD pair (repeatable) or a file with one pair per line "
                             "(keeps passwords out of the process list). See docs/deployment.md.")
    StudioConfig.add_arguments(parser)
    # The short spelling of --mcp-server; both set the same setting.
    parser.add_argument("--mcp", dest="mcp_server", action="store_true", default=None,
                        help="Same as --mcp-server.")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging(verbose=args.verbose)
    try:
        config = StudioConfig.from_args(args)
    except StudioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from studio.ui import launch
    from studio.ui.server import read_auth

    try:
        auth = read_auth(args.auth)
        launch(config, host=args.host, port=args.port, share=args.share, auth=auth)
    except StudioError as exc:  # e.g. an outputs folder that cannot be created or written
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
