"""Reading one value from a visitor, a script, a flag or a file: numbers, text and files, with
messages that name the field and the kind of value received (never a Python repr).

The one place the studio decides what counts as a number: the session's requests, the generation
settings, training's options and batch jobs all read their numbers here."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping

from .errors import InputError


def kind_of(value: Any) -> str:
    """A value's JSON kind for a message."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, (list, tuple)):
        return "a list"
    return "a value of another kind"


def one_line(text: str, limit: int) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def number(value: Any, field: str, low: float | None = None, high: float | None = None, *,
           say_text: bool = True) -> float:
    """A finite number (or numeric text), optionally in [low, high]: the studio's one rule for
    numbers, whoever sent them. true/false is not a number, and numeric text is plain ASCII
    (Python's float() would read '１２' or '1_000', which no person meant as a setting).

    `say_text=False` quotes refused text without naming its kind, for fields that only ever come
    as text (command-line flags and the page's boxes), where "text" would say nothing."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise InputError(f"expected a number, got {kind_of(value)}", field, "not-a-number")
    if isinstance(value, str):
        written = value.strip()
        shown = f"{'text ' if say_text else ''}{one_line(value, 30)!r}"
        if not written.isascii() or "_" in written:
            raise InputError(f"expected a number written with the digits 0-9, got {shown}", field, "not-a-number")
        try:
            value = float(written)
        except ValueError:
            raise InputError(f"expected a number, got {shown}", field, "not-a-number") from None
    try:
        result = float(value)
    except OverflowError:  # an integer too large for a float is no finite setting either
        result = math.inf
    if not math.isfinite(result):
        raise InputError(f"expected a finite number, got {result:g}", field, "not-finite")
    if (low is not None and result < low) or (high is not None and result > high):
        if high is None:
            raise InputError(f"must be {low:g} or more, got {result:g}", field, "out-of-range")
        if low is None:
            raise InputError(f"must be {high:g} or less, got {result:g}", field, "out-of-range")
        raise InputError(f"must be between {low:g} and {high:g}, got {result:g}", field, "out-of-range")
    return result


def whole(value: Any, field: str, low: int | None = None, high: int | None = None, *, say_text: bool = True) -> int:
    """A whole number by the same rule: 2.0 and "2" are 2; 2.5 and "2.5" are refused, never rounded."""
    result = number(value, field, low, high, say_text=say_text)
    if result != int(result):
        raise InputError(f"must be a whole number, got {result:g}", field, "not-whole")
    return int(result)


def optional_number(value: Any, field: str, low: float | None = None) -> float | None:
    """None, an empty box or a number (the page's empty Start/End mean "not set")."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return number(value, field, low)


def text(value: Any, field: str, max_chars: int | None = None) -> str:
    """Text (None is empty), at most `max_chars` long."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InputError(f"expected text, got {kind_of(value)}", field)
    if max_chars is not None and len(value) > max_chars:
        raise InputError(f"is {len(value)} characters; the limit is {max_chars}. Shorten it before going on.", field)
    return value


def file_path(value: Any, field: str, what: str) -> Path:
    """An uploaded file's path (a str or Path from Gradio); `what` says what to upload."""
    if not value:
        raise InputError(f"upload {what} first", field)
    if not isinstance(value, (str, Path)):
        raise InputError(f"expected an uploaded file, got {kind_of(value)}", field)
    path = Path(value)
    if not path.is_file():
        # One sentence for both callers: a page upload that was cleaned away, or a mistyped path.
        raise InputError(f"no such file {path.name}; choose {what} that exists", field)
    return path
