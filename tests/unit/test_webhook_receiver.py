"""The webhook receiver's handler against EventBridge, SQS, DynamoDB and Secrets Manager in moto."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from local.lambda_events import LocalLambdaContext, function_url_event
from local.template import Template
from p4f.signing import delivery_headers, sign
from tests.conftest import LoadFunction

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_sqs import SQSClient

SECRET = "whsec_unit_test_secret"
TENANT = "5b3a1f0c-2d4e-4f6a-9b8c-7d6e5f4a3b2c"


def webhook_event(
    event_id: str = "evt_1", event_type: str = "reward_approved", **extra: Any
) -> bytes:
    body = {
        "id": event_id,
        "type": event_type,
        "created_at": "2026-04-19T14:22:51Z",
        "tenant_id": TENANT,
        "api_version": "v1",
        "data": {"id": "r1", "status": "APPROVED", "reward": {"amount": "5.00", "currency": "USD"}},
    } | extra
    # Unusual spacing on purpose: the receiver must forward these exact bytes.
    return json.dumps(body, indent=1).encode()


@dataclass
class Bridge:
    app: ModuleType
    events: EventBridgeClient
    sqs: SQSClient
    bus_name: str
    queue_url: str
    bus_tap_url: str

    def deliver(
        self,
        body: bytes,
        *,
        secret: str = SECRET,
        timestamp: int | None = None,
        method: str = "POST",
        headers: dict[str, str] | None = None,
        base64_encoded: bool = False,
    ) -> dict[str, Any]:
        try:
            event = json.loads(body)
        except (ValueError, RecursionError):  # the receiver is to find out
            event = {}
        event = event if isinstance(event, dict) else {}
        sent = delivery_headers(
            body,
            secret,
            event_id=str(event.get("id", "")),
            event_type=str(event.get("type", "")),
            timestamp=timestamp,
        )
        request = function_url_event(
            method, body, {**sent, **(headers or {})}, base64_encoded=base64_encoded
        )
        answer: dict[str, Any] = self.app.lambda_handler(
            request, LocalLambdaContext("webhook-receiver", timeout_seconds=9)
        )
        return answer

    def _drain(self, queue_url: str) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        while batch := self.sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
        ).get("Messages", []):
            messages.extend(batch)  # type: ignore[arg-type]
            for message in batch:
                self.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        return messages

    def on_bus(self) -> list[dict[str, Any]]:
        """The EventBridge events a rule on the bus delivered since the last call."""
        return [json.loads(m["Body"]) for m in self._drain(self.bus_tap_url)]

    def on_queue(self) -> list[dict[str, Any]]:
        """The fan-out queue's messages since the last call."""
        return self._drain(self.queue_url)


