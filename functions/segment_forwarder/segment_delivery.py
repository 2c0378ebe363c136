"""Sending Segment calls: a batch's calls in as few /v1/batch requests as Segment allows.

    WriteKeySecret     the write key, from Secrets Manager: the key itself or {"write_key": "..."}
    pack_requests      the batch's calls in as few requests as Segment's 500 KB allow (counted
                       as analytics-python counts, segment_calls.call_size), a record's
                       calls (identify and track) always in the same request
    SegmentForwarder   sends each request with basic auth (user: the write key). An answer
                       that is not 2xx fails exactly the records of that request; after a
                       429 the batch's later requests are not sent, and the records of the
                       429 and after are deferred (sent to the queue again for after its
                       Retry-After). Nothing is retried here: SQS delivers failed records
                       again, and Segment drops the calls it already has by messageId.

    SegmentError (ForwardingError)   Segment did not take a request
    ├── SegmentRateLimitedError      429 (deferred)
    ├── SegmentUnavailableError      5xx, time-out or lost connection
    └── SegmentRejectedError         400 (invalid JSON, too large) or another 4xx
    (and segment_calls' SegmentCallTooLargeError, a poison record, for one event;
    p4f.forwarding's SecretUnavailableError and OutOfTimeError for the rest)

The write key never appears in a message, a log line or a repr.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import httpx
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from segment_calls import SegmentCall, call_size, calls_for

from p4f import settings as env_readers
from p4f.forwarding import DeferrableError, ForwardingError, OutOfTimeError, read_secret
from p4f.retries import Deadline, retry_after
from p4f.secrets import KeySecret

if TYPE_CHECKING:
    from p4f.forwarding import Prepared, QueuedEvent

logger = Logger(child=True)
metrics = Metrics()  # the handler's: Powertools shares one set of metrics per namespace

MAX_REQUEST_BYTES = 500_000
"""Segment's 500 KB a request, read as 1,000-byte KB (the stricter reading) and counted as
analytics-python counts (call_size), which is never less than the bytes sent. An event
without personal data is a call of 300 to 750 bytes: SegmentBatchSize's 1,000 records are
two requests."""
DEFAULT_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class Settings:
    segment_secret_arn: str
    queue_url: str
    """The forwarder's own queue, where deferred records go."""
    endpoint: str
    """https://api.segment.io, or https://events.eu1.segmentapis.com for an EU workspace."""
    send_personal_data: bool

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        return cls(
            segment_secret_arn=env_readers.required(env, "SEGMENT_SECRET_ARN"),
            queue_url=env_readers.required(env, "SEGMENT_QUEUE_URL"),
            endpoint=env_readers.required(env, "SEGMENT_ENDPOINT").rstrip("/"),
            send_personal_data=env_readers.boolean(
                env, "SEGMENT_SEND_PERSONAL_DATA", default=False
            ),
        )


class SegmentError(ForwardingError):
    """Segment did not take a request."""


class SegmentRateLimitedError(SegmentError, DeferrableError):
    """Segment answered 429 (to this request or an earlier one of the batch): deferred."""


class SegmentUnavailableError(SegmentError):
    """Segment answered 5xx, or no answer came in time."""


class SegmentRejectedError(SegmentError):
    """Segment refused the request (400: invalid JSON or too large; another 4xx)."""


class WriteKeySecret(KeySecret):
    """The Segment source's write key."""

    field = "write_key"
    what = "the Segment write key"


@dataclass
class Request:
    """One /v1/batch request: the records it carries and their calls."""

    message_ids: list[str] = field(default_factory=list)
    calls: list[SegmentCall] = field(default_factory=list)

    def body(self, sent_at: str) -> bytes:
        encoded = b",".join(call.encoded for call in self.calls)
        return b'{"batch":[' + encoded + f'],"sentAt":"{sent_at}"}}'.encode()


