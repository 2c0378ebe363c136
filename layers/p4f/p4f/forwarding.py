"""Forwarding Pay4Feedback events from the bridge's bus to another service, a batch at a time.

    EventBridge rule on the bus --> SQS queue (+ DLQ) --> forwarder function --> Slack, Segment

The one owner of how a forwarder reads its queue. Each record's body is the EventBridge
event as the rule delivered it (the target has no InputPath; `p4f.fanout` owns the
publishing side):

    {"version": "0", "id": ..., "detail-type": <event type>, "source": "pay4feedback",
     "time": ..., ..., "detail": <the webhook event body>}

`forward_batch` reads every record, hands the events to a `Forwarder`, and answers SQS
with the records that were not delivered (`batchItemFailures`): SQS delivers those again,
and after the queue's maxReceiveCount moves them to the dead-letter queue, whose alarm
fires. Nothing is dropped, and one bad record does not make nine good ones go out twice.

    ForwardingError             an event was not delivered; its record is reported failed
    ├── PoisonRecordError       the record is not a Pay4Feedback event from the bridge's bus
    ├── OutOfTimeError          the invocation's time ran out before the event was sent
    └── SecretUnavailableError  the service's secret cannot be read, or is not in its form
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from pydantic import JsonValue, ValidationError

from p4f.fanout import EVENT_SOURCE
from p4f.models import ApiModel, WebhookEvent
from p4f.secrets import SecretError

if TYPE_CHECKING:
    from aws_lambda_powertools import Metrics
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse

    from p4f.secrets import CachedSecret

logger = Logger(child=True)

SAFETY_MARGIN_SECONDS = 1.0
"""Time kept back from the invocation's remaining time to answer SQS and flush logs and metrics."""


class ForwardingError(Exception):
    """An event was not delivered; its record is reported failed and comes back from SQS."""


class PoisonRecordError(ForwardingError):
    """The record is not a Pay4Feedback event from the bridge's bus: it will end in the DLQ."""


class OutOfTimeError(ForwardingError):
    """The invocation's time ran out before the event was sent."""


class SecretUnavailableError(ForwardingError):
    """The service's secret cannot be read, or is not in the form the forwarder needs."""


def read_secret[T](secret: CachedSecret[T], *, fresh: bool = False) -> T:
    """The secret's value (read afresh if `fresh`); a deployment mistake or an outage of
    Secrets Manager fails the records, which come back and end in the DLQ, instead of the
    invocation."""
    try:
        return secret.refresh() if fresh else secret.get()
    except SecretError as exc:
        raise SecretUnavailableError(str(exc)) from exc


@dataclass(frozen=True)
class QueuedEvent:
    """A Pay4Feedback event read from an SQS record."""

    message_id: str
    """The SQS message id: what `batchItemFailures` names."""
    event: WebhookEvent
    resource: ApiModel | None
    """`event.data` parsed as the resource of its type; None for types this code does not know."""


class Deadline:
    """The moment work must be done by, on a given clock."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._at = clock() + seconds

    def remaining(self) -> float:
        """Seconds left, never negative."""
        return max(0.0, self._at - self._clock())

    def allows(self, seconds: float) -> bool:
        """True if `seconds` from now is not past the deadline."""
        return seconds <= self.remaining()


class Invocation(Protocol):
    """What `forward_batch` needs of the Lambda context."""

    def get_remaining_time_in_millis(self) -> int: ...


class Forwarder(Protocol):
    """Delivers events to one service."""

    def forward(
        self, batch: Sequence[QueuedEvent], seconds: float
    ) -> Mapping[str, ForwardingError]:
        """Deliver `batch` within `seconds`; the failures by SQS message id (absent: delivered)."""
        ...


def read_record(record: SQSRecord) -> QueuedEvent:
    """The event a record carries; `PoisonRecordError`, saying why, if it carries none."""
    try:
        envelope = json.loads(record.body)
    except json.JSONDecodeError:
        raise PoisonRecordError("the record's body is not JSON") from None
    if not isinstance(envelope, dict) or not isinstance(envelope.get("detail"), dict):
        raise PoisonRecordError("the record's body is not an EventBridge event with a detail")
    source = envelope.get("source")
    if source != EVENT_SOURCE:
        raise PoisonRecordError(f"the event's source is {str(source)[:64]!r}, not {EVENT_SOURCE!r}")
    try:
        event = WebhookEvent.model_validate(envelope["detail"])
    except ValidationError as exc:
        raise PoisonRecordError(
            f"the event's detail is not a Pay4Feedback event: {_problems(exc)}"
        ) from None
    try:
        resource = event.resource()
    except ValidationError as exc:
        raise PoisonRecordError(
            f"the data of {event.type} event {event.id} is not a {exc.title}: {_problems(exc)}"
        ) from None
    return QueuedEvent(record.message_id, event, resource)


def _problems(exc: ValidationError) -> str:
    """What pydantic found, without the input values (they may be personal data)."""
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or 'the object'}: {error['msg']}"
        for error in exc.errors(include_url=False, include_input=False)[:3]
    )


def identifying_fields(data: Mapping[str, JsonValue]) -> dict[str, str | int | float | bool]:
    """The fields of an event's data that say what it is about and nothing about anyone:
    its ids (`id`, `*_id`) and `status`. All that is forwarded of an event type this code
    does not know yet, whose other fields may hold personal data or free text."""
    return {
        name: value
        for name, value in data.items()
        if (name in {"id", "status"} or name.endswith("_id"))
        and isinstance(value, str | int | float | bool)
    }


def forward_batch(
    event: dict[str, Any], context: Invocation, forwarder: Forwarder, metrics: Metrics
) -> PartialItemFailureResponse:
    """Forward the events of an SQS batch; the answer names the records to deliver again."""
    queued: dict[str, QueuedEvent] = {}
    failures: dict[str, ForwardingError] = {}
    for raw in event.get("Records", []):
        record = SQSRecord(raw)
        try:
            queued[record.message_id] = read_record(record)
        except PoisonRecordError as exc:
            failures[record.message_id] = exc
    seconds = context.get_remaining_time_in_millis() / 1000 - SAFETY_MARGIN_SECONDS
    failures.update(forwarder.forward(list(queued.values()), seconds))

    def report(record: SQSRecord) -> None:
        failure = failures.get(record.message_id)
        _log_outcome(record, queued.get(record.message_id), failure)
        if failure is not None:
            raise failure

    # Powertools builds the answer; a batch that failed entirely is answered like any
    # other (every record listed) rather than raised, so that logs and metrics still go out.
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    answer = process_partial_response(event, record_handler=report, processor=processor)
    metrics.add_metric("EventsForwarded", MetricUnit.Count, len(processor.success_messages))
    metrics.add_metric("EventsFailed", MetricUnit.Count, len(processor.fail_messages))
    return answer


def _log_outcome(
    record: SQSRecord, queued: QueuedEvent | None, failure: ForwardingError | None
) -> None:
    where: dict[str, object] = {
        "message_id": record.message_id,
        "receive_count": record.attributes.approximate_receive_count,
    }
    if queued is not None:
        where |= {"event_id": queued.event.id, "event_type": str(queued.event.type)}
    if failure is None:
        logger.info("event forwarded", extra=where)
    elif isinstance(failure, PoisonRecordError):
        logger.error(
            "not a Pay4Feedback event: the record will end in the dead-letter queue",
            extra=where | {"reason": str(failure)},
        )
    else:
        logger.warning(
            "event not forwarded: SQS will deliver it again",
            extra=where | {"error": type(failure).__name__, "reason": str(failure)},
        )