def make_bridge(load_function: LoadFunction, *, fifo: bool = False, **overrides: str) -> Bridge:
    region = "us-east-1"
    secrets = boto3.client("secretsmanager", region_name=region)
    secret_arn = secrets.create_secret(Name="p4f/webhook-signing", SecretString=SECRET)["ARN"]
    dynamodb = boto3.client("dynamodb", region_name=region)
    dynamodb.create_table(**Template.load().table_definition("IdempotencyTable", "idempotency"))
    events = boto3.client("events", region_name=region)
    sqs = boto3.client("sqs", region_name=region)
    events.create_event_bus(Name="p4f-bridge-events")
    tap_url = sqs.create_queue(QueueName="bus-tap")["QueueUrl"]
    tap_arn = sqs.get_queue_attributes(QueueUrl=tap_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events.put_rule(
        Name="all-pay4feedback",
        EventBusName="p4f-bridge-events",
        EventPattern=json.dumps({"source": ["pay4feedback"]}),
    )
    events.put_targets(
        Rule="all-pay4feedback",
        EventBusName="p4f-bridge-events",
        Targets=[{"Id": "tap", "Arn": tap_arn}],
    )
    created = (
        sqs.create_queue(QueueName="fan-out.fifo", Attributes={"FifoQueue": "true"})
        if fifo
        else sqs.create_queue(QueueName="fan-out")
    )
    queue_url = created["QueueUrl"]
    env = {
        "WEBHOOK_SECRET_ARN": secret_arn,
        "IDEMPOTENCY_TABLE": "idempotency",
        "EVENT_BUS_NAME": "p4f-bridge-events",
        "FANOUT_QUEUE_URL": queue_url,
    }
    app = load_function("webhook_receiver", env | overrides)
    return Bridge(app, events, sqs, "p4f-bridge-events", queue_url, tap_url)


@pytest.fixture
def bridge(load_function: LoadFunction) -> Iterator[Bridge]:
    with mock_aws():
        yield make_bridge(load_function)


def body_of(answer: dict[str, Any]) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(answer["body"])
    return parsed


def test_a_signed_event_lands_on_the_bus_and_the_queue_untouched(bridge: Bridge) -> None:
    body = webhook_event(extra_field={"kept": True})
    answer = bridge.deliver(body)
    assert answer["statusCode"] == 200
    assert body_of(answer)["success"] is True
    assert body_of(answer)["data"] == {"event_id": "evt_1", "duplicate": False}

    [on_bus] = bridge.on_bus()
    assert on_bus["source"] == "pay4feedback"
    assert on_bus["detail-type"] == "reward_approved"
    assert on_bus["detail"] == json.loads(body)
    assert on_bus["time"] == "2026-04-19T14:22:51Z"

    [message] = bridge.on_queue()
    assert message["Body"] == body.decode()  # the exact bytes, spacing included
    attributes = {k: v["StringValue"] for k, v in message["MessageAttributes"].items()}
    assert attributes == {"event_type": "reward_approved", "event_id": "evt_1", "tenant_id": TENANT}


def test_a_redelivered_event_answers_200_and_is_not_published_again(bridge: Bridge) -> None:
    body = webhook_event()
    assert bridge.deliver(body)["statusCode"] == 200
    again = bridge.deliver(body)  # the sender retries with a new timestamp and signature
    assert again["statusCode"] == 200
    assert body_of(again)["data"] == {"event_id": "evt_1", "duplicate": True}
    assert len(bridge.on_bus()) == 1
    assert len(bridge.on_queue()) == 1


def test_an_unknown_event_type_passes_through(bridge: Bridge) -> None:
    body = webhook_event(event_type="respondent_banned", data={"respondent_id": "x"})
    assert bridge.deliver(body)["statusCode"] == 200
    [on_bus] = bridge.on_bus()
    assert on_bus["detail-type"] == "respondent_banned"
    assert on_bus["detail"]["data"] == {"respondent_id": "x"}


def test_a_base64_encoded_body_is_decoded_before_verifying(bridge: Bridge) -> None:
    assert bridge.deliver(webhook_event(), base64_encoded=True)["statusCode"] == 200
    assert len(bridge.on_queue()) == 1


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("forged", "no v1 signature matches"),
        ("stale", "at most 300s is accepted"),
        ("future", "at most 300s is accepted"),
        ("missing", "header is missing"),
        ("malformed", "not key=value"),
    ],
)
def test_a_bad_signature_is_refused_with_401_and_nothing_forwarded(
    bridge: Bridge, case: str, expected: str
) -> None:
    body = webhook_event()
    now = int(time.time())
    if case == "forged":
        answer = bridge.deliver(body, secret="whsec_attacker")
    elif case in {"stale", "future"}:
        answer = bridge.deliver(body, timestamp=now - 301 if case == "stale" else now + 301)
    else:
        header = "" if case == "missing" else "garbage"
        answer = bridge.deliver(body, headers={"P4F-Signature": header})
    assert answer["statusCode"] == 401
    assert body_of(answer)["success"] is False
    assert expected in body_of(answer)["error"]
    assert body_of(answer)["timestamp"].endswith("Z")
    assert bridge.on_bus() == []
    assert bridge.on_queue() == []


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"type": "ping"}', "no 'id'"),
        (b'{"id": "evt_1"}', "no 'type'"),
    ],
)
def test_a_body_that_is_not_an_event_is_refused_with_400(
    bridge: Bridge, body: bytes, expected: str
) -> None:
    answer = bridge.deliver(body)
    assert answer["statusCode"] == 400
    assert expected in body_of(answer)["error"]
    assert bridge.on_queue() == []


