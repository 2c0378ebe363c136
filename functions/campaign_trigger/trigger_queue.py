"""The trigger's queue entry: CreateCampaign events from the bridge's bus, through its queue.

Each record's body is an EventBridge event as the rule delivers it; its `detail` is the
trigger's body, and its key is the detail's external_id, else the event's id (so that no
redelivery makes a second campaign). What becomes of a record:

    created / replayed                CampaignTriggerSucceeded on the bus; record done
    refused: an invalid detail, the   CampaignTriggerFailed on the bus; record done
      API's 400/409, a reused key       (retrying cannot help)
    deferred: rate limited, or the    sent to the queue again with DelaySeconds =
      key held by another invocation    Retry-After (p4f.deferral); record done (never
                                        counted towards the DLQ: rate limiting is not a
                                        failure, unless it lasts a day)
    failed: 5xx, no answer, AWS, or   a batch item failure: SQS delivers it again after the
      not a CreateCampaign event        visibility timeout, and moves it to the DLQ after
                                        maxReceiveCount deliveries

Once a record is rate limited, the rest of the batch is deferred without calling the API,
as is every record left when too little time remains. A record is reported done only once
its outcome event or its deferred copy was accepted; else it is a batch item failure.

Outcome events: source `p4f-bridge`, detail-type CampaignTriggerSucceeded or
CampaignTriggerFailed, detail {"correlation_id": <the CreateCampaign event's id>,
"external_id": <or null>, "campaign": {...}} or {..., "error": {"status", "message"}}:
the models below, from which the event catalogue (schemas/) is generated.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, Field, JsonValue
from trigger import Outcome, TriggerRequest, TriggerResult, refused
from trigger_body import InvalidTriggerError, TriggerBody

from p4f.deferral import Deferred
from p4f.fanout import BRIDGE_SOURCE
from p4f.json_text import encode_json
from p4f.models import Campaign

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Mapping, Sequence

    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_events.type_defs import PutEventsRequestEntryTypeDef
    from trigger import CampaignTrigger

    from p4f.deferral import Deferral

logger = Logger(child=True)

CREATE_CAMPAIGN = "CreateCampaign"
SUCCEEDED = "CampaignTriggerSucceeded"
FAILED = "CampaignTriggerFailed"
MIN_SECONDS_PER_RECORD = 5.0
"""A record is not started with less time left than this: it is deferred instead."""
_BATCH_LIMIT = 10
"""Entries a PutEvents or SendMessageBatch call takes at most."""
_OUT_OF_TIME = TriggerResult(
    Outcome.DEFERRED, 503, error="too little time left in this invocation", retry_after=0
)


class TriggerError(BaseModel):
    """Why a CreateCampaign event made no campaign."""

    status: int = Field(description="400 (the event's detail), or the API's 400 or 409.")
    message: str = Field(description="What was wrong, naming the field, and what to do.")


class CampaignTriggerSucceeded(BaseModel):
    """Detail of CampaignTriggerSucceeded: the campaign a CreateCampaign event made (or the
    one its external_id made before)."""

    correlation_id: str = Field(description="The id of the CreateCampaign event.")
    external_id: str | None = Field(description="The event's external_id, as it was sent.")
    campaign: Campaign


class CampaignTriggerFailed(BaseModel):
    """Detail of CampaignTriggerFailed: a CreateCampaign event that can never make a
    campaign as it is (retrying cannot help)."""

    correlation_id: str = Field(description="The id of the CreateCampaign event.")
    external_id: str | None = Field(description="The event's external_id, as it was sent.")
    error: TriggerError


OUTCOME_MODELS: dict[str, type[BaseModel]] = {
    SUCCEEDED: CampaignTriggerSucceeded,
    FAILED: CampaignTriggerFailed,
}
"""The detail of each outcome event, by detail-type."""


class BusEvent(BaseModel):
    """The parts of an EventBridge event the trigger reads."""

    id: str
    detail_type: str = Field(alias="detail-type")
    detail: JsonValue


@dataclass(frozen=True)
class Handled:
    """One record and what became of it."""

    message_id: str
    record: Mapping[str, Any]
    """The SQS record as Lambda gave it."""
    result: TriggerResult
    correlation_id: str = ""
    """The CreateCampaign event's id (none for a message that is not an event)."""
    external_id: str | None = None


@dataclass(frozen=True)
class Batch:
    """A batch's records and the ones SQS must deliver again."""

    handled: list[Handled]
    retried: frozenset[str]
    """Message ids reported as batch item failures."""

    def answer(self) -> dict[str, Any]:
        """The Lambda answer for ReportBatchItemFailures."""
        return {
            "batchItemFailures": [
                {"itemIdentifier": one.message_id}
                for one in self.handled
                if one.message_id in self.retried
            ]
        }


