"""The trigger table's protocol, against DynamoDB in moto (the table as template.yaml makes it)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import boto3
import pytest
from moto import mock_aws
from trigger_ledger import RETENTION_SECONDS, ClaimLostError, ClaimOutcome, TriggerLedger

from local.template import Template
from p4f.models import Campaign

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

KEY = "external_id:crm-7"
BODY = "fingerprint-of-the-body"


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def dynamodb() -> Iterator[DynamoDBClient]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(**Template.load().table_definition("TriggerTable", "trigger"))
        yield client


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ledger(dynamodb: DynamoDBClient, clock: Clock) -> TriggerLedger:
    return TriggerLedger("trigger", dynamodb, clock=clock)


def campaign(campaign_id: str = "c-1") -> Campaign:
    return Campaign.model_validate(
        {
            "id": campaign_id,
            "name": "Checkout feedback",
            "status": "ACTIVE",
            "reward": {"amount": "5.00", "currency": "USD"},
            "created_at": "2026-11-26T10:00:00Z",
            "updated_at": "2026-11-26T10:00:00Z",
            "added_later": "kept",
        }
    )


def test_a_new_key_is_claimed_since_now(ledger: TriggerLedger, clock: Clock) -> None:
    claim = ledger.claim(KEY, BODY, hold_seconds=20)
    assert claim.outcome is ClaimOutcome.NEW
    assert claim.since == datetime.fromtimestamp(clock.now, UTC)
    assert claim.holder


def test_a_held_key_is_busy_until_its_holder_runs_out(ledger: TriggerLedger, clock: Clock) -> None:
    ledger.claim(KEY, BODY, hold_seconds=20)
    clock.now += 5
    busy = ledger.claim(KEY, BODY, hold_seconds=20)
    assert busy.outcome is ClaimOutcome.BUSY
    assert busy.retry_after == 15
    clock.now += 16  # the holder crashed or timed out
    resumed = ledger.claim(KEY, BODY, hold_seconds=20)
    assert resumed.outcome is ClaimOutcome.RESUMED
    assert resumed.since == datetime.fromtimestamp(clock.now - 21, UTC)  # the first attempt's


def test_a_completed_key_returns_its_campaign(ledger: TriggerLedger) -> None:
    claim = ledger.claim(KEY, BODY, hold_seconds=20)
    ledger.complete(claim, campaign())
    again = ledger.claim(KEY, BODY, hold_seconds=20)
    assert again.outcome is ClaimOutcome.COMPLETED
    assert again.campaign == campaign()
    assert again.campaign is not None
    assert again.campaign.model_extra == {"added_later": "kept"}


@pytest.mark.parametrize("state", ["held", "released", "completed"])
def test_a_key_with_another_body_is_a_mismatch_whatever_its_state(
    ledger: TriggerLedger, state: str
) -> None:
    claim = ledger.claim(KEY, BODY, hold_seconds=20)
    if state == "released":
        ledger.release(claim)
    elif state == "completed":
        ledger.complete(claim, campaign())
    assert ledger.claim(KEY, "another body", hold_seconds=20).outcome is ClaimOutcome.MISMATCH


def test_a_released_key_resumes_with_what_the_attempt_recorded(
    ledger: TriggerLedger, clock: Clock
) -> None:
    first = ledger.claim(KEY, BODY, hold_seconds=20)
    assert ledger.adopt(first, "c-1")
    ledger.release(first)
    clock.now += 60
    resumed = ledger.claim(KEY, BODY, hold_seconds=20)
    assert resumed.outcome is ClaimOutcome.RESUMED
    assert resumed.campaign_id == "c-1"
    assert resumed.since == first.since


def test_a_campaign_belongs_to_one_key(ledger: TriggerLedger) -> None:
    mine = ledger.claim(KEY, BODY, hold_seconds=20)
    theirs = ledger.claim("external_id:crm-8", BODY, hold_seconds=20)
    assert ledger.adopt(mine, "c-1")
    assert ledger.adopt(mine, "c-1")  # again: still mine
    assert not ledger.adopt(theirs, "c-1")
    assert ledger.adopt(theirs, "c-2")


def test_a_claim_taken_over_by_another_invocation_can_change_nothing(
    ledger: TriggerLedger, clock: Clock
) -> None:
    stale = ledger.claim(KEY, BODY, hold_seconds=5)
    clock.now += 6
    current = ledger.claim(KEY, BODY, hold_seconds=20)
    assert current.outcome is ClaimOutcome.RESUMED
    with pytest.raises(ClaimLostError, match="another invocation took over"):
        ledger.complete(stale, campaign())
    with pytest.raises(ClaimLostError):
        ledger.release(stale)
    ledger.complete(current, campaign("c-2"))
    completed = ledger.claim(KEY, BODY, hold_seconds=20)
    assert completed.campaign_id == "c-2"


def test_items_expire_after_the_retention(
    ledger: TriggerLedger, dynamodb: DynamoDBClient, clock: Clock
) -> None:
    claim = ledger.claim(KEY, BODY, hold_seconds=20)
    ledger.adopt(claim, "c-1")
    for key in (KEY, "campaign:c-1"):
        item = dynamodb.get_item(TableName="trigger", Key={"key": {"S": key}})["Item"]
        assert int(item["expires_at"]["N"]) == int(clock.now) + RETENTION_SECONDS
    ttl = Template.load().table_ttl_attribute("TriggerTable")
    assert ttl == "expires_at"
