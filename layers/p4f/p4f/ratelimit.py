"""A sliding-window limit: at most `limit` requests in any `window` seconds, in one process.

A client without the bridge's tenant-wide budget (`p4f.budget.TenantBudget`: a script, a
test, a benchmark) uses it to stay under the tenant's 60 requests/minute, holding a request
back until the oldest of the last `limit` has left the window, so a burst is paced instead
of answered with 429s. The sandbox uses it to count arriving requests. It knows nothing of
other processes, nor of priorities: every caller is served in turn.
"""

from __future__ import annotations

import math
import threading
import time
from typing import TYPE_CHECKING

from p4f.budget import BudgetExhaustedError, Priority

if TYPE_CHECKING:
    from collections.abc import Callable


class Slot:
    """One request's place in the window, timed from when it was sent."""

    __slots__ = ("_clock", "at")

    def __init__(self, at: float, clock: Callable[[], float]) -> None:
        self.at = at
        self._clock = clock

    def answered(self) -> None:
        """Time the slot from now: the answer is back, so the server has counted it.

        The server counts a request when it arrives, which is after it was sent; timing
        the slot from the answer keeps a window of ours from ever being shorter than the
        server's, however slow the network.
        """
        self.at = self._clock()


class SlidingWindowLimiter:
    """At most `limit` requests in any `window` seconds, for the threads sharing it."""

    def __init__(
        self,
        limit: int = 60,
        window: float = 60.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("the rate limit needs limit >= 1 and window > 0")
        self.limit = limit
        self.window = window
        self._clock = clock
        self._sleep = sleep
        self._slots: list[Slot] = []
        self._blocked_until = 0.0
        self._lock = threading.Lock()

    def try_acquire(self) -> float:
        """Take a slot if one is free and return 0; else return the seconds until one is."""
        return self._take()[1]

    def acquire(
        self, max_wait: float | None = None, priority: Priority = Priority.INTERACTIVE
    ) -> Slot:
        """Wait at most `max_wait` seconds for a free slot and take it; BudgetExhaustedError
        if none comes in time. `priority` is not used: callers are served in turn."""
        deadline = None if max_wait is None else self._clock() + max_wait
        while True:
            slot, wait = self._take()
            if slot is not None:
                return slot
            if deadline is not None and self._clock() + wait > deadline:
                raise BudgetExhaustedError(
                    f"this process's own limit of {self.limit} requests per {self.window:g}s "
                    f"(or the API's last Retry-After) holds the {priority} call back "
                    f"{wait:.1f}s, past its deadline",
                    retry_after=math.ceil(wait),
                )
            self._sleep(wait)

    def block_for(self, seconds: float) -> None:
        """Send nothing for `seconds` (the server said 429: other clients share the budget)."""
        with self._lock:
            self._blocked_until = max(self._blocked_until, self._clock() + seconds)

    def _take(self) -> tuple[Slot | None, float]:
        with self._lock:
            now = self._clock()
            horizon = now - self.window
            # Answers come back out of order, so the slots are not sorted by time.
            self._slots = [slot for slot in self._slots if slot.at > horizon]
            wait = self._blocked_until - now
            if len(self._slots) >= self.limit:
                wait = max(wait, min(slot.at for slot in self._slots) - horizon)
            if wait > 0:
                return None, wait
            slot = Slot(now, self._clock)
            self._slots.append(slot)
            return slot, 0.0
