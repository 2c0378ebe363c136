"""`p4f-bridge reconcile`: its exit status and lines for a run's report (the local stack's
invocation left out: tests/integration/test_reconciler.py runs it against one)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from reconcile import RunReport, SubscriptionState

import local.stack
from local import cli


def reconcile(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, report: RunReport) -> int:
    """`p4f-bridge reconcile --log-dir tmp_path`'s exit status, the run answering `report`."""

    def invoke_running(log_dir: Path, *_: Any) -> dict[str, Any]:
        assert log_dir == tmp_path
        return asdict(report)

    monkeypatch.setattr(local.stack, "invoke_running", invoke_running)
    return cli.main(["reconcile", "--log-dir", str(tmp_path)])


def report(**fields: Any) -> RunReport:
    return RunReport(
        started_at="2026-12-02T04:00:00+00:00",
        listed={"campaigns": 1, "responses": 2},
        subscription=SubscriptionState.HEALTHY,
        api_calls=4,
        **fields,
    )


@pytest.mark.parametrize(
    ("fields", "status"),
    [
        ({"missing": 1, "published": 1}, 0),
        ({"missing": 1, "duplicates": 1}, 0),
        ({"missing": 1, "busy": 1}, 1),
        ({"missing": 1, "failed": 1}, 1),
        ({"stopped": "AuthenticationError: the API key is not valid"}, 1),
    ],
    ids=["published", "duplicate", "busy", "failed", "stopped"],
)
def test_the_exit_status_is_1_when_a_change_is_left_for_the_next_run_or_the_run_stopped(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    fields: dict[str, Any],
    status: int,
) -> None:
    assert reconcile(monkeypatch, tmp_path, report(**fields)) == status
    out = capsys.readouterr().out
    left = fields.get("busy", 0) + fields.get("failed", 0)
    assert f"{left} left for the next run" in out


def test_the_lines_count_one_thing_in_the_singular(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reconcile(monkeypatch, tmp_path, report(missing=1, published=1))
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Listed 1 campaign, 2 responses (4 API calls)."
    assert lines[1].startswith("1 change the bridge had not seen: 1 published")
