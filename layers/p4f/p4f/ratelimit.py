"""A client-side limiter that keeps one client under the tenant's request budget.

Pay4Feedback allows 60 requests in any 60-second window per tenant. The limiter keeps the
send times of the last `limit` requests and holds a request back until the oldest of them
has left the window, so a burst is paced instead of answered with 429s.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

from p4f.errors import RateLimitError


class SlidingWindowLimiter:
    """At most `limit` requests in any `window` seconds, for the threads sharing it."""

    def __init__(
        self,
        limit: int = 60,
        window: float = 60.0,
        *,
        safety_margin: float = 0.02,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("the rate limit needs limit >= 1 and window > 0")
        self.limit = limit
        # The server counts arrivals, the limiter counts departures: a little slack keeps
        # network jitter from pushing the 61st request into the server's window.
        self.window = window * (1 + safety_margin)
        self._clock = clock
        self._sleep = sleep
        self._sent: deque[float] = deque()
        self._blocked_until = 0.0
        self._lock = threading.Lock()

    def try_acquire(self) -> float:
        """Take a slot if one is free and return 0; else return the seconds until one is."""
        with self._lock:
            now = self._clock()
            wait = self._wait_time(now)
            if wait <= 0:
                self._sent.append(now)
                return 0.0
            return wait

    def acquire(self, deadline: float | None = None) -> None:
        """Wait for a free slot and take it; raise RateLimitError if it comes after `deadline`.

        `deadline` is a value of the limiter's clock (time.monotonic by default).
        """
        while wait := self.try_acquire():
            if deadline is not None and self._clock() + wait > deadline:
                raise RateLimitError(
                    f"the client-side limit of {self.limit} requests per "
                    f"{self.window:.0f}s is used up and the next slot is after the deadline",
                    retry_after=math.ceil(wait),
                    status=None,
                )
            self._sleep(wait)

    def block_for(self, seconds: float) -> None:
        """Send nothing for `seconds` (the server said 429: other clients share the budget)."""
        with self._lock:
            self._blocked_until = max(self._blocked_until, self._clock() + seconds)

    def _wait_time(self, now: float) -> float:
        while self._sent and self._sent[0] <= now - self.window:
            self._sent.popleft()
        wait = self._blocked_until - now
        if len(self._sent) >= self.limit:
            wait = max(wait, self._sent[0] + self.window - now)
        return wait
