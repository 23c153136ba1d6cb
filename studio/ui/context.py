"""What every section of the page shares: the session, the model queue, per-visitor state, and the
two wrappers every handler goes through (errors shown in place; model steps take turns).

Each section of the page is a class that owns its components; its handlers are named methods
taking `{component: value}` and returning `{component: update}`. A failure never reaches Gradio as an
exception on the page: `shows_errors` turns it into a line in the status box of the section that
asked. The script API (`ui/api.py`) raises instead, so a client sees the call fail.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import inspect
import logging
import shutil
import tempfile
import threading
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import gradio as gr

from ..config import StudioConfig
from ..errors import StudioError
from ..session import Session, SharedModels
from .admission import ModelQueue, QueueFull, SessionRuns, history_mode
from .formatting import error_line, error_message

log = logging.getLogger("studio.ui")

GPU_QUEUE = "gpu"  # every event that runs a model shares one queue slot (one GPU)
COMPOSE_QUEUE = "compose"  # model-free steps never wait behind the model
COMPOSE_CONCURRENCY = 16


@dataclass
class PageContext:
    config: StudioConfig
    session: Session
    per_session_history: bool
    work_dir: Path
    model_queue: ModelQueue
    model_lock: threading.Lock = field(default_factory=threading.Lock)
    session_runs: SessionRuns = field(default_factory=SessionRuns)
    cancels: dict[str, threading.Event] = field(default_factory=dict)

    @classmethod
    def create(cls, config: StudioConfig, session: Session | None = None, public: bool = False) -> PageContext:
        # Exports and still frames are written here; Gradio copies what it serves into its own cache.
        work_dir = Path(tempfile.mkdtemp(prefix="chai-studio-ui-"))
        atexit.register(shutil.rmtree, work_dir, ignore_errors=True)
        return cls(config, session or Session(config, SharedModels(config)),
                   history_mode(config, public) == "session", work_dir,
                   ModelQueue(config.queue_size, config.session_jobs))

    @contextlib.contextmanager
    def cancellable(self, request: Any) -> Iterator[threading.Event]:
        """The visitor's cancel switch for one run, found by `cancel_run`. It is set when the block is
        left by an exception: a failure, or the client going away (Gradio closes the stream), so
        the model stops at its next step instead of running on for nobody."""
        session, cancel = session_id(request), threading.Event()
        self.cancels[session] = cancel
        try:
            yield cancel
        except BaseException:
            cancel.set()
            raise
        finally:
            if self.cancels.get(session) is cancel:
                self.cancels.pop(session, None)

    def cancel_run(self, request: Any) -> str:
        """Cancel this visitor's run (it stops after the current step)."""
        cancel = self.cancels.get(session_id(request))
        if cancel is None:
            return "Nothing is generating."
        cancel.set()
        return "Cancelling: the run stops after the current step."

    def runs_of(self, request: Any) -> list[str] | None:
        """The run ids this visitor may see: theirs with per-session history, else all (None)."""
        return self.session_runs.of(owner(request)) if self.per_session_history else None


def session_id(request: Any) -> str:
    return getattr(request, "session_hash", None) or "api"


def owner(request: Any) -> str:
    """Whose runs these are: the signed-in user (with --auth), else the browser session."""
    username = getattr(request, "username", None)
    return f"user:{username}" if username else session_id(request)


def log_failure(exc: BaseException) -> None:
    if isinstance(exc, StudioError):
        log.warning("step refused: %s", exc, exc_info=exc.__cause__ is not None)
    else:
        log.error("step failed:\n%s", "".join(traceback.format_exception(exc)))


