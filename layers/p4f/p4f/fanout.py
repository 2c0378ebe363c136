"""Where a received Pay4Feedback event goes: the EventBridge bus and/or the SQS queue.

The one owner of the mapping (consumers rely on it; README documents it):

    EventBridge   Source "pay4feedback", DetailType = event type, Detail = the event body
                  exactly as received, Time = created_at (absent when created_at is not a
                  time with a UTC equivalent: EventBridge then stamps the time of publishing)
    SQS           body = the event body exactly as received; message attributes
                  event_type, event_id, tenant_id; a FIFO queue also gets
                  MessageGroupId = tenant id and MessageDeduplicationId = event id (each a
                  digest of itself where it is not a valid SQS id)

and the one owner of the limits an event must fit, checked before any AWS call: AWS refuses
for ever what breaks them (moto checks none), so the sender gets a 4xx that names the
limit, never a 5xx that has it retry for three days for nothing.

    every event   JSON (no NaN or Infinity: they are not JSON), an object with a
                  non-empty string `id` and `type`                                    400
                  an id of at most 2,048 bytes (the idempotency table's key), without
                  control characters or lone surrogates                                422
    EventBridge   a detail-type of at most 128 characters (and of such characters), JSON
                  nested at most 1,000 levels, integers within 64 bits, finite numbers 422
                  an entry (source, detail-type, detail, time) of at most 1,000,000 bytes  413
    SQS           attributes (type, id, tenant_id) of such characters, and none of the two
                  characters SQS refuses (U+FFFE, U+FFFF) in the body                  422
                  a message (body and attributes) of at most 1 MiB                     413

A lone UTF-16 surrogate in a string (`"\\ud83d"`: half an emoji) is valid JSON and plain
ASCII on the wire: both targets store it as received (README, "What the receiver refuses").

A target that does not accept the event raises `FanOutError`, naming the target and
the targets that did accept it, so that a retry can skip those (no duplicates).
Kept free of pydantic: the webhook receiver's cold start pays only for what it uses.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from p4f.changes import Change, change_of, utc_time

if TYPE_CHECKING:
    from collections.abc import Callable, Collection

    from botocore.config import Config
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_events.type_defs import PutEventsRequestEntryTypeDef
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import SendMessageRequestTypeDef

EVENT_SOURCE = "pay4feedback"
BRIDGE_SOURCE = "p4f-bridge"
"""The source of the events the bridge itself puts on its bus (outcomes, snapshots)."""
MAX_EVENT_BYTES = 1_000_000
"""The largest body accepted, checked before anything else: EventBridge's entry of 1 MB,
read as 1,000,000 bytes (the stricter reading), holds the body and more."""
MAX_EVENT_ID_BYTES = 2_048
"""DynamoDB's limit for a partition key: the ledgers are keyed by event id."""
MAX_DETAIL_TYPE_CHARS = 128
MAX_JSON_DEPTH = 1_000
"""EventBridge's PutEvents processes nested JSON up to 1,000 levels deep."""
_TOO_DEEP = f"the body's JSON is nested deeper than {MAX_JSON_DEPTH} levels (EventBridge's limit)"
EVENTBRIDGE_MAX_ENTRY_BYTES = MAX_EVENT_BYTES
SQS_MAX_MESSAGE_BYTES = 1_048_576
"""1 MiB: the body, and each attribute's name, type and value."""
_TIME_BYTES = 14
"""What a Time counts towards an entry's size (AWS's "Calculating PutEvents event entry size")."""
_INT64 = range(-(2**63), 2**63)
_MAX_INT_DIGITS = 20
"""More digits than any 64-bit integer has (its sign included): not even worth converting."""
_NOT_IN_IDS = re.compile("[\x00-\x1f\x7f\ud800-\udfff\ufffe\uffff]")
"""What DynamoDB keys, SQS attributes and EventBridge detail-types cannot hold safely."""
_NOT_IN_SQS = re.compile("[\ufffe\uffff]")
"""The characters valid JSON may hold raw that SQS refuses in a message."""
_SQS_ID = re.compile(r"[!-~]{1,128}")
"""A FIFO MessageGroupId or MessageDeduplicationId: 1-128 ASCII letters, digits, punctuation."""
_FALLBACK_GROUP = "pay4feedback"


class Target(StrEnum):
    EVENTBRIDGE = "eventbridge"
    SQS = "sqs"


class InvalidEventError(ValueError):
    """The body is not a Pay4Feedback event (not JSON, not an object, no `id` / `type`): 400."""


