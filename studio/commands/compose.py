from __future__ import annotations

import argparse
import json
import sys

HELP = "Compose a structured caption (or a CHAI record) into one generation prompt."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="StructuredCaption JSON, CHAI record JSON, {aspect: text} JSON, or - for stdin")
    parser.add_argument("--max-words", type=int, default=None,
                        help="word budget, 20-320 (default: CHAI_STUDIO_PROMPT_WORDS or 260)")
    parser.add_argument("--camera-first", action="store_true", help="put the Camera sentences first")
    parser.add_argument("--json", action="store_true", help="print JSON with the prompt and the report")


def run(args: argparse.Namespace) -> int:
    # Deliberately light: this path never imports torch, so composing stays instant.
    from ..caption import StructuredCaption
    from ..compose import ComposeOptions, compose
    from ..config import StudioConfig

    config = StudioConfig.from_env()
    if args.file == "-":
        caption = StructuredCaption.from_json(sys.stdin.read(), config.max_aspect_chars)
    else:
        caption = StructuredCaption.load(args.file, config.max_aspect_chars)
    max_words = args.max_words if args.max_words is not None else config.prompt_words
    result = compose(caption, ComposeOptions(max_words=max_words, camera_first=args.camera_first))
    if args.json:
        print(json.dumps({"prompt": result.prompt, "report": result.report.to_dict()}, indent=2, ensure_ascii=False))
    else:
        print(result.prompt)
        for warning in result.report.warnings:
            print(f"warning: {warning}", file=sys.stderr)
    return 0
