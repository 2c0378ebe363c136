"""local.operate.status: the screen and its exit status, with AWS in moto (in-process), the
API through httpx.MockTransport and the logs in a file."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from local.operate.api import StackApi
from local.operate.display import age, table
from local.operate.stack import LocalFunctionLogs, NotedFunction, OperatedStack
from local.operate.status import read_status
from local.template import Template
from p4f.budget import TenantBudget
from p4f.client import Pay4FeedbackClient

API_KEY = "p4f_test_never_shown_1234"
URL = "https://receiver.example/"
EVENTS = "ping,payout_failed"
RECEIVER = "p4f-test-WebhookReceiverFunction"


def envelope(data: object, status: int = 200) -> httpx.Response:
    return httpx.Response(
        status, json={"success": True, "data": data, "timestamp": "2026-04-19T14:22:51Z"}
    )


def webhooks(*found: tuple[str, str, list[str]]) -> httpx.Response:
    return envelope(
        [
            {"id": id_, "url": url, "events": events, "created_at": "2026-04-19T14:22:51Z"}
            for id_, url, events in found
        ]
    )


class Aws:
    """moto in this process, as the stack's `client`."""

    def __init__(self, tmp_path: Path) -> None:
        self.region = "us-east-1"
        self.refused: set[str] = set()
        sqs = self.client("sqs")
        self.queue = sqs.create_queue(QueueName="p4f-test-slack")["QueueUrl"]
        self.dlq = sqs.create_queue(QueueName="p4f-test-slack-dlq")["QueueUrl"]
        self.table = "p4f-test-budget"
        self.client("dynamodb").create_table(
            **Template.load().table_definition("ApiBudgetTable", self.table)
        )
        self.log = tmp_path / "receiver.log"
        self.log.write_text("")

    def client(self, service: str) -> Any:
        if service in self.refused:
            return Refusing()
        return boto3.client(service, region_name=self.region)  # type: ignore[call-overload]

    def stack(self) -> OperatedStack:
        return OperatedStack(
            name="p4f-test",
            parameters={"WebhookEvents": EVENTS, "WebhookSecretRotation": "1"},
            outputs={
                "WebhookUrl": URL,
                "WebhookSubscriptionId": "wh_1",
                "SlackForwarderQueueUrl": self.queue,
                "SlackForwarderDeadLetterQueueUrl": self.dlq,
                "SlackForwarderDeadLetterQueueArn": "arn:aws:sqs:us-east-1:123:p4f-test-slack-dlq",
            },
            resources={
                "WebhookReceiverFunction": RECEIVER,
                "ReconcilerFunction": "p4f-test-ReconcilerFunction",
                "ApiBudgetTable": self.table,
            }.__getitem__,
            client=self.client,
            logs=LocalFunctionLogs({RECEIVER: NotedFunction(log=str(self.log))}),
        )

    def api(self, answer: Callable[[httpx.Request], httpx.Response]) -> Callable[[], StackApi]:
        def make() -> StackApi:
            return StackApi(
                Pay4FeedbackClient(
                    "https://p4f.test", api_key=API_KEY, transport=httpx.MockTransport(answer)
                ),
                TenantBudget(self.table, self.client("dynamodb")),
            )

        return make


class Refusing:
    """A client every call of which AWS refuses (no permission)."""

    def __getattr__(self, name: str) -> Any:
        def refuse(*_: Any, **__: Any) -> Any:
            raise ClientError(
                {"Error": {"Code": "AccessDenied", "Message": f"not allowed: {name}"}}, name
            )

        return refuse


@pytest.fixture
def aws(tmp_path: Path) -> Iterator[Aws]:
    with mock_aws():
        yield Aws(tmp_path)


def registered(_: httpx.Request) -> httpx.Response:
    return webhooks(("wh_1", URL, ["payout_failed", "ping"]))


def section(shown: list[str], title: str) -> list[str]:
    start = next(n for n, line in enumerate(shown) if line.startswith(title))
    end = next((n for n in range(start, len(shown)) if not shown[n].strip()), len(shown))
    return shown[start + 1 : end]


