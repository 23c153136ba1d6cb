"""The extractive composer: five aspect captions -> one generation prompt within a word budget.

Why extractive: the CHAI-finetuned generator was trained on merges that reuse the captions' own
wording, and a filmmaker who edited "slow dolly zoom" wants exactly that phrase in the prompt. So
the composer never writes a word of its own; it only chooses which sentences, and which clauses
of a sentence, to keep, and in which order.

How it chooses (deterministic):
1. Every aspect text is split into sentences, every sentence into clauses (at commas, semicolons,
   dashes and clause-opening conjunctions; see `text.split_clauses` for the pieces that are never
   cut apart). A clause can only be kept together with its sentence's first clause, so each kept
   sentence still reads as a sentence.
2. A greedy pass keeps adding the clause that buys the most new content per word, where "content"
   is scored per aspect as a concave function of that aspect's recall (the share of its content
   words already in the prompt). The concavity favours the aspect that is worst covered, so no
   aspect is starved, and near-duplicate sentences across aspects gain nothing and are left out.
   Then swaps: drop one kept piece, refill the freed words greedily, keep the change if the
   objective rose. This is what lets a short new clause replace a long half-repeated sentence.
3. Kept sentences are ordered for a generator to read: the Spatial caption's first sentence (shot
   size and framing) first when kept, then the Subject and Scene details that add something, then Spatial, Motion and
   Camera sentences merged in time order (by their relative position in their own caption). The
   camera-first option moves the Camera sentences to the front, which Wan users report it follows
   better.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from ..caption.structured import ASPECTS, StructuredCaption
from ..errors import InputError
from .text import Clause, content_words, estimate_tokens, join_clauses, split_clauses, split_sentences, word_count

HARD_CAP_WORDS = 320  # CHAI's own limit for merged prompts
DEFAULT_WORDS = 260
TOKEN_LIMIT = 512  # Wan's umT5 reads at most 512 tokens (max_sequence_length)
MIN_WORDS = 20

# The objective sums, over aspects, a concave utility of each aspect's recall r: -exp(-BALANCE * r).
# Concavity makes a word that lifts a poorly covered aspect worth more than one that polishes a
# well covered aspect; BALANCE sets how much. On the 488 CHAI records, 2.5 keeps mean recall
# within a point of its maximum while lifting the worst aspect's recall by over a point.
BALANCE = 2.5
# A leftover sentence counts as a duplicate when this share of its content words is in the prompt.
DUPLICATE_SHARE = 0.8
# Swap rounds after the greedy pass; each accepted swap strictly improves the objective.
MAX_SWAP_ROUNDS = 12


@dataclass(frozen=True)
class ComposeOptions:
    max_words: int = DEFAULT_WORDS
    camera_first: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.max_words, bool) or not isinstance(self.max_words, int):
            raise InputError(f"expected a whole number of words, got {self.max_words!r}", "max_words")
        if not MIN_WORDS <= self.max_words <= HARD_CAP_WORDS:
            raise InputError(
                f"must be between {MIN_WORDS} and {HARD_CAP_WORDS} words (CHAI's cap), got {self.max_words}",
                "max_words",
            )


@dataclass
class Dropped:
    aspect: str
    text: str
    reason: str  # "duplicate" (already said by another sentence) or "budget" (did not fit)


@dataclass
class ComposeReport:
    words: int
    tokens: int
    tokens_estimated: bool
    coverage: dict[str, float]  # aspect -> share of its content words present in the prompt
    dropped: list[Dropped] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    max_words: int = DEFAULT_WORDS
    token_limit: int = TOKEN_LIMIT

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ComposeResult:
    prompt: str
    report: ComposeReport


@dataclass
class _Sentence:
    aspect: str
    position: float  # relative position within its caption, 0..1: a proxy for time order
    order: int  # index over all sentences, for deterministic tie-breaking
    is_first: bool  # the first sentence of its aspect's caption
    clauses: list[Clause]
    clause_words: list[int]
    clause_content: list[frozenset[str]]
    kept: list[bool] = field(default_factory=list)

    @property
    def is_kept(self) -> bool:
        return any(self.kept)

    def text(self) -> str:
        return join_clauses([c for c, k in zip(self.clauses, self.kept) if k])

    def full_text(self) -> str:
        return join_clauses(self.clauses)


def compose(caption: StructuredCaption, options: ComposeOptions = ComposeOptions(), tokenizer=None) -> ComposeResult:
    """Compose the caption's five aspects into one prompt of at most `options.max_words` words."""
    if caption.is_empty():
        raise InputError("every aspect is empty; write or caption at least one aspect first", "caption")
    sentences = _split(caption)
    aspect_content = {a: content_words(caption.aspects[a].text) for a in ASPECTS}
    _select(sentences, aspect_content, options.max_words)
    prompt = " ".join(s.text() for s in _reading_order(sentences, options.camera_first))
    return ComposeResult(prompt, _report(prompt, sentences, aspect_content, options, tokenizer))


