"""What a long step reports while it runs, and the thread that carries it to the caller.

Steps that run a model are generators of these small frozen objects. The page turns each into
component updates, the command line into stderr lines, and tests iterate them to the end. The
model calls back from inside `generate`, in the worker's thread; `Worker` moves those callbacks to
the caller's thread through a queue, so a Gradio event can stream them.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from PIL import Image


@dataclass(frozen=True)
class Status:
    """A sentence about where the step is ("Loading the captioner…")."""

    message: str


@dataclass(frozen=True)
class CaptionText:
    """The caption as written so far, every aspect (streamed while the captioner writes)."""

    texts: dict[str, str]
    message: str = ""


@dataclass(frozen=True)
class Plan:
    """The sides a generation will render, left first, as (key, label), and the order they run in
    (empty: all at once, one GPU each)."""

    mode: str
    sides: tuple[tuple[str, str], ...]
    order: tuple[str, ...]
    seed: int


@dataclass(frozen=True)
class SideStep:
    """One denoising step of one side of a comparison (`side` is the side's key)."""

    side: str
    label: str
    step: int
    total: int
    eta_s: float | None = None
    preview: Image.Image | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Done:
    """The step's result and a sentence that says what happened."""

    result: Any
    message: str


Event = Status | CaptionText | Plan | SideStep | Done


class Worker:
    """Runs `job(report)` in a daemon thread; iterating yields what the job reports, in the caller's
    thread. After the loop `result` holds what the job returned; an exception it raised is raised
    again in the caller's thread."""

    _DONE = object()

    def __init__(self, name: str, job: Callable[[Callable[[Any], None]], Any]) -> None:
        self._updates: queue.Queue = queue.Queue()
        self._job, self._error, self.result = job, None, None
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    def _work(self) -> None:
        try:
            self.result = self._job(self._updates.put)
        except BaseException as exc:  # noqa: BLE001 - raised again in the caller's thread
            self._error = exc
        finally:
            self._updates.put(self._DONE)

    def __iter__(self) -> Iterator[Any]:
        while (item := self._updates.get()) is not self._DONE:
            yield item
        self._thread.join()
        if self._error is not None:
            raise self._error
