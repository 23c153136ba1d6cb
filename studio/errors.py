"""User-facing errors.

Anything a person can cause (a bad file, a bad setting, a model that cannot be loaded) is raised
as a `StudioError` whose message says what was wrong and what to change. The CLI prints it
without a traceback; the UI shows it in place without discarding the user's work.
"""


class StudioError(Exception):
    """An error caused by input or configuration, with a message meant for the user."""


class InputError(StudioError, ValueError):
    """Bad user input: a file, a field or a value. `field` names what was wrong when known."""

    def __init__(self, message: str, field: str | None = None):
        self.field = field
        super().__init__(f"{field}: {message}" if field else message)


class ModelLoadError(StudioError, RuntimeError):
    """A model could not be loaded; the message names the setting that selects it."""
