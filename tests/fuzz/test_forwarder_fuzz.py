"""The forwarders' record parsing and encoding fuzzed (Hypothesis): whatever a record holds,
it is read as an event or reported poison, alone, and what the services are sent is
always valid UTF-8 JSON; no exception escapes `forward_batch`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from hypothesis import given
from hypothesis import strategies as st
from segment_calls import calls_for
from slack_messages import DashboardLinks, render

from local.lambda_events import LocalLambdaContext, sqs_event, sqs_record
from p4f.forwarding import (
    ForwardingError,
    PoisonRecordError,
    Prepared,
    QueuedEvent,
    forward_batch,
    read_record,
)
from p4f.json_text import encode_json
from tests.conftest import FORWARDER_QUEUE_ARN
from tests.fuzz.strategies import any_text, event_bodies, json_values


@st.composite
def record_bodies(draw: st.DrawFn) -> str:
    """What a forwarder's queue may hold: an EventBridge event around a webhook body (odd
    or not), around any JSON, or anything at all."""
    envelope = {"version": "0", "id": "e1", "detail-type": "x", "source": "pay4feedback"}
    match draw(st.sampled_from(["event", "json", "text"])):
        case "event":
            body = draw(event_bodies())
            try:
                detail = json.loads(body)
            except (ValueError, RecursionError):
                return body.decode("utf-8", "replace")
            return json.dumps(envelope | {"detail": detail})
        case "json":
            return json.dumps(
                envelope
                | {"source": draw(st.just("pay4feedback") | any_text), "detail": draw(json_values)}
            )
        case _:  # an SQS body is UTF-8 on the wire: no lone surrogate can be in one
            return draw(st.text(st.characters(exclude_categories=["Cs"]), max_size=60))


def record_of(body: str, n: int = 0) -> dict[str, Any]:
    return sqs_record(body, queue_arn=FORWARDER_QUEUE_ARN, message_id=f"m-{n}")


def read_or_poison(body: str) -> QueuedEvent | PoisonRecordError:
    try:
        return read_record(SQSRecord(record_of(body)))
    except PoisonRecordError as exc:
        return exc


@given(body=record_bodies())
def test_a_record_is_an_event_or_poison_that_says_why(body: str) -> None:
    read = read_or_poison(body)
    if isinstance(read, PoisonRecordError):
        assert str(read)
    else:
        assert read.event.id


class BothServices:
    """A forwarder whose `prepare` is what Slack and Segment are sent for the event, and
    which delivers everything."""

    def prepare(self, queued: QueuedEvent) -> list[bytes]:
        return [
            encode_json(render(queued, DashboardLinks())),
            *(call.encoded for call in calls_for(queued, personal_data=True)),
        ]

    def forward(
        self, batch: Sequence[Prepared[list[bytes]]], seconds: float
    ) -> dict[str, ForwardingError]:
        for item in batch:
            for content in item.content:
                json.loads(content.decode("utf-8"))  # strict UTF-8, valid JSON
        return {}


@given(bodies=st.lists(record_bodies(), min_size=1, max_size=6))
def test_a_batch_reports_exactly_its_poison_records(bodies: list[str]) -> None:
    records = [record_of(body, n) for n, body in enumerate(bodies)]
    metrics = Metrics(namespace="P4fBridgeFuzz", service="fuzz")
    answer = forward_batch(sqs_event(records), LocalLambdaContext("f", 30), BothServices(), metrics)
    metrics.clear_metrics()
    failed = {failure["itemIdentifier"] for failure in answer["batchItemFailures"]}
    for record in records:
        try:
            queued = read_record(SQSRecord(record))
            BothServices().prepare(queued)
        except (PoisonRecordError, ValueError, TypeError, RecursionError):
            assert record["messageId"] in failed
        else:
            assert record["messageId"] not in failed
