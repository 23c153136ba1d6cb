"""Rows and aggregate statistics of judged runs.

A row is one run (one job x seed): each aspect's score for the left side (the finetuned model, or
the CHAI prompt) and the right side (the zero-shot model, or the short prompt), their difference
and the contrast hits. The aggregate, per comparison mode and aspect, is the mean difference with
a paired bootstrap 95% interval (runs resampled with replacement, fixed RNG seed, so a report is
reproducible), win/tie/loss counts (a tie is a difference within `TIE`) and each side's contrast
accuracy over the meaningful hard negatives only (`negatives.is_meaningful`): a negative recorded
under older swap rules ("close-up" -> "close-down") is reported but never counted.

`aggregate_table` flattens the aggregate into one row per mode and aspect: the numbers the HTML
table, report.csv and report.json all show. `batch_counts` counts jobs and job x seed cells, the
failed ones included (a job line that could not be read stands for every seed it would have run).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..caption.structured import ASPECTS

TIE = 0.01
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0


def run_row(name: str, record: dict[str, Any], judgement: dict[str, Any] | None, job: str | None = None,
            seed: int | None = None) -> dict[str, Any]:
    from .judge import missing_sides, run_sides
    from .negatives import is_meaningful

    sides = run_sides(record)
    row: dict[str, Any] = {
        "run": name, "job": job, "seed": record.get("seed") if seed is None else seed, "status": "ok",
        "mode": (record.get("comparison") or {}).get("mode", "finetuned"), "prompt": record.get("prompt"),
        "short_prompt": (record.get("comparison") or {}).get("short_prompt"),
        "sides": [{"key": s["key"], "label": s["label"], "video": s["video"]} for s in sides],
        "judged": judgement is not None, "scores": {}, "contrast": {},
        "missing_sides": missing_sides(record),  # a partial run: left out of the paired aggregate
        "provenance": run_provenance(record),
    }
    if judgement is None:
        return row
    row["caption_source"] = judgement.get("caption_source")
    row["judge_captioner"] = judgement.get("captioner")
    keys = [s["key"] for s in sides]
    for aspect, entry in judgement.get("aspects", {}).items():
        scores = {key: entry["scores"].get(key) for key in keys}
        cell: dict[str, Any] = {"left": scores[keys[0]], "reference": entry.get("reference")}
        if len(keys) > 1:
            cell["right"] = scores[keys[1]]
            cell["diff"] = round(scores[keys[0]] - scores[keys[1]], 6)
        row["scores"][aspect] = cell
        if entry.get("negative"):
            caption = entry.get("caption") or ""
            row["contrast"][aspect] = {"caption": caption, "negative": entry["negative"],
                                       "counted": is_meaningful(caption, entry["negative"]),
                                       "left": entry["hits"].get(keys[0]),
                                       "right": entry["hits"].get(keys[1]) if len(keys) > 1 else None}
    return row


def run_provenance(record: dict[str, Any]) -> dict[str, Any]:
    """What the report's header needs from run.json: models with their hashes or revisions, the
    settings that size the run, the studio version and whether the tiny test models made it."""
    models = record.get("models") or {}
    hashes = record.get("hashes") or {}
    settings = record.get("settings") or {}
    baseline = models.get("baseline") or {}
    finetuned = models.get("finetuned") or None
    return {
        "preset": record.get("preset"), "tiny": bool(record.get("preset_tiny")), "created": record.get("created"),
        "baseline": {"location": baseline.get("location"), "revision": baseline.get("revision"),
                     "sha256": hashes.get("baseline"), "label": baseline.get("label")},
        "finetuned": None if finetuned is None else {
            "location": finetuned.get("location"), "kind": finetuned.get("kind"),
            "lora_scale": finetuned.get("lora_scale"), "sha256": hashes.get("finetuned")},
        "settings": {key: settings.get(key) for key in ("profile", "steps", "width", "height", "num_frames", "fps",
                                                           "step_cache")},
        "studio": record.get("studio") or {},
    }


def _cells(row: dict[str, Any]) -> int:
    """The job x seed cells one row stands for: one, or every seed of a line that could not be read."""
    if row.get("status") == "failed" and row.get("seed") is None:
        return max(1, len(row.get("seeds") or []))
    return 1


def batch_counts(rows: Iterable[dict[str, Any]]) -> dict[str, int]:
    """Jobs and job x seed cells, complete and failed; a job is failed when any of its cells is."""
    jobs: dict[str, bool] = {}
    cells = failed_cells = 0
    for row in rows:
        failed = row.get("status") != "ok"
        count = _cells(row)
        cells += count
        failed_cells += count if failed else 0
        key = str(row.get("job"))
        jobs[key] = jobs.get(key, False) or failed
    return {"jobs": len(jobs), "jobs_complete": sum(not f for f in jobs.values()),
            "jobs_failed": sum(jobs.values()), "runs": cells, "runs_complete": cells - failed_cells,
            "runs_failed": failed_cells}


def paired_bootstrap(diffs: list[float], resamples: int = BOOTSTRAP_RESAMPLES,
                     seed: int = BOOTSTRAP_SEED) -> tuple[float, float]:
    """95% percentile interval of the mean paired difference."""
    import numpy as np

    values = np.asarray(diffs, dtype=np.float64)
    if len(values) == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(resamples, len(values)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def aggregate(rows: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """{mode: {"runs": n, "sides": [left label, right label], "aspects": {aspect: figures},
    "contrast": {"left": accuracy, "right": accuracy, "n": pairs}}} over judged two-sided runs."""
    by_mode: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if row.get("status") == "ok" and row.get("judged") and len(row.get("sides", [])) == 2:
            by_mode.setdefault(row["mode"], []).append(row)
    result = {}
    for mode, group in by_mode.items():
        aspects = {}
        for aspect in ASPECTS:
            diffs = [r["scores"][aspect]["diff"] for r in group if aspect in r["scores"]]
            if not diffs:
                continue
            low, high = paired_bootstrap(diffs)
            aspects[aspect] = {
                "n": len(diffs), "mean_left": _mean([r["scores"][aspect]["left"] for r in group if aspect in r["scores"]]),
                "mean_right": _mean([r["scores"][aspect]["right"] for r in group if aspect in r["scores"]]),
                "mean_diff": _mean(diffs), "ci_low": round(low, 6), "ci_high": round(high, 6),
                "wins": sum(d > TIE for d in diffs), "ties": sum(abs(d) <= TIE for d in diffs),
                "losses": sum(d < -TIE for d in diffs),
                "contrast_left": _accuracy([c["left"] for c in _counted(group, aspect)]),
                "contrast_right": _accuracy([c["right"] for c in _counted(group, aspect)]),
                "contrast_n": len(_counted(group, aspect)),
            }
        recorded = [c for r in group for c in r["contrast"].values()]
        hits = [(c["left"], c["right"]) for c in recorded if c.get("counted", True)]
        result[mode] = {
            "runs": len(group), "sides": [group[0]["sides"][0]["label"], group[0]["sides"][1]["label"]],
            "aspects": aspects,
            "contrast": {"n": len(hits), "left": _accuracy([h[0] for h in hits]),
                         "right": _accuracy([h[1] for h in hits]), "not_counted": len(recorded) - len(hits)},
        }
    return result


def _counted(group: list[dict[str, Any]], aspect: str) -> list[dict[str, Any]]:
    """The aspect's contrast pairs whose negative is meaningful (rows made before the flag count)."""
    return [r["contrast"][aspect] for r in group
            if aspect in r["contrast"] and r["contrast"][aspect].get("counted", True)]


