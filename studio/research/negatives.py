"""Hard negatives of a caption: the same words with directions or movement types swapped.

The judge's contrast check asks the captioner about a caption and about its hard negative; a
model that really reads camera language should prefer the true one. The swaps come from the CHAI
vocabulary's camera movement primitives (ids such as `dolly_in`, `pan_left`, `tilt_up`):

* directions: every pair of primitives of one movement that differ only in direction gives a
  direction pair (in/out, left/right, up/down, clockwise/counterclockwise); "in" and "out" are
  only swapped right after a movement word, since they are common prepositions elsewhere;
* movement types: a translation and a rotation or zoom that share a direction are the movements
  people confuse (dolly/zoom, truck/pan, pedestal/tilt).

A few plain-English direction pairs the ids do not spell (toward/away from, forward/backward,
rises/descends, ...) complete the list. Directions are swapped first; only a caption with no
direction word gets its movement types swapped; a caption with neither has no hard negative.
"""

from __future__ import annotations

import re
from functools import lru_cache

# Movement groups of the vocabulary: translations first, then what they are confused with.
TRANSLATION_GROUPS = ("translation",)
CONFUSED_GROUPS = ("rotation", "zoom")
MOVEMENT_GROUPS = ("translation", "rotation", "zoom", "arc")
EXTRA_DIRECTIONS = (("toward", "away from"), ("towards", "away from"), ("forward", "backward"),
                    ("forwards", "backwards"), ("upward", "downward"), ("upwards", "downwards"),
                    ("leftward", "rightward"), ("rises", "descends"), ("rising", "descending"),
                    ("ascends", "descends"), ("ascending", "descending"), ("near to far", "far to near"),
                    ("high angle", "low angle"), ("high to low", "low to high"))


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


@lru_cache(maxsize=1)
def swap_tables() -> tuple[dict[str, str], dict[str, str]]:
    """(direction swaps, movement-type swaps), lower-case phrase -> replacement."""
    from ..caption.vocabulary import load_vocabulary

    vocabulary = load_vocabulary()
    by_group: dict[str, list[tuple[str, str]]] = {}
    for group in vocabulary.groups:
        if group.id in MOVEMENT_GROUPS:
            by_group[group.id] = [tuple(p.id.rsplit("_", 1)) for p in group.primitives if "_" in p.id]
    directions: dict[str, str] = {}
    in_out_words: set[str] = set()
    for pairs in by_group.values():
        kinds: dict[str, list[str]] = {}
        for kind, direction in pairs:
            kinds.setdefault(kind, []).append(direction)
        for kind, found in kinds.items():
            if len(found) == 2:
                first, second = found
                if {first, second} == {"in", "out"}:
                    in_out_words.add(kind)
                    continue  # handled as "<movement> in" below
                directions.setdefault(first, second)
                directions.setdefault(second, first)
    for kind in sorted(in_out_words | {"push", "pull", "move"}):
        for _, form in _forms(kind):
            directions[f"{form} in"] = f"{form} out"
            directions[f"{form} out"] = f"{form} in"
    for a, b in EXTRA_DIRECTIONS:
        directions.setdefault(a, b)
        directions.setdefault(b, a)
    types: dict[str, str] = {}
    translations: dict[str, str] = {}
    for group in TRANSLATION_GROUPS:
        for kind, direction in by_group.get(group, []):
            translations.setdefault(direction, kind)  # the first listed: pedestal before crane
    for group in CONFUSED_GROUPS:
        for kind, direction in by_group.get(group, []):
            moved = translations.get(direction)
            if moved and kind not in types and moved not in types and kind != moved:
                for (tag, a), (_, b) in zip(_forms(moved), _forms(kind)):
                    types[a], types[b] = b, a
    return directions, types


def _swap(text: str, table: dict[str, str]) -> str:
    if not table:
        return text
    pattern = re.compile(r"\b(" + "|".join(re.escape(k) for k in sorted(table, key=len, reverse=True)) + r")\b",
                         re.IGNORECASE)

    def replace(match: re.Match) -> str:
        found = match.group(0)
        new = table[found.lower()]
        return new[:1].upper() + new[1:] if found[:1].isupper() else new

    return pattern.sub(replace, text)


def hard_negative(caption: str) -> str | None:
    """The caption with directions swapped, else movement types swapped; None when neither occurs."""
    directions, types = swap_tables()
    for table in (directions, types):
        swapped = _swap(caption, table)
        if swapped != caption:
            return swapped
    return None
