"""p4f.models parse defensively: unknown fields kept, unknown enum values and types accepted."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import ValidationError

from p4f.models import (
    EVENT_DATA_MODELS,
    EventType,
    Payout,
    PayoutStatus,
    Quality,
    Response,
    WebhookEvent,
)

PAYOUT = {
    "id": "po_1",
    "response_id": "r1",
    "campaign_id": "c1",
    "respondent": {"id": "resp_1", "email": None},
    "amount": "5.10",
    "currency": "USD",
    "status": "FAILED",
    "failure_reason": "Card declined",
    "completed_at": "2026-11-26T10:00:00Z",
}


def test_money_is_decimal_and_goes_back_out_as_the_same_string() -> None:
    payout = Payout.model_validate(PAYOUT)
    assert payout.amount == Decimal("5.10")
    assert payout.status is PayoutStatus.FAILED
    assert payout.model_dump(mode="json")["amount"] == "5.10"


def test_unknown_fields_survive_a_round_trip() -> None:
    payout = Payout.model_validate(PAYOUT | {"fee": {"amount": "0.10"}})
    assert payout.model_dump(mode="json") == PAYOUT | {"fee": {"amount": "0.10"}}


def test_unknown_enum_values_stay_strings() -> None:
    payout = Payout.model_validate(PAYOUT | {"status": "REVERSED"})
    assert payout.status == "REVERSED"
    assert not isinstance(payout.status, PayoutStatus)


def test_every_catalogue_type_has_a_resource_model() -> None:
    assert set(EVENT_DATA_MODELS) == set(EventType)


def test_an_event_parses_its_resource_by_type() -> None:
    event = WebhookEvent.model_validate(
        {
            "id": "evt_1",
            "type": "payout_failed",
            "created_at": "2026-11-26T10:00:00Z",
            "tenant_id": "t1",
            "api_version": "v1",
            "data": PAYOUT,
        }
    )
    assert event.type is EventType.PAYOUT_FAILED
    assert isinstance(event.resource(), Payout)


def test_an_unknown_event_type_is_kept_with_its_data_unparsed() -> None:
    event = WebhookEvent.model_validate(
        {
            "id": "evt_2",
            "type": "respondent_banned",
            "created_at": "2026-11-26T10:00:00Z",
            "tenant_id": "t1",
            "data": {"respondent_id": "resp_1"},
            "severity": "high",
        }
    )
    assert event.type == "respondent_banned"
    assert event.resource() is None
    assert event.model_extra == {"severity": "high"}
    assert event.data == {"respondent_id": "resp_1"}


def test_quality_may_be_null_on_a_submitted_response() -> None:
    response = Response.model_validate(
        {
            "id": "r1",
            "campaign_id": "c1",
            "status": "PENDING",
            "respondent": {"id": "resp_1", "email": "ana@example.com"},
            "answers": [{"question_id": "q1", "prompt": "Rate us", "value": 9}],
            "quality": None,
            "reward": {"amount": "5.00", "currency": "USD"},
            "rejection_reason": None,
            "submitted_at": "2026-11-26T10:00:00Z",
            "reviewed_at": None,
        }
    )
    assert response.quality is None
    assert response.answers[0].value == 9


def test_amounts_never_serialise_in_exponent_notation() -> None:
    payout = Payout.model_validate(PAYOUT | {"amount": "1E+2"})
    assert payout.model_dump(mode="json")["amount"] == "100"


def test_a_score_outside_0_to_100_is_refused_and_whole_scores_stay_integers() -> None:
    quality = {"score": 87, "verdict": "high", "breakdown": {"depth": 81}}
    assert Quality.model_validate(quality).model_dump(mode="json")["score"] == 87
    with pytest.raises(ValidationError):
        Quality.model_validate(quality | {"score": 101})
    with pytest.raises(ValidationError):
        Quality.model_validate(quality | {"breakdown": {"depth": -1}})
