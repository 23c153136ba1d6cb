"""Hard negatives of a caption: the same words with CHAI terms swapped for their opposites.

The judge's contrast check asks the captioner about a caption and about its hard negative; a
model that really reads camera language should prefer the true one. A negative is only worth
asking about when it says something else in the same language, so a swap replaces a whole term
of the CHAI vocabulary (`studio/data/vocabulary.json`) with another term of the same group, never
a lone word: "close-up" becomes "wide shot", not "close-down", and "from the chest up" is left
alone. The swaps are:

* movement directions: a camera movement verb in any inflection with its direction, for every
  pair of primitives of one movement that differ only in direction ("pans left" / "pans right",
  "dollies in" / "dollies out", "tilts up" / "tilts down", "rolls clockwise" / ...), plus push,
  pull and move in/out, the usual spoken names of a dolly;
* opposite primitives: two primitives of one group whose ids mirror each other, with their
  vocabulary names as the phrases: one id turned into the other by swapping its direction words
  ("above_subject" / "below_subject", "dolly_in_zoom_out" / "dolly_out_zoom_in") or by reversing
  "a_to_b" ("high_to_low" / "low_to_high", "wide_to_tight" / "tight_to_wide"). Single-word names
  ("Left", "Top") are too ambiguous in free text and are not matched;
* the two ends of an ordered scale (shot size, camera angle) swapped for each other when at
  least one step lies between them: extreme wide / extreme close-up, wide / close-up, high angle
  / low angle, bird's-eye / worm's-eye;
* plain-English spellings of the vocabulary's directions that are whole phrases on both sides
  (toward / away from, to the left / to the right, rises / descends, ...);
* movement types, only for a caption with none of the above: a translation and the rotation or
  zoom that shares its direction, the movements people confuse (dolly/zoom, truck/pan,
  pedestal/tilt).

A caption with none of these has no hard negative. `is_meaningful` tells whether a recorded
negative is the one these rules build, so negatives judged under older rules ("close-down") are
shown but never counted toward contrast accuracy.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from functools import lru_cache

# Movement groups of the vocabulary: translations first, then what they are confused with.
TRANSLATION_GROUPS = ("translation",)
CONFUSED_GROUPS = ("rotation", "zoom")
MOVEMENT_GROUPS = ("translation", "rotation", "zoom", "arc")
# Spoken names of a dolly in/out: "the camera pushes in", "pulls out".
DOLLY_SYNONYMS = ("push", "pull", "move")
# Ordered groups (listed from one end to the other) whose two ends are opposites.
SCALE_GROUPS = ("shot_size", "camera_angle")
# Direction words that turn a primitive id into its opposite's id (checked: the result must exist).
OPPOSITE_WORDS = (("in", "out"), ("left", "right"), ("up", "down"), ("clockwise", "counterclockwise"),
                  ("above", "below"), ("high", "low"), ("top", "bottom"), ("enters", "exits"),
                  ("larger", "smaller"), ("accelerating", "decelerating"))
PLAIN_DIRECTIONS = (("toward", "away from"), ("towards", "away from"), ("forward", "backward"),
                    ("forwards", "backwards"), ("upward", "downward"), ("upwards", "downwards"),
                    ("leftward", "rightward"), ("to the left", "to the right"), ("left to right", "right to left"),
                    ("rises", "descends"), ("rising", "descending"), ("ascends", "descends"),
                    ("ascending", "descending"), ("counterclockwise", "clockwise"), ("counter-clockwise", "clockwise"))
SHOT_WORD = " shot"  # "a close-up shot": the shot-size swap takes the noun with it


@dataclass(frozen=True)
class Swap:
    """One replaced term: where the replacement sits in the negative, and the vocabulary group."""

    start: int
    end: int
    original: str
    replacement: str
    family: str


@dataclass(frozen=True)
class HardNegative:
    text: str
    swaps: tuple[Swap, ...]


def _forms(word: str) -> list[tuple[str, str]]:
    """(inflection tag, form) for a movement verb: base, third person, -ing, -ed."""
    if word.endswith("y") and word[-2:-1] not in "aeiou":
        stem = word[:-1]
        return [("", word), ("s", stem + "ies"), ("ing", word + "ing"), ("ed", stem + "ied")]
    if word.endswith("e"):  # move -> moving, moved
        return [("", word), ("s", word + "s"), ("ing", word[:-1] + "ing"), ("ed", word + "d")]
    if word.endswith(("s", "sh", "ch")):
        return [("", word), ("s", word + "es"), ("ing", word + "ing"), ("ed", word + "ed")]
    if word.endswith("n") and word[-2:-1] in "aeiou" and word[-3:-2] not in "aeiou":  # pan -> panning
        return [("", word), ("s", word + "s"), ("ing", word + word[-1] + "ing"), ("ed", word + word[-1] + "ed")]
    return [("", word), ("s", word + "s"), ("ing", word + "ing"), ("ed", word + "ed")]


def _key(phrase: str) -> str:
    """The spelling a phrase is looked up by: lower case, hyphens and runs of spaces as one space."""
    return re.sub(r"[\s-]+", " ", phrase.strip().lower())


def _mirror(primitive_id: str) -> str:
    """The id with its direction words swapped, or its "a_to_b" reversed."""
    words = primitive_id.split("_")
    if "to" in words[1:-1]:
        i = words.index("to")
        words[i - 1], words[i + 1] = words[i + 1], words[i - 1]
        return "_".join(words)
    opposite = {a: b for pair in OPPOSITE_WORDS for a, b in (pair, pair[::-1])}
    return "_".join(opposite.get(word, word) for word in words)


def _add(table: dict[str, tuple[str, str] | None], phrase: str, replacement: str, family: str) -> None:
    table.setdefault(_key(phrase), (replacement, family))


@lru_cache(maxsize=1)
def swap_tables() -> tuple[dict[str, tuple[str, str] | None], dict[str, tuple[str, str] | None]]:
    """(direction swaps, movement-type swaps): looked-up phrase -> (replacement, vocabulary group),
    or None for a term that stays as it is."""
    from ..caption.vocabulary import load_vocabulary

    vocabulary = load_vocabulary()
    directions: dict[str, tuple[str, str] | None] = {}
    by_group: dict[str, list[tuple[str, str]]] = {}
    for group in vocabulary.groups:
        ids = {p.id: p for p in group.primitives}
        if group.id in MOVEMENT_GROUPS:
            by_group[group.id] = [tuple(p.id.rsplit("_", 1)) for p in group.primitives if "_" in p.id]
            for kind, direction in by_group[group.id]:
                opposite = _mirror(direction)
                if f"{kind}_{opposite}" in ids and opposite != direction:
                    for _, form in _forms(kind):
                        _add(directions, f"{form} {direction}", f"{form} {opposite}", group.id)
                        if direction == "counterclockwise":
                            _add(directions, f"{form} counter-clockwise", f"{form} clockwise", group.id)
        for primitive in group.primitives:
            mirrored = ids.get(_mirror(primitive.id))
            if mirrored is not None and mirrored.id != primitive.id and " " in _key(primitive.name):
                _add(directions, primitive.name, mirrored.name.lower(), group.id)
        if group.id in SCALE_GROUPS:
            members = list(group.primitives)
            for i in range(len(members) // 2):
                if len(members) - 1 - 2 * i < 2:
                    continue  # neighbours on the scale: too close to be a clear negative
                for one, other in ((members[i], members[-1 - i]), (members[-1 - i], members[i])):
                    name, replacement = one.name.lower(), other.name.lower()
                    _add(directions, name, replacement, group.id)
                    if replacement.endswith(SHOT_WORD) and not name.endswith(SHOT_WORD):
                        # "a close-up shot" -> "a wide shot", not "a wide shot shot"
                        _add(directions, name + SHOT_WORD, replacement, group.id)
    for kind in DOLLY_SYNONYMS:
        for _, form in _forms(kind):
            _add(directions, f"{form} in", f"{form} out", "translation")
            _add(directions, f"{form} out", f"{form} in", "translation")
    for a, b in PLAIN_DIRECTIONS:
        _add(directions, a, b, "direction")
        _add(directions, b, a, "direction")
    types: dict[str, tuple[str, str] | None] = {}
    translations: dict[str, str] = {}
    for group in TRANSLATION_GROUPS:
        for kind, direction in by_group.get(group, []):
            translations.setdefault(direction, kind)  # the first listed: pedestal before crane
    taken: set[str] = set()
    for group in CONFUSED_GROUPS:
        for kind, direction in by_group.get(group, []):
            moved = translations.get(direction)
            if moved and kind not in taken and moved not in taken and kind != moved:
                taken |= {kind, moved}
                for (_, a), (_, b) in zip(_forms(moved), _forms(kind)):
                    _add(types, a, b, f"{TRANSLATION_GROUPS[0]}/{group}")
                    _add(types, b, a, f"{TRANSLATION_GROUPS[0]}/{group}")
    for group in vocabulary.groups:  # the other terms, so no swap lands inside one ("medium full shot")
        for primitive in group.primitives:
            if " " in _key(primitive.name):
                directions.setdefault(_key(primitive.name), None)
                types.setdefault(_key(primitive.name), None)
    return directions, types


@lru_cache(maxsize=2)
def _pattern(table_index: int) -> re.Pattern:
    table = swap_tables()[table_index]
    spelled = [re.escape(key).replace(r"\ ", r"[\s-]+") for key in sorted(table, key=len, reverse=True)]
    return re.compile(r"(?<![\w-])(" + "|".join(spelled) + r")(?![\w-])", re.IGNORECASE)


def _swap(text: str, table_index: int) -> HardNegative:
    table = swap_tables()[table_index]
    parts, swaps, position, shift = [], [], 0, 0
    for match in _pattern(table_index).finditer(text):
        found = match.group(0)
        if table[_key(found)] is None:
            continue
        new, family = table[_key(found)]
        new = new[:1].upper() + new[1:] if found[:1].isupper() else new
        parts.append(text[position:match.start()])
        start = match.start() + shift
        swaps.append(Swap(start, start + len(new), found, new, family))
        parts.append(new)
        shift += len(new) - len(found)
        position = match.end()
    parts.append(text[position:])
    return HardNegative("".join(parts), tuple(swaps))


def build_hard_negative(caption: str) -> HardNegative | None:
    """The caption with its direction terms swapped, else its movement types; None when neither occurs."""
    for table_index in (0, 1):
        negative = _swap(caption, table_index)
        if negative.swaps:
            return negative
    return None


def hard_negative(caption: str) -> str | None:
    negative = build_hard_negative(caption)
    return None if negative is None else negative.text


def is_meaningful(caption: str, negative: str | None) -> bool:
    """Whether `negative` is the hard negative these rules build for `caption` (so it counts)."""
    return bool(negative) and hard_negative(caption) == negative


def changed_spans(caption: str, negative: str) -> list[tuple[int, int]]:
    """(start, end) of the words of `negative` that differ from `caption`, for highlighting; works
    for any recorded negative, also ones built under older rules."""
    built = build_hard_negative(caption)
    if built is not None and built.text == negative:
        return [(s.start, s.end) for s in built.swaps]
    tokens = [(m.start(), m.end()) for m in re.finditer(r"\w+|[^\w\s]", negative)]
    words = [negative[a:b] for a, b in tokens]
    original = re.findall(r"\w+|[^\w\s]", caption)
    spans: list[tuple[int, int]] = []
    for tag, _, _, j1, j2 in difflib.SequenceMatcher(None, original, words, autojunk=False).get_opcodes():
        if tag in ("replace", "insert") and j2 > j1:
            spans.append((tokens[j1][0], tokens[j2 - 1][1]))
    return spans
