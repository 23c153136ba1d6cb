"""`studio serve` (what `python app.py` runs): serve the page.

Gradio is imported only in `run`, so `studio serve --help` answers without it. The line about
models running on the CPU comes from `launch`, after the cheap checks of the command line.
"""

from __future__ import annotations

import argparse
import os

HELP = "Serve the CHAI Cinematic Prompt Studio page (what `python app.py` does)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..ui.server import DEFAULT_HOST, DEFAULT_PORT

    # On a Space the platform sets GRADIO_SERVER_NAME/PORT; locally the page binds to loopback only.
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", DEFAULT_HOST),
                        help=f"Address to bind (default {DEFAULT_HOST}, or GRADIO_SERVER_NAME; use 0.0.0.0 in a "
                             "container).")
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", DEFAULT_PORT)),
                        help=f"Port to serve on (default {DEFAULT_PORT}, or GRADIO_SERVER_PORT).")
    parser.add_argument("--share", action="store_true", help="Also open a temporary public gradio.live link.")
    parser.add_argument("--auth", action="append", default=None, metavar="USER:PASSWORD or FILE",
                        help="Ask for a login: a USER:PASSWORD pair (repeatable) or a file with one pair per line "
                             "(keeps passwords out of the process list). See docs/deployment.md.")
    from ..config import StudioConfig

    StudioConfig.add_arguments(parser)
    # The short spelling of --mcp-server; both set the same setting.
    parser.add_argument("--mcp", dest="mcp_server", action="store_true", default=None, help="Same as --mcp-server.")


def run(args: argparse.Namespace) -> int:
    from ..config import StudioConfig
    from ..ui import launch
    from ..ui.server import read_auth

    config = StudioConfig.from_args(args)
    launch(config, host=args.host, port=args.port, share=args.share, auth=read_auth(args.auth))
    return 0
