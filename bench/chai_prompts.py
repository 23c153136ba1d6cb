"""How close the studio's prompts are to the instructions CHAI's pre-captions were made with.

Reads CHAI's reference data when it is there (`../shared/chai`, or `--chai DIR`): imports its
caption-policy folder as a prompt pack, then compares each aspect's instruction with the exact
`pre_caption_prompt` of the 50 critique-loop records. Prints, per aspect, how many records start
with the imported instruction's policy text, the mean share of each record's prompt that the
imported pack reproduces as a common prefix, the same for the studio's own pack (different words
by design, so near zero), and whether the studio reads CHAI's sentinel as "no change".

    python bench/chai_prompts.py [--chai ../shared/chai]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from studio.captioner.packs import PromptPack  # noqa: E402
from studio.captioner.policy_import import ASPECT_FOLDERS, import_policy  # noqa: E402

SENTINEL = "The caption is accurate and requires no edits, so it should remain exactly the same."


def common_prefix(a: str, b: str) -> int:
    return len(os.path.commonprefix([a, b]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chai", type=Path, default=ROOT.parent / "shared" / "chai")
    args = parser.parse_args()
    records_file = args.chai / "critique_records.jsonl"
    policy = args.chai / "caption_policy" / "policy"
    if not records_file.is_file() or not policy.is_dir():
        print(f"no CHAI reference data at {args.chai} (critique_records.jsonl, caption_policy/policy)")
        return 1
    with tempfile.TemporaryDirectory() as out:
        imported, _ = import_policy(policy, Path(out) / "chai")
    studio = PromptPack.load()
    aspect_of = {folder: aspect for aspect, folder in ASPECT_FOLDERS.items()}
    rows: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for line in records_file.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        aspect = aspect_of.get(record["policy_folder"])
        if aspect is None:
            continue
        prompt = record["pre_caption_prompt"]
        policy_text = (policy / record["policy_folder"] / "policy.txt").read_text(encoding="utf-8").rstrip()
        row = rows[aspect]
        row["starts"].append(float(prompt.startswith(policy_text)))
        row["imported"].append(common_prefix(prompt, imported.instruction(aspect)) / len(prompt))
        row["studio"].append(common_prefix(prompt, studio.instruction(aspect)) / len(prompt))
    print(f"{'aspect':8} {'records':>7} {'start with policy.txt':>22} {'imported prefix':>16} {'studio prefix':>14}")
    for aspect in ASPECT_FOLDERS:
        row = rows[aspect]
        n = len(row["starts"])
        print(f"{aspect:8} {n:7d} {sum(row['starts']):13.0f} of {n:<6d} {sum(row['imported']) / n:16.2f} "
              f"{sum(row['studio']) / n:14.2f}")
    print(f"CHAI's sentinel means 'no change': studio pack {studio.says_no_change(SENTINEL)}, "
          f"imported pack {imported.says_no_change(SENTINEL)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
