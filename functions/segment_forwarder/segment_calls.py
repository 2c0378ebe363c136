"""Segment calls for Pay4Feedback events: pure functions of the typed event.

    calls_for(queued, personal_data=False) -> [identify (if allowed), track], each encoded

Each event becomes one `track` call:

    event        the event type in Title Case: "Reward Approved", "Payout Completed"
                 (a type this code does not know yet is named the same way)
    userId       the respondent's id where the event has one (never empty: Segment's library
                 refuses a call with an empty userId and no anonymousId)
    anonymousId  otherwise: "response:<response id>" for an event about a response whose
                 respondent has no id (a response and its payout are one person's doing),
                 else the tenant id (campaign events are the tenant's own doing), else
                 "event:<event id>"; the same for every delivery of the event
    properties   from the resource: ids, status, amounts (decimal strings, as the API sends
                 them) and currency, score and verdict, reasons, times; for a type this
                 code does not know, its ids and status only
    timestamp    the event's created_at
    messageId    the Pay4Feedback event id, so that Segment drops a redelivered event

Personal data goes to Segment only with `personal_data=True`: then an `identify` call
(userId, traits.email) comes first, and the respondent's answers (free text, which can
hold anything) are a property of the track. Without it, neither is anywhere in the call.

A call must fit in Segment's 32 KB, counted as Segment's own library (analytics-python)
counts it: `call_size`. A larger track is trimmed, its largest property first (never its
ids and status): a list (the answers) loses items from its end, as few as it must, and
says how many in `truncated_items` ({"answers": 12}); any other property is dropped whole
and named in `truncated_properties`; either way `truncated` is true. A call that is still
too large raises SegmentCallTooLargeError.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import JsonValue

from p4f import __version__
from p4f.forwarding import PoisonRecordError, identifying_fields
from p4f.json_text import encode_json
from p4f.models import Campaign, Payout, Ping, Respondent, Response

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from p4f.forwarding import QueuedEvent
    from p4f.models import ApiModel, WebhookEvent

MAX_CALL_BYTES = 32 << 10
"""Segment's 32 KB a call, as analytics-python checks it (MAX_MSG_SIZE) with `call_size`."""
_MAX_MESSAGE_ID_CHARS = 99
_CONTEXT: dict[str, JsonValue] = {"library": {"name": "p4f-bridge", "version": __version__}}


class SegmentCallTooLargeError(PoisonRecordError):
    """A call is over Segment's 32 KB even without its large properties: it never fits."""


@dataclass(frozen=True)
class SegmentCall:
    """One call, encoded as it is sent, and its size as Segment's library counts it."""

    encoded: bytes
    size: int
    """`call_size` of the call: never less than len(encoded)."""
    cut_items: Mapping[str, int] = field(default_factory=dict)
    """Items cut from the end of a list property to fit, by property."""
    dropped: tuple[str, ...] = ()
    """Properties dropped whole to fit."""

    @property
    def trimmed(self) -> bool:
        return bool(self.cut_items or self.dropped)


def call_size(value: object) -> int:
    """The size of a call (or a batch) as analytics-python counts it: its JSON with every
    non-ASCII character escaped and ", " and ": " between items (json.dumps' defaults), in
    bytes. The compact UTF-8 the bridge sends is never larger."""
    return len(json.dumps(value).encode())


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


def calls_for(queued: QueuedEvent, *, personal_data: bool) -> list[SegmentCall]:
    """The calls for an event: an identify (when allowed and known), then a track."""
    event, resource = queued.event, queued.resource
    respondent = _respondent(event, resource)
    who: dict[str, JsonValue] = (
        {"userId": respondent.id}
        if respondent is not None
        else {"anonymousId": anonymous_id(event, resource)}
    )
    sent = {"timestamp": timestamp(event.created_at), "context": _CONTEXT}
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


def anonymous_id(event: WebhookEvent, resource: ApiModel | None) -> str:
    """The anonymousId of an event without a respondent id (see the module docstring)."""
    match resource:
        case Response():
            response_id: JsonValue = resource.id
        case Payout():
            response_id = resource.response_id
        case Campaign() | Ping():
            response_id = None
        case _:
            response_id = event.data.get("response_id")
    if isinstance(response_id, str) and response_id.strip():
        return f"response:{response_id}"
    if event.tenant_id.strip():
        return event.tenant_id
    return f"event:{event.id}"


