"""How the bridge's calls are repeated: backoff after failures, a 429's Retry-After, and
the deadline no wait may pass.

Shared by the Pay4Feedback client, the forwarders (Slack, Segment) and the ledgers' writes,
so that every call backs off and honours Retry-After the same way. Standard library only:
the webhook receiver imports it.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    import httpx

DEFAULT_RETRY_AFTER_SECONDS = 30.0
"""Retry-After when a 429 carries none: the API reference's own examples fall back to 30 s."""
SLACK_RETRY_AFTER_SECONDS = 1.0
"""A Slack 429 without Retry-After: Slack asks for about a second between messages."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently failed calls are repeated."""

    max_attempts: int = 4
    """Sends of one call that failed with a 5xx or a lost connection, the first included."""
    max_rate_limit_waits: int = 5
    """429 answers waited out in one call before giving up."""
    base_delay: float = 0.5
    max_delay: float = 8.0

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based): exponential,
        half of it random so that many clients do not retry in step."""
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)  # noqa: S311 (jitter, not crypto)


def retry_after(answer: httpx.Response, default: float = DEFAULT_RETRY_AFTER_SECONDS) -> float:
    """Seconds a 429 answer asks to wait: its Retry-After in seconds or as an HTTP date,
    `default` without one (the service's own advice: 30 s for Pay4Feedback, 1 s for Slack)."""
    value = answer.headers.get("retry-after", "").strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class Deadline:
    """The moment work must be done by, on a given clock."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._at = clock() + seconds

    def remaining(self) -> float:
        """Seconds left, never negative."""
        return max(0.0, self._at - self._clock())

    def allows(self, seconds: float) -> bool:
        """True if `seconds` from now is not past the deadline."""
        return seconds <= self.remaining()
