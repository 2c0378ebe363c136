"""A sliding-window limit: at most `limit` requests in any `window` seconds.

The client uses it to keep one client under the tenant's 60 requests/minute, holding a
request back until the oldest of the last `limit` has left the window, so a burst is
paced instead of answered with 429s. The sandbox uses it to count arriving requests.
"""

from __future__ import annotations

import math
import threading
import time
from typing import TYPE_CHECKING

from p4f.errors import RateLimitError

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

    def acquire(self, deadline: float | None = None) -> Slot:
        """Wait for a free slot and take it; raise RateLimitError if it comes after `deadline`.

        `deadline` is a value of the limiter's clock (time.monotonic by default).
        """
        while True:
            slot, wait = self._take()
            if slot is not None:
                return slot
            if deadline is not None and self._clock() + wait > deadline:
                raise RateLimitError(
                    f"the next request may go in {wait:.1f}s, after the deadline (held back by "
                    f"the client's limit of {self.limit} per {self.window:g}s, or by the "
                    "API's last Retry-After)",
                    retry_after=math.ceil(wait),
                    status=None,
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
