"""p4f.forwarding: reading a forwarder's SQS records and answering with the failed ones."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import boto3
import pytest
from aws_lambda_powertools import Metrics
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from moto import mock_aws

from local.lambda_events import LocalLambdaContext, sqs_event, sqs_record
from local.sample_events import catalogue_event, forwarder_record
from p4f.deferral import DEFERRED_SINCE, Deferral
from p4f.forwarding import (
    SAFETY_MARGIN_SECONDS,
    DeferrableError,
    ForwardingError,
    OutOfTimeError,
    PoisonRecordError,
    Prepared,
    QueuedEvent,
    forward_batch,
    identifying_fields,
    read_record,
)
from p4f.json_text import encode_json
from p4f.models import EVENT_DATA_MODELS, EventType
from p4f.retries import Deadline
from tests.conftest import FakeTime

QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:forwarder"


def record_of(body: Mapping[str, Any], message_id: str | None = None) -> dict[str, Any]:
    return forwarder_record(body, queue_arn=QUEUE_ARN, message_id=message_id)


def raw_record(body: str, message_id: str = "m-raw") -> dict[str, Any]:
    return sqs_record(body, queue_arn=QUEUE_ARN, message_id=message_id)


@pytest.mark.parametrize("event_type", list(EventType))
def test_every_catalogue_event_is_read_with_its_resource(event_type: EventType) -> None:
    queued = read_record(SQSRecord(record_of(catalogue_event(event_type), "m-1")))
    assert queued.message_id == "m-1"
    assert queued.event.type is event_type
    assert type(queued.resource) is EVENT_DATA_MODELS[event_type]


def test_an_unknown_type_is_read_without_a_resource_and_keeps_its_fields() -> None:
    body = catalogue_event(EventType.PING) | {"type": "respondent_banned", "data": {"x": 1}}
    queued = read_record(SQSRecord(record_of(body)))
    assert queued.event.type == "respondent_banned"
    assert queued.resource is None
    assert queued.event.data == {"x": 1}


def bus_event(detail: object, source: str = "pay4feedback") -> str:
    return json.dumps({"version": "0", "source": source, "detail-type": "x", "detail": detail})


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "not an EventBridge event with a detail"),
        (json.dumps({"source": "pay4feedback"}), "not an EventBridge event with a detail"),
        (bus_event({"id": "evt_1"}, source="aws.s3"), "source is 'aws.s3', not 'pay4feedback'"),
        (bus_event({"type": "ping"}), "not a Pay4Feedback event: id: Field required"),
    ],
)
def test_a_record_that_is_not_an_event_is_poison_and_says_why(body: str, reason: str) -> None:
    with pytest.raises(PoisonRecordError, match=reason):
        read_record(SQSRecord(raw_record(body)))


def test_a_known_type_whose_data_does_not_parse_is_poison_without_its_values() -> None:
    body = catalogue_event(EventType.REWARD_APPROVED)
    body["data"] = body["data"] | {"respondent": "ana@example.com", "submitted_at": None}
    with pytest.raises(PoisonRecordError) as raised:
        read_record(SQSRecord(record_of(body)))
    message = str(raised.value)
    assert "reward_approved" in message
    assert "is not a Response" in message
    assert "respondent" in message
    assert "submitted_at" in message
    assert "ana@example.com" not in message


def test_identifying_fields_are_ids_and_status_only() -> None:
    data: dict[str, Any] = {
        "id": "x1",
        "campaign_id": "c1",
        "respondent_id": "r1",
        "status": "OPEN",
        "count_id": 3,
        "email": "ana@example.com",
        "comment": "free text",
        "nested_id": {"id": "no"},
    }
    assert identifying_fields(data) == {
        "id": "x1",
        "campaign_id": "c1",
        "respondent_id": "r1",
        "status": "OPEN",
        "count_id": 3,
    }


def test_the_deadline_counts_down_on_its_clock_and_never_goes_negative() -> None:
    fake = FakeTime()
    deadline = Deadline(5.0, fake.clock)
    assert deadline.remaining() == 5.0
    assert deadline.allows(5.0)
    fake.sleep(4.5)
    assert deadline.remaining() == 0.5
    assert not deadline.allows(0.6)
    fake.sleep(10)
    assert deadline.remaining() == 0.0


class ScriptedForwarder:
    """A forwarder that fails the events whose ids it is given, and notes what it got; its
    `prepare` is the event's JSON, or what `prepare` says."""

    def __init__(
        self,
        failing: Mapping[str, ForwardingError] | None = None,
        prepare: Callable[[QueuedEvent], bytes] | None = None,
    ) -> None:
        self.failing = dict(failing or {})
        self.batches: list[list[Prepared[bytes]]] = []
        self.seconds: list[float] = []
        self._prepare = prepare or (lambda queued: encode_json(queued.event.data))

    def prepare(self, queued: QueuedEvent) -> bytes:
        return self._prepare(queued)

    def forward(
        self, batch: Sequence[Prepared[bytes]], seconds: float
    ) -> dict[str, ForwardingError]:
        self.batches.append(list(batch))
        self.seconds.append(seconds)
        return {
            item.message_id: self.failing[item.queued.event.id]
            for item in batch
            if item.queued.event.id in self.failing
        }