def test_other_methods_get_405(bridge: Bridge) -> None:
    answer = bridge.deliver(webhook_event(), method="GET")
    assert answer["statusCode"] == 405
    assert answer["headers"]["Allow"] == "POST"


def test_a_body_too_large_for_eventbridge_or_sqs_gets_413(bridge: Bridge) -> None:
    answer = bridge.deliver(webhook_event(padding="x" * 1_000_001))
    assert answer["statusCode"] == 413
    assert bridge.on_queue() == []


def test_any_of_the_rotated_secrets_is_accepted(bridge: Bridge) -> None:
    secrets = boto3.client("secretsmanager")
    secrets.put_secret_value(
        SecretId="p4f/webhook-signing", SecretString=json.dumps(["whsec_new", SECRET])
    )
    # The cached single secret no longer matches deliveries signed with the new one: the
    # receiver reads the secret again before refusing.
    assert bridge.deliver(webhook_event("evt_new"), secret="whsec_new")["statusCode"] == 200
    assert bridge.deliver(webhook_event("evt_old"), secret=SECRET)["statusCode"] == 200


def test_a_fifo_queue_gets_group_and_deduplication_ids(load_function: LoadFunction) -> None:
    with mock_aws():
        fifo = make_bridge(load_function, fifo=True)
        assert fifo.deliver(webhook_event("evt_fifo"))["statusCode"] == 200
        [message] = fifo.sqs.receive_message(
            QueueUrl=fifo.queue_url, AttributeNames=["All"], MessageAttributeNames=["All"]
        )["Messages"]
        assert message["Attributes"]["MessageGroupId"] == TENANT
        assert message["Attributes"]["MessageDeduplicationId"] == "evt_fifo"


def test_sqs_only_publishes_nothing_to_the_bus(load_function: LoadFunction) -> None:
    with mock_aws():
        sqs_only = make_bridge(load_function, EVENT_BUS_NAME="")
        assert sqs_only.deliver(webhook_event())["statusCode"] == 200
        assert sqs_only.on_bus() == []
        assert len(sqs_only.on_queue()) == 1


