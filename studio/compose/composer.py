"""Placeholder: replaced by the extractive composer in the next commit."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ..caption.structured import ASPECTS, StructuredCaption

HARD_CAP_WORDS = 320  # CHAI's own limit for merged prompts
TOKEN_LIMIT = 512  # Wan's umT5 max_sequence_length


@dataclass(frozen=True)
class ComposeOptions:
    max_words: int = 260
    camera_first: bool = False


@dataclass
class Dropped:
    aspect: str
    text: str
    reason: str


@dataclass
class ComposeReport:
    words: int
    tokens: int
    tokens_estimated: bool
    coverage: dict[str, float]
    dropped: list[Dropped] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    token_limit: int = TOKEN_LIMIT

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ComposeResult:
    prompt: str
    report: ComposeReport


def compose(caption: StructuredCaption, options: ComposeOptions = ComposeOptions(), tokenizer=None) -> ComposeResult:
    prompt = " ".join(caption.aspects[a].text for a in ASPECTS if caption.aspects[a].text)
    words = len(prompt.split())
    return ComposeResult(prompt, ComposeReport(words, int(words * 1.4), True, {a: 1.0 for a in ASPECTS}))
