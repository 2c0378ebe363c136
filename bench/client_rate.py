"""Figure (4): how close one Pay4FeedbackClient runs to the tenant's rate limit, without 429s.

The sandbox enforces `limit` requests per `window` seconds (the API's 60 per minute,
compressed in time) and the client paces itself with a limiter of the same numbers; one
caller sends GET /me as fast as the client lets it. Counted on the wire (a transport
that notes each request as it is sent and each status): the requests sent in `windows`
whole windows after the first (steady state: the first window's burst is left out) as a
share of `windows * limit`, the 429s the sandbox answered, and the 429s the caller saw.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

import httpx

from bench.report import Row, Target
from local.sandbox import running_sandbox
from p4f.client import Pay4FeedbackClient
from p4f.errors import RateLimitError
from p4f.ratelimit import SlidingWindowLimiter

if TYPE_CHECKING:
    from collections.abc import Callable

FIGURE = "(4) API client"
API_KEY = "p4f_test_bench_client"

logger = logging.getLogger(__name__)


class CountingTransport(httpx.BaseTransport):
    """Passes requests on, noting when each was sent and how each was answered."""

    def __init__(self, inner: httpx.BaseTransport, clock: Callable[[], float]) -> None:
        self._inner = inner
        self._clock = clock
        self.sent: list[float] = []
        self.statuses: list[int] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(self._clock())
        response = self._inner.handle_request(request)
        self.statuses.append(response.status_code)
        return response

    def close(self) -> None:
        self._inner.close()


def client_rate(*, limit: int, window: float, windows: int) -> list[Row]:
    clock = time.perf_counter
    transport = CountingTransport(httpx.HTTPTransport(), clock)
    surfaced = 0
    with (
        running_sandbox([API_KEY], rate_limit=limit, rate_window=window) as sandbox,
        Pay4FeedbackClient(
            sandbox.url,
            api_key=API_KEY,
            transport=transport,
            budget=SlidingWindowLimiter(limit, window, clock=clock),
            clock=clock,
        ) as client,
    ):
        began = clock()
        steady_from, steady_until = began + window, began + (windows + 1) * window
        while clock() < steady_until:
            try:
                client.me()
            except RateLimitError:
                surfaced += 1
    sent_in_steady_state = sum(steady_from <= at < steady_until for at in transport.sent)
    share = sent_in_steady_state / (windows * limit) * 100
    answered_429 = transport.statuses.count(429)
    logger.info("API client: %d requests, %.1f %% of the limit", len(transport.sent), share)
    details = {
        "limit": limit,
        "window_seconds": window,
        "windows_counted": windows,
        "requests_in_counted_windows": sent_in_steady_state,
        "requests_in_total": len(transport.sent),
    }
    setting = f"{limit} per {window:g} s, {windows} windows"
    return [
        Row(
            FIGURE,
            f"one client, {setting}",
            "sustained, share of the limit",
            share,
            "%",
            target=Target(95, at_most=False, text=">= 95 %"),
            details=details,
        ),
        Row(
            FIGURE,
            f"one client, {setting}",
            "as requests/minute at 60/min",
            share / 100 * 60,
            "req/min",
        ),
        Row(
            FIGURE,
            f"one client, {setting}",
            "429s surfaced to the caller",
            surfaced,
            "",
            target=Target(0, text="0"),
        ),
        Row(FIGURE, f"one client, {setting}", "429s answered by the sandbox", answered_429, ""),
    ]
