"""The Segment forwarder's handler, end to end: SQS batches in, the local Segment over real
HTTP on 127.0.0.1, Secrets Manager in moto."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from moto import mock_aws
from segment_delivery import SegmentForwarder

from local.asgi_server import ThreadedAsgiServer
from local.lambda_events import LocalLambdaContext, sqs_event, sqs_record
from local.recording import Fault, FaultKind
from local.sample_events import EVENTS_DIR
from local.segment_receiver import MAX_REQUEST_BYTES, LocalSegment
from p4f.deferral import Deferral
from p4f.models import EventType
from tests.conftest import (
    LONE_SURROGATE_ANSWERS,
    LoadFunction,
    between_two_events,
    nested_record,
    own_record,
)

QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:segment-forwarder"
EMAIL = b"ana@example.com"
TIMEOUT = 1.0
"""A request's time-out in these tests (long enough for a loaded CI machine); the local
Segment's hang (2.5 s) outlasts it."""
TEN: list[EventType] = [t for t in EventType if t is not EventType.CAMPAIGN_UPDATED]


@dataclass
class Forwarder:
    app: Any
    """The loaded functions/segment_forwarder/app.py."""
    segment: LocalSegment
    sent_back: list[dict[str, Any]] = field(default_factory=list)
    """The SendMessageBatch entries of deferred records."""

    def __post_init__(self) -> None:
        sqs = boto3.client("sqs")
        sqs.meta.events.register(
            "provide-client-params.sqs.SendMessageBatch",
            lambda params, **_: self.sent_back.extend(params["Entries"]),
        )
        self.app.deferral = Deferral(self.app.settings.queue_url, boto3_client=sqs)

    def handle(self, records: list[dict[str, Any]], *, seconds: float = 30) -> list[str]:
        """Run the handler on a batch; the ids of the records it reports failed."""
        context = LocalLambdaContext("segment-forwarder", timeout_seconds=seconds)
        answer = self.app.lambda_handler(sqs_event(records), context)
        return [failure["itemIdentifier"] for failure in answer["batchItemFailures"]]

    def requests_sent(self) -> int:
        return len(self.segment.requests)


def record(event_type: EventType | str, message_id: str, **data: Any) -> dict[str, Any]:
    return own_record(event_type, message_id, queue_arn=QUEUE_ARN, **data)


def event_id(sqs_record: dict[str, Any]) -> str:
    return str(json.loads(sqs_record["body"])["detail"]["id"])


def batch(types: list[EventType], **data: Any) -> list[dict[str, Any]]:
    return [record(event_type, f"m-{i}", **data) for i, event_type in enumerate(types)]


def ids(records: list[dict[str, Any]]) -> list[str]:
    return [r["messageId"] for r in records]


@pytest.fixture
def segment() -> Iterator[LocalSegment]:
    receiver = LocalSegment(hang_seconds=2.5)
    with ThreadedAsgiServer(receiver.app, name="segment") as server:
        receiver.url = server.url  # type: ignore[attr-defined]
        yield receiver


def start(load_function: LoadFunction, segment: LocalSegment, **env: str) -> Forwarder:
    value = json.dumps({"write_key": segment.write_key})
    arn = boto3.client("secretsmanager").create_secret(Name="p4f/segment", SecretString=value)[
        "ARN"
    ]
    queue_url = boto3.client("sqs").create_queue(QueueName="segment-forwarder")["QueueUrl"]
    app: Any = load_function(
        "segment_forwarder",
        {
            "SEGMENT_SECRET_ARN": arn,
            "SEGMENT_QUEUE_URL": queue_url,
            "SEGMENT_ENDPOINT": segment.url + "/",  # type: ignore[attr-defined]
        }
        | env,
    )
    app.forwarder = forwarder_as_built(app, TIMEOUT)
    return Forwarder(app, segment)


def forwarder_as_built(app: Any, timeout: float) -> SegmentForwarder:
    """The forwarder as app.py builds it, with a time-out of `timeout` seconds."""
    return SegmentForwarder(
        app.write_key,
        app.http,
        endpoint=app.settings.endpoint,
        personal_data=app.settings.send_personal_data,
        timeout=timeout,
    )