class UnpublishableEventError(ValueError):
    """A valid event AWS would refuse on every retry: a limit it breaks (413 or 422)."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


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
    """In UTC; None when the body has no time EventBridge can carry."""
    body: str
    size: int
    """The body's size in bytes."""
    too_deep: bool
    """The body's JSON is nested deeper than MAX_JSON_DEPTH (the event object is level 1)."""
    unrepresentable_number: str | None = None
    """The first number of the body outside what EventBridge holds (64-bit integers,
    finite floats), as written; None if there is none."""
    change: Change | None = None
    """The state change the event is about (p4f.changes), for the types that have one."""

    @classmethod
    def parse(cls, body: bytes) -> ReceivedEvent:
        """Read the fields the fan-out needs; unknown types and extra fields pass as they are.

        InvalidEventError if the body is not an event; UnpublishableEventError if no
        target could ever take it."""
        numbers = _NumberCheck()
        try:
            text = body.decode("utf-8")
            event = json.loads(
                text,
                parse_int=numbers.integer,
                parse_float=numbers.decimal,
                parse_constant=_not_json,
            )
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InvalidEventError("the body is not JSON") from exc
        except RecursionError:
            raise UnpublishableEventError(_TOO_DEEP) from None
        if not isinstance(event, dict):
            raise InvalidEventError("the body is not a JSON object")
        for field in ("id", "type"):
            if not isinstance(event.get(field), str) or not event[field]:
                raise InvalidEventError(f"the event has no {field!r}")
        tenant_id = event.get("tenant_id")
        tenant_id = tenant_id if isinstance(tenant_id, str) and tenant_id else None
        check_event_id(event["id"])
        return cls(
            id=event["id"],
            type=event["type"],
            tenant_id=tenant_id,
            created_at=utc_time(event.get("created_at")),
            body=text,
            size=len(body),
            # Walked only when the text has that many brackets: most bodies are shallow.
            too_deep=text.count("[") + text.count("{") > MAX_JSON_DEPTH
            and deeper_than(MAX_JSON_DEPTH, event),
            unrepresentable_number=numbers.first_unrepresentable,
            change=change_of(event["type"], event.get("data")),
        )


class _NumberCheck:
    """json.loads hooks that note the first number EventBridge cannot hold."""

    def __init__(self) -> None:
        self.first_unrepresentable: str | None = None

    def integer(self, text: str) -> int:
        if len(text) <= _MAX_INT_DIGITS and int(text) in _INT64:
            return int(text)
        self.first_unrepresentable = self.first_unrepresentable or text
        return 0  # the body goes on as received; the parsed value is not published

    def decimal(self, text: str) -> float:
        value = float(text)
        if not math.isfinite(value):
            self.first_unrepresentable = self.first_unrepresentable or text
        return value


def _not_json(constant: str) -> Any:
    raise json.JSONDecodeError(f"{constant} is not JSON", constant, 0)


def check_event_id(event_id: str) -> None:
    """Raise UnpublishableEventError unless `event_id` can key the ledgers (DynamoDB):
    not empty, at most MAX_EVENT_ID_BYTES, no control character or lone surrogate."""
    size = len(event_id.encode("utf-8", "surrogatepass"))
    if not 0 < size <= MAX_EVENT_ID_BYTES:
        raise UnpublishableEventError(
            f"the event id is {size} bytes; 1 to {MAX_EVENT_ID_BYTES} fit the idempotency "
            "table's key"
        )
    _check_characters("id", event_id)


def _check_characters(field: str, value: str) -> None:
    found = _NOT_IN_IDS.search(value)
    if found:
        raise UnpublishableEventError(
            f"the event's {field} holds U+{ord(found.group()):04X}, which AWS does not take "
            "in keys, message attributes and detail-types"
        )


def deeper_than(levels: int, value: object) -> bool:
    """Whether parsed JSON `value` is nested deeper than `levels` (the outer object or list
    is level 1; a loop, not a recursion: it may be deep)."""
    stack: list[tuple[Any, int]] = [(value, 1)] if isinstance(value, dict | list) else []
    while stack:
        node, depth = stack.pop()
        if depth > levels:
            return True
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


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


def _entry_bytes(event: ReceivedEvent) -> int:
    """The entry's size as EventBridge counts it."""
    time_bytes = _TIME_BYTES if event.created_at is not None else 0
    return time_bytes + len(EVENT_SOURCE) + len(event.type.encode()) + event.size


