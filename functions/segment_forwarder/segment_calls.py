"""Segment calls for Pay4Feedback events: pure functions of the typed event.

    calls_for(queued, personal_data=False) -> [identify (if allowed), track], each encoded

Each event becomes one `track` call:

    event        the event type in Title Case: "Reward Approved", "Payout Completed"
                 (a type this code does not know yet is named the same way)
    userId       the respondent's id where the event has one; otherwise anonymousId is the
                 tenant id (campaign events are the tenant's own doing)
    properties   from the resource: ids, status, amounts (decimal strings, as the API sends
                 them) and currency, score and verdict, reasons, times; for a type this
                 code does not know, its ids and status only
    timestamp    the event's created_at
    messageId    the Pay4Feedback event id, so that Segment drops a redelivered event

Personal data goes to Segment only with `personal_data=True`: then an `identify` call
(userId, traits.email) comes first, and the respondent's answers (free text, which can
hold anything) are a property of the track. Without it, neither is anywhere in the call.

A call must fit in Segment's 32 KB: a larger track drops its largest properties (never
its ids and status) and says so (`truncated: true`, `truncated_properties`); a call that
is still too large raises SegmentCallTooLargeError.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import JsonValue

from p4f import __version__
from p4f.forwarding import PoisonRecordError, encode_json, identifying_fields
from p4f.models import Campaign, Payout, Ping, Respondent, Response

if TYPE_CHECKING:
    from p4f.forwarding import QueuedEvent
    from p4f.models import ApiModel, WebhookEvent

MAX_CALL_BYTES = 32_000
"""Segment's 32 KB a call, read as 1,000-byte KB (the stricter reading)."""
_MAX_MESSAGE_ID_CHARS = 99
_CONTEXT: dict[str, JsonValue] = {"library": {"name": "p4f-bridge", "version": __version__}}


class SegmentCallTooLargeError(PoisonRecordError):
    """A call is over Segment's 32 KB even without its large properties: it never fits."""


def event_name(event_type: str) -> str:
    """Segment's "Object Action" name of a Pay4Feedback event type: reward_approved ->
    Reward Approved."""
    return " ".join(word.capitalize() for word in event_type.split("_") if word)


def message_id(key: str) -> str:
    """`key` as a Segment messageId: itself when under 100 characters, else a digest of it
    (still the same for every delivery of the event, so Segment still drops duplicates)."""
    if len(key) <= _MAX_MESSAGE_ID_CHARS:
        return key
    return f"p4f-{hashlib.sha256(key.encode()).hexdigest()}"


def calls_for(queued: QueuedEvent, *, personal_data: bool) -> list[bytes]:
    """The encoded calls for an event: an identify (when allowed and known), then a track."""
    event, resource = queued.event, queued.resource
    respondent = _respondent(event, resource)
    who: dict[str, JsonValue] = (
        {"userId": respondent.id} if respondent else {"anonymousId": event.tenant_id}
    )
    sent = {"timestamp": _iso(event.created_at), "context": _CONTEXT}
    calls = []
    if personal_data and respondent is not None and respondent.email:
        identify = {
            "type": "identify",
            "userId": respondent.id,
            "traits": {"email": respondent.email},
            "messageId": message_id(f"{event.id}:identify"),
            **sent,
        }
        calls.append(_fitted(identify, event.id))
    track = {
        "type": "track",
        "event": event_name(str(event.type)),
        **who,
        "properties": _properties(event, resource, personal_data=personal_data),
        "messageId": message_id(event.id),
        **sent,
    }
    calls.append(_fitted(track, event.id))
    return calls


def _respondent(event: WebhookEvent, resource: ApiModel | None) -> Respondent | None:
    if isinstance(resource, Response | Payout):
        return resource.respondent
    raw = event.data.get("respondent")
    if isinstance(raw, dict) and isinstance(raw.get("id"), str):
        email = raw.get("email")
        return Respondent(id=str(raw["id"]), email=email if isinstance(email, str) else None)
    respondent_id = event.data.get("respondent_id")
    return Respondent(id=respondent_id) if isinstance(respondent_id, str) else None


def _properties(
    event: WebhookEvent, resource: ApiModel | None, *, personal_data: bool
) -> dict[str, JsonValue]:
    properties: dict[str, JsonValue]
    match resource:
        case Campaign():
            properties = {
                "campaign_id": resource.id,
                "campaign_name": resource.name,
                "status": str(resource.status),
                "reward_amount": str(resource.reward.amount),
                "currency": resource.reward.currency,
                "max_responses": resource.max_responses,
                "question_count": len(resource.questions),
            }
        case Response():
            quality = resource.quality
            properties = {
                "response_id": resource.id,
                "campaign_id": resource.campaign_id,
                "status": str(resource.status),
                "reward_amount": str(resource.reward.amount),
                "currency": resource.reward.currency,
                "quality_score": quality.score if quality else None,
                "quality_verdict": str(quality.verdict) if quality else None,
                "quality_breakdown": dict(quality.breakdown) if quality else None,
                "rejection_reason": resource.rejection_reason,
                "answer_count": len(resource.answers),
                "submitted_at": _iso(resource.submitted_at),
                "reviewed_at": _iso(resource.reviewed_at) if resource.reviewed_at else None,
            }
            if personal_data:
                properties["answers"] = [
                    {"question_id": a.question_id, "prompt": a.prompt, "value": a.value}
                    for a in resource.answers
                ]
        case Payout():
            properties = {
                "payout_id": resource.id,
                "response_id": resource.response_id,
                "campaign_id": resource.campaign_id,
                "status": str(resource.status),
                "amount": str(resource.amount),
                "currency": resource.currency,
                "failure_reason": resource.failure_reason,
                "completed_at": _iso(resource.completed_at),
            }
        case Ping():
            properties = {"webhook_id": resource.webhook_id}
        case _:
            properties = dict(identifying_fields(event.data))
    return {name: value for name, value in properties.items() if value is not None}


def _fitted(call: dict[str, Any], event_id: str) -> bytes:
    """The call encoded within MAX_CALL_BYTES, its largest properties dropped if need be."""
    encoded = encode_json(call)
    properties: dict[str, JsonValue] = dict(call.get("properties", {}))
    kept = identifying_fields(properties)
    dropped: list[JsonValue] = []
    while len(encoded) > MAX_CALL_BYTES:
        droppable = [name for name in properties if name not in kept]
        if not droppable:
            raise SegmentCallTooLargeError(
                f"the {call['type']} call for event {event_id} has {len(encoded)} bytes even "
                f"without its large properties, more than the {MAX_CALL_BYTES} Segment takes "
                "in a call; it cannot be sent"
            )
        largest = max(droppable, key=lambda name: len(encode_json(properties[name])))
        del properties[largest]
        dropped.append(largest)
        trimmed = properties | {"truncated": True, "truncated_properties": dropped}
        encoded = encode_json(call | {"properties": trimmed})
    return encoded


def _iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")