def _split(caption: StructuredCaption) -> list[_Sentence]:
    sentences = []
    for aspect in ASPECTS:
        parts = split_sentences(caption.aspects[aspect].text)
        for i, part in enumerate(parts):
            clauses = split_clauses(part)
            sentences.append(_Sentence(
                aspect=aspect,
                position=(i + 0.5) / len(parts),
                order=len(sentences),
                is_first=i == 0,
                clauses=clauses,
                clause_words=[word_count(c.text) for c in clauses],
                clause_content=[content_words(c.text) for c in clauses],
                kept=[False] * len(clauses),
            ))
    return sentences


def _select(sentences: list[_Sentence], aspect_content: dict[str, frozenset[str]], budget: int) -> None:
    """Budgeted coverage over clauses: a greedy pass, then swaps while they improve the objective."""
    selection = _Selection(sentences, aspect_content, budget)
    selection.fill()
    for _ in range(MAX_SWAP_ROUNDS):
        if not selection.improve_by_swapping():
            break
    if selection.drop_redundant():
        selection.fill()


def _utility(recall: float) -> float:
    return -math.exp(-BALANCE * recall)


class _Selection:
    """Which clauses are kept, with the word counts and the objective kept up to date."""

    def __init__(self, sentences: list[_Sentence], aspect_content: dict[str, frozenset[str]], budget: int):
        self.sentences = sentences
        self.aspects = {a: c for a, c in aspect_content.items() if c}
        self.budget = budget
        self.used = 0
        self.word_uses: dict[str, int] = {}  # content word -> number of kept clauses containing it

    def objective(self, covered: set[str] | None = None) -> float:
        covered = self.word_uses.keys() if covered is None else covered
        return sum(_utility(len(words & covered) / len(words)) for words in self.aspects.values())

    def _gain(self, new_words: set[str]) -> float:
        gain = 0.0
        for words in self.aspects.values():
            hit = len(words & new_words)
            if hit:
                r = len(words & self.word_uses.keys()) / len(words)
                gain += _utility(r + hit / len(words)) - _utility(r)
        return gain

    def _keep(self, s: _Sentence, clauses: list[int], keep: bool) -> None:
        for k in clauses:
            s.kept[k] = keep
            self.used += s.clause_words[k] if keep else -s.clause_words[k]
            for w in s.clause_content[k]:
                n = self.word_uses.get(w, 0) + (1 if keep else -1)
                if n:
                    self.word_uses[w] = n
                else:
                    del self.word_uses[w]

    def fill(self, banned: set[tuple[int, int]] = frozenset()) -> list[tuple[_Sentence, list[int]]]:
        """Greedily add the clause with the best objective gain per word until nothing fits."""
        added = []
        while True:
            best = None  # (gain per word, -order, -clause index, sentence, clauses to add)
            for s in self.sentences:
                for j, kept in enumerate(s.kept):
                    if kept or (s.order, j) in banned:
                        continue
                    add = [j] if s.kept[0] or j == 0 else [0, j]
                    cost = sum(s.clause_words[k] for k in add)
                    if cost == 0 or self.used + cost > self.budget:
                        continue
                    new_words = set().union(*(s.clause_content[k] for k in add)) - self.word_uses.keys()
                    if not new_words:
                        continue
                    key = (self._gain(new_words) / cost, -s.order, -j)
                    if best is None or key > best[:3]:
                        best = (*key, s, add)
            if best is None:
                return added
            *_, s, add = best
            self._keep(s, add, True)
            added.append((s, add))

    def drop_redundant(self) -> bool:
        """Drop kept pieces whose every content word is also said elsewhere in the prompt.

        Greedy order can keep a short sentence first and later a longer one that repeats it with
        more detail; the short one then says nothing of its own.
        """
        dropped = False
        for s in sorted(self.sentences, key=lambda s: -s.order):
            if not s.is_kept:
                continue
            pieces = [[k] for k in range(len(s.kept) - 1, 0, -1) if s.kept[k]]
            pieces.append([k for k in range(len(s.kept)) if s.kept[k]])
            for piece in pieces:
                if not all(s.kept[k] for k in piece):
                    continue
                own = Counter(w for k in piece for w in s.clause_content[k])
                if all(self.word_uses[w] > n for w, n in own.items()):
                    self._keep(s, piece, False)
                    dropped = True
        return dropped

    def improve_by_swapping(self) -> bool:
        """Try dropping each kept piece and refilling the budget; keep the first swap that helps."""
        current = self.objective()
        for s in self.sentences:
            if not s.is_kept:
                continue
            tail = [k for k in range(1, len(s.kept)) if s.kept[k]]
            # A later clause can go alone; the first clause only goes with its whole sentence.
            options = [[k] for k in tail] + [[0, *tail]]
            for removed in options:
                self._keep(s, removed, False)
                added = self.fill(banned={(s.order, k) for k in removed})
                if self.objective() > current + 1e-9:
                    return True
                for t, clauses in reversed(added):
                    self._keep(t, clauses, False)
                self._keep(s, removed, True)
        return False