def shows_errors(fn: Callable | None = None, *, status: str = "status") -> Callable:
    """A section's handler (a method) whose failure becomes `⚠ message` in the section's status box
    (the attribute named `status`), beside the button that ran it. A streaming handler's earlier
    updates stay; the rest of the page keeps its values, so no work is lost."""
    if fn is None:
        return functools.partial(shows_errors, status=status)

    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def stream(section: Any, *args: Any, **kwargs: Any):
            try:
                yield from fn(section, *args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - the page must survive any failure of one step
                log_failure(exc)
                yield {getattr(section, status): error_line(exc)}
        return stream

    @functools.wraps(fn)
    def call(section: Any, *args: Any, **kwargs: Any):
        try:
            return fn(section, *args, **kwargs)
        except Exception as exc:  # noqa: BLE001
            log_failure(exc)
            return {getattr(section, status): error_line(exc)}
    return call


def raises_errors(fn: Callable) -> Callable:
    """For the script API: a failure is a gr.Error with the clear message (the log has the cause)."""
    def fail(exc: Exception):
        log_failure(exc)
        raise gr.Error(error_message(exc), duration=None, print_exception=False) from None

    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def stream(*args: Any, **kwargs: Any):
            try:
                yield from fn(*args, **kwargs)
            except gr.Error:
                raise
            except Exception as exc:  # noqa: BLE001
                fail(exc)
        return stream

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except Exception as exc:  # noqa: BLE001
            fail(exc)
    return call


def takes_turns(ctx: PageContext, fn: Callable) -> Callable:
    """A model step holds the model lock for its whole run (all of a stream), so the LLM merge (which
    runs outside the model queue) takes turns with it."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def stream(*args: Any, **kwargs: Any):
            with ctx.model_lock:
                yield from fn(*args, **kwargs)
        return stream

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any):
        with ctx.model_lock:
            return fn(*args, **kwargs)
    return call


class QueueInternalsMoved(StudioError):
    """This Gradio's queue no longer has the shape the per-visitor cap reads; the page must not start."""


def check_queue_internals(blocks: gr.Blocks) -> None:
    """Refuse to serve when Gradio's queue has moved from under `_model_queue_view`.

    Gradio's public API caps a queue as a whole (`queue(max_size=...)`, `concurrency_limit`) but
    tells nobody which session a queued job belongs to, so the per-visitor cap (--session-jobs)
    reads the queue's own fields. A Gradio upgrade that moves them must stop the start-up with
    this message, never quietly lift the cap. Called once the page is built and queued."""
    from gradio import queueing

    queue = getattr(blocks, "_queue", None)
    model_fns = [fn for fn in blocks.fns.values() if fn.concurrency_id == GPU_QUEUE]
    missing = []
    if queue is None:
        missing.append("Blocks._queue")
    else:
        if not isinstance(getattr(queue, "event_queue_per_concurrency_id", None), dict):
            missing.append("Queue.event_queue_per_concurrency_id")
        if not isinstance(getattr(queue, "active_jobs", None), list):
            missing.append("Queue.active_jobs")
    try:
        if not isinstance(getattr(queueing.EventQueue(GPU_QUEUE, 1), "queue", None), list):
            missing.append("EventQueue.queue")
        if model_fns:
            probe = queueing.Event("probe", model_fns[0], None, None)  # type: ignore[arg-type]
            missing += [f"Event.{name}" for name in ("_id", "session_hash", "concurrency_id")
                        if not hasattr(probe, name)]
    except (AttributeError, TypeError) as exc:
        missing.append(f"queueing.Event/EventQueue ({exc})")
    if missing:
        raise QueueInternalsMoved(
            f"Gradio {gr.__version__} moved the queue fields the per-visitor model-job cap (--session-jobs) reads "
            f"({', '.join(missing)}); install the Gradio version pinned in constraints.txt")


def _model_queue_view(blocks: gr.Blocks, session: str) -> tuple[int, set[str]]:
    """(jobs waiting for the model, ids of this session's model jobs queued or running), read from
    Gradio's queue; `check_queue_internals` proved at start-up that these fields exist."""
    queue = blocks._queue
    waiting = list(getattr(queue.event_queue_per_concurrency_id.get(GPU_QUEUE), "queue", []))
    running = [event for jobs in queue.active_jobs if jobs for event in jobs if event.concurrency_id == GPU_QUEUE]
    return len(waiting), {event._id for event in waiting + running if event.session_hash == session}


def model_job(ctx: PageContext, blocks: gr.Blocks) -> dict[str, Any]:
    """Event options of a step that runs a model: one queue slot; admission checked on joining."""
    def admit(request: gr.Request, *values: Any):
        session = session_id(request)
        try:
            ctx.model_queue.admit(session, *_model_queue_view(blocks, session))
        except QueueFull as exc:
            log.warning("refused a model job of session %s: %s", session, exc)
            raise gr.Error(str(exc), print_exception=False) from None
        # One verdict per input: a section's handler takes its inputs as one {component: value} dict.
        if len(values) == 1 and isinstance(values[0], dict) and all(isinstance(k, gr.blocks.Block)
                                                                    for k in values[0]):
            values = tuple(values[0])
        return [gr.validate(True, "")] * len(values)

    return dict(concurrency_id=GPU_QUEUE, concurrency_limit=1, validator=admit)


def compose_job() -> dict[str, Any]:
    return dict(concurrency_id=COMPOSE_QUEUE, concurrency_limit=COMPOSE_CONCURRENCY)


def model_started(ctx: PageContext, request: Any) -> None:
    """A model job of this visitor began to run (admission stops counting it as pending)."""
    ctx.model_queue.started(session_id(request))