def _respondent(event: WebhookEvent, resource: ApiModel | None) -> Respondent | None:
    """The event's respondent, if it has an id that is not blank."""
    found: Respondent | None = None
    if isinstance(resource, Response | Payout):
        found = resource.respondent
    elif isinstance(raw := event.data.get("respondent"), dict) and isinstance(raw.get("id"), str):
        email = raw.get("email")
        found = Respondent(id=str(raw["id"]), email=email if isinstance(email, str) else None)
    elif isinstance(respondent_id := event.data.get("respondent_id"), str):
        found = Respondent(id=respondent_id)
    return found if found is not None and found.id.strip() else None


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
                "submitted_at": timestamp(resource.submitted_at),
                "reviewed_at": timestamp(resource.reviewed_at) if resource.reviewed_at else None,
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
                "completed_at": timestamp(resource.completed_at),
            }
        case Ping():
            properties = {"webhook_id": resource.webhook_id}
        case _:
            properties = dict(identifying_fields(event.data))
    return {name: value for name, value in properties.items() if value is not None}


def _fitted(call: dict[str, Any], event_id: str) -> SegmentCall:
    """The call within MAX_CALL_BYTES, trimmed largest property first if need be."""
    size = call_size(call)
    if size <= MAX_CALL_BYTES:
        return SegmentCall(encode_json(call), size)
    properties: dict[str, JsonValue] = dict(call.get("properties", {}))
    kept = identifying_fields(properties)
    lists: dict[str, list[JsonValue]] = {}  # the lists cut so far, as they were
    dropped: list[str] = []

    def cut_to_fit(name: str) -> None:
        """Keep as many of the list's leading items as the call has room for."""

        def call_with(items: list[JsonValue]) -> dict[str, Any]:
            return _trimmed(call, properties | {name: items}, lists, dropped)

        properties[name] = _most_that_fit(lists[name], call_with)

    untouched = [name for name in properties if name not in kept]
    while size > MAX_CALL_BYTES:
        if not untouched:
            raise SegmentCallTooLargeError(
                f"the {call['type']} call for event {event_id} has {size} bytes even without "
                f"its large properties, more than the {MAX_CALL_BYTES} Segment takes in a "
                "call; it cannot be sent"
            )
        largest = max(untouched, key=lambda name: call_size(properties[name]))
        untouched.remove(largest)
        value = properties[largest]
        if isinstance(value, list) and value:
            lists[largest] = value
            cut_to_fit(largest)
        else:
            del properties[largest]
            dropped.append(largest)
        size = call_size(_trimmed(call, properties, lists, dropped))
    # A list cut before a larger property went may take some of its items back.
    for name in lists:
        cut_to_fit(name)
    final = _trimmed(call, properties, lists, dropped)
    cut = _cut_counts(properties, lists)
    return SegmentCall(encode_json(final), call_size(final), cut, tuple(dropped))


def _cut_counts(
    properties: Mapping[str, JsonValue], lists: Mapping[str, list[JsonValue]]
) -> dict[str, int]:
    """How many items each cut list lost (`lists` holds them whole)."""
    counts = {}
    for name, whole in lists.items():
        now = properties[name]
        counts[name] = len(whole) - (len(now) if isinstance(now, list) else 0)
    return counts


def _trimmed(
    call: dict[str, Any],
    properties: Mapping[str, JsonValue],
    lists: Mapping[str, list[JsonValue]],
    dropped: list[str],
) -> dict[str, Any]:
    """`call` with `properties`, and the marks that say what was cut or dropped."""
    marks: dict[str, JsonValue] = {"truncated": True}
    if lists:
        marks["truncated_items"] = dict(_cut_counts(properties, lists))
    if dropped:
        marks["truncated_properties"] = list(dropped)
    return call | {"properties": {**properties, **marks}}


def _most_that_fit(
    items: list[JsonValue], call_with: Callable[[list[JsonValue]], dict[str, Any]]
) -> list[JsonValue]:
    """The longest run of leading `items` with which `call_with(run)` fits in a call."""
    low, high = 0, len(items)
    while low < high:
        middle = (low + high + 1) // 2
        if call_size(call_with(items[:middle])) <= MAX_CALL_BYTES:
            low = middle
        else:
            high = middle - 1
    return items[:low]


def timestamp(when: datetime) -> str:
    """A time as analytics-python sends it: ISO 8601 to the millisecond, with its offset."""
    return when.isoformat(timespec="milliseconds")
