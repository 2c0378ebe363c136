"""Where a received Pay4Feedback event goes: the EventBridge bus and/or the SQS queue.

The one owner of the mapping (consumers rely on it; README documents it):

    EventBridge   Source "pay4feedback", DetailType = event type, Detail = the event body
                  exactly as received, Time = created_at
    SQS           body = the event body exactly as received; message attributes
                  event_type, event_id, tenant_id; a FIFO queue also gets
                  MessageGroupId = tenant id and MessageDeduplicationId = event id

A target that does not accept the event raises `FanOutError`, naming the target and
the targets that did accept it, so that a retry can skip those (no duplicates).
Kept free of pydantic: the webhook receiver's cold start pays only for what it uses.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

if TYPE_CHECKING:
    from collections.abc import Callable, Collection

    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_events.type_defs import PutEventsRequestEntryTypeDef
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import SendMessageRequestTypeDef

EVENT_SOURCE = "pay4feedback"
BRIDGE_SOURCE = "p4f-bridge"
"""The source of the events the bridge itself puts on its bus (outcomes, snapshots)."""
MAX_EVENT_BYTES = 1_000_000
"""The largest body accepted: inside both an EventBridge entry (1 MB with source and
detail-type) and an SQS message (1 MiB with attributes)."""
_FALLBACK_GROUP = "pay4feedback"


class Target(StrEnum):
    EVENTBRIDGE = "eventbridge"
    SQS = "sqs"


class InvalidEventError(ValueError):
    """The body is not a Pay4Feedback event (not a JSON object, or no `id` / `type`)."""


class FanOutError(Exception):
    """A target did not accept the event."""

    def __init__(self, target: Target, reason: str, accepted: frozenset[Target]) -> None:
        super().__init__(f"{target} did not accept the event: {reason}")
        self.target = target
        self.reason = reason
        self.accepted = accepted


@dataclass(frozen=True)
class ReceivedEvent:
    """A webhook event as received: the fields the fan-out needs, and the body untouched."""

    id: str
    type: str
    tenant_id: str | None
    created_at: datetime | None
    body: str

    @classmethod
    def parse(cls, body: bytes) -> ReceivedEvent:
        """Read the fields the fan-out needs; unknown types and extra fields pass as they are."""
        try:
            text = body.decode("utf-8")
            event = json.loads(text)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InvalidEventError("the body is not JSON") from exc
        if not isinstance(event, dict):
            raise InvalidEventError("the body is not a JSON object")
        for field in ("id", "type"):
            if not isinstance(event.get(field), str) or not event[field]:
                raise InvalidEventError(f"the event has no {field!r}")
        tenant_id = event.get("tenant_id")
        return cls(
            id=event["id"],
            type=event["type"],
            tenant_id=tenant_id if isinstance(tenant_id, str) and tenant_id else None,
            created_at=_parse_time(event.get("created_at")),
            body=text,
        )


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def eventbridge_entry(event: ReceivedEvent, bus_name: str) -> PutEventsRequestEntryTypeDef:
    entry: PutEventsRequestEntryTypeDef = {
        "EventBusName": bus_name,
        "Source": EVENT_SOURCE,
        "DetailType": event.type,
        "Detail": event.body,
    }
    if event.created_at is not None:
        entry["Time"] = event.created_at
    return entry


def sqs_message(event: ReceivedEvent, queue_url: str) -> SendMessageRequestTypeDef:
    attributes = {"event_type": event.type, "event_id": event.id}
    if event.tenant_id:
        attributes["tenant_id"] = event.tenant_id
    message: SendMessageRequestTypeDef = {
        "QueueUrl": queue_url,
        "MessageBody": event.body,
        "MessageAttributes": {
            name: {"DataType": "String", "StringValue": value} for name, value in attributes.items()
        },
    }
    if queue_url.endswith(".fifo"):
        message["MessageGroupId"] = event.tenant_id or _FALLBACK_GROUP
        message["MessageDeduplicationId"] = event.id
    return message


class FanOut:
    """Publishes events to the configured targets; at least one must be configured."""

    def __init__(
        self,
        *,
        events: EventBridgeClient | None = None,
        bus_name: str | None = None,
        sqs: SQSClient | None = None,
        queue_url: str | None = None,
    ) -> None:
        if (events is None) != (bus_name is None) or (sqs is None) != (queue_url is None):
            raise ValueError("give each target both its client and its bus name / queue URL")
        self._bus = (events, bus_name) if events is not None and bus_name else None
        self._queue = (sqs, queue_url) if sqs is not None and queue_url else None
        if self._bus is None and self._queue is None:
            raise ValueError("configure at least one target: an EventBridge bus or an SQS queue")

    def publish(
        self,
        event: ReceivedEvent,
        skip: Collection[str] = (),
        before_next: Callable[[Target], None] = lambda _: None,
    ) -> None:
        """Hand the event to every target not in `skip` (those accepted it before).

        `before_next(target)` runs when a target has taken the event and another is still
        to come, so that the first is remembered should the invocation die on the second.
        """
        accepted = frozenset(Target(target) for target in skip)
        if self._bus is not None and Target.EVENTBRIDGE not in accepted:
            self._put_event(event, *self._bus, accepted)
            accepted |= {Target.EVENTBRIDGE}
            if self._queue is not None and Target.SQS not in accepted:
                before_next(Target.EVENTBRIDGE)
        if self._queue is not None and Target.SQS not in accepted:
            self._send_message(event, *self._queue, accepted)

    @staticmethod
    def _put_event(
        event: ReceivedEvent, client: EventBridgeClient, bus_name: str, accepted: frozenset[Target]
    ) -> None:
        try:
            answer = client.put_events(Entries=[eventbridge_entry(event, bus_name)])
        except (ClientError, BotoCoreError) as exc:
            raise FanOutError(Target.EVENTBRIDGE, _describe(exc), accepted) from exc
        if answer.get("FailedEntryCount", 0):
            entry = answer["Entries"][0]
            reason = f"{entry.get('ErrorCode', 'failed')}: {entry.get('ErrorMessage', '')}"
            raise FanOutError(Target.EVENTBRIDGE, reason, accepted)

    @staticmethod
    def _send_message(
        event: ReceivedEvent, client: SQSClient, queue_url: str, accepted: frozenset[Target]
    ) -> None:
        try:
            client.send_message(**sqs_message(event, queue_url))
        except (ClientError, BotoCoreError) as exc:
            raise FanOutError(Target.SQS, _describe(exc), accepted) from exc


def _describe(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'ClientError')}: {error.get('Message', '')}"
    return type(exc).__name__