def sqs_message(event: ReceivedEvent, queue_url: str) -> SendMessageRequestTypeDef:
    message: SendMessageRequestTypeDef = {
        "QueueUrl": queue_url,
        "MessageBody": event.body,
        "MessageAttributes": {
            name: {"DataType": "String", "StringValue": value}
            for name, value in _attributes(event).items()
        },
    }
    if queue_url.endswith(".fifo"):
        message["MessageGroupId"] = _sqs_id(event.tenant_id or _FALLBACK_GROUP)
        message["MessageDeduplicationId"] = _sqs_id(event.id)
    return message


def _attributes(event: ReceivedEvent) -> dict[str, str]:
    attributes = {"event_type": event.type, "event_id": event.id}
    if event.tenant_id:
        attributes["tenant_id"] = event.tenant_id
    return attributes


def _message_bytes(event: ReceivedEvent) -> int:
    """The message's size as SQS counts it: the body, and each attribute's name, type, value."""
    return event.size + sum(
        len(name) + len("String") + len(value.encode())
        for name, value in _attributes(event).items()
    )


def _sqs_id(value: str) -> str:
    """`value` as a FIFO queue's group or deduplication id: itself when SQS takes it, else a
    digest of it (the same for every delivery of the event, so deduplication still works)."""
    if _SQS_ID.fullmatch(value):
        return value
    return f"p4f-{hashlib.sha256(value.encode('utf-8', 'surrogatepass')).hexdigest()}"


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

    @classmethod
    def to(
        cls, *, bus_name: str | None, queue_url: str | None, config: Config | None = None
    ) -> FanOut:
        """A fan-out to the targets a function's settings name, with a client for each."""
        import boto3

        return cls(
            events=boto3.client("events", config=config) if bus_name else None,
            bus_name=bus_name,
            sqs=boto3.client("sqs", config=config) if queue_url else None,
            queue_url=queue_url,
        )

    def check(self, event: ReceivedEvent) -> None:
        """Raise UnpublishableEventError if a configured target can never take `event`."""
        if self._bus is not None:
            _check_for_eventbridge(event)
        if self._queue is not None:
            _check_for_sqs(event)

    def publish(
        self,
        event: ReceivedEvent,
        skip: Collection[str] = (),
        before_next: Callable[[Target], None] = lambda _: None,
    ) -> frozenset[Target]:
        """Hand the event to every target not in `skip` (those accepted it before); the
        targets that have it now (every one configured).

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
            accepted |= {Target.SQS}
        return accepted

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


def _check_for_eventbridge(event: ReceivedEvent) -> None:
    _check_characters("type", event.type)  # the detail-type
    if len(event.type) > MAX_DETAIL_TYPE_CHARS:
        raise UnpublishableEventError(
            f"the event type is {len(event.type)} characters; EventBridge takes at most "
            f"{MAX_DETAIL_TYPE_CHARS} as a detail-type"
        )
    if event.too_deep:
        raise UnpublishableEventError(_TOO_DEEP)
    if event.unrepresentable_number is not None:
        shown = event.unrepresentable_number
        shown = shown if len(shown) <= 30 else f"{shown[:12]}...({len(shown)} characters)"
        raise UnpublishableEventError(
            f"the body holds {shown}, a number EventBridge cannot hold (64-bit integers, finite "
            "numbers); send large amounts as decimal strings"
        )
    size = _entry_bytes(event)
    if size > EVENTBRIDGE_MAX_ENTRY_BYTES:
        raise UnpublishableEventError(
            f"the event makes a {size}-byte entry; EventBridge takes at most "
            f"{EVENTBRIDGE_MAX_ENTRY_BYTES} bytes",
            status=413,
        )


def _check_for_sqs(event: ReceivedEvent) -> None:
    for field, value in _attributes(event).items():  # message attributes
        _check_characters(field.removeprefix("event_"), value)
    found = _NOT_IN_SQS.search(event.body)
    if found:
        raise UnpublishableEventError(
            f"the body holds the character U+{ord(found.group()):04X}, which SQS does not accept"
        )
    size = _message_bytes(event)
    if size > SQS_MAX_MESSAGE_BYTES:
        raise UnpublishableEventError(
            f"the event makes a {size}-byte message with its attributes; SQS takes at most "
            f"{SQS_MAX_MESSAGE_BYTES} bytes",
            status=413,
        )


def _describe(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'ClientError')}: {error.get('Message', '')}"
    return type(exc).__name__
