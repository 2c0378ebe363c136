"""Forwarding Pay4Feedback events from the bridge's bus to another service, a batch at a time.

    EventBridge rule on the bus --> SQS queue (+ DLQ) --> forwarder function --> Slack, Segment

The one owner of how a forwarder reads its queue. Each record's body is the EventBridge
event as the rule delivered it (the target has no InputPath; `p4f.fanout` owns the
publishing side):

    {"version": "0", "id": ..., "detail-type": <event type>, "source": "pay4feedback",
     "time": ..., ..., "detail": <the webhook event body>}

`forward_batch` is the one owner of what becomes of a record:

    read       the record's event (`read_record`); a record that is not one is poison
    prepare    the forwarder's `prepare`: what the service gets for the event (a message,
               encoded calls); an event it cannot be put in that form (a ValueError,
               TypeError or RecursionError) is poison too, alone: never its batch
    forward    the forwarder's `forward`, with the prepared events and the time left
    defer      a `DeferrableError` (a 429's pause, an event another invocation holds) sends
               the record to its queue again with a delay (p4f.deferral): not a failure
    answer     the records that were not delivered (`batchItemFailures`): SQS delivers
               those again, and after the queue's maxReceiveCount moves them to the
               dead-letter queue, whose alarm fires

Nothing is dropped, one bad record does not make nine good ones go out twice, and a pause
does not push healthy records towards the dead-letter queue. `p4f.json_text.encode_json`
encodes what the services are sent.

    ForwardingError             an event was not delivered; its record is reported failed
    ├── PoisonRecordError       the record can never be delivered: not a Pay4Feedback event
    │                           from the bridge's bus, or one that cannot be put in the
    │                           service's form; it ends in the DLQ
    ├── DeferrableError         not now: sent to the queue again after `retry_after`
    ├── OutOfTimeError          the invocation's time ran out before the event was sent
    └── SecretUnavailableError  the service's secret cannot be read, or is not in its form
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
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

from p4f.deferral import Deferred
from p4f.fanout import EVENT_SOURCE, UnpublishableEventError, check_event_id
from p4f.models import ApiModel, WebhookEvent
from p4f.secrets import SecretError

if TYPE_CHECKING:
    from aws_lambda_powertools import Metrics
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse

    from p4f.deferral import Deferral
    from p4f.secrets import CachedSecret

logger = Logger(child=True)

SAFETY_MARGIN_SECONDS = 1.0
"""Time kept back from the invocation's remaining time to answer SQS and flush logs and metrics."""


class ForwardingError(Exception):
    """An event was not delivered; its record is reported failed and comes back from SQS."""


class PoisonRecordError(ForwardingError):
    """The record can never be delivered: it will end in the DLQ."""


class DeferrableError(ForwardingError):
    """Not now: the record goes to its queue again after `retry_after` seconds, uncounted."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


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


@dataclass(frozen=True)
class Prepared[M]:
    """An event, and what its forwarder's `prepare` made of it for the service."""

    queued: QueuedEvent
    content: M

    @property
    def message_id(self) -> str:
        return self.queued.message_id


class Invocation(Protocol):
    """What `forward_batch` needs of the Lambda context."""

    def get_remaining_time_in_millis(self) -> int: ...


class Forwarder[M](Protocol):
    """Delivers events to one service."""

    def prepare(self, queued: QueuedEvent) -> M:
        """What the service gets for the event, without sending it: a pure function, whose
        failure (a ValueError, TypeError or RecursionError) makes the record poison."""
        ...

    def forward(
        self, batch: Sequence[Prepared[M]], seconds: float
    ) -> Mapping[str, ForwardingError]:
        """Deliver `batch` within `seconds`; the failures by SQS message id (absent: delivered)."""
        ...


def read_record(record: SQSRecord) -> QueuedEvent:
    """The event a record carries; `PoisonRecordError`, saying why, if it carries none."""
    try:
        envelope = json.loads(record.body)
    except ValueError:  # not JSON, or an integer of more than 4,300 digits
        raise PoisonRecordError("the record's body is not JSON Python can read") from None
    except RecursionError:
        raise PoisonRecordError("the record's body is nested too deeply to be read") from None
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
        check_event_id(event.id)  # it keys the Slack ledger, as it keys the receiver's
    except UnpublishableEventError as exc:
        raise PoisonRecordError(str(exc)) from None
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