def metric_values(metrics: Metrics) -> dict[str, list[float]]:
    """The values of each metric in the EMF blob the function will print: one per invocation."""
    emitted: dict[str, Any] = dict(metrics.serialize_metric_set())
    names = [m["Name"] for m in emitted["_aws"]["CloudWatchMetrics"][0]["Metrics"]]
    return {name: emitted[name] for name in names}


@pytest.fixture
def metrics() -> Metrics:
    metrics = Metrics(namespace="P4fBridgeTest", service="forwarding-test")
    metrics.clear_metrics()
    return metrics


def test_failed_and_poison_records_are_reported_and_the_rest_forwarded(
    metrics: Metrics, caplog: pytest.LogCaptureFixture
) -> None:
    approved = catalogue_event(EventType.REWARD_APPROVED)
    paid = catalogue_event(EventType.PAYOUT_COMPLETED)
    forwarder = ScriptedForwarder({paid["id"]: OutOfTimeError("no time left")})
    event = sqs_event(
        [
            record_of(approved, "m-ok"),
            raw_record("not json", "m-poison"),
            record_of(paid, "m-failed"),
        ]
    )
    context = LocalLambdaContext("forwarder", timeout_seconds=30)

    answer = forward_batch(event, context, forwarder, metrics)

    assert answer == {
        "batchItemFailures": [{"itemIdentifier": "m-poison"}, {"itemIdentifier": "m-failed"}]
    }
    [batch] = forwarder.batches
    assert [item.message_id for item in batch] == ["m-ok", "m-failed"]  # poison never reaches it
    assert 30 - SAFETY_MARGIN_SECONDS - 1 < forwarder.seconds[0] <= 30 - SAFETY_MARGIN_SECONDS
    assert metric_values(metrics) == {
        "EventsForwarded": [1.0],
        "EventsDeferred": [0.0],
        "EventsFailed": [2.0],
    }

    logged = {r.message_id: r for r in caplog.records if hasattr(r, "message_id")}
    assert logged["m-ok"].levelname == "INFO"
    assert logged["m-ok"].event_id == approved["id"]  # type: ignore[attr-defined]
    assert logged["m-poison"].levelname == "ERROR"
    assert "not JSON" in logged["m-poison"].reason  # type: ignore[attr-defined]
    assert logged["m-failed"].levelname == "WARNING"
    assert logged["m-failed"].error == "OutOfTimeError"  # type: ignore[attr-defined]
    assert logged["m-failed"].event_type == "payout_completed"  # type: ignore[attr-defined]


def test_a_batch_that_fails_entirely_is_answered_not_raised(metrics: Metrics) -> None:
    event = sqs_event([raw_record("{}", "m-1"), raw_record("[]", "m-2")])
    answer = forward_batch(
        event, LocalLambdaContext("forwarder", timeout_seconds=5), ScriptedForwarder(), metrics
    )
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m-1"}, {"itemIdentifier": "m-2"}]}
    assert metric_values(metrics) == {
        "EventsForwarded": [0.0],
        "EventsDeferred": [0.0],
        "EventsFailed": [2.0],
    }


def nested(depth: int) -> str:
    """An EventBridge event whose detail's data is `depth` arrays deep."""
    body = json.dumps(catalogue_event(EventType.PING) | {"data": "deep"})
    return bus_event("deep").replace('"deep"', body.replace('"deep"', "[" * depth + "]" * depth))


@pytest.mark.parametrize(
    ("depth", "reason"),
    [(300, "not a Pay4Feedback event"), (100_000, "nested too deeply to be read")],
)
def test_json_too_deep_for_the_models_or_the_parser_is_poison(depth: int, reason: str) -> None:
    with pytest.raises(PoisonRecordError, match=reason):
        read_record(SQSRecord(raw_record(nested(depth))))


