"""The parts of the CHAI vocabulary (aspects, sub-aspects, primitive groups, primitives) and how
each is read from JSON.

Apart from `vocabulary` (the whole vocabulary: look-ups, glossary, inserting phrases into text)
because reading untrusted JSON is its own job: every field is checked and a problem is an
`InputError` that names its path, e.g. `vocabulary.groups[shot_size].primitives[2].phrase`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

from ..errors import InputError
from .structured import ASPECTS

SELECT_MODES = ("one", "many")
_ID = re.compile(r"^[a-z][a-z0-9_]*$")
SENTENCE_END = (".", "!", "?")


@dataclass(frozen=True)
class Primitive:
    id: str
    name: str
    definition: str
    phrase: str  # the sentence inserted into a caption when the primitive is picked
    group_id: str
    aspect: str
    sub_aspect: str

    @property
    def qualified_id(self) -> str:
        return f"{self.group_id}.{self.id}"


@dataclass(frozen=True)
class PrimitiveGroup:
    id: str
    aspect: str
    sub_aspect: str  # the sub-aspect (a CHAI json field) this group's phrases describe
    name: str
    definition: str
    select: str  # "one": mutually exclusive members; "many": members combine
    primitives: tuple[Primitive, ...]

    @property
    def exclusive(self) -> bool:
        return self.select == "one"

    def primitive(self, primitive_id: str) -> Primitive:
        for primitive in self.primitives:
            if primitive.id == primitive_id:
                return primitive
        known = ", ".join(p.id for p in self.primitives)
        raise InputError(f"group {self.id!r} has no primitive {primitive_id!r}; it has {known}", "primitive")


@dataclass(frozen=True)
class SubAspect:
    id: str
    name: str
    description: str
    aspect: str


@dataclass(frozen=True)
class AspectInfo:
    name: str
    description: str
    sub_aspects: tuple[SubAspect, ...]

    def sub_aspect(self, sub_aspect_id: str) -> SubAspect:
        for sub in self.sub_aspects:
            if sub.id == sub_aspect_id:
                return sub
        known = ", ".join(s.id for s in self.sub_aspects)
        raise InputError(f"{self.name} has no sub-aspect {sub_aspect_id!r}; it has {known}", "sub_aspect")


def read_aspects(raw_aspects: Any) -> tuple[AspectInfo, ...]:
    """The five aspects with their sub-aspects, in CHAI's order."""
    raw_aspects = _list(raw_aspects, "vocabulary.aspects")
    aspects = []
    for i, raw in enumerate(raw_aspects):
        where = f"vocabulary.aspects[{i}]"
        raw = _mapping(raw, where)
        name = _string(raw.get("name"), f"{where}.name")
        subs, seen = [], set()
        for j, sub in enumerate(_list(raw.get("sub_aspects"), f"{where}.sub_aspects")):
            sub_where = f"{where}.sub_aspects[{j}]"
            sub = _mapping(sub, sub_where)
            sub_id = _identifier(sub.get("id"), f"{sub_where}.id")
            if sub_id in seen:
                raise InputError(f"duplicate sub-aspect id {sub_id!r}", sub_where)
            seen.add(sub_id)
            subs.append(SubAspect(sub_id, _string(sub.get("name"), f"{sub_where}.name"),
                                  _string(sub.get("description"), f"{sub_where}.description"), name))
        aspects.append(AspectInfo(name, _string(raw.get("description"), f"{where}.description"), tuple(subs)))
    if tuple(a.name for a in aspects) != ASPECTS:
        raise InputError(f"expected the aspects {', '.join(ASPECTS)} in that order", "vocabulary.aspects")
    return tuple(aspects)


def read_groups(raw_groups: Any, sub_ids: Mapping[str, set[str]]) -> tuple[PrimitiveGroup, ...]:
    """The primitive groups, each tied to an aspect and one of its sub-aspects (`sub_ids`)."""
    groups, group_ids = [], set()
    for i, raw in enumerate(_list(raw_groups, "vocabulary.groups")):
        raw, group_id, where = _entry(raw, i, "vocabulary.groups", group_ids, "group")
        aspect = _string(raw.get("aspect"), f"{where}.aspect")
        if aspect not in sub_ids:
            raise InputError(f"unknown aspect {aspect!r}", f"{where}.aspect")
        sub_aspect = _string(raw.get("sub_aspect"), f"{where}.sub_aspect")
        if sub_aspect not in sub_ids[aspect]:
            raise InputError(f"{aspect} has no sub-aspect {sub_aspect!r}", f"{where}.sub_aspect")
        select = raw.get("select")
        if select not in SELECT_MODES:
            raise InputError(f"expected one of {', '.join(SELECT_MODES)}, got {select!r}", f"{where}.select")
        primitives, primitive_ids = [], set()
        raw_primitives = _list(raw.get("primitives"), f"{where}.primitives")
        if not raw_primitives:
            raise InputError("a group needs at least one primitive", f"{where}.primitives")
        for j, prim in enumerate(raw_primitives):
            prim, prim_id, prim_where = _entry(prim, j, f"{where}.primitives", primitive_ids, "primitive")
            phrase = _string(prim.get("phrase"), f"{prim_where}.phrase")
            if not phrase.endswith(SENTENCE_END):
                raise InputError("a phrase must be a complete sentence ending with a period", f"{prim_where}.phrase")
            primitives.append(Primitive(
                id=prim_id,
                name=_string(prim.get("name"), f"{prim_where}.name"),
                definition=_string(prim.get("definition"), f"{prim_where}.definition"),
                phrase=phrase,
                group_id=group_id,
                aspect=aspect,
                sub_aspect=sub_aspect,
            ))
        groups.append(PrimitiveGroup(
            id=group_id, aspect=aspect, sub_aspect=sub_aspect,
            name=_string(raw.get("name"), f"{where}.name"),
            definition=_string(raw.get("definition"), f"{where}.definition"),
            select=select, primitives=tuple(primitives),
        ))
    return tuple(groups)


def _entry(raw: Any, index: int, where: str, seen: set[str], what: str) -> tuple[Mapping, str, str]:
    """Entry `index` of the list at `where`: an object whose snake_case id is new, its id, and its
    path by id (`where[id]`, which names it better in later errors than its position)."""
    raw = _mapping(raw, f"{where}[{index}]")
    entry_id = _identifier(raw.get("id"), f"{where}[{index}].id")
    if entry_id in seen:
        raise InputError(f"duplicate {what} id {entry_id!r}", f"{where}[{entry_id}]")
    seen.add(entry_id)
    return raw, entry_id, f"{where}[{entry_id}]"


def _list(value: Any, where: str) -> list:
    if not isinstance(value, list):
        raise InputError("expected a list", where)
    return value


def _mapping(value: Any, where: str) -> Mapping:
    if not isinstance(value, Mapping):
        raise InputError("expected an object", where)
    return value


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InputError("expected non-empty text", where)
    return value.strip()


def _identifier(value: Any, where: str) -> str:
    value = _string(value, where)
    if not _ID.match(value):
        raise InputError(f"{value!r} is not a snake_case id", where)
    return value
