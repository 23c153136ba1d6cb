"""Ranking best-of-N candidates by reward, the text the aspect already holds among them.

Best-of-N must never make a caption worse: the current text is scored in the same reward batch
as the sampled ones, so its score is comparable, and it stays in the box unless a candidate beats
it. The full ranked list is returned, so a person can still pick any candidate by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence


@dataclass(frozen=True)
class Candidate:
    text: str
    reward: float  # the captioner's P(Yes) that the text describes the aspect
    current: bool = False  # the text the aspect held before best-of-N was asked


def rank_candidates(current: str | None, sampled: Sequence[str], rewards: Sequence[float]) -> list[Candidate]:
    """The current text (when given, its reward first in `rewards`) and the sampled texts, best
    first. On a tie the current text ranks first: a candidate replaces it only by scoring higher."""
    texts = ([current] if current else []) + list(sampled)
    if len(texts) != len(rewards):
        raise ValueError(f"{len(texts)} texts but {len(rewards)} rewards")
    ranked = [Candidate(text, float(reward), current=bool(current) and i == 0)
              for i, (text, reward) in enumerate(zip(texts, rewards))]
    return sorted(ranked, key=lambda c: (-c.reward, not c.current))
