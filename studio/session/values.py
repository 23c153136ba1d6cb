"""Reading one value from a visitor or a script: numbers, text and files, with messages that name
the field and the kind of value received (never a Python repr)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping

from ..errors import InputError


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


def number(value: Any, field: str, low: float | None = None, high: float | None = None) -> float:
    """A finite number (or numeric text), optionally in [low, high]."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise InputError(f"expected a number, got {kind_of(value)}", field)
    try:
        result = float(value)
    except ValueError:
        raise InputError(f"expected a number, got text {one_line(value, 30)!r}", field) from None
    if not math.isfinite(result):
        raise InputError("expected a finite number", field)
    if (low is not None and result < low) or (high is not None and result > high):
        if high is None:
            raise InputError(f"must be {low:g} or more, got {result:g}", field)
        if low is None:
            raise InputError(f"must be {high:g} or less, got {result:g}", field)
        raise InputError(f"must be between {low:g} and {high:g}, got {result:g}", field)
    return result


def whole(value: Any, field: str, low: int, high: int) -> int:
    result = number(value, field, low, high)
    if result != int(result):
        raise InputError(f"must be a whole number, got {result:g}", field)
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
