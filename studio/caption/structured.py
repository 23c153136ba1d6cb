"""The structured caption: five aspect texts plus what the studio knows about each.

Every capability passes this object around: the captioner fills it, the user edits it, the CHAI
critique/revise loop appends to each aspect's history, the reward model scores it and the composer
turns it into one prompt. It serialises to JSON with a schema version, and imports the two other
shapes people already have: a CHAI annotation record (`input_captions` keyed by aspect) and a
plain `{aspect: text}` mapping.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

from ..errors import InputError

ASPECTS: tuple[str, ...] = ("Subject", "Scene", "Motion", "Spatial", "Camera")
SCHEMA = "chai-studio/structured-caption"
SCHEMA_VERSION = 1
MAX_ASPECT_CHARS = 6000  # ~1000 words: far beyond any real aspect caption, small enough to be safe.
MAX_FILE_BYTES = 5_000_000
MAX_HISTORY = 200
MAX_TEMPLATE_CHARS = 20_000  # a recorded instruction: CHAI's longest policy texts are ~5,000


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class Revision:
    """One step of the CHAI loop: `before` was critiqued, and `after` is the text that replaced it.

    `source` says what wrote `after`: "user" (a hand edit), "primitive" (a picker inserted a
    phrase), "model" (the captioner: a caption, or a revision from a critique that a person or the
    model wrote), "preset" or "import", so the history reads as an audit trail of human and model
    oversight. Undo removes the last entry and restores its `before`.
    """

    before: str
    critique: str
    after: str
    source: str = "user"
    created: str = field(default_factory=_now)


@dataclass
class AspectCaption:
    text: str = ""
    primitives: list[str] = field(default_factory=list)  # ids "group_id.primitive_id" from the vocabulary
    history: list[Revision] = field(default_factory=list)
    reward: float | None = None  # P(Yes) from the captioner's yes/no judgement of `text`, 0..1
    reward_text: str | None = None  # the text the reward was computed for; stale when it differs

    @property
    def reward_is_current(self) -> bool:
        return self.reward is not None and self.reward_text == self.text


@dataclass
class Provenance:
    clip: str | None = None
    start: float | None = None  # seconds into the clip
    end: float | None = None
    models: dict[str, str] = field(default_factory=dict)  # role ("captioner", ...) -> id or path
    source: str = "manual"  # "captioner", "chai-record", "preset", "plain", "manual"
    created: str = field(default_factory=_now)
    # The captioner's prompt pack ({"name", "version", "sha256"}) and, per aspect, the exact
    # instruction sent with the video: enough to reproduce and audit a model-written caption.
    prompt_pack: dict[str, str] = field(default_factory=dict)
    instructions: dict[str, str] = field(default_factory=dict)


@dataclass
class StructuredCaption:
    aspects: dict[str, AspectCaption] = field(default_factory=lambda: {a: AspectCaption() for a in ASPECTS})
    provenance: Provenance = field(default_factory=Provenance)
    title: str = ""

    # -- access ---------------------------------------------------------------------------------
    def __getitem__(self, aspect: str) -> AspectCaption:
        return self.aspects[aspect_name(aspect)]

    def texts(self) -> dict[str, str]:
        return {a: self.aspects[a].text for a in ASPECTS}

    def is_empty(self) -> bool:
        return not any(self.aspects[a].text.strip() for a in ASPECTS)

    def set_text(self, aspect: str, text: str, max_chars: int = MAX_ASPECT_CHARS) -> None:
        aspect = aspect_name(aspect)
        self.aspects[aspect].text = _check_text(text, f"aspects.{aspect}.text", max_chars)

    def record_revision(self, aspect: str, critique: str, after: str, source: str = "user") -> None:
        """Apply a revision and keep what it replaced, so it can be undone."""
        aspect = aspect_name(aspect)
        entry = self.aspects[aspect]
        after = _check_text(after, f"aspects.{aspect}.text", MAX_ASPECT_CHARS)
        entry.history.append(Revision(before=entry.text, critique=critique, after=after, source=source))
        del entry.history[:-MAX_HISTORY]
        entry.text = after

    def undo(self, aspect: str) -> bool:
        """Restore the text before the last revision. Returns False when there is nothing to undo."""
        entry = self.aspects[aspect_name(aspect)]
        if not entry.history:
            return False
        entry.text = entry.history.pop().before
        return True

    # -- serialisation --------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "schema_version": SCHEMA_VERSION,
            "title": self.title,
            "aspects": {
                a: {
                    "text": e.text,
                    "primitives": list(e.primitives),
                    "reward": e.reward,
                    "reward_text": e.reward_text,
                    "history": [vars(r).copy() for r in e.history],
                }
                for a, e in self.aspects.items()
            },
            "provenance": vars(self.provenance).copy(),
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_json() + "\n", encoding="utf-8")
        return path

    def copy(self) -> "StructuredCaption":
        return StructuredCaption.from_dict(self.to_dict())

    @classmethod
    def from_dict(cls, data: Any, max_chars: int = MAX_ASPECT_CHARS) -> "StructuredCaption":
        """Build from any supported shape: our schema, a CHAI record or a plain {aspect: text} dict."""
        if not isinstance(data, Mapping):
            raise InputError(f"expected a JSON object, got {_type_name(data)}", "caption")
        if "schema" in data or "schema_version" in data:
            return cls._from_schema(data, max_chars)
        if "input_captions" in data:
            return cls.from_chai_record(data, max_chars)
        return cls.from_plain(data, max_chars)

    @classmethod
    def from_plain(cls, data: Mapping[str, Any], max_chars: int = MAX_ASPECT_CHARS,
                   source: str = "plain", where: str = "") -> "StructuredCaption":
        texts = _aspect_texts(data, where, max_chars)
        caption = cls(provenance=Provenance(source=source))
        for aspect, text in texts.items():
            caption.aspects[aspect].text = text
        return caption

    @classmethod
    def from_chai_record(cls, record: Mapping[str, Any], max_chars: int = MAX_ASPECT_CHARS) -> "StructuredCaption":
        captions = record.get("input_captions")
        if not isinstance(captions, Mapping):
            raise InputError(f"expected an object keyed by aspect, got {_type_name(captions)}", "input_captions")
        caption = cls.from_plain(captions, max_chars, source="chai-record", where="input_captions.")
        video = record.get("video_id")
        caption.provenance.clip = str(video) if video is not None else None
        caption.title = str(video or "")
        return caption

    @classmethod
    def _from_schema(cls, data: Mapping[str, Any], max_chars: int) -> "StructuredCaption":
        if data.get("schema", SCHEMA) != SCHEMA:
            raise InputError(f"unknown schema {data.get('schema')!r}, expected {SCHEMA!r}", "schema")
        version = data.get("schema_version", SCHEMA_VERSION)
        if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= SCHEMA_VERSION:
            raise InputError(
                f"unsupported version {version!r}; this studio reads versions 1 to {SCHEMA_VERSION}",
                "schema_version",
            )
        aspects = data.get("aspects", {})
        if not isinstance(aspects, Mapping):
            raise InputError(f"expected an object keyed by aspect, got {_type_name(aspects)}", "aspects")
        _reject_unknown_aspects(aspects, "aspects.")
        caption = cls(title=_optional_str(data.get("title"), "title") or "")
        for key, value in aspects.items():
            aspect, where = aspect_name(key), f"aspects.{key}"
            if isinstance(value, str):  # shorthand: {"aspects": {"Camera": "text"}}
                value = {"text": value}
            if not isinstance(value, Mapping):
                raise InputError(f"expected an object or a string, got {_type_name(value)}", where)
            caption.aspects[aspect] = _aspect_from_dict(value, where, max_chars)
        provenance = data.get("provenance", {})
        if not isinstance(provenance, Mapping):
            raise InputError(f"expected an object, got {_type_name(provenance)}", "provenance")
        caption.provenance = _provenance_from_dict(provenance)
        return caption

    @classmethod
    def from_json(cls, text: str | bytes, max_chars: int = MAX_ASPECT_CHARS) -> "StructuredCaption":
        if len(text) > MAX_FILE_BYTES:
            raise InputError(f"file is {len(text)} bytes; the limit is {MAX_FILE_BYTES}", "caption")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})", "caption") from exc
        except UnicodeDecodeError as exc:
            raise InputError("not UTF-8 text", "caption") from exc
        except RecursionError:  # e.g. [[[[…]]]] thousands deep: refused, not a crash
            # `from None` here and below on purpose: the chain would be thousands of recursive frames.
            raise InputError("the JSON is nested too deeply to be a caption", "caption") from None
        try:
            return cls.from_dict(data, max_chars)
        except RecursionError:
            raise InputError("the JSON is nested too deeply to be a caption", "caption") from None

    @classmethod
    def load(cls, path: str | Path, max_chars: int = MAX_ASPECT_CHARS) -> "StructuredCaption":
        path = Path(path)
        if not path.is_file():
            raise InputError(f"no such file: {path}", "caption")
        if path.stat().st_size > MAX_FILE_BYTES:
            raise InputError(f"{path} is {path.stat().st_size} bytes; the limit is {MAX_FILE_BYTES}", "caption")
        try:
            return cls.from_json(path.read_bytes(), max_chars)
        except InputError as exc:
            raise InputError(f"{path}: {exc}") from exc


# -- validation helpers ---------------------------------------------------------------------------

_ASPECT_LOOKUP = {a.lower(): a for a in ASPECTS}


def aspect_name(key: Any) -> str:
    """The canonical aspect name for `key` in any letter case; InputError for anything else."""
    name = _ASPECT_LOOKUP.get(str(key).strip().lower()) if isinstance(key, str) else None
    if name is None:
        raise InputError(f"unknown aspect {key!r}; the aspects are {', '.join(ASPECTS)}", "aspect")
    return name


def _reject_unknown_aspects(data: Mapping[str, Any], where: str) -> None:
    for key in data:
        if not isinstance(key, str) or key.strip().lower() not in _ASPECT_LOOKUP:
            raise InputError(f"unknown aspect {key!r}; the aspects are {', '.join(ASPECTS)}", f"{where}{key}")


def _aspect_texts(data: Mapping[str, Any], where: str, max_chars: int) -> dict[str, str]:
    _reject_unknown_aspects(data, where)
    texts = {aspect_name(k): _check_text(v, f"{where}{k}", max_chars) for k, v in data.items()}
    if not any(t.strip() for t in texts.values()):
        raise InputError(f"no aspect text found; expected keys among {', '.join(ASPECTS)}", where.rstrip(".") or "caption")
    return texts


def _check_text(value: Any, where: str, max_chars: int) -> str:
    if not isinstance(value, str):
        raise InputError(f"expected text, got {_type_name(value)}", where)
    if len(value) > max_chars:
        raise InputError(f"text is {len(value)} characters; the limit is {max_chars}", where)
    if "\x00" in value:
        raise InputError("text contains a NUL character", where)
    return value.strip()


def _optional_str(value: Any, where: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise InputError(f"expected text, got {_type_name(value)}", where)


def _optional_float(value: Any, where: str, low: float | None = None, high: float | None = None) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputError(f"expected a number, got {value!r}", where)
    if (low is not None and value < low) or (high is not None and value > high):
        raise InputError(f"must be between {low} and {high}, got {value}", where)
    return float(value)


def _aspect_from_dict(value: Mapping[str, Any], where: str, max_chars: int) -> AspectCaption:
    unknown = set(value) - {"text", "primitives", "reward", "reward_text", "history"}
    if unknown:
        raise InputError(f"unknown field(s) {', '.join(sorted(unknown))}", where)
    primitives = value.get("primitives", [])
    if not isinstance(primitives, list) or not all(isinstance(p, str) for p in primitives):
        raise InputError("expected a list of primitive ids", f"{where}.primitives")
    history = value.get("history", [])
    if not isinstance(history, list):
        raise InputError(f"expected a list, got {_type_name(history)}", f"{where}.history")
    revisions = []
    for i, item in enumerate(history[-MAX_HISTORY:]):
        item_where = f"{where}.history[{i}]"
        if not isinstance(item, Mapping):
            raise InputError(f"expected an object, got {_type_name(item)}", item_where)
        revisions.append(Revision(
            before=_check_text(item.get("before", ""), f"{item_where}.before", max_chars),
            critique=_check_text(item.get("critique", ""), f"{item_where}.critique", max_chars),
            after=_check_text(item.get("after", ""), f"{item_where}.after", max_chars),
            source=_optional_str(item.get("source"), f"{item_where}.source") or "user",
            created=_optional_str(item.get("created"), f"{item_where}.created") or _now(),
        ))
    return AspectCaption(
        text=_check_text(value.get("text", ""), f"{where}.text", max_chars),
        primitives=list(primitives),
        history=revisions,
        reward=_optional_float(value.get("reward"), f"{where}.reward", 0.0, 1.0),
        reward_text=_optional_str(value.get("reward_text"), f"{where}.reward_text"),
    )


def _provenance_from_dict(data: Mapping[str, Any]) -> Provenance:
    models = data.get("models", {})
    if not isinstance(models, Mapping) or not all(isinstance(v, str) for v in models.values()):
        raise InputError("expected an object of role -> model id", "provenance.models")
    pack = data.get("prompt_pack", {})
    if not isinstance(pack, Mapping) or not all(isinstance(v, str) for v in pack.values()):
        raise InputError("expected an object of name, version and sha256", "provenance.prompt_pack")
    instructions = data.get("instructions", {})
    if not isinstance(instructions, Mapping):
        raise InputError(f"expected an object keyed by aspect, got {_type_name(instructions)}", "provenance.instructions")
    _reject_unknown_aspects(instructions, "provenance.instructions.")
    instructions = {aspect_name(k): _check_text(v, f"provenance.instructions.{k}", MAX_TEMPLATE_CHARS)
                    for k, v in instructions.items()}
    start = _optional_float(data.get("start"), "provenance.start", 0.0)
    end = _optional_float(data.get("end"), "provenance.end", 0.0)
    if start is not None and end is not None and end <= start:
        raise InputError(f"end ({end}) must be after start ({start})", "provenance.end")
    return Provenance(
        clip=_optional_str(data.get("clip"), "provenance.clip"),
        start=start,
        end=end,
        models=dict(models),
        source=_optional_str(data.get("source"), "provenance.source") or "manual",
        created=_optional_str(data.get("created"), "provenance.created") or _now(),
        prompt_pack=dict(pack),
        instructions=instructions,
    )


def _type_name(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "text", int: "a number", float: "a number",
            bool: "true/false", type(None): "null"}.get(type(value), type(value).__name__)