@pytest.fixture
def forwarder(load_function: LoadFunction, segment: LocalSegment) -> Iterator[Forwarder]:
    with mock_aws():
        yield start(load_function, segment)


@pytest.fixture
def personal(load_function: LoadFunction, segment: LocalSegment) -> Iterator[Forwarder]:
    with mock_aws():
        yield start(load_function, segment, SEGMENT_SEND_PERSONAL_DATA="true")


def test_a_batch_of_ten_events_is_one_request_of_ten_track_calls(forwarder: Forwarder) -> None:
    records = batch(TEN)
    assert forwarder.handle(records) == []
    [request] = forwarder.segment.requests
    assert request.accepted  # the local Segment found nothing to refuse
    assert request.path == "/v1/batch"
    expected = "Basic " + base64.b64encode(f"{forwarder.segment.write_key}:".encode()).decode()
    assert request.headers["authorization"] == expected
    calls = forwarder.segment.calls()
    assert [c["type"] for c in calls] == ["track"] * 10
    assert [c["event"] for c in calls][:3] == ["Ping", "Campaign Created", "Campaign Paused"]
    assert [c["messageId"] for c in calls] == [event_id(r) for r in records]
    assert EMAIL not in request.body  # byte-wise: no e-mail without the Parameter
    assert b"did not say if the trial needs a card" not in request.body


def test_the_committed_sample_batch_is_one_request(forwarder: Forwarder) -> None:
    records = json.loads((EVENTS_DIR / "segment_forwarder" / "sqs_batch.json").read_text())
    assert forwarder.handle(records["Records"]) == []
    assert forwarder.requests_sent() == 1
    assert len(forwarder.segment.calls()) == len(records["Records"]) == 10


def test_a_batch_of_a_thousand_is_as_few_requests_as_500_kb_allow_failing_only_its_own(
    forwarder: Forwarder,
) -> None:
    # Time enough for a request of 500 KB on a loaded machine.
    forwarder.app.forwarder = forwarder_as_built(forwarder.app, timeout=10)
    records = batch(TEN * 100)
    records[500] = sqs_record("not an event", queue_arn=QUEUE_ARN, message_id="m-poison")
    forwarder.segment.inject(Fault(FaultKind.SERVER_ERROR), after=1)
    failed = forwarder.handle(records)
    first, second = forwarder.segment.requests  # about 530 KB of calls: two requests
    assert first.accepted
    assert second.status == 500
    in_first = [c["messageId"] for c in first.json()["batch"]]
    in_second = [c["messageId"] for c in second.json()["batch"]]
    good = [r for r in records if r["messageId"] != "m-poison"]
    assert in_first + in_second == [event_id(r) for r in good]  # in order, each once
    assert len(in_first) > 900
    # The poison record alone, and exactly the records of the failed request.
    assert sorted(failed) == sorted(["m-poison", *ids(good)[len(in_first) :]])


def test_a_trimmed_call_is_logged_and_counted(
    personal: Forwarder,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    answers = [{"question_id": f"q_{n}", "prompt": "Why?", "value": "w" * 1_500} for n in range(40)]
    assert personal.handle([record(EventType.RESPONSE_SUBMITTED, "m-0", answers=answers)]) == []
    [track] = [c for c in personal.segment.calls() if c["type"] == "track"]
    cut = track["properties"]["truncated_items"]["answers"]
    assert len(track["properties"]["answers"]) + cut == 40
    [logged] = [r for r in caplog.records if "trimmed" in r.getMessage()]
    assert logged.items_cut == {"answers": cut}  # type: ignore[attr-defined]
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "_aws" in line]
    assert [e.get("SegmentCallsTrimmed") for e in emitted] == [[1.0]]