TABLE_COLUMNS = ("mode", "left_side", "right_side", "aspect", "n", "mean_left", "mean_right", "mean_diff", "ci_low",
                 "ci_high", "wins", "ties", "losses", "contrast_n", "contrast_left", "contrast_right")


def aggregate_table(summary: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per mode and aspect (`TABLE_COLUMNS`), the numbers every copy of the table shows."""
    rows = []
    for mode, figures in summary.items():
        left, right = figures["sides"]
        for aspect, a in figures["aspects"].items():
            rows.append({"mode": mode, "left_side": left, "right_side": right, "aspect": aspect,
                         **{key: a.get(key) for key in TABLE_COLUMNS[4:]}})
    return rows


def _mean(values: list[float]) -> float:
    return round(sum(values) / len(values), 6) if values else float("nan")


def _accuracy(hits: list[bool | None]) -> float | None:
    known = [h for h in hits if h is not None]
    return round(sum(known) / len(known), 4) if known else None


def markdown_table(summary: dict[str, dict[str, Any]]) -> str:
    """The aggregate as a Markdown table (printed by `batch` and pasted into notes)."""
    lines = []
    for mode, figures in summary.items():
        left, right = figures["sides"]
        lines.append(f"{mode} mode, {figures['runs']} runs: left = {left}, right = {right}")
        lines.append("| aspect | left | right | mean diff | 95% CI | win/tie/loss | contrast left | contrast right |")
        lines.append("|---|---|---|---|---|---|---|---|")
        for aspect, a in figures["aspects"].items():
            lines.append(f"| {aspect} | {a['mean_left']:.3f} | {a['mean_right']:.3f} | {a['mean_diff']:+.3f} | "
                         f"[{a['ci_low']:+.3f}, {a['ci_high']:+.3f}] | {a['wins']}/{a['ties']}/{a['losses']} | "
                         f"{_percent(a['contrast_left'])} | {_percent(a['contrast_right'])} |")
        c = figures["contrast"]
        skipped = f" ({c['not_counted']} word-level negative(s) not counted)" if c.get("not_counted") else ""
        lines.append(f"contrast accuracy over {c['n']} caption/negative pairs: left {_percent(c['left'])}, "
                     f"right {_percent(c['right'])}{skipped}")
    return "\n".join(lines) if lines else "no judged two-sided runs"


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"
