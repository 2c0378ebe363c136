"""What local.moto_events and local.moto_sqs give moto: replays as EventBridge makes them,
and SQS's message move tasks (dead-letter queue redrive)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from local.moto_events import make_replays_faithful
from local.moto_sqs import make_sqs_redrive

make_replays_faithful()
make_sqs_redrive()
ACCOUNT = "123456789012"


@pytest.fixture
def aws() -> Iterator[boto3.Session]:
    with mock_aws():
        yield boto3.Session(region_name="us-east-1")


def queue(sqs: Any, name: str, **attributes: str) -> tuple[str, str]:
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    return url, arn["QueueArn"]


def bodies(sqs: Any, url: str) -> list[dict[str, Any]]:
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(message["Body"]) for message in messages]


def test_a_replay_sends_the_windows_events_to_the_chosen_rules_only(aws: boto3.Session) -> None:
    events: Any = aws.client("events")
    sqs = aws.client("sqs")
    bus = events.create_event_bus(Name="bus")["EventBusArn"]
    archive = events.create_archive(ArchiveName="archive", EventSourceArn=bus)["ArchiveArn"]
    urls = {}
    for name in ("chosen", "other"):
        urls[name], _ = queue(sqs, name)
        events.put_rule(Name=name, EventBusName="bus", EventPattern='{"source": ["s"]}')
        target = {"Id": "q", "Arn": f"arn:aws:sqs:us-east-1:{ACCOUNT}:{name}"}
        events.put_targets(Rule=name, EventBusName="bus", Targets=[target])
    now = datetime.now(UTC)
    for detail_type, when in (("old", now - timedelta(hours=2)), ("recent", now)):
        entry = {"EventBusName": "bus", "Source": "s", "DetailType": detail_type, "Detail": "{}"}
        events.put_events(Entries=[entry | {"Time": when}])
    for url in urls.values():
        assert len(bodies(sqs, url)) == 2
        sqs.purge_queue(QueueUrl=url)
    chosen = events.describe_rule(Name="chosen", EventBusName="bus")["Arn"]

    events.start_replay(
        ReplayName="again",
        EventSourceArn=archive,
        EventStartTime=now - timedelta(minutes=5),
        EventEndTime=now + timedelta(seconds=1),
        Destination={"Arn": bus, "FilterArns": [chosen]},
    )

    assert events.describe_replay(ReplayName="again")["State"] == "COMPLETED"
    [replayed] = bodies(sqs, urls["chosen"])
    assert (replayed["detail-type"], replayed["replay-name"]) == ("recent", "again")
    assert bodies(sqs, urls["other"]) == []


def test_a_move_task_sends_a_dead_letter_queues_messages_back_to_their_queue(
    aws: boto3.Session,
) -> None:
    sqs = aws.client("sqs")
    dlq_url, dlq_arn = queue(sqs, "dead")
    policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 1})
    source_url, _ = queue(sqs, "source", RedrivePolicy=policy, VisibilityTimeout="0")
    sqs.send_message(
        QueueUrl=source_url,
        MessageBody="one",
        MessageAttributes={"kind": {"DataType": "String", "StringValue": "test"}},
    )
    sqs.receive_message(QueueUrl=source_url)  # the one receive it may have
    assert sqs.receive_message(QueueUrl=source_url).get("Messages") is None  # now dead

    assert sqs.start_message_move_task(SourceArn=dlq_arn)["TaskHandle"]

    [task] = sqs.list_message_move_tasks(SourceArn=dlq_arn)["Results"]
    assert task["Status"] == "COMPLETED"
    assert "TaskHandle" not in task  # SQS lists a task's handle only while it runs
    assert (
        task["ApproximateNumberOfMessagesMoved"],
        task["ApproximateNumberOfMessagesToMove"],
    ) == (
        1,
        1,
    )
    [back] = sqs.receive_message(QueueUrl=source_url, MessageAttributeNames=["All"])["Messages"]
    assert back["Body"] == "one"
    assert back["MessageAttributes"]["kind"]["StringValue"] == "test"
    assert sqs.receive_message(QueueUrl=dlq_url).get("Messages") is None


def test_a_move_task_needs_a_dead_letter_queue(aws: boto3.Session) -> None:
    sqs = aws.client("sqs")
    _, arn = queue(sqs, "plain")

    with pytest.raises(ClientError, match="must be configured as a Dead Letter Queue"):
        sqs.start_message_move_task(SourceArn=arn)
