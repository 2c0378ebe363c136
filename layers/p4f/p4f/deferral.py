"""Work that must wait: an SQS record sent back to its own queue with a delay.

    Deferral(queue_url).defer([Deferred.of(record, delay_seconds=30), ...])
        -> the message ids still to report failed (the queue did not take their copy)

A record that cannot be handled *yet* (the service asked for a pause: a 429's Retry-After;
another invocation holds its key) has not failed. Reported failed, it would come back
after the visibility timeout and count toward the queue's maxReceiveCount, so a long pause
would push healthy records into the dead-letter queue. Deferred, its body (and its string
message attributes) go to the same queue as a new message with DelaySeconds (at most 900),
and the record is reported done once the copy is accepted: no receive is counted.

No record is put back for ever: a copy carries the message attribute `p4f_deferred_since`
(when it was first deferred), and a record deferred for longer than `max_age` (a day by
default) is not deferred again but fails, so that maxReceiveCount and the dead-letter
queue take over. FIFO queues take no per-message delay: deferral is for standard queues.

The one owner of deferral, used by the campaign trigger's queue entry and by the
forwarders (p4f.forwarding). boto3's SQS client is built on first use: deferring is rare,
and cold starts stay short.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

if TYPE_CHECKING:
    from collections.abc import Callable

    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef

logger = Logger(child=True)

DEFERRED_SINCE = "p4f_deferred_since"
"""The message attribute with the epoch seconds of a record's first deferral."""
MAX_DELAY_SECONDS = 900
"""The longest DelaySeconds SQS allows."""
MAX_DEFERRAL_SECONDS = 24 * 3600.0
_MAX_ENTRIES = 10
_MAX_BATCH_BYTES = 1_048_576
"""What one SendMessageBatch may carry in all, bodies and attributes."""


@dataclass(frozen=True)
class Deferred:
    """A record to send again later."""

    message_id: str
    body: str
    delay_seconds: float
    attributes: Mapping[str, str] = field(default_factory=dict)
    """Its string message attributes, `p4f_deferred_since` included once it was deferred."""

    @classmethod
    def of(cls, record: Mapping[str, Any], delay_seconds: float) -> Deferred:
        """A record of a Lambda SQS event, to come back in `delay_seconds`."""
        attributes = {
            name: value["stringValue"]
            for name, value in (record.get("messageAttributes") or {}).items()
            if isinstance(value, Mapping) and isinstance(value.get("stringValue"), str)
        }
        return cls(str(record["messageId"]), str(record["body"]), delay_seconds, attributes)

    def since(self, now: float) -> float:
        """When the record was first deferred (`now` if it never was)."""
        try:
            return float(self.attributes[DEFERRED_SINCE])
        except (KeyError, ValueError):
            return now

    def size(self) -> int:
        """Its bytes in a SendMessageBatch: the body, and each attribute's name, type, value."""
        return len(self.body.encode("utf-8", "surrogatepass")) + sum(
            len(name) + len("String") + len(value.encode("utf-8", "surrogatepass"))
            for name, value in self.attributes.items()
        )


class Deferral:
    """Sends records back to the queue `queue_url` (theirs), delayed."""

    def __init__(
        self,
        queue_url: str,
        *,
        boto3_client: SQSClient | None = None,
        max_age: float = MAX_DEFERRAL_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.queue_url = queue_url
        self._client = boto3_client
        self._max_age = max_age
        self._clock = clock

    def defer(self, entries: Sequence[Deferred]) -> set[str]:
        """Send each entry to the queue again, delayed; the message ids of those still to
        report failed: deferred for longer than `max_age` already, or not taken."""
        now = self._clock()
        fresh = [entry for entry in entries if now - entry.since(now) <= self._max_age]
        refused = {entry.message_id for entry in entries} - {e.message_id for e in fresh}
        if refused:
            logger.warning(
                "records deferred for longer than %.0fs fail instead: the queue's redrive "
                "policy takes over",
                self._max_age,
                extra={"message_ids": sorted(refused)},
            )
        for chunk in _chunks([_stamped(entry, now) for entry in fresh]):
            refused |= self._send(chunk)
        return refused

    def _send(self, chunk: Sequence[Deferred]) -> set[str]:
        """One SendMessageBatch; the message ids the queue did not take."""
        try:
            answer = self._sqs().send_message_batch(
                QueueUrl=self.queue_url, Entries=[_entry(n, one) for n, one in enumerate(chunk)]
            )
        except (ClientError, BotoCoreError):
            logger.exception("the queue did not take the deferred records; they fail instead")
            return {one.message_id for one in chunk}
        failed = answer.get("Failed", [])
        if failed:
            logger.error("the queue did not take some deferred records", extra={"failed": failed})
        return {chunk[int(entry["Id"])].message_id for entry in failed}

    def _sqs(self) -> SQSClient:
        if self._client is None:
            import boto3
            from botocore.config import Config

            self._client = boto3.client(
                "sqs", config=Config(connect_timeout=1, read_timeout=3, retries={"max_attempts": 2})
            )
        return self._client


def _stamped(entry: Deferred, now: float) -> Deferred:
    """The entry with its first deferral's time among its attributes."""
    since = repr(entry.since(now))
    return Deferred(
        entry.message_id,
        entry.body,
        entry.delay_seconds,
        {**entry.attributes, DEFERRED_SINCE: since},
    )


def _entry(number: int, entry: Deferred) -> SendMessageBatchRequestEntryTypeDef:
    return {
        "Id": str(number),
        "MessageBody": entry.body,
        "DelaySeconds": min(MAX_DELAY_SECONDS, max(0, math.ceil(entry.delay_seconds))),
        "MessageAttributes": {
            name: {"DataType": "String", "StringValue": value}
            for name, value in entry.attributes.items()
        },
    }


def _chunks(entries: Sequence[Deferred]) -> list[list[Deferred]]:
    """`entries` in order, in batches SendMessageBatch takes: 10 entries, 1 MiB in all."""
    chunks: list[list[Deferred]] = []
    size = 0
    for entry in entries:
        if not chunks or len(chunks[-1]) == _MAX_ENTRIES or size + entry.size() > _MAX_BATCH_BYTES:
            chunks.append([])
            size = 0
        chunks[-1].append(entry)
        size += entry.size()
    return chunks
