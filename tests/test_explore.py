"""Explore: N draft side-by-sides judged per aspect and ranked, on the tiny checkpoints."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from studio.research.explore import draw_seeds, rank

ROOT = Path(__file__).resolve().parents[1]
CAPTION = {"Subject": "A brown dog.", "Scene": "A beach at dawn.", "Motion": "The dog runs to the left.",
           "Spatial": "The dog is centred in a wide shot.", "Camera": "The camera pans left, following the dog."}


def test_explore_renders_judges_and_ranks_each_seed(ui_tiny_dir, tmp_path):
    caption = tmp_path / "shot.json"
    caption.write_text(json.dumps(CAPTION))
    out = tmp_path / "explore"
    done = subprocess.run([sys.executable, "-m", "studio", "explore", str(caption), "--seeds", "2", "--seed", "40",
                           "--tiny", "--tiny-dir", str(ui_tiny_dir), "--device", "cpu", "--out", str(out)],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((out / "explore.json").read_text())
    assert report["profile"] == "draft" and report["seeds"] == [40, 41] and len(report["ranking"]) == 2
    scores = [(e["score"], e["margin"]) for e in report["ranking"]]
    assert scores == sorted(scores, reverse=True)
    assert Path(done.stdout.strip().splitlines()[-1]) == out / report["best"]
    for entry in report["ranking"]:
        judged = json.loads((out / entry["run"] / "judge.json").read_text())
        assert judged["caption_source"] == "caption" and set(judged["aspects"]) == set(CAPTION)
        record = json.loads((out / entry["run"] / "run.json").read_text())
        assert record["seed"] == entry["seed"] and record["settings"]["profile"] == "draft"
        assert entry["ranked_side"] == "finetuned" and entry["score"] == pytest.approx(
            sum(row["scores"]["finetuned"] for row in judged["aspects"].values()) / 5, abs=1e-6)


def test_ranking_and_seed_rules():
    entries = [{"seed": 1, "score": 0.5, "margin": 0.1}, {"seed": 2, "score": 0.7, "margin": -0.2},
               {"seed": 3, "score": 0.5, "margin": 0.3}]
    assert [e["seed"] for e in rank(entries)] == [2, 3, 1]
    assert draw_seeds(3, 10) == [10, 11, 12] and len(set(draw_seeds(5))) == 5


def test_bad_explore_arguments_stop_before_anything_loads(tmp_path):
    for flags, line in ((["--seeds", "0"], "error: seeds: must be between 1 and 16"),
                        (["--seeds", "2.5"], "error: seeds: must be a whole number"),
                        (["--profile", "turbo"], "invalid choice: 'turbo'")):
        done = subprocess.run([sys.executable, "-m", "studio", "explore", "A dog.", "--tiny", "--tiny-dir",
                               str(tmp_path / "never"), *flags], capture_output=True, text=True, cwd=ROOT, timeout=120)
        assert done.returncode == 2 and line in done.stderr, done.stderr
        assert not (tmp_path / "never").exists()
