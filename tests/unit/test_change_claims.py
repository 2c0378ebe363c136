"""Change identities (p4f.changes) and their claim beside the event's (p4f.dedupe): whichever
of a webhook and the reconciler's event for one change comes second is a duplicate."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import boto3
import pytest
from moto import mock_aws

from local.sample_events import catalogue_event
from local.template import Template
from p4f.changes import CHANGE_TIME_FIELDS, Change, change_of
from p4f.dedupe import ClaimOutcome, DeliveryLedger
from p4f.fanout import ReceivedEvent
from p4f.models import EventType
from p4f.retries import Deadline

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

TABLE = "idempotency"
AT = datetime(2026, 4, 19, 14, 22, 51, tzinfo=UTC)


@pytest.fixture
def dynamodb() -> Iterator[DynamoDBClient]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(**Template.load().table_definition("IdempotencyTable", TABLE))
        yield client


@pytest.fixture
def ledger(dynamodb: DynamoDBClient) -> DeliveryLedger:
    return DeliveryLedger(TABLE, dynamodb)


def test_each_change_type_is_dated_by_its_own_field() -> None:
    for event_type, field in CHANGE_TIME_FIELDS.items():
        data = catalogue_event(EventType(event_type))["data"]
        change = change_of(event_type, data)
        assert change is not None
        assert change.at == datetime.fromisoformat(data[field]).astimezone(UTC)
        assert change.resource_id == data["id"]


def test_repeatable_types_are_told_apart_by_their_time() -> None:
    data = catalogue_event(EventType.CAMPAIGN_UPDATED)["data"]
    first = change_of("campaign_updated", data)
    later = change_of("campaign_updated", data | {"updated_at": "2026-04-19T15:00:00Z"})
    assert first is not None
    assert later is not None
    assert first.key != later.key
    assert first.event_id != later.event_id
    assert first == change_of("campaign_updated", data | {"updated_at": data["updated_at"]})


def test_the_same_instant_written_otherwise_is_the_same_change() -> None:
    data = {"id": "r1", "submitted_at": "2026-04-19T14:22:51Z"}
    other = data | {"submitted_at": "2026-04-19T16:22:51+02:00"}
    assert change_of("response_submitted", data) == change_of("response_submitted", other)


@pytest.mark.parametrize(
    ("event_type", "data"),
    [
        ("payout_completed", {"id": "p1", "completed_at": "2026-04-19T14:22:51Z"}),
        ("ping", {"webhook_id": "w1"}),
        ("reward_approved", {"id": "r1", "reviewed_at": None}),
        ("campaign_created", {"created_at": "2026-04-19T14:22:51Z"}),
        ("campaign_created", ["not", "an", "object"]),
        ("response_scored", {"id": "r1", "submitted_at": "yesterday"}),
    ],
)
def test_events_about_no_listed_change_have_no_identity(event_type: str, data: object) -> None:
    assert change_of(event_type, data) is None


def test_the_received_event_carries_its_change() -> None:
    body = catalogue_event(EventType.REWARD_APPROVED)
    received = ReceivedEvent.parse(json.dumps(body).encode())
    assert received.change == change_of("reward_approved", body["data"])


def test_a_webhook_then_the_reconcilers_event_for_its_change_is_a_duplicate(
    ledger: DeliveryLedger,
) -> None:
    change = Change("r1", "reward_approved", AT)
    assert ledger.claim("evt_webhook", 5, change).outcome is ClaimOutcome.NEW
    ledger.complete("evt_webhook", ["eventbridge"], Deadline(5))
    assert ledger.claim(change.event_id, 5, change).outcome is ClaimOutcome.DUPLICATE
    # Another change of the same resource is another claim.
    other = Change("r1", "response_scored", AT)
    assert ledger.claim(other.event_id, 5, other).outcome is ClaimOutcome.NEW


def test_the_reconcilers_event_then_the_webhook_is_a_duplicate_even_while_in_progress(
    ledger: DeliveryLedger,
) -> None:
    change = Change("c1", "campaign_paused", AT)
    assert ledger.claim(change.event_id, 5, change).outcome is ClaimOutcome.NEW
    assert ledger.claim("evt_webhook", 5, change).outcome is ClaimOutcome.DUPLICATE
    ledger.complete(change.event_id, ["eventbridge"], Deadline(5))
    assert ledger.claim("evt_webhook", 5, change).outcome is ClaimOutcome.DUPLICATE


def test_a_redelivered_webhook_keeps_its_own_change(ledger: DeliveryLedger) -> None:
    change = Change("c1", "campaign_updated", AT)
    assert ledger.claim("evt_webhook", 5, change).outcome is ClaimOutcome.NEW
    ledger.release("evt_webhook", ["eventbridge"], change)  # the queue failed: a retry comes
    again = ledger.claim("evt_webhook", 5, change)
    assert (again.outcome, again.done) == (ClaimOutcome.NEW, frozenset({"eventbridge"}))
    assert ledger.claim(change.event_id, 5, change).outcome is ClaimOutcome.DUPLICATE
    ledger.complete("evt_webhook", ["eventbridge", "sqs"], Deadline(5))
    assert ledger.claim("evt_webhook", 5, change).outcome is ClaimOutcome.DUPLICATE


def test_a_claim_released_with_nothing_published_gives_the_change_back(
    ledger: DeliveryLedger, dynamodb: DynamoDBClient
) -> None:
    change = Change("r1", "response_submitted", AT)
    assert ledger.claim(change.event_id, 5, change).outcome is ClaimOutcome.NEW
    ledger.release(change.event_id, [], change)
    assert dynamodb.scan(TableName=TABLE)["Items"] == []
    assert ledger.claim("evt_webhook", 5, change).outcome is ClaimOutcome.NEW


def test_giving_back_leaves_a_change_another_event_holds(ledger: DeliveryLedger) -> None:
    change = Change("r1", "response_submitted", AT)
    assert ledger.claim("evt_webhook", 5, change).outcome is ClaimOutcome.NEW
    ledger.release(change.event_id, [], change)  # an event that never held the change
    assert ledger.claim(change.event_id, 5, change).outcome is ClaimOutcome.DUPLICATE


def test_two_webhooks_of_one_change_are_two_events_but_the_reconcilers_is_a_duplicate(
    ledger: DeliveryLedger,
) -> None:
    change = Change("c1", "campaign_updated", AT)  # two edits in one second
    assert ledger.claim("evt_first_edit", 5, change).outcome is ClaimOutcome.NEW
    assert ledger.claim("evt_second_edit", 5, change).outcome is ClaimOutcome.NEW
    assert ledger.claim(change.event_id, 5, change).outcome is ClaimOutcome.DUPLICATE
