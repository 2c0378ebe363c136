"""local.operate's FunctionLogs: the newest line per field value, and the newest line, from a
local log file and from CloudWatch Logs Insights."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from local.operate.stack import (
    CloudWatchFunctionLogs,
    LocalFunctionLogs,
    LogQueryError,
    NotedFunction,
)

RECEIVER = "p4f-local-WebhookReceiverFunction"
WEEK_AGO = datetime(2026, 11, 25, tzinfo=UTC)


def powertools(at: str, message: str, **fields: Any) -> str:
    return json.dumps({"level": "INFO", "timestamp": at, "message": message} | fields)


def handled(at: str, event_type: str, outcome: str) -> str:
    return powertools(
        at, "delivery handled", outcome=outcome, event_type=event_type, event_id="evt_1"
    )


@pytest.fixture
def local_logs(tmp_path: Path) -> LocalFunctionLogs:
    log = tmp_path / "receiver.log"
    log.write_text(
        "\n".join(
            [
                "READY",
                handled("2026-11-20 10:00:00,000+0000", "ping", "accepted"),  # too old
                handled("2026-12-01 10:00:00,000+0000", "ping", "accepted"),
                handled("2026-12-01 11:00:00,000+0000", "ping", "duplicate"),
                handled("2026-12-01 12:00:00,000+0000", "ping", "rejected"),
                handled("2026-12-01 09:00:00,000+0000", "payout_failed", "accepted"),
                handled("2026-12-01 13:00:00,000+0000", "reward_approved", "busy"),
                powertools("2026-12-01 14:00:00,000+0000", "delivery handled", outcome="rejected"),
                powertools("2026-12-01 15:00:00,000+0000", "reconciler run", report={"n": 1}),
                powertools("2026-12-01 16:00:00,000+0000", "reconciler run", report={"n": 2}),
                powertools("2026-12-01 17:00:00,000+0000", "not the reconciler run"),
                "Traceback (most recent call last):",
            ]
        )
        + "\n"
    )
    return LocalFunctionLogs({RECEIVER: NotedFunction(log=str(log))})


def test_locally_the_newest_line_per_value_of_a_field(local_logs: LocalFunctionLogs) -> None:
    seen = local_logs.last_seen(
        RECEIVER,
        message="delivery handled",
        by="event_type",
        where={"outcome": ("accepted", "duplicate")},
        since=WEEK_AGO,
    )
    assert seen == {
        "ping": datetime(2026, 12, 1, 11, tzinfo=UTC),
        "payout_failed": datetime(2026, 12, 1, 9, tzinfo=UTC),
    }
    assert (
        local_logs.last_seen(
            "another", message="delivery handled", by="event_type", where={}, since=WEEK_AGO
        )
        == {}
    )


def test_locally_the_newest_line(local_logs: LocalFunctionLogs) -> None:
    run = local_logs.newest(RECEIVER, message="reconciler run", since=WEEK_AGO)
    assert run is not None
    assert run.fields["report"] == {"n": 2}
    assert local_logs.newest(RECEIVER, message="reconciler run", since=datetime.now(UTC)) is None


class FakeAws:
    """Lambda's configuration and a Logs Insights that answers `rows` after one poll."""

    def __init__(
        self, rows: list[dict[str, str]], statuses: tuple[str, ...] = ("Running",)
    ) -> None:
        self.rows = rows
        self.statuses = list(statuses)
        self.queries: list[dict[str, Any]] = []

    def __call__(self, service: str) -> FakeAws:
        return self

    def get_function_configuration(self, FunctionName: str) -> dict[str, Any]:
        return {"LoggingConfig": {"LogGroup": f"/p4f/{FunctionName}"}}

    def start_query(self, **query: Any) -> dict[str, str]:
        self.queries.append(query)
        return {"queryId": "q1"}

    def get_query_results(self, queryId: str) -> dict[str, Any]:
        if self.statuses:
            return {"status": self.statuses.pop(0), "results": []}
        results = [[{"field": k, "value": v} for k, v in row.items()] for row in self.rows]
        return {"status": "Complete", "results": results}

    def stop_query(self, queryId: str) -> None:
        pass


def test_deployed_one_insights_query_per_field_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("local.operate.stack._QUERY_POLL_SECONDS", 0)
    aws = FakeAws(
        [
            {"event_type": "ping", "last_seen": "2026-12-01 11:00:00.250"},
            {"event_type": "payout_failed", "last_seen": "1796115600000"},
        ]
    )
    seen = CloudWatchFunctionLogs(aws).last_seen(
        "fn",
        message="delivery handled",
        by="event_type",
        where={"outcome": ("duplicate", "accepted")},
        since=WEEK_AGO,
    )
    assert seen == {
        "ping": datetime(2026, 12, 1, 11, 0, 0, 250000, tzinfo=UTC),
        "payout_failed": datetime(2026, 12, 1, 9, tzinfo=UTC),
    }
    [query] = aws.queries
    assert query["logGroupName"] == "/p4f/fn"
    assert query["startTime"] == int(WEEK_AGO.timestamp())
    assert query["queryString"] == (
        'filter message = "delivery handled" and outcome in ["accepted", "duplicate"] '
        "| stats max(@timestamp) as last_seen by event_type"
    )


def test_deployed_the_newest_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("local.operate.stack._QUERY_POLL_SECONDS", 0)
    line = powertools("2026-12-01 16:00:00,000+0000", "reconciler run", report={"n": 2})
    aws = FakeAws([{"@timestamp": "2026-12-01 16:00:00.000", "@message": line}])
    run = CloudWatchFunctionLogs(aws).newest("fn", message="reconciler run", since=WEEK_AGO)
    assert run is not None
    assert run.fields["report"] == {"n": 2}
    assert "sort @timestamp desc | limit 1" in aws.queries[0]["queryString"]
    assert CloudWatchFunctionLogs(FakeAws([])).newest("fn", message="x", since=WEEK_AGO) is None


def test_a_failed_query_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("local.operate.stack._QUERY_POLL_SECONDS", 0)
    logs = CloudWatchFunctionLogs(FakeAws([], statuses=("Running", "Failed")))
    with pytest.raises(LogQueryError, match="failed"):
        logs.newest("fn", message="x", since=datetime.now(UTC) - timedelta(days=1))