def test_the_app_as_built_at_init_sends_with_its_own_clients(
    load_function: LoadFunction, segment: LocalSegment
) -> None:
    with mock_aws():
        arn = boto3.client("secretsmanager").create_secret(
            Name="p4f/segment", SecretString=segment.write_key
        )["ARN"]
        app = load_function(
            "segment_forwarder",
            {
                "SEGMENT_SECRET_ARN": arn,
                "SEGMENT_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/segment",
                "SEGMENT_ENDPOINT": segment.url,  # type: ignore[attr-defined]
            },
        )
        context = LocalLambdaContext("segment-forwarder", timeout_seconds=30)
        answer = app.lambda_handler(sqs_event(batch([EventType.PAYOUT_COMPLETED])), context)
    assert answer == {"batchItemFailures": []}
    assert [c["event"] for c in segment.calls()] == ["Payout Completed"]


def test_with_personal_data_allowed_identify_calls_carry_the_email_in_the_same_request(
    personal: Forwarder,
) -> None:
    assert personal.handle(batch(TEN)) == []
    [request] = personal.segment.requests
    calls = personal.segment.calls()
    identifies = [c for c in calls if c["type"] == "identify"]
    # Six events of the ten have a respondent with an e-mail: submitted, scored, approved,
    # rejected, paid and failed.
    assert len(identifies) == 6
    assert all(c["traits"] == {"email": EMAIL.decode()} for c in identifies)
    assert [c["type"] for c in calls].count("track") == 10
    assert calls.index(identifies[0]) + 1 == calls.index(
        next(c for c in calls if c.get("event") == "Response Submitted")
    )
    assert EMAIL in request.body


@pytest.mark.parametrize(
    ("fault", "status"), [(FaultKind.SERVER_ERROR, 500), (FaultKind.HANG, 504)]
)
def test_a_500_or_time_out_fails_exactly_the_records_of_that_request(
    forwarder: Forwarder, fault: FaultKind, status: int
) -> None:
    records = batch(TEN)
    forwarder.segment.inject(Fault(fault))
    assert forwarder.handle(records) == ids(records)
    assert [r.status for r in forwarder.segment.requests] == [status]  # not retried here
    assert forwarder.segment.calls() == []
    assert forwarder.sent_back == []


def test_a_429_defers_the_records_of_that_request_for_its_retry_after(
    forwarder: Forwarder,
) -> None:
    records = batch(TEN)
    forwarder.segment.inject(Fault(FaultKind.RATE_LIMITED, retry_after=5))
    assert forwarder.handle(records) == []  # deferred: none counted towards the DLQ
    assert [r.status for r in forwarder.segment.requests] == [429]
    assert [e["MessageBody"] for e in forwarder.sent_back] == [r["body"] for r in records]
    assert {e["DelaySeconds"] for e in forwarder.sent_back} == {5}


def test_a_lone_surrogate_is_sent_as_the_replacement_character(personal: Forwarder) -> None:
    records = between_two_events(
        record(EventType.RESPONSE_SUBMITTED, "m-1", answers=LONE_SURROGATE_ANSWERS)
    )
    assert personal.handle(records) == []
    [request] = personal.segment.requests
    assert request.accepted
    assert "Love it \ufffd".encode() in request.body


def test_a_record_nested_too_deeply_is_poison_alone(forwarder: Forwarder) -> None:
    assert forwarder.handle(between_two_events(nested_record(QUEUE_ARN))) == ["m-deep"]
    assert len(forwarder.segment.calls()) == 2


def test_a_batch_over_500_kb_is_split_and_each_request_stands_on_its_own(
    personal: Forwarder,
) -> None:
    answers = [{"question_id": "q", "prompt": "Why?", "value": "word " * 5_800}]  # ~29 KB
    records = batch([EventType.RESPONSE_SUBMITTED] * 20, answers=answers)
    personal.segment.inject(Fault(FaultKind.SERVER_ERROR), after=1)
    failed = personal.handle(records)
    first, second = personal.segment.requests
    assert first.accepted
    assert second.status == 500
    assert all(len(r.body) <= MAX_REQUEST_BYTES for r in (first, second))
    in_first = [c["messageId"] for c in first.json()["batch"] if c["type"] == "track"]
    in_second = [c["messageId"] for c in second.json()["batch"] if c["type"] == "track"]
    assert in_first + in_second == [event_id(r) for r in records]  # in order, each once
    assert len(in_first) > len(in_second) > 0
    assert failed == ids(records)[len(in_first) :]  # exactly the second request's records


