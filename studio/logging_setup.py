"""What the studio prints besides its own output: quiet by default, everything with `--verbose`.

Left alone, the libraries underneath fill the console: libx264 prints about sixty statistics lines
per encoded video, transformers draws a progress bar per shard it writes and warns that a long
composed prompt exceeds the tokenizer's length (the composer already reports that in its meter),
diffusers draws loading bars. By default the studio keeps their errors and hides the rest; its
own warnings (`warning: ...` on stderr) always show. `--verbose` on `python -m studio` or
`app.py` restores every library's own output.

`configure` runs once at start-up, before any of those libraries is imported: the Hugging Face
libraries read their verbosity from environment variables at import, so nothing heavy is imported
here (the page must still start without torch).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

VERBOSE_HELP = "show the libraries' own logs and progress bars (FFmpeg/x264 statistics, shard writing, warnings)"

# Read by transformers, diffusers and huggingface_hub when they are imported. `setdefault`: a
# value the user exported wins.
QUIET_ENVIRONMENT = {
    "TRANSFORMERS_VERBOSITY": "error",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
    "DIFFUSERS_VERBOSITY": "error",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
}

_state = {"verbose": False}


def add_verbose_flag(parser: argparse.ArgumentParser, default=False) -> None:
    parser.add_argument("--verbose", action="store_true", default=default, help=VERBOSE_HELP)


class _StudioFormatter(logging.Formatter):
    """`warning: message`, the same shape as the CLI's own warning and error lines."""

    def format(self, record: logging.LogRecord) -> str:
        prefix = record.levelname.lower()
        if _state["verbose"] and record.name != "studio":
            prefix += f" [{record.name}]"
        return f"{prefix}: {record.getMessage()}"


def configure(verbose: bool = False) -> None:
    """Set the studio's logging and the libraries' verbosity for this process (and its children)."""
    _state["verbose"] = bool(verbose)
    if not verbose:
        for name, value in QUIET_ENVIRONMENT.items():
            os.environ.setdefault(name, value)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_StudioFormatter())
    studio_log = logging.getLogger("studio")
    studio_log.handlers = [handler]
    studio_log.propagate = False
    studio_log.setLevel(logging.INFO if verbose else logging.WARNING)
    apply_ffmpeg_level()


def apply_ffmpeg_level() -> None:
    """FFmpeg's log output: none, or FFmpeg's own (on stderr) when verbose.

    PyAV starts quiet, but PySceneDetect's PyAV backend puts FFmpeg's default (chatty) log
    callback back every time it opens a video, so shot detection calls this again afterwards.
    Quiet and not yet imported means nothing to undo: PyAV is not imported just for this.
    """
    av_logging = sys.modules.get("av.logging")
    if av_logging is None and not _state["verbose"]:
        return
    import av.logging as av_logging

    if _state["verbose"]:
        av_logging.restore_default_callback()
    else:
        # None is PyAV's own default: FFmpeg's messages are dropped in C. A numeric level would
        # route them through a Python callback, which can deadlock FFmpeg's decoder threads in
        # the threaded web server; FFmpeg's errors still arrive as exceptions.
        av_logging.set_level(None)


def is_verbose() -> bool:
    return _state["verbose"]


def quiet_loaded_libraries() -> None:
    """For commands run in a process where transformers and diffusers are already imported (their
    environment variables are read only at import): the same quiet as `configure`, unless verbose."""
    if _state["verbose"]:
        return
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()
    diffusers_logging.set_verbosity_error()
    transformers_logging.set_verbosity_error()


def log_as_server() -> None:
    """A server's log is its record of what each session did (runs started, refused, abandoned): the
    studio's own notes go to stderr at INFO with timestamps, whatever `--verbose` chose for the
    libraries underneath (which stay quiet unless it is given)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s: %(message)s"))
    studio_log = logging.getLogger("studio")
    studio_log.handlers = [handler]
    studio_log.propagate = False
    studio_log.setLevel(logging.INFO)
