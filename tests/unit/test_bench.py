"""The benchmark harness measures what it says: its report, its Lambda-like processes."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bench.lambda_env import Launch, function_code, interpreter, launch, runtime_standin
from bench.report import Row, Target, markdown
from bench.subjects import AWS_ANSWERS, REFERENCE, Fixture


def test_a_row_compares_with_the_reference_and_its_target() -> None:
    row = Row(
        "(1)", "receiver", "cold", 130.0, "ms", reference=100.0, target=Target(1.3, on_ratio=True)
    )
    assert row.ratio == pytest.approx(1.3)
    assert row.met is True
    slower = Row("(1)", "receiver", "cold", 131.0, "ms", reference=100.0, target=row.target)
    assert slower.met is False
    assert "| (1) | receiver | cold | 131 ms | 100 ms | 1.31x | <= 1.3x ref | **no** |" in markdown(
        [slower]
    )


def test_an_at_least_target_on_the_value() -> None:
    target = Target(95, at_most=False)
    assert Row("(4)", "client", "share", 96.0, "%", target=target).met is True
    assert Row("(4)", "client", "share", 94.0, "%", target=target).met is False


def test_the_runtime_stand_in_has_boto3_and_nothing_of_the_layer(tmp_path: Path) -> None:
    runtime = runtime_standin(tmp_path / "runtime")
    script = (
        "import sys; sys.path[:0] = [sys.argv[1]]\n"
        "import boto3, botocore, dateutil, jmespath, s3transfer, six, urllib3\n"
        "import importlib.util\n"
        "assert importlib.util.find_spec('pydantic') is None\n"
        "assert importlib.util.find_spec('p4f') is None\n"
    )
    subprocess.run(  # noqa: S603 (our own interpreter)
        [str(interpreter()), "-I", "-S", "-B", "-c", script, str(runtime)],
        check=True,
        capture_output=True,
    )


def test_a_warm_run_of_the_reference_answers_every_event(tmp_path: Path) -> None:
    fixture = Fixture.named()
    code = function_code(REFERENCE.code, tmp_path / "task")
    target = Launch(
        "reference",
        (code, runtime_standin(tmp_path / "runtime")),
        fixture.env() | dict(REFERENCE.env(fixture)),
        REFERENCE.handler,
        REFERENCE.timeout,
    )
    events = [REFERENCE.event(number, fixture) for number in range(8)]
    run = launch(target, events, tmp_path / "run", mode="warm", answers=AWS_ANSWERS, warmup=2)
    assert [answer["statusCode"] for answer in run.answers] == [200] * 8
    assert len(run.durations) == 5  # the first (cold) and two warm-up events are not timed
    assert run.launched < run.started < run.before_import < run.imported < run.answered
    assert not list(code.rglob("*.pyc"))  # nothing written where Lambda could not write


def test_the_slack_burst_sees_every_event_in_slack_at_slacks_pace() -> None:
    from bench.slack_burst import Burst, slack_burst

    seconds, messages, rate_limited = slack_burst(Burst(events=16, spread=1.0, timeout=60))
    assert seconds.details["visible"] == 16
    assert seconds.target is not None
    assert 0 < seconds.value < 60
    # A batch of 10 (more than SlackDigestAbove): two digests, one of each type; the rest
    # (6 or fewer) one message each or digests, as their batch is big enough.
    assert 2 <= messages.value < 16
    assert rate_limited.value == 0  # the local Slack holds the channel to Slack's pace
