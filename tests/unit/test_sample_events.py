"""The committed samples in events/ are what they say they are."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import trigger_http
import trigger_queue
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from trigger_body import TriggerBody

from local.sample_events import (
    EVENTS_DIR,
    FORWARDER_EVENT_TYPES,
    SAMPLE_SECRET,
    SAMPLE_TIMESTAMP,
    SAMPLE_TRIGGER,
    SAMPLE_TRIGGER_TOKEN,
    samples,
    write,
)
from local.template import Template
from p4f.fanout import ReceivedEvent
from p4f.forwarding import read_record
from p4f.function_url import HttpRequest
from p4f.models import Response, WebhookEvent
from p4f.signing import (
    SIGNATURE_HEADER,
    SignatureMismatchError,
    TimestampToleranceError,
    verify,
)


def load(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EVENTS_DIR / name).read_text())
    return loaded


def test_the_committed_samples_are_the_generated_ones_apart_from_ids_and_clocks(
    tmp_path: Path,
) -> None:
    generated = write(tmp_path, SAMPLE_TIMESTAMP)
    for path in generated:
        committed = json.loads((EVENTS_DIR / path.relative_to(tmp_path)).read_text())
        fresh = json.loads(path.read_text())
        assert committed.keys() == fresh.keys()
        assert committed.get("body") == fresh.get("body")
        assert committed.get("headers") == fresh.get("headers")
        assert committed.get("detail") == fresh.get("detail")
        bodies = [record["body"] for record in committed.get("Records", [])]
        assert bodies == [record["body"] for record in fresh.get("Records", [])]
    assert {str(p.relative_to(tmp_path)) for p in generated} == set(samples(SAMPLE_TIMESTAMP))


def test_the_signed_sample_verifies_with_the_documented_secret() -> None:
    request = HttpRequest.from_event(load("webhook_receiver/signed.json"))
    header = request.header(SIGNATURE_HEADER)
    assert verify(request.body, header, [SAMPLE_SECRET], now=SAMPLE_TIMESTAMP) == SAMPLE_TIMESTAMP
    event = WebhookEvent.model_validate_json(request.body)
    assert isinstance(event.resource(), Response)
    assert SAMPLE_SECRET in (EVENTS_DIR / "README.md").read_text()


def test_the_forged_sample_does_not_verify() -> None:
    request = HttpRequest.from_event(load("webhook_receiver/forged.json"))
    with pytest.raises(SignatureMismatchError):
        verify(
            request.body, request.header(SIGNATURE_HEADER), [SAMPLE_SECRET], now=SAMPLE_TIMESTAMP
        )


def test_the_stale_sample_is_outside_the_tolerance() -> None:
    request = HttpRequest.from_event(load("webhook_receiver/stale.json"))
    with pytest.raises(TimestampToleranceError):
        verify(
            request.body, request.header(SIGNATURE_HEADER), [SAMPLE_SECRET], now=SAMPLE_TIMESTAMP
        )


def test_the_queue_and_bus_samples_carry_the_event_untouched() -> None:
    record = load("fanout_queue/sqs_batch.json")["Records"][0]
    event = ReceivedEvent.parse(record["body"].encode())
    assert record["messageAttributes"]["event_id"]["stringValue"] == event.id
    on_bus = load("event_bus/reward_approved.json")
    assert on_bus["detail"] == json.loads(event.body)
    assert on_bus["source"] == "pay4feedback"
    assert on_bus["detail-type"] == "reward_approved"


def test_the_trigger_request_sample_is_a_valid_trigger_with_the_documented_token() -> None:
    request = HttpRequest.from_event(load("campaign_trigger/http_request.json"))
    assert (request.method, request.path) == ("POST", trigger_http.PATH)
    assert request.header("authorization") == f"Bearer {SAMPLE_TRIGGER_TOKEN}"
    assert request.header(trigger_http.IDEMPOTENCY_HEADER)
    assert TriggerBody.parse(request.body) == TriggerBody.parse(SAMPLE_TRIGGER)
    assert SAMPLE_TRIGGER_TOKEN in (EVENTS_DIR / "README.md").read_text()


def test_the_create_campaign_samples_carry_the_trigger_as_the_rule_delivers_it() -> None:
    on_bus = load("event_bus/create_campaign.json")
    assert on_bus["detail-type"] == trigger_queue.CREATE_CAMPAIGN
    assert TriggerBody.parse(on_bus["detail"]) == TriggerBody.parse(SAMPLE_TRIGGER)
    [record] = load("campaign_trigger/sqs_batch.json")["Records"]
    assert json.loads(record["body"])["detail"] == on_bus["detail"]


@pytest.mark.parametrize(("function", "parameter"), FORWARDER_EVENT_TYPES.items())
def test_each_forwarders_sample_is_a_batch_of_the_types_its_rule_lets_through(
    function: str, parameter: str
) -> None:
    records = load(f"{function}/sqs_batch.json")["Records"]
    events = [read_record(SQSRecord(record)).event for record in records]
    assert [str(e.type) for e in events] == Template.load().default(parameter).split(",")
    assert len(records) <= 10  # the event source mapping's BatchSize
    assert all(json.loads(r["body"])["source"] == "pay4feedback" for r in records)