def test_a_healthy_stack_is_exit_status_0(aws: Aws) -> None:
    now = datetime.now(UTC)
    at = (now - timedelta(minutes=3)).strftime("%Y-%m-%d %H:%M:%S,%f")[:-3] + "+0000"
    handled = {"message": "delivery handled", "timestamp": at, "level": "INFO"}
    aws.log.write_text(json.dumps(handled | {"outcome": "accepted", "event_type": "ping"}) + "\n")
    status = read_status(aws.stack(), api=aws.api(registered), now=now)
    shown = status.lines()
    assert status.exit_status == 0, shown
    assert shown[-1] == "Healthy: nothing needs attention."
    assert section(shown, "Webhook subscription")[0].split()[:3] == ["state", "registered", "as"]
    assert section(shown, "Queues")[1:] == [
        "  slack-forwarder  queue         0          0       -",
        "  slack-forwarder  DLQ           0          0       -",
    ]
    assert section(shown, "Alarms in ALARM") == ["  none"]
    events = section(shown, "Last event seen per type")
    assert events[1:3] == ["  ping           3m ago", "  payout_failed  -"]
    assert events[3] == "  reconciler's last run: none in 7d"
    # The check of the subscription took a slot: still taken, or passed by now.
    assert section(shown, "API budget")[0].split()[:5] in (
        ["now", taken, "of", "55", "requests"] for taken in ("0", "1")
    )
    assert section(shown, "API budget")[1] == "  last hour  no API calls"
    assert section(shown, "Webhook receiver, last hour")[1].split() == ["0"] * 5


def test_what_needs_attention_is_exit_status_1(aws: Aws) -> None:
    sqs = aws.client("sqs")
    for body in ("a", "b"):
        sqs.send_message(QueueUrl=aws.dlq, MessageBody=body)
    cloudwatch = aws.client("cloudwatch")
    cloudwatch.put_metric_alarm(
        AlarmName="p4f-test-SlackForwarderDeadLetterAlarm",
        Namespace="AWS/SQS",
        MetricName="ApproximateNumberOfMessagesVisible",
        Statistic="Maximum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )
    cloudwatch.set_alarm_state(
        AlarmName="p4f-test-SlackForwarderDeadLetterAlarm",
        StateValue="ALARM",
        StateReason="Threshold Crossed: 1 datapoint [2.0] was >= the threshold (1.0).",
    )
    # Other stacks': one of another name, one whose name starts with this stack's.
    for other in ("other-Alarm", "p4f-test-staging-SlackForwarderDeadLetterAlarm-1X2Y"):
        cloudwatch.put_metric_alarm(
            AlarmName=other,
            Namespace="N",
            MetricName="M",
            Statistic="Sum",
            Period=60,
            EvaluationPeriods=1,
            Threshold=1,
            ComparisonOperator="GreaterThanThreshold",
        )
        cloudwatch.set_alarm_state(AlarmName=other, StateValue="ALARM", StateReason="x")

    status = read_status(aws.stack(), api=aws.api(lambda _: webhooks()))
    shown = status.lines()
    assert status.exit_status == 1
    assert "MISSING (the stack's WebhookSubscriptionId: wh_1)" in section(shown, "Webhook")[0]
    [dlq] = [
        row for row in section(shown, "Queues") if row.split()[:2] == ["slack-forwarder", "DLQ"]
    ]
    assert dlq.split()[2:4] == ["2", "0"]
    assert dlq.split()[4] == ">="  # moto publishes no ages: the oldest of those a peek sees
    [alarm] = section(shown, "Alarms in ALARM")[1:]
    assert alarm.split()[0] == "SlackForwarderDeadLetterAlarm"
    assert "Threshold Crossed: 1 datapoint [2.0]" in alarm
    assert status.attention == [
        "the webhook subscription is missing at Pay4Feedback: no webhook reaches the stack "
        "(the reconciler repairs it with RepairSubscription=true)",
        "the slack-forwarder dead-letter queue holds 2 messages",
        "the alarm SlackForwarderDeadLetterAlarm is in ALARM",
    ]


class WithComposite:
    """moto's CloudWatch, with a composite alarm in ALARM (moto has no PutCompositeAlarm)."""

    def __init__(self, cloudwatch: Any) -> None:
        self._cloudwatch = cloudwatch

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cloudwatch, name)

    def get_paginator(self, operation: str) -> Any:
        if operation != "describe_alarms":
            return self._cloudwatch.get_paginator(operation)
        composite = {
            "AlarmName": "p4f-test-BridgeUnhealthy",
            "StateReason": "arn:...:alarm:p4f-test-ReconcilerIncompleteAlarm transitioned to ALARM",
            "StateUpdatedTimestamp": datetime.now(UTC) - timedelta(hours=3, minutes=1),
        }

        class Pages:
            def paginate(self, **query: Any) -> list[dict[str, Any]]:
                assert query["AlarmTypes"] == ["MetricAlarm", "CompositeAlarm"]
                return [{"MetricAlarms": [], "CompositeAlarms": [composite]}]

        return Pages()


