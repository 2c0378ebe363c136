"""Lambda's SQS event source mapping on one machine: poll a queue, invoke a handler with
batches of its messages, delete the ones it processed.

    with SqsPoller(sqs, queue_url, app.lambda_handler, function_name="campaign-trigger",
                   batch_size=5, concurrency=2, function_timeout=25) as poller:
        ...                                   # send messages
        poller.wait_until_idle(timeout=30)    # every message processed (or in the DLQ)

What it does, as the event source mapping does
(https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html):

* `concurrency` pollers (ScalingConfig.MaximumConcurrency) each receive up to `batch_size`
  messages with long polling and invoke the handler with the SQS event that
  `local.lambda_events` builds, one batch at a time, each with a fresh context of
  `function_timeout` seconds;
* with a `batching_window` (MaximumBatchingWindowInSeconds), a poller that received a
  message keeps receiving for up to that many seconds, until it has `batch_size` messages
  (up to 10,000) or more could take the invocation over Lambda's 6 MB;
  without one, a batch is what one receive returns (10 messages at most);
* each poller is a container: given `new_container` instead of `handler`, the poller
  builds one handler per poller (a cold start) and keeps it, so that what a function keeps
  at module level (a client's rate limiter, caches) is per container, as in Lambda;
* with `report_batch_item_failures` (FunctionResponseTypes: [ReportBatchItemFailures]),
  the messages the answer lists in `batchItemFailures` stay in the queue and the others are
  deleted; without it, a batch is deleted whole once the handler returns;
* the whole batch stays when the handler raises, runs past `function_timeout`, or answers
  something invalid (an `itemIdentifier` that is missing, empty or not in the batch);
* a message that stays is left alone: SQS makes it visible again after the queue's
  visibility timeout, and moves it to the dead-letter queue once it has been received
  the redrive policy's maxReceiveCount times (moto does both).

Calls to SQS are serialised: moto's in-process SQS is not thread-safe (two pollers could be
given the same message, and a delete that rebuilds a queue's message list while another
poller receives from it loses that poller's receipt); handlers still run concurrently. The
lock is taken in turn (first come, first served): with a plain lock, a poller whose long
poll came back empty takes it again at once, and `wait_until_idle` could wait for ever.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from local.lambda_events import LocalLambdaContext, sqs_event, sqs_record_from_message
from local.lifecycle import Outage, Started

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Sequence

    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef

    Handler = Callable[[dict[str, Any], LocalLambdaContext], Any]

MAX_RECEIVE = 10
"""The most one ReceiveMessage call returns: the largest batch without a batching window."""
MAX_BATCH_SIZE = 10_000
"""The largest batch of a standard queue, with a batching window."""
MAX_BATCH_BYTES = 6 * 1024 * 1024
"""Lambda's invocation payload limit, which ends a batch's gathering early."""
MAX_MESSAGE_BYTES = 256 * 1024
"""The largest SQS message: a batch gathers no more once one more could overflow it."""
_RETRY_RECEIVE_SECONDS = 0.5
_SHORT_POLL_INTERVAL = 0.05
"""The pause after an empty receive without long polling (wait_seconds=0)."""

logger = logging.getLogger(__name__)


class PollerError(RuntimeError):
    """The poller could not start, or did not go idle or stop in time."""


class _TurnLock:
    """A lock its waiters get in the order they asked for it."""

    def __init__(self) -> None:
        self._turns = threading.Condition()
        self._next_ticket = 0
        self._serving = 0

    def __enter__(self) -> None:
        with self._turns:
            ticket = self._next_ticket
            self._next_ticket += 1
            self._turns.wait_for(lambda: self._serving == ticket)

    def __exit__(self, *exc_info: object) -> None:
        with self._turns:
            self._serving += 1
            self._turns.notify_all()


@dataclass(frozen=True)
class Invocation:
    """One batch handed to the handler, and what became of it."""

    container: int
    """Which poller (container) ran it: 0 to concurrency - 1."""
    message_ids: tuple[str, ...]
    failed_ids: frozenset[str]
    """The messages left in the queue: the reported failures, or the whole batch."""
    error: str | None = None
    """Why the whole batch failed (the handler raised, timed out, answered nonsense)."""


class SqsPoller(Started):
    """Feeds one queue's messages to one handler, like a Lambda event source mapping."""

    def __init__(
        self,
        sqs: SQSClient,
        queue_url: str,
        handler: Handler | None = None,
        *,
        new_container: Callable[[], Handler] | None = None,
        function_name: str = "local-function",
        batch_size: int = MAX_RECEIVE,
        concurrency: int = 2,
        function_timeout: float = 30.0,
        wait_seconds: int = 1,
        report_batch_item_failures: bool = True,
        batching_window: float = 0.0,
    ) -> None:
        largest = MAX_BATCH_SIZE if batching_window > 0 else MAX_RECEIVE
        if not 1 <= batch_size <= largest:
            raise ValueError(
                f"batch_size must be 1 to {largest}"
                + ("" if batching_window > 0 else " without a batching window")
            )
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self._sqs = sqs
        self._queue_url = queue_url
        if new_container is not None and handler is None:
            self._new_container = new_container
        elif handler is not None and new_container is None:
            self._new_container = _shared(handler)
        else:
            raise ValueError("give the poller a handler, or new_container (one per poller)")
        self._handlers: list[Handler] = []
        self._function_name = function_name
        self._batch_size = batch_size
        self._batching_window = batching_window
        self._function_timeout = function_timeout
        self._wait_seconds = wait_seconds
        self._report_failures = report_batch_item_failures
        self._stopping = threading.Event()
        self._outage = Outage(logger, f"could not receive from {queue_url}")
        self._sqs_lock = _TurnLock()
        self._state = threading.Lock()
        self._busy = 0
        self._invocations: list[Invocation] = []
        self._queue_arn = ""
        self._threads = [
            threading.Thread(
                target=self._poll, args=(n,), name=f"sqs-poller-{function_name}-{n}", daemon=True
            )
            for n in range(concurrency)
        ]

    @property
    def invocations(self) -> list[Invocation]:
        """Every batch handled so far, in the order they finished."""
        with self._state:
            return list(self._invocations)

    def start(self) -> None:
        try:
            attributes = self._sqs.get_queue_attributes(
                QueueUrl=self._queue_url, AttributeNames=["QueueArn"]
            )["Attributes"]
        except (ClientError, BotoCoreError) as exc:
            raise PollerError(f"cannot poll {self._queue_url}: {exc}") from exc
        self._queue_arn = attributes["QueueArn"]
        # Built here, one after the other: a handler's module may not be importable twice at once.
        self._handlers = [self._new_container() for _ in self._threads]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Stop polling; batches being handled are finished first."""
        self._stopping.set()
        for thread in self._threads:
            if thread.is_alive():
                thread.join(self._wait_seconds + self._function_timeout + 5)
        if any(thread.is_alive() for thread in self._threads):
            raise PollerError(f"the pollers of {self._queue_url} did not stop")

    def wait_until_idle(self, timeout: float, *, poll_interval: float = 0.05) -> None:
        """Return once the queue holds no message (visible, in flight or delayed) and no
        batch is being handled; PollerError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while not self._idle():
            if time.monotonic() > deadline:
                raise PollerError(f"{self._queue_url} still had messages after {timeout}s")
            time.sleep(poll_interval)

    def _idle(self) -> bool:
        # Counted between receives: a receive that moves a message to the dead-letter queue
        # has it in neither queue for a moment (in moto). And counted twice: moto reads the
        # clock once per count, so a message whose visibility timeout ends between two of
        # them is in neither the visible nor the in-flight count of one reading.
        with self._sqs_lock:
            with self._state:
                if self._busy:
                    return False
            return self._queue_empty() and self._queue_empty()

    def _queue_empty(self) -> bool:
        counts = self._sqs.get_queue_attributes(
            QueueUrl=self._queue_url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
        return all(count == "0" for count in counts.values())

    # --- one poller ---------------------------------------------------------------

    def _poll(self, container: int) -> None:
        handler = self._handlers[container]
        while not self._stopping.is_set():
            try:
                messages = self._receive()
            except (ClientError, BotoCoreError) as exc:
                if self._stopping.is_set():
                    return  # SQS may have stopped first
                self._outage.failed(exc)
                self._stopping.wait(_RETRY_RECEIVE_SECONDS)
                continue
            self._outage.ended()
            if messages:
                self._handle(container, handler, messages)
            elif not self._wait_seconds:
                self._stopping.wait(_SHORT_POLL_INTERVAL)

    def _receive(self) -> list[MessageTypeDef]:
        """A batch: the first receive's messages, and what the batching window gathers."""
        with self._sqs_lock:
            if self._stopping.is_set():
                return []
            messages = self._receive_some(min(MAX_RECEIVE, self._batch_size), self._wait_seconds)
            if messages:
                with self._state:
                    self._busy += 1
        if messages and self._batching_window:
            self._gather(messages)
        return messages

    def _gather(self, messages: list[MessageTypeDef]) -> None:
        """Add to `messages` until the window closes, the batch is full, more messages could
        take it over Lambda's payload limit, or the poller stops (it hands over what it has)."""
        closes = time.monotonic() + self._batching_window
        size = _bytes(messages)
        while time.monotonic() < closes and not self._stopping.is_set():
            room = min(
                MAX_RECEIVE,
                self._batch_size - len(messages),
                (MAX_BATCH_BYTES - size) // MAX_MESSAGE_BYTES,
            )
            if room <= 0:
                return
            try:
                with self._sqs_lock:
                    more = self._receive_some(room, wait_seconds=0)
            except (ClientError, BotoCoreError) as exc:
                if not self._stopping.is_set():  # the batch goes as is; the loop retries
                    self._outage.failed(exc)
                return
            messages += more
            size += _bytes(more)
            if not more:
                self._stopping.wait(min(_SHORT_POLL_INTERVAL, max(closes - time.monotonic(), 0)))

    def _receive_some(self, count: int, wait_seconds: int) -> list[MessageTypeDef]:
        return self._sqs.receive_message(
            QueueUrl=self._queue_url,
            MaxNumberOfMessages=count,
            WaitTimeSeconds=wait_seconds,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])

    def _handle(self, container: int, handler: Handler, messages: Sequence[MessageTypeDef]) -> None:
        try:
            invocation = self._invoke(container, handler, messages)
            with self._state:
                self._invocations.append(invocation)
            self._delete([m for m in messages if m["MessageId"] not in invocation.failed_ids])
        except (ClientError, BotoCoreError):
            # The processed messages come back after their visibility timeout, as in Lambda.
            logger.exception("could not delete the processed messages from %s", self._queue_url)
        finally:
            with self._state:
                self._busy -= 1

    def _invoke(
        self, container: int, handler: Handler, messages: Sequence[MessageTypeDef]
    ) -> Invocation:
        ids = tuple(message["MessageId"] for message in messages)
        event = sqs_event([sqs_record_from_message(m, queue_arn=self._queue_arn) for m in messages])
        started = time.monotonic()
        try:
            answer = handler(event, LocalLambdaContext(self._function_name, self._function_timeout))
        except Exception as exc:  # a function error fails the batch, as in Lambda
            logger.exception("%s failed; its batch stays in the queue", self._function_name)
            return Invocation(container, ids, frozenset(ids), f"{type(exc).__name__}: {exc}")
        if time.monotonic() - started > self._function_timeout:
            error = f"ran longer than its timeout of {self._function_timeout}s"
            logger.error("%s %s; its batch stays in the queue", self._function_name, error)
            return Invocation(container, ids, frozenset(ids), error)
        if not self._report_failures:
            return Invocation(container, ids, frozenset())
        try:
            return Invocation(container, ids, _reported_failures(answer, ids))
        except ValueError as exc:
            logger.error("%s answered %s; its batch stays in the queue", self._function_name, exc)
            return Invocation(container, ids, frozenset(ids), str(exc))

    def _delete(self, messages: Sequence[MessageTypeDef]) -> None:
        for start in range(0, len(messages), MAX_RECEIVE):
            chunk = messages[start : start + MAX_RECEIVE]
            with self._sqs_lock:
                answer = self._sqs.delete_message_batch(
                    QueueUrl=self._queue_url,
                    Entries=[
                        {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]}
                        for n, m in enumerate(chunk)
                    ],
                )
            for failed in answer.get("Failed", []):
                logger.warning("could not delete a processed message: %s", failed["Message"])


