"""`p4f-bridge replay` and `p4f-bridge dlq` on the running local stack, as its operator runs
them from another shell (`--local`): a replay from the archive reaches a consumer again; an
event the Slack forwarder could not deliver (its secret was wrong) waits in its dead-letter
queue, `dlq peek` says why, and once the secret is right `dlq redrive` empties the queue
into the forwarder's, which delivers it."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from local.cli import main
from local.sample_events import catalogue_event
from local.stack import LocalStack, RunningStack
from p4f.envelope import utc_timestamp
from p4f.models import EventType
from p4f.signing import delivery_headers

PARTS = {"EnableSegmentForwarder": "false", "EnableWarehouseMirror": "false"}
"""What these tests do not need (the Slack forwarder, the bus and its archive they do)."""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    with LocalStack(log_dir=tmp_path_factory.mktemp("operated"), parameters=PARTS) as running:
        yield running


def operate(stack: RunningStack, *command: str) -> int:
    return main([*command, "--local", "--log-dir", str(stack.log_dir)])


def deliver(stack: RunningStack, event_type: str) -> str:
    """A signed webhook of `event_type` to the receiver, as Pay4Feedback sends it; its id."""
    event_id = f"evt_{uuid.uuid4().hex}"
    event = catalogue_event(EventType(event_type)) | {"id": event_id, "created_at": utc_timestamp()}
    body = json.dumps(event).encode()
    secret = stack.secret_value("WebhookSigningSecretArn")
    headers = delivery_headers(body, secret, event_id=event_id, event_type=event_type)
    assert httpx.post(stack.urls.webhook, content=body, headers=headers, timeout=10).is_success
    return event_id


def consumed(
    stack: RunningStack, until: Callable[[list[dict[str, Any]]], bool], *, then: float = 0
) -> list[dict[str, Any]]:
    """The events the consumer queue gets (deleted as read), until `until` holds of them and
    for `then` seconds more (what else comes)."""
    sqs, got = stack.aws.client("sqs"), list[dict[str, Any]]()
    deadline, lingered = time.monotonic() + 30, None
    while lingered is None or time.monotonic() < lingered:
        if lingered is None and until(got):
            lingered = time.monotonic() + then
            continue
        assert time.monotonic() < deadline, f"the consumer got only {got}"
        for message in sqs.receive_message(
            QueueUrl=stack.consumer_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
        ).get("Messages", []):
            got.append(json.loads(message["Body"]))
            sqs.delete_message(
                QueueUrl=stack.consumer_queue_url, ReceiptHandle=message["ReceiptHandle"]
            )
    return got


def of(event_id: str) -> Callable[[list[dict[str, Any]]], bool]:
    return lambda got: any(event["detail"].get("id") == event_id for event in got)


def messages_in(stack: RunningStack, output: str) -> int:
    """Messages in the queue of a stack output, waiting or in flight."""
    attributes = stack.aws.client("sqs").get_queue_attributes(
        QueueUrl=stack.deployment.outputs[output],
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(count) for count in attributes.values())


def wait_for(condition: Callable[[], bool], what: str, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def test_a_replay_from_the_archive_reaches_a_consumer_again(stack: RunningStack) -> None:
    event_id = deliver(stack, "payout_failed")
    consumed(stack, of(event_id))  # the first time, as it was received

    assert operate(stack, "replay", "--from", "5m", "--to", "now") == 0

    again = [e for e in consumed(stack, of(event_id)) if e["detail"].get("id") == event_id]
    assert again[0]["replay-name"].startswith("p4f-bridge-")
    assert again[0]["detail-type"] == "payout_failed"


def test_a_replay_of_some_types_to_one_rule_brings_only_those(
    stack: RunningStack, capsys: pytest.CaptureFixture[str]
) -> None:
    failed, completed = deliver(stack, "payout_failed"), deliver(stack, "payout_completed")
    consumed(stack, lambda got: of(failed)(got) and of(completed)(got))
    capsys.readouterr()

    command = ("replay", "--from", "5m", "--to", "your-consumer", "--types", "payout_completed")
    assert operate(stack, *command) == 0

    replayed = consumed(stack, of(completed), then=2)
    assert {event["detail-type"] for event in replayed} == {"payout_completed"}
    assert "your-consumer (through p4f-replay-" in capsys.readouterr().out
    rules = stack.aws.client("events").list_rules(
        EventBusName=stack.deployment.outputs["EventBusName"]
    )["Rules"]
    assert not [rule for rule in rules if rule["Name"].startswith("p4f-replay-")]


def test_a_replay_to_no_rule_of_the_bus_names_its_rules(
    stack: RunningStack, capsys: pytest.CaptureFixture[str]
) -> None:
    assert operate(stack, "replay", "--from", "5m", "--to", "no-such-consumer") == 1

    error = capsys.readouterr().err
    assert "no rule of p4f-local-events is named like 'no-such-consumer'" in error
    assert "p4f-local-SlackForwarderRule" in error


def test_an_undelivered_event_is_peeked_with_its_error_and_redriven_to_slack(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Failed records back within a second: five receives put one in its DLQ in seconds.
    with LocalStack(log_dir=tmp_path, parameters=PARTS, visibility_timeout=1) as stack:
        secrets = stack.aws.client("secretsmanager")
        slack = stack.deployment.parameters["SlackSecretArn"]
        right = secrets.get_secret_value(SecretId=slack)["SecretString"]
        secrets.put_secret_value(SecretId=slack, SecretString="https://hooks.slack.invalid")
        event_id = deliver(stack, "payout_failed")
        wait_for(
            lambda: messages_in(stack, "SlackForwarderDeadLetterQueueUrl") == 1,
            "the event never reached the Slack forwarder's dead-letter queue",
        )
        capsys.readouterr()

        assert operate(stack, "dlq", "list") == 1
        listed = capsys.readouterr().out.splitlines()
        assert any(line.split()[:2] == ["slack-forwarder", "1"] for line in listed)

        assert operate(stack, "dlq", "peek", "slack-forwarder") == 1
        peeked = capsys.readouterr().out
        assert f"payout_failed {event_id}" in peeked
        assert "WARNING event not forwarded: SQS will deliver it again" in peeked
        assert "secret" in peeked.split("event not forwarded", 1)[1]

        secrets.put_secret_value(SecretId=slack, SecretString=right)
        assert operate(stack, "dlq", "redrive", "slack-forwarder") == 0
        out = capsys.readouterr().out
        assert "slack-forwarder: completed, 1 of 1 moved back to its queue" in out
        assert messages_in(stack, "SlackForwarderDeadLetterQueueUrl") == 0
        wait_for(lambda: bool(stack.slack.messages()), "the redriven event never reached Slack")
        assert operate(stack, "dlq", "list") == 0


def test_a_queue_that_is_none_of_the_stacks_is_refused_with_the_known_ones(
    stack: RunningStack, capsys: pytest.CaptureFixture[str]
) -> None:
    assert operate(stack, "dlq", "redrive", "no-such-queue") == 2
    assert "is none of the stack's dead-letter queues: fan-out, slack-forwarder" in (
        capsys.readouterr().err
    )
