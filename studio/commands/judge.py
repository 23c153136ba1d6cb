from __future__ import annotations

import argparse
import json
import sys

HELP = ("Score run directories with the CHAI judge: per aspect, P(Yes) that each video matches the caption, "
        "plus a hard-negative contrast check; writes each run's judge.json.")
MODELS = ("captioner",)  # loaded by run; the CLI says first when they would run on the CPU


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", metavar="RUN_DIR", nargs="+", help="run directories written by generate or batch")
    from ..config import StudioConfig

    StudioConfig.add_arguments(parser, only=("captioner", "caption_prompts", "device", "dtype", "tiny", "tiny_dir"))


def run(args: argparse.Namespace) -> int:
    from ..config import StudioConfig
    from ..research.judge import judge_runs

    config = StudioConfig.from_args(args)

    def report(run_dir, result) -> None:
        scores = {aspect: row["scores"] for aspect, row in result["aspects"].items()}
        hits = {aspect: row["hits"] for aspect, row in result["aspects"].items() if row["negative"]}
        print(f"{run_dir}: {json.dumps(scores)} contrast hits {json.dumps(hits)}", file=sys.stderr)
        print(run_dir / "judge.json")

    judge_runs(args.runs, config, on_done=report)
    return 0
