from __future__ import annotations

import argparse
import sys

HELP = ("Run many comparison jobs (JOBS.jsonl: one JSON object per line) x seeds into DIR/runs, judge them "
        "and write DIR/results.jsonl and DIR/report.html (with report.csv and report.json); re-running resumes.")
MODELS = ("captioner", "generator")  # loaded by run; the CLI says first when they would run on the CPU

SETTINGS = ("baseline", "finetuned", "speed_adapter", "lora_scale", "captioner", "caption_prompts", "device", "dtype",
            "memory_mode", "attention", "compile", "first_block_cache", "vae_tiling", "precision", "tiny", "tiny_dir",
            "settings_dir", "prompt_words", "max_clip_seconds", "max_aspect_chars")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..generation.presets import DEFAULT_PRESET, PRESETS

    parser.add_argument("jobs", metavar="JOBS.jsonl",
                        help='one job per line: {"clip"|"caption"|"prompt": ..., "seeds": [...], "settings": {...}, '
                             '"mode": ..., "short_prompt": ...}; relative paths are relative to this file')
    parser.add_argument("--out", metavar="DIR", required=True, help="batch folder (runs/, results.jsonl, report.html)")
    parser.add_argument("--preset", choices=list(PRESETS), default=DEFAULT_PRESET,
                        help="baseline model family for every job (default: %(default)s)")
    parser.add_argument("--seeds", metavar="N", nargs="+", default=["0"],
                        help="seeds of jobs that list none (default: 0)")
    parser.add_argument("--no-judge", action="store_true", help="skip the CHAI judge (no judge.json, no scores)")
    parser.add_argument("--ray", metavar="ADDRESS", nargs="?", const="local", default=None,
                        help="spread the runs over one generator actor per GPU with Ray: a cluster ADDRESS "
                             "(e.g. ray://head:10001 or auto), or a local Ray without one")
    parser.add_argument("--workers", metavar="N", type=int, default=None,
                        help="generator actors with --ray (default: one per GPU in the cluster, 1 without GPUs)")
    from ..config import StudioConfig

    StudioConfig.add_arguments(parser, only=SETTINGS)


def run(args: argparse.Namespace) -> int:
    from ..config import StudioConfig
    from ..errors import InputError
    from ..research.batch import Batch
    from ..research.stats import batch_counts, markdown_table

    config = StudioConfig.from_args(args)
    seeds = []
    for value in args.seeds:
        try:
            seeds.append(int(value))
        except ValueError:
            raise InputError(f"expected whole numbers, got {value!r}", "--seeds") from None
    if args.workers is not None and args.workers < 1:
        raise InputError(f"must be at least 1, got {args.workers}", "--workers")
    if args.workers is not None and args.ray is None:
        raise InputError("only applies with --ray", "--workers")
    if args.ray is not None:
        from ..ray_cluster import require_ray

        require_ray()
    result = Batch(args.jobs, args.out, config, preset=args.preset, default_seeds=seeds, judge=not args.no_judge,
                   ray_address=args.ray, workers=args.workers).run()
    counts = batch_counts(result.rows)
    print(f"{counts['runs_complete']} complete run(s) ({len(result.generated)} new, {len(result.judged)} judged "
          f"now), {counts['runs_failed']} failed job x seed run(s) in {counts['jobs_failed']} job(s); results: "
          f"{result.results}", file=sys.stderr)
    print(markdown_table(result.summary), file=sys.stderr)
    print(result.report)
    return 0