def test_an_integer_python_cannot_read_is_poison() -> None:
    body = bus_event(catalogue_event(EventType.PING) | {"n": "N"}).replace('"N"', "9" * 5000)
    with pytest.raises(PoisonRecordError, match="not JSON Python can read"):
        read_record(SQSRecord(raw_record(body)))


@pytest.mark.parametrize("event_id", ["", "evt_" + "x" * 2_045, "evt_\x01", "evt_\ud83d"])
def test_an_event_id_that_cannot_key_the_ledger_is_poison(event_id: str) -> None:
    body = catalogue_event(EventType.PING) | {"id": event_id}
    with pytest.raises(PoisonRecordError, match=r"1 to 2048 fit|which AWS does not take"):
        read_record(SQSRecord(raw_record(bus_event(body))))


def test_an_event_the_forwarder_cannot_prepare_is_poison_alone(metrics: Metrics) -> None:
    good, bad = catalogue_event(EventType.REWARD_APPROVED), catalogue_event(EventType.PAYOUT_FAILED)

    def prepare(queued: QueuedEvent) -> bytes:
        if queued.event.id == bad["id"]:
            raise RecursionError("maximum recursion depth exceeded")
        return b"ok"

    forwarder = ScriptedForwarder(prepare=prepare)
    event = sqs_event([record_of(good, "m-good"), record_of(bad, "m-bad")])
    answer = forward_batch(event, LocalLambdaContext("f", 30), forwarder, metrics)
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m-bad"}]}
    [batch] = forwarder.batches
    assert [(item.message_id, item.content) for item in batch] == [("m-good", b"ok")]


def test_encode_json_replaces_a_lone_surrogate_and_keeps_real_characters() -> None:
    assert encode_json({"a": "Love it \ud83d", "b": "\U0001f600 é"}) == (
        '{"a":"Love it \ufffd","b":"\U0001f600 é"}'.encode()
    )
    assert encode_json(["\udc00\ud83d"]) == '["\ufffd\ufffd"]'.encode()


@pytest.fixture
def queue() -> Iterator[str]:
    with mock_aws():
        yield boto3.client("sqs", region_name="us-east-1").create_queue(QueueName="forwarder")[
            "QueueUrl"
        ]


def test_a_deferrable_failure_goes_back_to_the_queue_delayed_and_is_not_failed(
    metrics: Metrics, queue: str, caplog: pytest.LogCaptureFixture
) -> None:
    paused, failed = catalogue_event(EventType.PAYOUT_FAILED), catalogue_event(EventType.PING)
    forwarder = ScriptedForwarder(
        {paused["id"]: DeferrableError("a pause", 30), failed["id"]: OutOfTimeError("late")}
    )
    records = [record_of(paused, "m-paused"), record_of(failed, "m-failed")]
    deferral = Deferral(queue, clock=lambda: 1_000.0)
    answer = forward_batch(
        sqs_event(records), LocalLambdaContext("f", 30), forwarder, metrics, deferral
    )

    assert answer == {"batchItemFailures": [{"itemIdentifier": "m-failed"}]}
    assert metric_values(metrics) == {
        "EventsForwarded": [0.0],
        "EventsDeferred": [1.0],
        "EventsFailed": [1.0],
    }
    sqs = boto3.client("sqs", region_name="us-east-1")
    counts = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
    assert counts["ApproximateNumberOfMessagesDelayed"] == "1"
    logged = {r.message_id: r for r in caplog.records if hasattr(r, "message_id")}
    assert logged["m-paused"].delay_seconds == 30  # type: ignore[attr-defined]
    assert "deferred" in logged["m-paused"].message


def test_without_a_deferral_a_deferrable_failure_fails(metrics: Metrics) -> None:
    paused = catalogue_event(EventType.PAYOUT_FAILED)
    forwarder = ScriptedForwarder({paused["id"]: DeferrableError("a pause", 30)})
    event = sqs_event([record_of(paused, "m-paused")])
    answer = forward_batch(event, LocalLambdaContext("f", 30), forwarder, metrics)
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m-paused"}]}


def test_a_record_deferred_for_a_day_fails_instead(metrics: Metrics, queue: str) -> None:
    paused = catalogue_event(EventType.PAYOUT_FAILED)
    forwarder = ScriptedForwarder({paused["id"]: DeferrableError("a pause", 30)})
    record = record_of(paused, "m-old")
    record["messageAttributes"] = {DEFERRED_SINCE: {"stringValue": "1000.0", "dataType": "String"}}
    deferral = Deferral(queue, clock=lambda: 1_000.0 + 24 * 3600 + 1)
    answer = forward_batch(
        sqs_event([record]), LocalLambdaContext("f", 30), forwarder, metrics, deferral
    )
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m-old"}]}
