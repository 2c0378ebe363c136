"""`p4f-bridge status --local` on the real local stack: the subscription at the sandbox, the
queues, an alarm in ALARM, the last event seen, and the receiver's metrics through the local
stack's embedded metric format bridge (local.embedded_metrics) into moto's CloudWatch."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from local.cli import main
from local.stack import LocalStack, RunningStack
from p4f.client import Pay4FeedbackClient


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    with LocalStack(log_dir=tmp_path_factory.mktemp("status")) as running:
        yield running


def accepted_in_cloudwatch(stack: RunningStack) -> float:
    now = datetime.now(UTC)
    answer = stack.aws.client("cloudwatch").get_metric_statistics(
        Namespace="P4fBridge",
        MetricName="WebhookAccepted",
        Dimensions=[{"Name": "service", "Value": "p4f-bridge"}],
        StartTime=now - timedelta(minutes=10),
        EndTime=now + timedelta(minutes=1),
        Period=600,
        Statistics=["Sum"],
    )
    return float(sum(point["Sum"] for point in answer["Datapoints"]))


def status(stack: RunningStack, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["status", "--local", "--log-dir", str(stack.log_dir)])
    return code, capsys.readouterr().out


def section(shown: str, title: str) -> list[str]:
    """The lines of one section of the screen (up to the next blank line)."""
    lines = shown.splitlines()
    start = next(n for n, line in enumerate(lines) if line.startswith(title))
    end = next((n for n in range(start, len(lines)) if not lines[n].strip()), len(lines))
    return lines[start + 1 : end]


def send_and_wait(stack: RunningStack, event_type: str) -> None:
    """A signed delivery to the receiver, until its WebhookAccepted is in moto's CloudWatch."""
    secret = stack.secret_value("WebhookSigningSecretArn")
    url = stack.urls.webhook
    assert main(["send-event", event_type, "--url", url, "--secret", secret]) == 0
    deadline = time.monotonic() + 15
    while accepted_in_cloudwatch(stack) < 1:  # the EMF line, through the host's output
        assert time.monotonic() < deadline, "WebhookAccepted never reached moto's CloudWatch"
        time.sleep(0.2)


def put_alarm_in_alarm(stack: RunningStack, name: str, reason: str) -> None:
    cloudwatch = stack.aws.client("cloudwatch")
    cloudwatch.put_metric_alarm(
        AlarmName=name,
        Namespace="P4fBridge",
        MetricName="Something",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )
    cloudwatch.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason=reason)


@pytest.mark.timeout(180)
def test_status_of_the_local_stack(stack: RunningStack, capsys: pytest.CaptureFixture[str]) -> None:
    send_and_wait(stack, "payout_failed")
    put_alarm_in_alarm(stack, "p4f-local-Something", "Something crossed 1")

    code, shown = status(stack, capsys)
    print(shown)  # the screen, in the test's output when it fails

    webhook_id = stack.deployment.outputs["WebhookSubscriptionId"]
    assert not webhook_id.startswith("pending-")  # the subscription's id, once it answered
    [state] = [line for line in section(shown, "Webhook subscription") if "state" in line]
    assert f"registered as {webhook_id} (WebhookSubscriptionId)" in state
    last = {line.split()[0]: line for line in section(shown, "Last event seen per type")[1:]}
    assert "ago" in last["payout_failed"]
    assert "ago" in last["ping"]  # the subscription's first delivery
    assert last["reward_approved"].split()[-1] == "-"
    outcomes = section(shown, "Webhook receiver, last hour")
    assert outcomes[0].split() == ["accepted", "duplicate", "rejected", "busy", "failed"]
    assert int(outcomes[1].split()[0]) >= 1
    queues = {tuple(line.split()[:2]): line.split()[2:] for line in section(shown, "Queues")[1:]}
    assert ("slack-forwarder", "queue") in queues
    assert queues["slack-forwarder", "DLQ"] == ["0", "0", "-"]  # no age: moto has no datapoint
    assert ("reconciler-state", "DLQ") in queues
    alarms = section(shown, "Alarms in ALARM")
    assert any("Something" in line and "Something crossed 1" in line for line in alarms)
    budget = section(shown, "API budget")
    assert "of 55 requests a minute taken" in budget[0]
    callers = {tuple(line.split()[:2]) for line in budget[2:]}
    assert ("p4f-local-SubscriptionManagerFunction", "interactive") in callers  # EMF too
    assert code == 1
    assert "the alarm Something is in ALARM" in shown.split("Needs attention:", 1)[1]
    for secret_value in (stack.api_key, stack.secret_value("WebhookSigningSecretArn")):
        assert secret_value not in shown

    with Pay4FeedbackClient(stack.urls.sandbox, api_key=stack.api_key) as api:
        api.delete_webhook(webhook_id)
    code, shown = status(stack, capsys)
    print(shown)
    [state] = [line for line in section(shown, "Webhook subscription") if "state" in line]
    assert f"MISSING (the stack's WebhookSubscriptionId: {webhook_id})" in state
    assert "the webhook subscription is missing" in shown
    assert code == 1

    report = stack.reconcile()  # RepairSubscription is false: it finds it missing too
    assert report["subscription"] == "missing"
    code, shown = status(stack, capsys)
    print(shown)
    [run] = [line for line in section(shown, "Last event seen") if "reconciler" in line]
    assert run.startswith("  reconciler's last run: ")
    assert run.endswith("ago: 0 published, subscription missing")
    used = {tuple(line.split()[:2]): line.split()[2] for line in section(shown, "API budget")[2:]}
    # A single invocation's EMF lines, each counted once.
    assert used["p4f-local-ReconcilerFunction", "background"] == str(report["api_calls"])


def test_its_help_says_what_it_needs(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["status", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert "logs:StartQuery" in shown
    assert "cloudwatch:DescribeAlarms" in shown
    with pytest.raises(SystemExit):
        main(["status"])  # --stack NAME or --local


def test_no_local_stack_is_exit_status_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status", "--local", "--log-dir", str(tmp_path)]) == 2
    assert "no local stack runs" in capsys.readouterr().err
