"""Rows and aggregate statistics of judged runs.

A row is one run (one job x seed): each aspect's score for the left side (the finetuned model, or
the CHAI prompt) and the right side (the zero-shot model, or the short prompt), their difference
and the contrast hits. The aggregate, per comparison mode and aspect, is the mean difference with
a paired bootstrap 95% interval (runs resampled with replacement, fixed RNG seed, so a report is
reproducible), win/tie/loss counts (a tie is a difference within `TIE`) and each side's contrast
accuracy.
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

    sides = run_sides(record)
    row: dict[str, Any] = {
        "run": name, "job": job, "seed": record.get("seed") if seed is None else seed, "status": "ok",
        "mode": (record.get("comparison") or {}).get("mode", "finetuned"), "prompt": record.get("prompt"),
        "short_prompt": (record.get("comparison") or {}).get("short_prompt"),
        "sides": [{"key": s["key"], "label": s["label"], "video": s["video"]} for s in sides],
        "judged": judgement is not None, "scores": {}, "contrast": {},
        "missing_sides": missing_sides(record),  # a partial run: left out of the paired aggregate
    }
    if judgement is None:
        return row
    row["caption_source"] = judgement.get("caption_source")
    keys = [s["key"] for s in sides]
    for aspect, entry in judgement.get("aspects", {}).items():
        scores = {key: entry["scores"].get(key) for key in keys}
        cell: dict[str, Any] = {"left": scores[keys[0]], "reference": entry.get("reference")}
        if len(keys) > 1:
            cell["right"] = scores[keys[1]]
            cell["diff"] = round(scores[keys[0]] - scores[keys[1]], 6)
        row["scores"][aspect] = cell
        if entry.get("negative"):
            row["contrast"][aspect] = {"negative": entry["negative"],
                                       "left": entry["hits"].get(keys[0]),
                                       "right": entry["hits"].get(keys[1]) if len(keys) > 1 else None}
    return row


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
                "contrast_left": _accuracy([r["contrast"][aspect]["left"] for r in group if aspect in r["contrast"]]),
                "contrast_right": _accuracy([r["contrast"][aspect]["right"] for r in group
                                             if aspect in r["contrast"]]),
            }
        hits = [(c["left"], c["right"]) for r in group for c in r["contrast"].values()]
        result[mode] = {
            "runs": len(group), "sides": [group[0]["sides"][0]["label"], group[0]["sides"][1]["label"]],
            "aspects": aspects,
            "contrast": {"n": len(hits), "left": _accuracy([h[0] for h in hits]),
                         "right": _accuracy([h[1] for h in hits])},
        }
    return result


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
        lines.append(f"contrast accuracy over {c['n']} caption/negative pairs: left {_percent(c['left'])}, "
                     f"right {_percent(c['right'])}")
    return "\n".join(lines) if lines else "no judged two-sided runs"


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"
