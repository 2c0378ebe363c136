"""p4f.retries: backoff bounds and the Retry-After forms a 429 may carry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from p4f.retries import DEFAULT_RETRY_AFTER_SECONDS, RetryPolicy, retry_after


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ({"Retry-After": "7"}, 7.0),
        ({}, DEFAULT_RETRY_AFTER_SECONDS),
        ({"Retry-After": "soon"}, 30.0),
    ],
)
def test_retry_after_reads_seconds_or_falls_back(header: dict[str, str], expected: float) -> None:
    assert retry_after(httpx.Response(429, headers=header)) == expected


def test_retry_after_reads_an_http_date() -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=90), usegmt=True)
    assert 88 <= retry_after(httpx.Response(429, headers={"Retry-After": when})) <= 90


def test_backoff_grows_is_jittered_and_capped() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=4.0)
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (6, 4.0)]:
        assert ceiling / 2 <= policy.backoff(attempt) <= ceiling