def test_a_missing_bus_answers_5xx_then_the_retry_delivers_exactly_once(bridge: Bridge) -> None:
    bridge.events.delete_event_bus(Name=bridge.bus_name)
    body = webhook_event()
    failed = bridge.deliver(body)
    assert failed["statusCode"] == 503
    assert "eventbridge did not take the event" in body_of(failed)["error"]
    assert bridge.on_queue() == []  # SQS is not reached when the bus refused

    bridge.events.create_event_bus(Name=bridge.bus_name)
    bridge.events.put_rule(
        Name="all-pay4feedback",
        EventBusName=bridge.bus_name,
        EventPattern=json.dumps({"source": ["pay4feedback"]}),
    )
    tap_arn = bridge.sqs.get_queue_attributes(
        QueueUrl=bridge.bus_tap_url, AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    bridge.events.put_targets(
        Rule="all-pay4feedback", EventBusName=bridge.bus_name, Targets=[{"Id": "t", "Arn": tap_arn}]
    )
    assert bridge.deliver(body)["statusCode"] == 200
    assert bridge.deliver(body)["statusCode"] == 200  # and a further redelivery is a duplicate
    assert len(bridge.on_bus()) == 1
    assert len(bridge.on_queue()) == 1


class Flaky:
    """A boto3 client whose `operation` fails the first `times` calls, then works."""

    def __init__(self, client: Any, operation: str, error: Exception | dict[str, Any], times: int):
        self._client, self._operation, self._error, self._left = client, operation, error, times

    def __getattr__(self, name: str) -> Any:
        real = getattr(self._client, name)
        if name != self._operation:
            return real

        def call(**kwargs: Any) -> Any:
            if self._left:
                self._left -= 1
                if isinstance(self._error, Exception):
                    raise self._error
                return self._error
            return real(**kwargs)

        return call


def test_a_throttled_put_events_answers_5xx_then_the_retry_delivers_once(bridge: Bridge) -> None:
    throttled = ClientError({"Error": {"Code": "ThrottlingException"}}, "PutEvents")
    bridge.app.receiver._fanout._bus = (
        Flaky(bridge.events, "put_events", throttled, times=1),
        bridge.bus_name,
    )
    body = webhook_event()
    assert bridge.deliver(body)["statusCode"] == 503
    assert bridge.deliver(body)["statusCode"] == 200
    assert len(bridge.on_bus()) == 1
    assert len(bridge.on_queue()) == 1


def test_a_failed_entry_count_answers_5xx(bridge: Bridge, caplog: pytest.LogCaptureFixture) -> None:
    partial = {
        "FailedEntryCount": 1,
        "Entries": [{"ErrorCode": "InternalFailure", "ErrorMessage": "try again"}],
    }
    bridge.app.receiver._fanout._bus = (
        Flaky(bridge.events, "put_events", partial, times=1),
        bridge.bus_name,
    )
    failed = bridge.deliver(webhook_event())
    assert failed["statusCode"] == 503
    assert "InternalFailure" not in body_of(failed)["error"]  # AWS's detail is for the log
    reasons = [str(getattr(record, "reason", "")) for record in caplog.records]
    assert any("InternalFailure" in reason for reason in reasons)
    assert bridge.deliver(webhook_event())["statusCode"] == 200
    assert len(bridge.on_bus()) == 1


def test_a_failed_sqs_send_is_retried_without_publishing_to_the_bus_twice(bridge: Bridge) -> None:
    refused = ClientError({"Error": {"Code": "KMS.ThrottlingException"}}, "SendMessage")
    bridge.app.receiver._fanout._queue = (
        Flaky(bridge.sqs, "send_message", refused, times=1),
        bridge.queue_url,
    )
    body = webhook_event()
    assert bridge.deliver(body)["statusCode"] == 503
    assert bridge.deliver(body)["statusCode"] == 200
    assert len(bridge.on_bus()) == 1  # the bus took it the first time and is skipped after
    assert len(bridge.on_queue()) == 1


def test_a_delivery_in_progress_elsewhere_answers_409(bridge: Bridge) -> None:
    # Another invocation has claimed the event and is still running.
    bridge.app.receiver._publisher._ledger.claim("evt_busy", hold_seconds=30)
    answer = bridge.deliver(webhook_event("evt_busy"))
    assert answer["statusCode"] == 409
    assert bridge.on_queue() == []


def test_a_claim_left_by_a_crashed_invocation_lapses(bridge: Bridge) -> None:
    ledger = bridge.app.receiver._publisher._ledger
    ledger.claim("evt_crashed", hold_seconds=1)
    ledger._clock = lambda: time.time() + 5  # the crashed invocation's time has run out
    assert bridge.deliver(webhook_event("evt_crashed"))["statusCode"] == 200
    assert len(bridge.on_queue()) == 1


def test_logs_name_the_event_but_never_the_secret_signature_or_body(
    bridge: Bridge, caplog: pytest.LogCaptureFixture
) -> None:
    body = webhook_event(data={"respondent": {"email": "ana@example.com"}})
    header = sign(body, SECRET, int(time.time()))
    bridge.deliver(body, headers={"P4F-Signature": header})
    bridge.deliver(body, secret="whsec_attacker")
    # Each record as the function writes it to CloudWatch: Powertools' JSON line.
    formatter = bridge.app.logger.registered_formatter
    lines = [json.loads(formatter.format(record)) for record in caplog.records]
    handled = [line for line in lines if line["message"] == "delivery handled"]
    assert [line["outcome"] for line in handled] == ["accepted", "rejected"]
    assert handled[0]["event_id"] == "evt_1"
    assert handled[0]["event_type"] == "reward_approved"
    logged = json.dumps(lines)
    for secret_thing in (SECRET, header.split("v1=")[1], "ana@example.com"):
        assert secret_thing not in logged


def emitted_metrics(printed: str) -> list[str]:
    """The metric names of the EMF blobs a handler printed, one blob per invocation."""
    blobs = [json.loads(line) for line in printed.splitlines() if '"CloudWatchMetrics"' in line]
    return [m["Name"] for blob in blobs for m in blob["_aws"]["CloudWatchMetrics"][0]["Metrics"]]


def test_only_a_signature_that_does_not_verify_counts_as_signature_rejected(
    bridge: Bridge, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    bridge.deliver(webhook_event(), secret="whsec_attacker")
    bridge.deliver(webhook_event(), headers={"P4F-Signature": ""})
    assert emitted_metrics(capsys.readouterr().out) == [
        "WebhookRejected", "WebhookSignatureRejected"
    ] * 2  # fmt: skip
    bridge.deliver(b"not json")
    bridge.deliver(webhook_event(), method="GET")
    bridge.deliver(webhook_event(padding="x" * 1_000_001))
    bridge.deliver(webhook_event())
    assert emitted_metrics(capsys.readouterr().out) == [
        "WebhookRejected", "WebhookRejected", "WebhookRejected", "WebhookAccepted"
    ]  # fmt: skip


def test_the_settings_need_a_target(load_function: LoadFunction) -> None:
    from p4f.settings import ConfigurationError

    with mock_aws(), pytest.raises(ConfigurationError, match="EVENT_BUS_NAME, FANOUT_QUEUE_URL"):
        load_function(
            "webhook_receiver",
            {"WEBHOOK_SECRET_ARN": "arn", "IDEMPOTENCY_TABLE": "t", "EVENT_BUS_NAME": ""},
        )


class Crash(Exception):
    """The invocation dies here (time-out, out of memory): nothing after it runs."""


@pytest.mark.filterwarnings("ignore:No application metrics to publish")
def test_a_crash_on_the_queue_after_the_bus_took_the_event_never_republishes_it(
    bridge: Bridge,
) -> None:
    bridge.app.receiver._fanout._queue = (
        Flaky(bridge.sqs, "send_message", Crash(), times=1),
        bridge.queue_url,
    )
    body = webhook_event("evt_crash")
    with pytest.raises(Crash):
        bridge.deliver(body)
    ledger = bridge.app.receiver._publisher._ledger
    ledger._clock = lambda: time.time() + 30  # the crashed invocation's claim has lapsed
    assert bridge.deliver(body)["statusCode"] == 200
    assert len(bridge.on_bus()) == 1  # recorded before the queue was tried
    assert len(bridge.on_queue()) == 1


def test_what_a_released_claim_recorded_outlives_a_later_crash(bridge: Bridge) -> None:
    ledger = bridge.app.receiver._publisher._ledger
    ledger.claim("evt_twice", hold_seconds=5)
    ledger.release("evt_twice", {"eventbridge"})
    assert ledger.claim("evt_twice", hold_seconds=5).done == {"eventbridge"}
    # That delivery dies without releasing; after its claim lapses, the next one still knows.
    ledger._clock = lambda: time.time() + 30
    assert ledger.claim("evt_twice", hold_seconds=5).done == {"eventbridge"}


def test_an_unreadable_signing_secret_answers_500_without_detail(bridge: Bridge) -> None:
    boto3.client("secretsmanager").delete_secret(
        SecretId="p4f/webhook-signing", ForceDeleteWithoutRecovery=True
    )
    bridge.app.receiver._secrets._value = None  # as in a new container
    answer = bridge.deliver(webhook_event())
    assert answer["statusCode"] == 500
    assert "p4f/webhook-signing" not in answer["body"]
    assert bridge.on_queue() == []


# --- bodies the bridge can never publish, and what it does with them (issue 12) ---------


def compact_event(event_id: str = "evt_1", **extra: Any) -> bytes:
    """webhook_event without its spacing: deep nesting stays small."""
    return json.dumps(json.loads(webhook_event(event_id, **extra)), separators=(",", ":")).encode()


def test_a_lone_surrogate_is_published_as_received(bridge: Bridge) -> None:
    # A client that cut an emoji in half: valid JSON, ASCII on the wire.
    body = webhook_event(data={"answers": [{"value": "Love it \ud83d"}]})
    assert b"\\ud83d" in body
    assert bridge.deliver(body)["statusCode"] == 200
    [on_bus] = bridge.on_bus()
    assert on_bus["detail"]["data"]["answers"][0]["value"] == "Love it \ud83d"
    [message] = bridge.on_queue()
    assert message["Body"] == body.decode()


def test_json_nested_past_eventbridges_limit_is_refused_with_422(bridge: Bridge) -> None:
    def nested(depth: int) -> bytes:  # the event is level 1, data 2, then the arrays
        return compact_event(data={"x": "deep"}).replace(b'"deep"', b"[" * depth + b"]" * depth)

    for depth in (999, 10_000, 100_000):
        answer = bridge.deliver(nested(depth))
        assert answer["statusCode"] == 422, depth
        assert "nested deeper than 1000 levels" in body_of(answer)["error"]
    assert bridge.deliver(nested(998))["statusCode"] == 200
    assert len(bridge.on_bus()) == 1


@pytest.mark.parametrize("created_at", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_a_created_at_eventbridge_cannot_carry_publishes_at_the_time_of_receipt(
    bridge: Bridge, created_at: str
) -> None:
    answer = bridge.deliver(webhook_event(created_at=created_at))
    assert answer["statusCode"] == 200
    [on_bus] = bridge.on_bus()
    assert on_bus["detail"]["created_at"] == created_at  # the body is untouched
    assert on_bus["time"].startswith(str(time.gmtime().tm_year))


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            webhook_event(event_id="evt_" + "x" * 2_045),
            "the event id is 2049 bytes; 1 to 2048 fit the idempotency table's key",
        ),
        (
            webhook_event(event_type="t" * 129),
            "the event type is 129 characters; EventBridge takes at most 128 as a detail-type",
        ),
        (
            webhook_event(data={"amount": 10**400}),
            "a number EventBridge cannot hold",
        ),
        (
            webhook_event(data={"amount": 9_223_372_036_854_775_808}),
            "a number EventBridge cannot hold",
        ),
        (
            webhook_event(data={"ratio": 1.5}).replace(b"1.5", b"1e400"),
            "the body holds 1e400, a number EventBridge cannot hold",
        ),
        (
            webhook_event(data={"note": "not a character \uffff"}).replace(
                b"\\uffff", "\uffff".encode()
            ),
            "U+FFFF, which SQS does not accept",
        ),
    ],
)
def test_an_event_aws_would_refuse_for_ever_gets_422_and_nothing_is_stored(
    bridge: Bridge, body: bytes, expected: str
) -> None:
    answer = bridge.deliver(body)
    assert answer["statusCode"] == 422
    assert expected in body_of(answer)["error"]
    assert bridge.on_bus() == []
    assert bridge.on_queue() == []
    table = bridge.app.receiver._publisher._ledger._table
    assert boto3.client("dynamodb").scan(TableName=table)["Items"] == []