def test_after_a_429_the_batchs_later_requests_are_not_sent(personal: Forwarder) -> None:
    answers = [{"question_id": "q", "prompt": "Why?", "value": "word " * 5_800}]
    records = batch([EventType.RESPONSE_SUBMITTED] * 20, answers=answers)
    personal.segment.inject(Fault(FaultKind.RATE_LIMITED, retry_after=5))
    assert personal.handle(records) == []
    assert personal.requests_sent() == 1
    assert len(personal.sent_back) == 20  # every record, deferred past the pause


def test_poison_and_oversized_records_fail_and_the_rest_go_in_one_request(
    forwarder: Forwarder,
) -> None:
    records = [
        record(EventType.REWARD_APPROVED, "m-0"),
        sqs_record("not an event", queue_arn=QUEUE_ARN, message_id="m-poison"),
        record(EventType.PAYOUT_FAILED, "m-huge", campaign_id="c" * 40_000),
        record(EventType.CAMPAIGN_CREATED, "m-3"),
    ]
    assert forwarder.handle(records) == ["m-poison", "m-huge"]
    assert forwarder.requests_sent() == 1
    assert [c["event"] for c in forwarder.segment.calls()] == [
        "Reward Approved",
        "Campaign Created",
    ]


def test_no_time_left_sends_nothing_and_fails_every_record(forwarder: Forwarder) -> None:
    records = batch(TEN[:3])
    assert forwarder.handle(records, seconds=0.5) == ids(records)  # less than the margin
    assert forwarder.requests_sent() == 0


def test_a_missing_secret_fails_every_record_and_says_how_to_fix_it(
    forwarder: Forwarder, caplog: pytest.LogCaptureFixture
) -> None:
    boto3.client("secretsmanager").delete_secret(
        SecretId="p4f/segment", ForceDeleteWithoutRecovery=True
    )
    records = batch(TEN[:2])
    assert forwarder.handle(records) == ids(records)
    assert forwarder.requests_sent() == 0
    reasons = {r.reason for r in caplog.records if hasattr(r, "reason")}
    [reason] = reasons
    assert "does not exist" in reason
    assert "create it" in reason


def test_logs_and_metrics_count_events_and_never_hold_the_write_key_or_email(
    personal: Forwarder,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    records = [*batch(TEN[:4]), sqs_record("{}", queue_arn=QUEUE_ARN, message_id="m-poison")]
    assert personal.handle(records) == ["m-poison"]
    personal.segment.inject(Fault(FaultKind.SERVER_ERROR))
    assert personal.handle(batch(TEN[4:6])) == ["m-0", "m-1"]

    formatter = personal.app.logger.registered_formatter
    lines = [json.loads(formatter.format(r)) for r in caplog.records]
    failed = [
        line
        for line in lines
        if line["message"] == "event not forwarded: SQS will deliver it again"
    ]
    assert {line["reason"] for line in failed} == {"Segment answered HTTP 500"}
    assert {line["error"] for line in failed} == {"SegmentUnavailableError"}
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "_aws" in line]
    counts = [{k: v for k, v in e.items() if k.startswith("Events")} for e in emitted]
    assert counts == [
        {"EventsForwarded": [4.0], "EventsDeferred": [0.0], "EventsFailed": [1.0]},
        {"EventsForwarded": [0.0], "EventsDeferred": [0.0], "EventsFailed": [2.0]},
    ]
    logged = json.dumps(lines) + json.dumps(emitted)
    assert personal.segment.write_key not in logged
    assert base64.b64encode(f"{personal.segment.write_key}:".encode()).decode() not in logged
    assert EMAIL.decode() not in logged
