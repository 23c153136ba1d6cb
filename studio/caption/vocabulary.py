"""The CHAI vocabulary: aspects, sub-aspects and the enumerated primitives a caption can use.

The vocabulary is package data (`studio/data/vocabulary.json`). It gives the studio a shared,
precise language for shots: the UI offers each aspect's primitive groups as pickers, the spec
command prints them, presets and structured captions record the primitives they use as qualified
ids ("group_id.primitive_id", e.g. "dolly_zoom.dolly_in_zoom_out").

Picking a primitive inserts its `phrase` (a complete sentence) into the aspect text. Groups with
`select == "one"` are mutually exclusive (a shot has one shot size), so picking a second member
replaces the first one's sentence where it stands instead of piling up contradictions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from ..errors import InputError
from .vocabulary_parts import SENTENCE_END, AspectInfo, Primitive, PrimitiveGroup, read_aspects, read_groups

@dataclass(frozen=True)
class Vocabulary:
    aspects: tuple[AspectInfo, ...]
    groups: tuple[PrimitiveGroup, ...]
    version: int = 1
    _by_id: dict = field(default_factory=dict, init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_id", {g.id: g for g in self.groups})

    # -- lookups --------------------------------------------------------------------------------
    def aspect(self, name: str) -> AspectInfo:
        """The aspect called `name` (case-insensitive)."""
        wanted = name.strip().lower() if isinstance(name, str) else None
        for info in self.aspects:
            if info.name.lower() == wanted:
                return info
        raise InputError(f"unknown aspect {name!r}; the aspects are {', '.join(a.name for a in self.aspects)}", "aspect")

    def groups_for(self, aspect: str) -> tuple[PrimitiveGroup, ...]:
        name = self.aspect(aspect).name
        return tuple(g for g in self.groups if g.aspect == name)

    def group(self, group_id: str) -> PrimitiveGroup:
        group = self._groups_by_id().get(group_id)
        if group is None:
            raise InputError(f"unknown primitive group {group_id!r}; run `python -m studio spec` to list them", "primitive")
        return group

    def primitive(self, qualified_id: str) -> Primitive:
        """Look up "group_id.primitive_id"; an unknown id raises InputError naming it."""
        if not isinstance(qualified_id, str) or qualified_id.count(".") != 1:
            raise InputError(
                f"{qualified_id!r} is not a primitive id; write it as group_id.primitive_id, e.g. shot_size.close_up",
                "primitive",
            )
        group_id, primitive_id = qualified_id.split(".")
        group = self._groups_by_id().get(group_id)
        if group is None:
            raise InputError(
                f"unknown primitive {qualified_id!r}: there is no group {group_id!r}; "
                "run `python -m studio spec` to list them",
                "primitive",
            )
        for primitive in group.primitives:
            if primitive.id == primitive_id:
                return primitive
        known = ", ".join(p.id for p in group.primitives)
        raise InputError(f"unknown primitive {qualified_id!r}: group {group_id!r} has {known}", "primitive")

    def primitives(self, aspect: str | None = None) -> Iterator[Primitive]:
        groups = self.groups if aspect is None else self.groups_for(aspect)
        for group in groups:
            yield from group.primitives

    def validate_primitives(self, ids: Iterable[str]) -> list[str]:
        """Check every id; return them in order without duplicates. Raises InputError listing unknown ids."""
        if isinstance(ids, str):
            raise InputError("expected a list of primitive ids, got a single string", "primitives")
        unknown, seen = [], []
        for qualified_id in ids:
            try:
                self.primitive(qualified_id)
            except InputError:
                unknown.append(repr(qualified_id))
                continue
            if qualified_id not in seen:
                seen.append(qualified_id)
        if unknown:
            raise InputError(
                f"unknown primitive id(s) {', '.join(unknown)}; ids look like group_id.primitive_id "
                "(run `python -m studio spec` to list them)",
                "primitives",
            )
        return seen

    # -- glossary ---------------------------------------------------------------------------------
    def glossary(self, aspect: str | None = None) -> list[tuple[str, str]]:
        """(name, definition) pairs for every primitive, the name qualified by its group."""
        entries = []
        for group in self.groups if aspect is None else self.groups_for(aspect):
            entries.extend((f"{p.name} ({group.name})", p.definition) for p in group.primitives)
        return entries

    def glossary_markdown(self, aspect: str | None = None) -> str:
        lines: list[str] = []
        for info in self.aspects if aspect is None else (self.aspect(aspect),):
            lines += [f"## {info.name}", "", info.description, ""]
            for group in self.groups_for(info.name):
                pick = "pick one" if group.exclusive else "pick any"
                lines += [f"### {group.name} ({pick})", "", group.definition, ""]
                lines += [f"- **{p.name}**: {p.definition}" for p in group.primitives]
                lines.append("")
        return "\n".join(lines).rstrip() + "\n"

    def picker_choices(self, aspect: str) -> list[tuple[str, str]]:
        """(label, qualified id) pairs for a dropdown of one aspect's primitives."""
        return [(f"{g.name}: {p.name}", p.qualified_id) for g in self.groups_for(aspect) for p in g.primitives]

    # -- the picker -------------------------------------------------------------------------------
    def apply_primitive(self, text: str, qualified_id: str, selected: Iterable[str]) -> tuple[str, list[str]]:
        """Insert the primitive's phrase into `text` and mark it selected.

        In a select="one" group the primitive replaces the previously selected member: that
        member's phrase is swapped in place when it is still in the text, otherwise the new phrase
        is appended. Picking an already selected primitive only restores its phrase if the user
        deleted it. Returns the new text and the new selected list (inputs are not modified).
        """
        text = _text(text)
        primitive = self.primitive(qualified_id)
        group = self.group(primitive.group_id)
        selected = _selected(selected)
        new_text = text
        placed = primitive.phrase in text
        if group.exclusive:
            prefix = f"{group.id}."
            for old_id in [s for s in selected if s.startswith(prefix) and s != qualified_id]:
                selected.remove(old_id)
                old = self._phrase_or_none(old_id)
                if old is None or old not in new_text:
                    continue
                if placed:
                    new_text = _remove_phrase(new_text, old)
                else:
                    new_text = new_text.replace(old, primitive.phrase, 1)
                    placed = True
        if not placed:
            new_text = _append_sentence(new_text, primitive.phrase)
        if qualified_id not in selected:
            selected.append(qualified_id)
        return new_text, selected

    def primitives_in_text(self, text: str, aspect: str | None = None) -> list[str]:
        """Ids whose phrase appears verbatim in `text` (to re-sync the selection after free editing)."""
        text = _text(text)
        return [p.qualified_id for p in self.primitives(aspect) if p.phrase in text]

    def remove_primitive(self, text: str, qualified_id: str, selected: Iterable[str]) -> tuple[str, list[str]]:
        """Remove the primitive's phrase from `text` (when present) and unmark it."""
        text = _text(text)
        primitive = self.primitive(qualified_id)
        selected = [s for s in _selected(selected) if s != qualified_id]
        if primitive.phrase in text:
            text = _remove_phrase(text, primitive.phrase)
        return text, selected

    # -- serialisation ----------------------------------------------------------------------------
    def to_dict(self, aspect: str | None = None) -> dict[str, Any]:
        aspects = self.aspects if aspect is None else (self.aspect(aspect),)
        names = {a.name for a in aspects}
        return {
            "version": self.version,
            "aspects": [
                {"name": a.name, "description": a.description,
                 "sub_aspects": [{"id": s.id, "name": s.name, "description": s.description} for s in a.sub_aspects]}
                for a in aspects
            ],
            "groups": [
                {"id": g.id, "aspect": g.aspect, "sub_aspect": g.sub_aspect, "name": g.name,
                 "definition": g.definition, "select": g.select,
                 "primitives": [{"id": p.id, "qualified_id": p.qualified_id, "name": p.name,
                                 "definition": p.definition, "phrase": p.phrase} for p in g.primitives]}
                for g in self.groups if g.aspect in names
            ],
        }

    @classmethod
    def from_dict(cls, data: Any) -> "Vocabulary":
        """Build and check a vocabulary; any structural problem raises InputError naming the field."""
        if not isinstance(data, Mapping):
            raise InputError("expected a JSON object", "vocabulary")
        version = data.get("version", 1)
        if not isinstance(version, int) or isinstance(version, bool):
            raise InputError(f"expected an integer, got {version!r}", "vocabulary.version")
        aspects = read_aspects(data.get("aspects"))
        groups = read_groups(data.get("groups"), {a.name: {s.id for s in a.sub_aspects} for a in aspects})
        return cls(aspects=aspects, groups=groups, version=version)

    @classmethod
    def from_json_file(cls, path: str | Path) -> "Vocabulary":
        path = Path(path)
        if not path.is_file():
            raise InputError(f"no such file: {path}", "vocabulary")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"{path} is not valid UTF-8 JSON ({exc})", "vocabulary") from exc
        return cls.from_dict(data)

    # -- internals ----------------------------------------------------------------------------------
    def _groups_by_id(self) -> dict[str, PrimitiveGroup]:
        return self._by_id

    def _phrase_or_none(self, qualified_id: str) -> str | None:
        try:
            return self.primitive(qualified_id).phrase
        except InputError:
            return None


