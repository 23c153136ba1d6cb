"""Composer quality on the real CHAI records, beside CHAI's own GPT-4o merge.

    python bench/prompt_fidelity.py [RECORDS_DIR] [--max-words N] [--camera-first]

Reads ../shared/chai/merged_captions when present (the records are reference data, not part of
the project). The figures follow ../shared/tools/prompt_fidelity.py exactly, which is imported
when present so that both use one definition; the official per-record CLI check is
    python ../shared/tools/prompt_fidelity.py RECORDS --composer 'python -m studio compose {file}'
Goals at the default budget: mean recall >= 0.92, mean worst-aspect recall >= 0.83, median <= 270
words, none above 320, no repeated sentences, >= 95% of sentences traceable to one input sentence.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_RECORDS = ROOT.parent / "shared" / "chai" / "merged_captions"
TOOLS = ROOT.parent / "shared" / "tools"

GOALS = {"recall_mean": (">=", 0.92), "min_aspect_recall_mean": (">=", 0.83), "words_median": ("<=", 270),
         "words_max": ("<=", 320), "repeats_total": ("<=", 0), "extractive_share": (">=", 0.95)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("records", nargs="?", default=str(DEFAULT_RECORDS))
    parser.add_argument("--max-words", type=int, default=260)
    parser.add_argument("--camera-first", action="store_true")
    args = parser.parse_args()
    records_dir = Path(args.records)
    if not records_dir.is_dir() or not (TOOLS / "prompt_fidelity.py").exists():
        print(f"skipped: needs the CHAI reference records ({records_dir}) and {TOOLS}/prompt_fidelity.py")
        return 0
    sys.path.insert(0, str(TOOLS))
    import prompt_fidelity as fidelity  # the shared definition of the figures

    from studio.caption import StructuredCaption
    from studio.compose import ComposeOptions, compose

    options = ComposeOptions(max_words=args.max_words, camera_first=args.camera_first)
    ours, anchor = [], []
    started = time.perf_counter()
    paths = sorted(records_dir.glob("*.json"))
    for path in paths:
        record = json.loads(path.read_text())
        ours.append(fidelity.score(record, compose(StructuredCaption.from_chai_record(record), options).prompt))
        anchor.append(fidelity.score(record, record["merged_caption"]))
    elapsed = time.perf_counter() - started
    print(f"{len(paths)} records, budget {args.max_words} words, camera_first={args.camera_first}")
    gpt = fidelity.summarize("gpt4o_merge", anchor)
    mine = fidelity.summarize("studio_composer", ours)
    print(f"{'figure':<24}{'GPT-4o merge':>14}{'studio':>10}   goal")
    for key, (op, goal) in GOALS.items():
        ok = mine[key] >= goal if op == ">=" else mine[key] <= goal
        print(f"{key:<24}{gpt[key]:>14}{mine[key]:>10}   {op} {goal} {'ok' if ok else 'MISSED'}")
    print(f"composer time per record: {1000 * elapsed / len(paths) / 2:.1f} ms (scoring included)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