class TriggerQueue:
    def __init__(
        self,
        trigger: CampaignTrigger,
        *,
        events: EventBridgeClient,
        bus_name: str,
        deferral: Deferral,
    ) -> None:
        self._trigger = trigger
        self._events = events
        self._bus_name = bus_name
        self._deferral = deferral

    def consume(
        self, records: Sequence[Mapping[str, Any]], seconds_left: Callable[[], float]
    ) -> Batch:
        """Handle a batch; `seconds_left()` is how long this invocation may still run."""
        handled: list[Handled] = []
        rest: TriggerResult | None = None  # once set, what the rest of the batch gets
        for record in records:
            if rest is None and seconds_left() < MIN_SECONDS_PER_RECORD:
                rest = _OUT_OF_TIME
            one = self._handle(record, seconds_left, rest)
            if rest is None and one.result.outcome is Outcome.DEFERRED and one.result.status == 429:
                rest = TriggerResult(
                    Outcome.DEFERRED,
                    429,
                    error="deferred: an earlier record of the batch was rate limited",
                    retry_after=one.result.retry_after,
                )
            handled.append(one)
        retried = {one.message_id for one in handled if one.result.outcome is Outcome.FAILED}
        retried |= self._publish([one for one in handled if one.result.outcome in _PUBLISHED])
        retried |= self._deferral.defer(
            [
                Deferred.of(one.record, one.result.retry_after or 0)
                for one in handled
                if one.result.outcome is Outcome.DEFERRED
            ]
        )
        return Batch(handled, frozenset(retried))

    def _handle(
        self,
        record: Mapping[str, Any],
        seconds_left: Callable[[], float],
        rest: TriggerResult | None,
    ) -> Handled:
        message_id = str(record["messageId"])
        try:
            # json.loads, not model_validate_json: that refuses a lone surrogate (half an
            # emoji), which a detail may hold and the trigger reads like any other text.
            event = BusEvent.model_validate(json.loads(str(record["body"])))
        except (ValueError, RecursionError):  # ValidationError is a ValueError
            reason = "the message is not an EventBridge event (only the rule may send here)"
            return Handled(message_id, record, TriggerResult(Outcome.FAILED, 500, error=reason))
        if event.detail_type != CREATE_CAMPAIGN:
            reason = f"a {event.detail_type!r} event; only {CREATE_CAMPAIGN} creates a campaign"
            failed = TriggerResult(Outcome.FAILED, 500, error=reason)
            return Handled(message_id, record, failed, event.id)
        external_id = _external_id(event.detail)
        try:
            body = TriggerBody.parse(event.detail)
        except InvalidTriggerError as exc:
            return Handled(message_id, record, refused(400, str(exc)), event.id, external_id)
        if rest is not None:
            return Handled(message_id, record, rest, event.id, external_id)
        request = TriggerRequest(body, body.idempotency_key(event_id=event.id))
        result = self._trigger.trigger(request, seconds_left())
        return Handled(message_id, record, result, event.id, external_id)

    def _publish(self, handled: Sequence[Handled]) -> set[str]:
        """Put each record's outcome event on the bus; the ids of those not accepted."""
        not_accepted: set[str] = set()
        for chunk in _chunks(handled):
            try:
                answer = self._events.put_events(
                    Entries=[outcome_entry(one, self._bus_name) for one in chunk]
                )
            except (ClientError, BotoCoreError):
                logger.exception("the bus did not accept the outcome events")
                not_accepted |= {one.message_id for one in chunk}
                continue
            for one, entry in zip(chunk, answer["Entries"], strict=True):
                if entry.get("ErrorCode"):
                    logger.error("an outcome event was not accepted", extra=dict(entry))
                    not_accepted.add(one.message_id)
        return not_accepted


_PUBLISHED: Collection[Outcome] = (Outcome.CREATED, Outcome.REPLAYED, Outcome.REFUSED)


def outcome_entry(handled: Handled, bus_name: str) -> PutEventsRequestEntryTypeDef:
    """The outcome event of a record: the one owner of its shape (README documents it)."""
    result = handled.result
    detail: CampaignTriggerSucceeded | CampaignTriggerFailed
    if result.campaign is not None:
        detail = CampaignTriggerSucceeded(
            correlation_id=handled.correlation_id,
            external_id=handled.external_id,
            campaign=result.campaign,
        )
    else:
        detail = CampaignTriggerFailed(
            correlation_id=handled.correlation_id,
            external_id=handled.external_id,
            error=TriggerError(status=result.status, message=result.error or ""),
        )
    return {
        "EventBusName": bus_name,
        "Source": BRIDGE_SOURCE,
        "DetailType": SUCCEEDED if result.campaign is not None else FAILED,
        # encode_json: a refusal may quote a key with half an emoji, which model_dump_json
        # cannot encode.
        "Detail": encode_json(detail.model_dump(mode="json")).decode(),
    }


def _external_id(detail: JsonValue) -> str | None:
    """The detail's external_id as sent, so that even a refused trigger can be matched."""
    value = detail.get("external_id") if isinstance(detail, dict) else None
    return str(value) if isinstance(value, str | int) and not isinstance(value, bool) else None


def _chunks(handled: Sequence[Handled]) -> list[Sequence[Handled]]:
    return [handled[n : n + _BATCH_LIMIT] for n in range(0, len(handled), _BATCH_LIMIT)]
