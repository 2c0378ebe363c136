"""Figure (9) of the benchmark counts what it says, on a small scale (its pace is not tested:
`make bench` reports it)."""

from __future__ import annotations

import pytest

from bench.reward_review import reward_review


@pytest.mark.timeout(120)
def test_every_queued_response_is_decided_once_with_one_api_call_and_no_429() -> None:
    applied, sustained, overall, calls, rate_limited, doubles = reward_review(
        responses=12, window=3
    )
    assert (applied.value, applied.reference) == (12, 12)
    assert applied.details["decisions"] == {"approve": 9, "reject": 3}
    assert applied.details["responses_decided"] == 12  # the sandbox changed each of them
    assert applied.details["api_calls"] == 12
    assert calls.value == 1
    assert rate_limited.value == 0
    assert doubles.value == 0
    assert "/min" == sustained.unit == overall.unit
    assert all(row.met is not False for row in (applied, calls, rate_limited, doubles))
