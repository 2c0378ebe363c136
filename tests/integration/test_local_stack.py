"""The local stack: README's first command plays its scenario with every event arriving once,
and the stack leaves no process behind, also on Ctrl-C and on failure."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import local.stack
from local.cli import main
from local.stack import LocalStack, LocalStackError


def children(of: int) -> set[int]:
    """The processes whose parent is `of` (from /proc: no extra dependency)."""
    found = set()
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(
                line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line
            )
        except OSError:  # the process ended while we read
            continue
        if fields.get("PPid", "").strip() == str(of):
            found.add(int(status.parent.name))
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_gone(pids: set[int], timeout: float = 15) -> set[int]:
    deadline = time.monotonic() + timeout
    while (left := {pid for pid in pids if alive(pid)}) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


@pytest.mark.timeout(300)  # the scenario, then the dropped stretch and two reconciler runs
def test_the_demo_plays_the_scenario_and_every_event_arrives_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = children(os.getpid())
    assert main(["demo", "--log-dir", str(tmp_path)]) == 0
    shown = capsys.readouterr().out
    assert "OK: every event arrived exactly once" in shown
    assert "the same campaign" in shown  # the retried trigger made no second campaign
    assert "CampaignTriggerSucceeded" in shown  # the CreateCampaign event from the bus
    for where in ("on the bus", "in Slack", "in Segment", "in the mirror"):
        line = next(line for line in shown.splitlines() if line.strip().startswith(where))
        assert "0 lost, 0 duplicated" in line
    # The report from the warehouse mirror: four responses (scored 91, 12, 96, 67), two
    # approved of the three decided (one waits: the daily cap held it).
    report = shown.split("From the warehouse mirror: Approval rate", 1)[1].splitlines()
    assert report[3].split()[-5:] == ["4", "2", "1", "66.7", "66.5"]
    assert "10.0000" in shown.split("From the warehouse mirror: Reward spend", 1)[1]
    assert "Every change on the bus exactly once." in shown  # the dropped stretch
    assert {p.name for p in tmp_path.glob("*.log")} >= {
        "p4f-local-WebhookReceiverFunction.log",
        "p4f-local-CampaignTriggerFunction.log",
    }
    assert wait_gone(children(os.getpid()) - before) == set()


@pytest.mark.timeout(120)
def test_a_failure_while_starting_stops_what_had_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = children(os.getpid())
    started: set[int] = set()

    def fail(*_: object) -> str:
        started.update(children(os.getpid()) - before)  # moto_server and the function hosts
        raise LocalStackError("the bus consumer could not be made")

    monkeypatch.setattr(local.stack, "_add_bus_consumer", fail)
    with pytest.raises(LocalStackError), LocalStack(log_dir=tmp_path):
        pass
    assert len(started) >= 5
    assert wait_gone(started) == set()


@pytest.mark.timeout(120)
def test_ctrl_c_on_local_up_stops_every_process(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("p4f-bridge")
    stack = subprocess.Popen(  # noqa: S603 (our own console script)
        [str(script), "local", "up", "--log-dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # a process group of its own, as a terminal gives it
    )
    assert stack.stdout is not None
    shown = []
    for line in stack.stdout:
        shown.append(line)
        if "Ctrl-C stops everything" in line:
            break
    text = "".join(shown)
    assert "API key: p4f_test_local_" in text
    assert "/triggers/campaigns" in text
    started = children(stack.pid)
    assert len(started) >= 5  # moto_server and one process per function
    # What a terminal's Ctrl-C does: SIGINT to every process of the foreground group.
    os.killpg(stack.pid, signal.SIGINT)
    assert stack.wait(timeout=30) == 130
    rest = stack.stdout.read()
    assert "stopping the local stack" in rest
    assert "Traceback" not in rest
    assert "could not reach" not in rest  # moto_server stopped last, not first
    assert wait_gone(started) == set()


@pytest.mark.timeout(120)
def test_template_parameters_reach_the_local_deployment(tmp_path: Path) -> None:
    parameters = {"LogLevel": "DEBUG", "EnableSegmentForwarder": "false"}
    with LocalStack(log_dir=tmp_path, parameters=parameters) as stack:
        functions = stack.deployment.functions
        assert "SegmentForwarderFunction" not in functions
        assert "SlackForwarderFunction" in functions  # the local default stays
        receiver = functions["WebhookReceiverFunction"]
        assert receiver.environment["POWERTOOLS_LOG_LEVEL"] == "DEBUG"


def test_what_the_local_stack_points_at_is_not_a_parameter(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="Pay4FeedbackBaseUrl"):
        LocalStack(log_dir=tmp_path, parameters={"Pay4FeedbackBaseUrl": "https://example.com"})


@pytest.mark.timeout(120)
def test_local_up_refuses_a_parameter_the_template_refuses_and_says_what_it_may_be(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "local",
        "up",
        "--log-dir",
        str(tmp_path),
        "--parameter",
        "SlackEventTypes=reward_aproved",
    ]
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert "parameter SlackEventTypes: reward_aproved is not allowed" in error
    assert "reward_approved, reward_rejected" in error  # the known ones
    assert "Traceback" not in error


def test_local_up_takes_parameters_as_name_equals_value() -> None:
    from local.cli import _parser

    args = _parser().parse_args(
        ["local", "up", "--parameter", "LogLevel=DEBUG", "--parameter", "A=b=c"]
    )
    assert args.parameters == [("LogLevel", "DEBUG"), ("A", "b=c")]
    with pytest.raises(SystemExit):
        _parser().parse_args(["local", "up", "--parameter", "LogLevel"])