@lru_cache(maxsize=1)
def _load_packaged() -> Vocabulary:
    text = resources.files("studio.data").joinpath("vocabulary.json").read_text(encoding="utf-8")
    return Vocabulary.from_dict(json.loads(text))


def load_vocabulary(path: str | Path | None = None) -> Vocabulary:
    """The packaged CHAI vocabulary (loaded once and cached), or a vocabulary file at `path`."""
    return _load_packaged() if path is None else Vocabulary.from_json_file(path)


# Module-level forms of the picker, against the packaged vocabulary.
def apply_primitive(text: str, qualified_id: str, selected: Iterable[str]) -> tuple[str, list[str]]:
    return load_vocabulary().apply_primitive(text, qualified_id, selected)


def remove_primitive(text: str, qualified_id: str, selected: Iterable[str]) -> tuple[str, list[str]]:
    return load_vocabulary().remove_primitive(text, qualified_id, selected)


def validate_primitives(ids: Iterable[str]) -> list[str]:
    return load_vocabulary().validate_primitives(ids)


# -- text helpers -----------------------------------------------------------------------------------

def _text(text: Any) -> str:
    if text is None:
        return ""
    if not isinstance(text, str):
        raise InputError(f"expected text, got {type(text).__name__}", "text")
    return text


def _selected(selected: Iterable[str] | None) -> list[str]:
    if selected is None:
        return []
    if isinstance(selected, str):
        raise InputError("expected a list of primitive ids, got a single string", "selected")
    return list(selected)


def _append_sentence(text: str, sentence: str) -> str:
    body = text.rstrip()
    if not body:
        return sentence
    if not body.endswith(SENTENCE_END):
        body += "."
    return f"{body} {sentence}"


def _remove_phrase(text: str, phrase: str) -> str:
    """Cut the first occurrence of `phrase`, leaving single spacing and the user's line breaks."""
    index = text.find(phrase)
    before = text[:index].rstrip(" \t")
    after = text[index + len(phrase):].lstrip(" \t")
    joiner = " " if before and after and not before.endswith("\n") and not after.startswith("\n") else ""
    return (before + joiner + after).strip()
