"""Who may wait for the model, and who sees which runs: plain rules the page applies.

`ModelQueue.admit` runs when a model job asks to join the queue (before it waits): it refuses
with a clear message when the model's queue is full or when the visitor already has their share
of jobs queued or running. `history_mode` decides whether the run gallery is shared by everyone
or kept per visitor session (the default on a public server).
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict, deque
from typing import Callable, Iterable

from ..config import StudioConfig
from ..errors import StudioError

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
ADMISSION_GRACE_SECONDS = 3.0  # an admitted job reaches Gradio's queue within milliseconds
MAX_TRACKED_SESSIONS = 10000


class QueueFull(StudioError):
    """The model's queue, or this visitor's share of it, is full; nothing was queued."""


class ModelQueue:
    """Caps on the model queue: `queue_size` jobs waiting in all, `session_jobs` per visitor.

    The queue itself belongs to Gradio; `admit` is given what it holds (how many jobs wait, and
    the ids of this session's queued or running jobs). A job admitted but not yet seen there is
    counted too, until it is seen, starts (`started`) or a few seconds pass, so a burst of
    requests from one client cannot all slip in before the first of them is queued.
    """

    def __init__(self, queue_size: int, session_jobs: int, clock: Callable[[], float] = time.monotonic):
        self.queue_size, self.session_jobs, self._clock = queue_size, session_jobs, clock
        self._lock = threading.Lock()
        self._admitted: OrderedDict[str, deque[float]] = OrderedDict()
        self._seen: dict[str, set[str]] = {}

    def admit(self, session: str, waiting: int, session_events: Iterable[str]) -> None:
        events = set(session_events)
        with self._lock:
            now = self._clock()
            pending = self._admitted.setdefault(session, deque())
            self._admitted.move_to_end(session)
            for _ in events - self._seen.get(session, set()):
                if pending:
                    pending.popleft()  # one admitted job has reached the queue
            while pending and now - pending[0] > ADMISSION_GRACE_SECONDS:
                pending.popleft()  # admitted but never queued (the client went away)
            self._seen[session] = events
            if waiting + len(pending) >= self.queue_size:
                raise QueueFull(f"the model queue is full ({waiting} jobs waiting, the limit is {self.queue_size}); "
                                "try again in a few minutes. Editing and composing still work meanwhile")
            mine = len(events) + len(pending)
            if mine >= self.session_jobs:
                raise QueueFull(f"you already have {mine} model job(s) queued or running, the most one visitor may "
                                f"have is {self.session_jobs}; wait for one to finish or cancel it")
            pending.append(now)
            while len(self._admitted) > MAX_TRACKED_SESSIONS:
                old, _ = self._admitted.popitem(last=False)
                self._seen.pop(old, None)

    def started(self, session: str) -> None:
        """A job of `session` began to run: it no longer needs counting as admitted-but-unseen."""
        with self._lock:
            pending = self._admitted.get(session)
            if pending:
                pending.popleft()


def is_public(host: str | None, share: bool = False, environ=os.environ) -> bool:
    """A page others can reach: bound beyond loopback, shared through a gradio.live link, or on a
    Hugging Face Space (which sets SPACE_ID)."""
    loopback = host in LOOPBACK_HOSTS or str(host or "").startswith("127.")
    return share or not loopback or bool(environ.get("SPACE_ID"))


def history_mode(config: StudioConfig, public: bool) -> str:
    """'session' (each visitor sees only their own runs) or 'shared' (everyone sees every run)."""
    if config.history != "auto":
        return config.history
    return "session" if public else "shared"


class SessionRuns:
    """The run ids each visitor session made (for per-session history), a bounded number of sessions."""

    def __init__(self, max_sessions: int = MAX_TRACKED_SESSIONS):
        self._runs: OrderedDict[str, list[str]] = OrderedDict()
        self._max = max_sessions
        self._lock = threading.Lock()

    def add(self, session: str, run_id: str) -> None:
        with self._lock:
            self._runs.setdefault(session, []).append(run_id)
            self._runs.move_to_end(session)
            while len(self._runs) > self._max:
                self._runs.popitem(last=False)

    def of(self, session: str) -> list[str]:
        with self._lock:
            return list(self._runs.get(session, []))