def test_the_largest_int64_is_still_published(bridge: Bridge) -> None:
    assert bridge.deliver(webhook_event(data={"n": 2**63 - 1, "m": -(2**63)}))["statusCode"] == 200


def test_an_entry_over_eventbridges_size_is_refused_with_413(bridge: Bridge) -> None:
    short = compact_event()
    body = compact_event(padding="x" * (1_000_000 - len(short) - len(',"padding":""')))
    assert len(body) == 1_000_000  # the largest body, too large with source and detail-type
    answer = bridge.deliver(body)
    assert answer["statusCode"] == 413
    assert "EventBridge takes at most 1000000 bytes" in body_of(answer)["error"]


def test_a_message_over_sqs_size_with_its_attributes_is_refused_with_413(
    load_function: LoadFunction,
) -> None:
    with mock_aws():
        sqs_only = make_bridge(load_function, EVENT_BUS_NAME="")
        answer = sqs_only.deliver(webhook_event(tenant_id="t" * 600_000))
        assert answer["statusCode"] == 413
        assert "SQS takes at most 1048576 bytes" in body_of(answer)["error"]
        assert sqs_only.on_queue() == []


def test_what_only_eventbridge_refuses_goes_to_an_sqs_only_queue(
    load_function: LoadFunction,
) -> None:
    with mock_aws():
        sqs_only = make_bridge(load_function, EVENT_BUS_NAME="")
        assert sqs_only.deliver(webhook_event(event_type="t" * 129))["statusCode"] == 200
        assert len(sqs_only.on_queue()) == 1


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity"])
def test_nan_and_infinity_are_not_json_and_get_400(bridge: Bridge, literal: bytes) -> None:
    body = webhook_event(data={"score": 1}).replace(b'"score": 1', b'"score": ' + literal)
    answer = bridge.deliver(body)
    assert answer["statusCode"] == 400
    assert "not JSON" in body_of(answer)["error"]
    assert bridge.on_bus() == []