def _reading_order(sentences: list[_Sentence], camera_first: bool) -> list[_Sentence]:
    kept = [s for s in sentences if s.is_kept]
    # The Spatial caption's first sentence states the shot size and framing: the prompt opens with
    # it when it was kept.
    opening = [s for s in kept if s.aspect == "Spatial" and s.is_first]
    details = [s for s in kept if s.aspect in ("Subject", "Scene")]
    # Within the same relative moment, the camera setup reads before the action it frames.
    rank = {"Camera": 0, "Spatial": 1, "Motion": 2}
    if camera_first:
        camera = [s for s in kept if s.aspect == "Camera"]
        timeline = sorted((s for s in kept if s.aspect in ("Spatial", "Motion") and s not in opening),
                          key=lambda s: (s.position, rank[s.aspect], s.order))
        return camera + opening + details + timeline
    timeline = sorted((s for s in kept if s.aspect in rank and s not in opening),
                      key=lambda s: (s.position, rank[s.aspect], s.order))
    return opening + details + timeline


def _report(prompt: str, sentences: list[_Sentence], aspect_content: dict[str, frozenset[str]],
            options: ComposeOptions, tokenizer) -> ComposeReport:
    prompt_content = content_words(prompt)
    dropped = []
    for s in sentences:
        if all(s.kept):
            continue
        left = [c for c, k in zip(s.clauses, s.kept) if not k]
        left_content = set().union(*(cc for cc, k in zip(s.clause_content, s.kept) if not k))
        share = len(left_content & prompt_content) / len(left_content) if left_content else 1.0
        reason = "duplicate" if share >= DUPLICATE_SHARE else "budget"
        text = s.full_text() if not s.is_kept else "... " + "; ".join(c.text for c in left)
        dropped.append(Dropped(s.aspect, text, reason))
    if tokenizer is not None:
        tokens, estimated = len(tokenizer(prompt)["input_ids"]), False
    else:
        tokens, estimated = estimate_tokens(prompt), True
    return _described(prompt, aspect_content, options, tokens, estimated, dropped)


def describe(prompt: str, caption: StructuredCaption, options: ComposeOptions, tokens: int,
             tokens_estimated: bool) -> ComposeReport:
    """The report of a prompt the composer did not choose (the LLM merge's rewrite): coverage,
    warnings and counts of that text, with the token count the caller's meter shows. No sentence
    was dropped by choice, so none is listed."""
    aspect_content = {a: content_words(caption.aspects[a].text) for a in ASPECTS}
    return _described(prompt, aspect_content, options, tokens, tokens_estimated, [])


def _described(prompt: str, aspect_content: dict[str, frozenset[str]], options: ComposeOptions, tokens: int,
               estimated: bool, dropped: list[Dropped]) -> ComposeReport:
    prompt_content = content_words(prompt)
    coverage = {
        a: round(len(words & prompt_content) / len(words), 3) if words else 1.0
        for a, words in aspect_content.items()
    }
    words = word_count(prompt)
    warnings = []
    if tokens > TOKEN_LIMIT:
        warnings.append(
            f"the prompt is {'about ' if estimated else ''}{tokens} tokens; Wan's text encoder reads only the first "
            f"{TOKEN_LIMIT}, so lower the word budget"
        )
    missing = [a for a, words in aspect_content.items() if not words]
    if missing:
        warnings.append(f"empty aspect(s): {', '.join(missing)}")
    return ComposeReport(words=words, tokens=tokens, tokens_estimated=estimated, coverage=coverage,
                         dropped=dropped, warnings=warnings, max_words=options.max_words)