def send_bodies(sqs: SQSClient, queue_url: str, bodies: Sequence[str]) -> None:
    """The bodies into the queue, ten at a time (SendMessageBatch's most)."""
    for start in range(0, len(bodies), 10):
        sqs.send_message_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(n), "MessageBody": body}
                for n, body in enumerate(bodies[start : start + 10])
            ],
        )


def _bytes(messages: Sequence[MessageTypeDef]) -> int:
    return sum(len(message.get("Body", "").encode()) for message in messages)


def _shared(handler: Handler) -> Callable[[], Handler]:
    """Every poller gets the same handler (one container, as far as module state goes)."""
    return lambda: handler


def _reported_failures(answer: object, ids: Collection[str]) -> frozenset[str]:
    """The message ids a ReportBatchItemFailures answer lists; ValueError if it is invalid."""
    if answer is None:
        return frozenset()
    if not isinstance(answer, dict):
        raise ValueError(f"a {type(answer).__name__} instead of an object")
    failures = answer.get("batchItemFailures") or []
    if not isinstance(failures, list):
        raise ValueError("batchItemFailures that is not a list")
    failed = set()
    for failure in failures:
        item = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not isinstance(item, str) or item not in ids:
            raise ValueError(f"an itemIdentifier that names no message of the batch: {item!r}")
        failed.add(item)
    return frozenset(failed)
