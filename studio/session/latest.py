"""Which of a visitor's overlapping requests still counts: the newest one.

The prompt box has three writers that take very different times: Compose and Fit answer at once,
the LLM merge runs the captioner for seconds or minutes. Without a rule, whichever finishes last
writes the box, so a merge pressed before a Fit overwrites the Fit. Here every request takes a
ticket when it starts; a result whose ticket is no longer the newest is dropped.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Hashable

# Tickets are kept for this many visitors (the oldest forgotten first); a forgotten visitor's
# late result is dropped, which is the safe side of the rule.
MAX_VISITORS = 4096


class LatestRequests:
    """Per-visitor request counter: `begin` a request, then ask `is_latest` before showing its result."""

    def __init__(self, max_visitors: int = MAX_VISITORS) -> None:
        self.max_visitors = max_visitors
        self._newest: OrderedDict[Hashable, int] = OrderedDict()
        self._lock = threading.Lock()

    def begin(self, visitor: Hashable) -> int:
        """A new request of `visitor`; every earlier one of theirs is stale from now on."""
        with self._lock:
            ticket = self._newest.pop(visitor, 0) + 1
            self._newest[visitor] = ticket
            while len(self._newest) > self.max_visitors:
                self._newest.popitem(last=False)
            return ticket

    def is_latest(self, visitor: Hashable, ticket: int) -> bool:
        with self._lock:
            return self._newest.get(visitor) == ticket