def forward_batch[M](
    event: dict[str, Any],
    context: Invocation,
    forwarder: Forwarder[M],
    metrics: Metrics,
    deferral: Deferral | None = None,
) -> PartialItemFailureResponse:
    """Forward the events of an SQS batch; the answer names the records to deliver again.

    Without `deferral`, a DeferrableError fails its record like any other error."""
    records = [SQSRecord(raw) for raw in event.get("Records", [])]
    prepared: dict[str, Prepared[M]] = {}
    failures: dict[str, ForwardingError] = {}
    for record in records:
        try:
            prepared[record.message_id] = _prepare(forwarder, read_record(record))
        except PoisonRecordError as exc:
            failures[record.message_id] = exc
    seconds = context.get_remaining_time_in_millis() / 1000 - SAFETY_MARGIN_SECONDS
    failures.update(forwarder.forward(list(prepared.values()), seconds))
    deferred = _defer(deferral, records, failures) if deferral is not None else {}

    def report(record: SQSRecord) -> None:
        failure = failures.get(record.message_id)
        queued = prepared.get(record.message_id)
        _log_outcome(record, queued.queued if queued else None, failure, deferred)
        if failure is not None and record.message_id not in deferred:
            raise failure

    # Powertools builds the answer; a batch that failed entirely is answered like any
    # other (every record listed) rather than raised, so that logs and metrics still go out.
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    answer = process_partial_response(event, record_handler=report, processor=processor)
    forwarded = len(processor.success_messages) - len(deferred)
    metrics.add_metric("EventsForwarded", MetricUnit.Count, forwarded)
    metrics.add_metric("EventsDeferred", MetricUnit.Count, len(deferred))
    metrics.add_metric("EventsFailed", MetricUnit.Count, len(processor.fail_messages))
    return answer


def _prepare[M](forwarder: Forwarder[M], queued: QueuedEvent) -> Prepared[M]:
    """The event in the service's form; PoisonRecordError if it cannot be put in it."""
    try:
        return Prepared(queued, forwarder.prepare(queued))
    except (ValueError, TypeError, RecursionError) as exc:
        # The exception's name only: its message may quote the event's content.
        raise PoisonRecordError(
            f"{queued.event.type} event {queued.event.id} cannot be put in the service's form "
            f"({type(exc).__name__})"
        ) from exc


def _defer(
    deferral: Deferral, records: Sequence[SQSRecord], failures: Mapping[str, ForwardingError]
) -> dict[str, float]:
    """Send the records that failed with a DeferrableError to the queue again; the delay of
    each one the queue took, by message id (the others stay failures)."""
    wanted = {
        record.message_id: Deferred.of(record.raw_event, failure.retry_after)
        for record in records
        if isinstance(failure := failures.get(record.message_id), DeferrableError)
    }
    not_taken = deferral.defer(list(wanted.values()))
    return {
        message_id: entry.delay_seconds
        for message_id, entry in wanted.items()
        if message_id not in not_taken
    }


def _log_outcome(
    record: SQSRecord,
    queued: QueuedEvent | None,
    failure: ForwardingError | None,
    deferred: Mapping[str, float],
) -> None:
    where: dict[str, object] = {
        "message_id": record.message_id,
        "receive_count": record.attributes.approximate_receive_count,
    }
    if queued is not None:
        where |= {"event_id": queued.event.id, "event_type": str(queued.event.type)}
    if failure is None:
        logger.info("event forwarded", extra=where)
    elif record.message_id in deferred:
        logger.info(
            "event deferred: sent to the queue again, delayed",
            extra=where | {"delay_seconds": deferred[record.message_id], "reason": str(failure)},
        )
    elif isinstance(failure, PoisonRecordError):
        logger.error(
            "poison record: it can never be delivered and will end in the dead-letter queue",
            extra=where | {"reason": str(failure)},
        )
    else:
        logger.warning(
            "event not forwarded: SQS will deliver it again",
            extra=where | {"error": type(failure).__name__, "reason": str(failure)},
        )
