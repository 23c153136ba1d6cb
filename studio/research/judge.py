"""The CHAI judge: per aspect, how well each generated video matches the caption.

For every aspect with text, the captioner's reward (P(Yes) that the caption describes that aspect
of the video, `Captioner.rewards`) is read for each side's video, with the same frame sampling for
both. The contrast check asks the same question with the caption's hard negative
(`negatives.hard_negative`); a side scores a hit when the true caption beats the negative. When the
run was made from a reference clip, the clip's own score is the ceiling. A run made from a plain
prompt (no structured caption) is judged with its prompt standing in for every aspect's caption.

Results go into the run's `judge.json`. One captioner serves a whole `judge_runs` call.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..caption.structured import ASPECTS
from ..errors import InputError

JUDGE_SCHEMA = "chai-studio/judge"
JUDGE_FILE = "judge.json"


def run_sides(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The sides recorded in a run (runs from before comparison modes were finetuned-vs-baseline).
    A partial run (cancelled during a later side) lists only the sides it has videos for; the
    missing ones are `missing_sides`, so the judge and the report skip them."""
    from ..generation.comparison import BASELINE_LABEL, FINETUNED_LABEL

    comparison = record.get("comparison")
    if comparison and comparison.get("sides"):
        return list(comparison["sides"])
    return [{"key": "finetuned", "label": FINETUNED_LABEL, "video": "finetuned.mp4"},
            {"key": "baseline", "label": BASELINE_LABEL, "video": "baseline.mp4"}]


def missing_sides(record: dict[str, Any]) -> list[str]:
    """The keys of the sides a partial run lacks (none for a whole run)."""
    if not record.get("partial"):
        return []
    return [side["key"] for side in (record.get("comparison") or {}).get("missing_sides") or []
            if isinstance(side, dict) and isinstance(side.get("key"), str)]


def captions_to_judge(record: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """("caption" or "prompt", {aspect: text}) for a run record."""
    caption = record.get("caption") or {}
    aspects = caption.get("aspects") if isinstance(caption, dict) else None
    texts = {}
    for aspect in ASPECTS:
        entry = (aspects or {}).get(aspect)
        text = entry.get("text") if isinstance(entry, dict) else entry
        if isinstance(text, str) and text.strip():
            texts[aspect] = text.strip()
    if texts:
        return "caption", texts
    return "prompt", {aspect: str(record["prompt"]) for aspect in ASPECTS}


def check_run_dir(run_dir: str | Path) -> dict[str, Any]:
    """The run's record; a folder that is not a finished run is an input error."""
    from ..generation.run_records import load_run

    record = load_run(run_dir)["record"]
    for side in run_sides(record):
        if not (Path(run_dir) / side["video"]).is_file():
            raise InputError(f"{run_dir} has no {side['video']}; the run is incomplete", "run")
    return record


def _sample(path: Path, captioner, start=None, end=None):
    """The video as the captioner reads a reference clip: sampled as its prompt pack says."""
    from ..video import sample_clip

    return sample_clip(path, start, end, max_seconds=None, check_cuts=False, sampling=captioner.pack.sampling)


def judge_run(run_dir: str | Path, captioner, record: dict[str, Any] | None = None) -> dict[str, Any]:
    """Score one run's videos (and its reference clip when there is one); writes judge.json."""
    from .negatives import build_hard_negative

    run_dir = Path(run_dir)
    record = record or check_run_dir(run_dir)
    source, texts = captions_to_judge(record)
    sides = run_sides(record)
    clips = {side["key"]: _sample(run_dir / side["video"], captioner) for side in sides}
    reference = record.get("reference") or None
    reference_clip = None
    if reference and reference.get("clip") and Path(reference["clip"]).is_file():
        reference_clip = _sample(Path(reference["clip"]), captioner, reference.get("start"), reference.get("end"))
    aspects = {}
    for aspect, text in texts.items():
        built = build_hard_negative(text)
        negative = built.text if built else None
        questions = [text] + ([negative] if negative else [])
        row: dict[str, Any] = {"caption": text, "negative": negative, "scores": {}, "negative_scores": {},
                               "hits": {}, "reference": None,
                               "swaps": [{"from": s.original, "to": s.replacement, "group": s.family}
                                         for s in (built.swaps if built else ())]}
        for key, clip in clips.items():
            scores = captioner.rewards(clip, aspect, questions)
            row["scores"][key] = round(scores[0], 6)
            if negative:
                row["negative_scores"][key] = round(scores[1], 6)
                row["hits"][key] = scores[0] > scores[1]
        if reference_clip is not None:
            row["reference"] = round(captioner.rewards(reference_clip, aspect, [text])[0], 6)
        aspects[aspect] = row
    result = {
        "schema": JUDGE_SCHEMA, "version": 1, "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "captioner": captioner.model_id, "caption_source": source,
        "mode": (record.get("comparison") or {}).get("mode", "finetuned"),
        "sides": [{"key": s["key"], "label": s["label"]} for s in sides],
        "partial": bool(record.get("partial")), "missing_sides": missing_sides(record),
        "reference_clip": reference.get("clip") if reference_clip is not None else None,
        "sample_fps": captioner.pack.sampling.fps, "prompt_pack": captioner.pack.manifest(), "aspects": aspects,
    }
    write_json_atomic(run_dir / JUDGE_FILE, result)
    return result


def write_json_atomic(path: Path, data: Any) -> None:
    """Write next to the target and rename over it, so a reader never sees half a file."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def load_judgement(run_dir: str | Path) -> dict[str, Any] | None:
    path = Path(run_dir) / JUDGE_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) and data.get("schema") == JUDGE_SCHEMA else None


def judge_runs(run_dirs: Iterable[str | Path], config, captioner=None,
               on_done: Callable[[Path, dict[str, Any]], None] | None = None) -> dict[Path, dict[str, Any]]:
    """Judge many runs with one captioner (the shared one for `config` unless given). Every folder
    is checked before the captioner loads, so a wrong path costs no model load."""
    records = {Path(d): check_run_dir(d) for d in run_dirs}
    if not records:
        return {}
    if captioner is None:
        from ..session.models import SharedModels

        captioner = SharedModels(config).captioner()
    results = {}
    for run_dir, record in records.items():
        results[run_dir] = judge_run(run_dir, captioner, record)
        if on_done is not None:
            on_done(run_dir, results[run_dir])
    return results
