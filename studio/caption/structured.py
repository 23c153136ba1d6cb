"""The structured caption: five aspect texts plus what the studio knows about each.

Every capability passes this object around: the captioner fills it, the user edits it, the CHAI
critique/revise loop appends to each aspect's history, the reward model scores it and the composer
turns it into one prompt. It serialises to JSON with a schema version, and imports the two other
shapes people already have: a CHAI annotation record (`input_captions` keyed by aspect) and a
plain `{aspect: text}` mapping.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

from .. import values
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
        from .. import schemas

        def unknown(where: str, names: list[str]) -> InputError:
            return InputError(f"unknown field(s) {', '.join(names)}", where or "caption", "unknown-key")

        record = schemas.read(schemas.CaptionFile, data, "caption", unknown=unknown, by_path=True)
        if (record.schema_name or SCHEMA) != SCHEMA:
            raise InputError(f"unknown schema {record.schema_name!r}, expected {SCHEMA!r}", "schema")
        version = SCHEMA_VERSION if record.schema_version is None else record.schema_version
        if not 1 <= version <= SCHEMA_VERSION:
            raise InputError(f"unsupported version {version!r}; this studio reads versions 1 to {SCHEMA_VERSION}",
                             "schema_version")
        _reject_unknown_aspects(record.aspects, "aspects.")
        caption = cls(title=record.title or "")
        for key, value in record.aspects.items():
            aspect, where = aspect_name(key), f"aspects.{key}"
            if isinstance(value, str):  # shorthand: {"aspects": {"Camera": "text"}}
                value = schemas.AspectRecord(text=value)
            caption.aspects[aspect] = _aspect_from_record(value, where, max_chars)
        caption.provenance = _provenance_from_record(record.provenance)
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


def _aspect_from_record(value: Any, where: str, max_chars: int) -> AspectCaption:
    """An aspect of a caption file, its shape already checked (`schemas.AspectRecord`)."""
    return AspectCaption(
        text=_check_text(value.text, f"{where}.text", max_chars),
        primitives=list(value.primitives),
        history=[Revision(
            before=_check_text(item.before, f"{where}.history[{i}].before", max_chars),
            critique=_check_text(item.critique, f"{where}.history[{i}].critique", max_chars),
            after=_check_text(item.after, f"{where}.history[{i}].after", max_chars),
            source=item.source or "user", created=item.created or _now(),
        ) for i, item in enumerate(value.history)][-MAX_HISTORY:],
        reward=None if value.reward is None else values.number(value.reward, f"{where}.reward", 0.0, 1.0),
        reward_text=value.reward_text,
    )


def _provenance_from_record(data: Any) -> Provenance:
    """A caption file's provenance, its shape already checked (`schemas.ProvenanceRecord`)."""
    _reject_unknown_aspects(data.instructions, "provenance.instructions.")
    instructions = {aspect_name(k): _check_text(v, f"provenance.instructions.{k}", MAX_TEMPLATE_CHARS)
                    for k, v in data.instructions.items()}
    start = None if data.start is None else values.number(data.start, "provenance.start", 0.0)
    end = None if data.end is None else values.number(data.end, "provenance.end", 0.0)
    if start is not None and end is not None and end <= start:
        raise InputError(f"end ({end:g}) must be after start ({start:g})", "provenance.end")
    return Provenance(clip=data.clip, start=start, end=end, models=dict(data.models),
                      source=data.source or "manual", created=data.created or _now(),
                      prompt_pack=dict(data.prompt_pack), instructions=instructions)


def _type_name(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "text", int: "a number", float: "a number",
            bool: "true/false", type(None): "null"}.get(type(value), type(value).__name__)