def test_a_fifo_queue_gets_valid_ids_for_ids_sqs_would_refuse(load_function: LoadFunction) -> None:
    with mock_aws():
        fifo = make_bridge(load_function, fifo=True)
        assert (
            fifo.deliver(webhook_event("evt " + "x" * 200, tenant_id="tenant één"))["statusCode"]
            == 200
        )
        [message] = fifo.sqs.receive_message(QueueUrl=fifo.queue_url, AttributeNames=["All"])[
            "Messages"
        ]
        group, dedupe = (
            message["Attributes"]["MessageGroupId"],
            message["Attributes"]["MessageDeduplicationId"],
        )
        for sqs_id in (group, dedupe):
            assert re.fullmatch(r"[!-~]{1,128}", sqs_id)


# --- the fan-out queue recorded as done (issue 12, defect 5) -----------------------------


def test_a_queue_send_whose_completion_was_throttled_is_not_sent_again(bridge: Bridge) -> None:
    throttled = ClientError({"Error": {"Code": "ThrottlingException"}}, "UpdateItem")
    ledger = bridge.app.receiver._publisher._ledger
    real = ledger._dynamodb
    refused: list[str] = []

    class ThrottledOnce:
        """The idempotency table, refusing the first write that marks the event published
        (after botocore's own retries: the call fails)."""

        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def update_item(self, **kwargs: Any) -> Any:
            if "COMPLETED" in str(kwargs.get("ExpressionAttributeValues")) and not refused:
                refused.append(kwargs["UpdateExpression"])
                raise throttled
            return real.update_item(**kwargs)

    ledger._dynamodb = ThrottledOnce()
    body = webhook_event("evt_unmarked")
    assert bridge.deliver(body)["statusCode"] == 200
    assert refused
    ledger._dynamodb = real
    ledger._clock = lambda: time.time() + 30  # a redelivery, once any claim has lapsed
    again = bridge.deliver(body)
    assert body_of(again)["data"] == {"event_id": "evt_unmarked", "duplicate": True}
    assert len(bridge.on_bus()) == 1
    assert len(bridge.on_queue()) == 1


