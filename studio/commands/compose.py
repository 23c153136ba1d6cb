from __future__ import annotations

import argparse
import json
import sys

HELP = "Compose a structured caption (or a CHAI record) into one generation prompt."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="StructuredCaption JSON, CHAI record JSON, {aspect: text} JSON, - for stdin, or a shot "
                             "library name such as dolly_zoom")
    parser.add_argument("--max-words", default=None,
                        help="word budget, 20-320 (default: CHAI_STUDIO_PROMPT_WORDS or 260)")
    parser.add_argument("--camera-first", action="store_true", help="put the Camera sentences first")
    parser.add_argument("--fit", action="store_true",
                        help="shorten the budget (in steps of 10 words) until the prompt fits the text encoder's "
                             "512 tokens, counted with the --baseline tokenizer (loads transformers)")
    parser.add_argument("--json", action="store_true", help="print JSON with the prompt, the report and the tokens")
    from ..config import StudioConfig

    StudioConfig.add_arguments(parser, only=("baseline", "tiny", "tiny_dir", "max_aspect_chars"))


def run(args: argparse.Namespace) -> int:
    # Deliberately light without --fit: no tokenizer is loaded and torch is never imported, so
    # composing stays instant (the token count is then an estimate).
    from ..config import StudioConfig
    from ..session import ComposeRequest, Session, SharedModels
    from .caption import load_caption_file

    config = StudioConfig.from_args(args)
    session = Session(config, SharedModels(config, load_tokenizer=args.fit))
    caption = load_caption_file(args.file, config)
    request = ComposeRequest.from_user(caption, session.limits, "Camera first" if args.camera_first else "Extractive",
                                       args.max_words)
    composed = session.fit_to_limit(request) if args.fit else session.compose(request)
    if args.json:
        print(json.dumps({"prompt": composed.prompt, "report": composed.report, "tokens": composed.tokens,
                          "exact_tokens": composed.exact_tokens, "token_limit": composed.token_limit},
                         indent=2, ensure_ascii=False))
        return 0
    print(composed.prompt)
    for warning in composed.report.get("warnings", []):
        print(f"warning: {warning}", file=sys.stderr)
    if args.fit:
        count = "" if composed.exact_tokens else "about "
        print(f"fitted: {composed.report.get('words')} words, {count}{composed.tokens} of {composed.token_limit} "
              "tokens", file=sys.stderr)
    return 0