def test_composite_alarms_in_alarm_too(aws: Aws) -> None:
    stack = aws.stack()
    cloudwatch = WithComposite(aws.client("cloudwatch"))
    stack = replace(stack, client=lambda s: cloudwatch if s == "cloudwatch" else aws.client(s))
    status = read_status(stack, api=aws.api(registered))
    assert section(status.lines(), "Alarms in ALARM")[1].split()[:3] == [
        "BridgeUnhealthy",
        "3h",
        "arn:...:alarm:p4f-test-ReconcilerIncompleteAlarm",
    ]
    assert status.attention == ["the alarm BridgeUnhealthy is in ALARM"]


def test_another_id_than_the_stacks_is_shown_not_alarming(aws: Aws) -> None:
    status = read_status(
        aws.stack(), api=aws.api(lambda _: webhooks(("wh_9", URL, ["ping", "payout_failed"])))
    )
    [state] = section(status.lines(), "Webhook subscription")[:1]
    assert "registered as wh_9; the stack's WebhookSubscriptionId is wh_1" in state
    assert status.exit_status == 0


def test_a_subscription_for_other_events_is_missing(aws: Aws) -> None:
    answer = webhooks(("wh_1", URL, ["ping"]))
    status = read_status(aws.stack(), api=aws.api(lambda _: answer))
    assert "MISSING" in section(status.lines(), "Webhook subscription")[0]


def test_an_api_that_refuses_leaves_the_subscription_unknown_and_the_rest_shown(
    aws: Aws,
) -> None:
    def refused(_: httpx.Request) -> httpx.Response:
        return httpx.Response(
            401, json={"success": False, "error": "Invalid API key", "timestamp": "x"}
        )

    status = read_status(aws.stack(), api=aws.api(refused))
    shown = status.lines()
    state = section(shown, "Webhook subscription")[0]
    assert "UNKNOWN: Pay4Feedback was not asked (AuthenticationError" in state
    assert section(shown, "Queues")[1].split()[0] == "slack-forwarder"
    assert status.exit_status == 1
    assert API_KEY not in "\n".join(shown)


def test_a_section_aws_refuses_says_so_and_the_rest_shows(aws: Aws) -> None:
    aws.refused = {"cloudwatch"}
    status = read_status(aws.stack(), api=aws.api(registered))
    shown = status.lines()
    assert section(shown, "Alarms in ALARM") == [
        "  cannot be read: AccessDenied: not allowed: get_paginator"
    ]
    queues = section(shown, "Queues")
    assert queues[1].split() == ["slack-forwarder", "queue", "0", "0", "-"]
    assert queues[-1].startswith("  oldest: cannot be read from CloudWatch (AccessDenied")
    assert section(shown, "Webhook subscription")[0].split()[1] == "registered"
    assert "Alarms in ALARM: cannot be read" in status.attention
    assert status.exit_status == 1


def test_the_budgets_last_hour_per_caller(aws: Aws) -> None:
    cloudwatch, now = aws.client("cloudwatch"), datetime.now(UTC)

    def put(name: str, function: str, priority: str, *values: float) -> None:
        dimensions = {"function_name": function, "priority": priority, "service": "p4f-bridge"}
        cloudwatch.put_metric_data(
            Namespace="P4fBridge",
            MetricData=[
                {
                    "MetricName": name,
                    "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
                    "Unit": "Count",
                    "Values": list(values),
                    "Timestamp": now - timedelta(minutes=minutes),
                }
                for minutes in (1, 20)
            ],
        )

    put("ApiBudgetUsed", "p4f-test-CampaignTriggerFunction", "interactive", 1, 1)
    put("ApiBudgetExhausted", "p4f-test-CampaignTriggerFunction", "interactive", 1)
    put("ApiBudgetUsed", "p4f-test-ReconcilerFunction", "background", 1, 1, 1)
    status = read_status(aws.stack(), api=aws.api(registered), now=now)
    assert section(status.lines(), "API budget")[1:] == [
        "  last hour  (ApiBudgetUsed, ApiBudgetExhausted)",
        "    function                          priority     used  exhausted",
        "    p4f-test-CampaignTriggerFunction  interactive     4          2",
        "    p4f-test-ReconcilerFunction       background      6          0",
    ]


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0, "0s"),
        (59, "59s"),
        (60, "1m"),
        (3 * 60 + 5, "3m"),
        (119 * 60, "119m"),
        (2 * 3600, "2h"),
        (47 * 3600, "47h"),
        (2 * 86400, "2d"),
        (-5, "0s"),
    ],
)
def test_ages_read_as_people_say_them(seconds: int, shown: str) -> None:
    assert age(seconds) == shown


def test_columns_align_numbers_to_the_right() -> None:
    assert table([("name", "n", "why"), ("a", "10", "x"), ("longer", "2", "")], header=True) == [
        "name     n  why",
        "a       10  x",
        "longer   2",
    ]