def sent_at_now() -> str:
    """The sentAt of a request: now, to the millisecond, as analytics-python writes times."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


_SEPARATOR_BYTES = len(", ")
"""What call_size counts between two calls of a batch."""
_ENVELOPE_BYTES = call_size({"batch": [], "sentAt": sent_at_now()})


def pack_requests(
    records: Sequence[tuple[str, list[SegmentCall]]], max_bytes: int = MAX_REQUEST_BYTES
) -> list[Request]:
    """`records` (SQS message id, its calls) in order, in as few requests of at most
    `max_bytes` as fit; every call is at most 32 KB, so a record always fits one."""
    # Each call is counted with a separator before it; the first call of a request has none.
    empty = _ENVELOPE_BYTES - _SEPARATOR_BYTES
    requests: list[Request] = []
    current, size = Request(), empty
    for message_id, calls in records:
        adds = sum(call.size + _SEPARATOR_BYTES for call in calls)
        if current.calls and size + adds > max_bytes:
            requests.append(current)
            current, size = Request(), empty
        current.message_ids.append(message_id)
        current.calls.extend(calls)
        size += adds
    if current.calls:
        requests.append(current)
    return requests


class SegmentForwarder:
    """Sends a batch's events to Segment (see the module docstring for the rules)."""

    def __init__(
        self,
        write_key: WriteKeySecret,
        http: httpx.Client,
        *,
        endpoint: str,
        personal_data: bool = False,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        max_request_bytes: int = MAX_REQUEST_BYTES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._write_key = write_key
        self._http = http
        self._url = f"{endpoint.rstrip('/')}/v1/batch"
        self._personal_data = personal_data
        self._timeout = timeout
        self._max_request_bytes = max_request_bytes
        self._clock = clock

    def prepare(self, queued: QueuedEvent) -> list[SegmentCall]:
        """The event's calls; a trimmed one is logged and counted (SegmentCallsTrimmed)."""
        calls = calls_for(queued, personal_data=self._personal_data)
        for call in calls:
            if call.trimmed:
                logger.warning(
                    "a Segment call was trimmed to fit Segment's 32 KB",
                    extra={
                        "event_id": queued.event.id,
                        "items_cut": dict(call.cut_items),
                        "properties_dropped": list(call.dropped),
                    },
                )
                metrics.add_metric("SegmentCallsTrimmed", MetricUnit.Count, 1)
        return calls

    def forward(
        self, batch: Sequence[Prepared[list[SegmentCall]]], seconds: float
    ) -> dict[str, ForwardingError]:
        """Send the events' calls within `seconds`; the failures by SQS message id."""
        deadline = Deadline(seconds, self._clock)
        failures: dict[str, ForwardingError] = {}
        records = [(item.message_id, item.content) for item in batch]
        after_429: SegmentRateLimitedError | None = None
        for request in pack_requests(records, self._max_request_bytes):
            failure = self._failure_of(request, deadline, after_429)
            if failure is not None:
                failures.update(dict.fromkeys(request.message_ids, failure))
            if isinstance(failure, SegmentRateLimitedError):
                after_429 = after_429 or failure
        return failures

    def _failure_of(
        self, request: Request, deadline: Deadline, after_429: SegmentRateLimitedError | None
    ) -> ForwardingError | None:
        """Why Segment did not take `request`, or None if it did; after a 429 to an earlier
        request of the batch, it is not sent."""
        if after_429 is not None:
            return SegmentRateLimitedError(
                f"not sent: Segment rate-limited an earlier request of this batch ({after_429})",
                after_429.retry_after,
            )
        try:
            self._send(request, deadline)
        except ForwardingError as exc:
            return exc
        return None

    def _send(self, request: Request, deadline: Deadline) -> None:
        remaining = deadline.remaining()
        if remaining <= 0:
            raise OutOfTimeError("the invocation's time ran out before the request was sent")
        sent_at = sent_at_now()
        timeout = min(self._timeout, remaining)
        try:
            answer = self._http.post(
                self._url,
                content=request.body(sent_at),
                auth=(read_secret(self._write_key), ""),
                headers={"Content-Type": "application/json"},
                timeout=timeout,
            )
        except httpx.TimeoutException as exc:
            raise SegmentUnavailableError(
                f"Segment did not answer within {timeout:.1f}s ({type(exc).__name__})"
            ) from exc
        except httpx.TransportError as exc:
            raise SegmentUnavailableError(
                f"could not reach Segment ({type(exc).__name__})"
            ) from exc
        status = answer.status_code
        if status == 429:
            wait = retry_after(answer)
            raise SegmentRateLimitedError(f"Segment answered 429, Retry-After {wait:g}s", wait)
        if status >= 500:
            raise SegmentUnavailableError(f"Segment answered HTTP {status}")
        if not answer.is_success:
            said = " ".join(answer.text.split())[:200]
            raise SegmentRejectedError(
                f"Segment refused the request with HTTP {status}: {said!r}; check the write key "
                "and the endpoint (SegmentRegion), else report this as a p4f-bridge bug"
            )
