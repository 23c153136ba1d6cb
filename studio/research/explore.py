"""Explore seeds: several cheap draft side-by-sides of one prompt, judged, ranked, the best kept.

Each seed is rendered at the request's profile (a draft, usually), then judged per aspect by the
CHAI captioner against the caption (`judge.judge_run`). Seeds are ranked by the finetuned side's
mean P(Yes) over the aspects and then by its margin over the zero-shot side (in a mode without a
finetuned side, by the first side's mean). The best one is what to render final:
`generate --from-run BEST --profile final`.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..session.events import Done, Event, Status

EXPLORE_FILE = "explore.json"
MAX_SEEDS = 16


def draw_seeds(count: Any, first: Any = None) -> list[int]:
    """`count` seeds: `first`, `first + 1`, ... when a first seed is given, else drawn at random."""
    from .. import values

    n = values.whole(count, "seeds", 1, MAX_SEEDS)
    if first in (None, "", -1):
        drawn: list[int] = []
        while len(drawn) < n:
            seed = secrets.randbelow(2**31)
            if seed not in drawn:
                drawn.append(seed)
        return drawn
    start = values.whole(first, "seed", 0, 2**32 - n)
    return list(range(start, start + n))


def side_means(judged: dict[str, Any]) -> dict[str, float]:
    """Each side's mean P(Yes) over the judged aspects."""
    totals: dict[str, list[float]] = {}
    for row in judged["aspects"].values():
        for side, score in row["scores"].items():
            totals.setdefault(side, []).append(float(score))
    return {side: sum(scores) / len(scores) for side, scores in totals.items()}


def rank(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Best first: the finetuned side's mean, then its margin over the zero-shot side."""
    return sorted(entries, key=lambda e: (-e["score"], -(e["margin"] if e["margin"] is not None else 0.0), e["seed"]))


def explore_one(session, request, seed: int, cancel=None) -> dict[str, Any]:
    """Render `request` at `seed` and judge it: the seed's entry in the ranking. (One GPU call on
    a ZeroGPU Space: a seed at a time fits the per-call limit where N seeds would not.)"""
    one = replace(request, settings=request.settings.replace(seed=seed))
    result = next(e for e in session.generate(one, cancel) if isinstance(e, Done)).result
    judged = session.judge(Path(result.run_dir).name)
    means = side_means(judged)
    keys = [side["key"] for side in judged["sides"]]
    lead = "finetuned" if "finetuned" in means else keys[0]
    margin = means[lead] - means["baseline"] if lead == "finetuned" and "baseline" in means else None
    return {"seed": seed, "run": Path(result.run_dir).name, "run_dir": str(result.run_dir),
            "video": str(result.side_by_side_video or result.left_video), "score": round(means[lead], 6), "ranked_side": lead, "margin": None if margin is None else round(margin, 6),
            "sides": {k: round(v, 6) for k, v in means.items()}}


def explore(session, request, seeds: list[int], cancel=None, one: Callable[..., dict] = explore_one) -> Iterator[Event]:
    """Render and judge `request` once per seed (`one` does a seed: `explore_one`, or the page's
    GPU-wrapped call of it); ends with Done(ranking), also written to explore.json in the
    session's output folder. A cancel stops before the next seed."""
    if not seeds:
        raise InputError("give at least one seed", "seeds")
    entries = []
    for index, seed in enumerate(seeds, 1):
        if cancel is not None and cancel.is_set():
            raise InputError(f"cancelled after {index - 1} of {len(seeds)} seeds", "explore")
        yield Status(f"Seed {seed} ({index} of {len(seeds)}): rendering at {request.settings.profile}, then judging…")
        entries.append(one(session, request, seed, cancel))
    ranking = rank(entries)
    report = {"schema": "chai-studio/explore", "version": 1, "prompt": request.prompt,
              "profile": request.settings.profile, "seeds": seeds, "ranking": ranking, "best": ranking[0]["run"]}
    out = Path(session.config.output_dir) / EXPLORE_FILE
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    yield Done(report, f"Best of {len(seeds)} seeds: {ranking[0]['run']} (seed {ranking[0]['seed']}, "
                       f"{ranking[0]['ranked_side']} mean P(Yes) {ranking[0]['score']:.3f}).")
