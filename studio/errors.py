"""User-facing errors.

Anything a person can cause (a bad file, a bad setting, a model that cannot be loaded) is raised
as a `StudioError` whose message says what was wrong and what to change. The CLI prints it
without a traceback; the UI shows it in place without discarding the user's work.

Code that reacts to an error (renumbering a shot, filing a dataset skip) reads its `code` and
`field`, never its message: the message is for people and may be reworded at any time.
"""

from __future__ import annotations

from typing import Any


class StudioError(Exception):
    """An error caused by input or configuration, with a message meant for the user."""

    code: str | None = None


class InputError(StudioError, ValueError):
    """Bad user input: a file, a field or a value. `field` names what was wrong when known;
    `code` says which rule refused it (e.g. "not-a-number", "no-such-shot") and `details` holds
    the facts a caller may need to say it again (e.g. a clip's shot count)."""

    def __init__(self, message: str, field: str | None = None, code: str | None = None, **details: Any):
        self.field = field
        self.code = code
        self.details = details
        self.reason = message  # the message without the field in front
        super().__init__(f"{field}: {message}" if field else message)


class ModelLoadError(StudioError, RuntimeError):
    """A model could not be loaded; the message names the setting that selects it."""