def test_the_queue_target_is_recorded_with_the_completion(bridge: Bridge) -> None:
    assert bridge.deliver(webhook_event("evt_both"))["statusCode"] == 200
    item = boto3.client("dynamodb").get_item(
        TableName="idempotency", Key={"id": {"S": "evt_both"}}
    )["Item"]
    assert item["status"]["S"] == "COMPLETED"
    assert set(item["done"]["SS"]) == {"eventbridge", "sqs"}


def test_a_claim_whose_answer_was_lost_is_taken_by_its_own_retry(bridge: Bridge) -> None:
    ledger = bridge.app.receiver._publisher._ledger
    real = ledger._dynamodb

    class AnswerLostOnce:
        """The idempotency table: the claim is written, its answer lost, and botocore sends
        the same request again."""

        lost = False

        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def update_item(self, **kwargs: Any) -> Any:
            if "IN_PROGRESS" in str(kwargs["ExpressionAttributeValues"]) and not self.lost:
                self.lost = True
                real.update_item(**kwargs)
            return real.update_item(**kwargs)

    ledger._dynamodb = AnswerLostOnce()
    assert bridge.deliver(webhook_event("evt_lost_claim"))["statusCode"] == 200  # not 409
    assert ledger._dynamodb.lost
    assert len(bridge.on_bus()) == 1
