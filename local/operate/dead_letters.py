"""`p4f-bridge dlq list|peek|redrive`: the stack's dead-letter queues, what waits in them and
why, and their messages sent back to the queue they came from.

    depth(stack, queue)                  messages waiting, in flight, and the oldest one's age
    peek(stack, queue, count)            the first messages: what each is, and the error the
                                         function that polls the source queue logged for it
    Redrive(stack, say=print).run(queue) SQS's message move task from the dead-letter queue
                                         to its source queue, followed to its end

Peeking receives messages and makes them visible again at once: a dead-letter queue has no
consumer and no redrive policy, so nothing else changes (their receive count grows by one).
The age of the oldest message is CloudWatch's ApproximateAgeOfOldestMessage when SQS has
published it, else that of the oldest of the messages peeked ("at least").
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from local.operate.cloudwatch import oldest_ages

if TYPE_CHECKING:
    from local.operate.stack import DeadLetterQueue, LogLine, OperatedStack

PEEK_MOST = 10
"""SQS gives at most 10 messages a receive; a peek shows at most that many."""
_PEEK_VISIBILITY_SECONDS = 30
"""How long peeked messages are hidden while the peek gathers them (then shown again)."""
_MOVE_FINAL = frozenset({"COMPLETED", "CANCELLED", "FAILED"})
_CLOCKS_APART_MS = 5000
"""How far this machine's clock may be behind SQS's, for a task's start time."""
_FAILED_WITHIN = timedelta(days=1)
"""A record fails its last time within a day of being sent (p4f.deferral defers it no longer):
the logs searched for what its function said of it end there."""
_LOGGED_LEVELS = frozenset({"WARNING", "ERROR", "CRITICAL"})
_EVENTBRIDGE_ERROR = ("ERROR_CODE", "ERROR_MESSAGE")
"""Message attributes of an event EventBridge could not deliver to its target."""


class RedriveRefusedError(RuntimeError):
    """The dead-letter queue's messages cannot be moved back to a queue."""


@dataclass(frozen=True)
class Depth:
    waiting: int
    in_flight: int
    oldest_seconds: float | None
    oldest_at_least: bool = False
    """The age is that of the oldest message peeked, not SQS's own figure."""


@dataclass(frozen=True)
class Peeked:
    message_id: str
    sent_at: datetime
    receive_count: int
    what: str
    """The event in it: `<detail-type> <id>`, or what it is when it is no event."""
    delivery_error: str | None
    """Why EventBridge could not deliver it to its target, when that is how it came."""
    logged: list[LogLine] = field(default_factory=list)
    """What the function polling the source queue logged of it (warnings and errors)."""


@dataclass(frozen=True)
class RedriveOutcome:
    status: str
    moved: int
    to_move: int
    failure: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "COMPLETED"


def counts(stack: OperatedStack, queue_url: str) -> tuple[int, int]:
    """The messages waiting in a queue of the stack, and those in flight."""
    attributes = stack.client("sqs").get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return (
        int(attributes["ApproximateNumberOfMessages"]),
        int(attributes["ApproximateNumberOfMessagesNotVisible"]),
    )


def depth(stack: OperatedStack, queue: DeadLetterQueue) -> Depth:
    waiting, in_flight = counts(stack, queue.url)
    name = queue.arn.rsplit(":", 1)[-1]
    age = oldest_ages(stack.client("cloudwatch"), [name], _now()).get(name)
    if age is not None or not waiting:
        return Depth(waiting, in_flight, age)
    seen = oldest_seen(stack, queue)
    return Depth(waiting, in_flight, seen, oldest_at_least=seen is not None)


def oldest_seen(stack: OperatedStack, queue: DeadLetterQueue) -> float | None:
    """The age in seconds of the oldest of the messages a peek sees (CloudWatch's figure
    stands in for it when SQS has published one)."""
    sent = [one.sent_at for one in peek(stack, queue, PEEK_MOST, with_logs=False)]
    return (_now() - min(sent)).total_seconds() if sent else None


def peek(
    stack: OperatedStack, queue: DeadLetterQueue, count: int, *, with_logs: bool = True
) -> list[Peeked]:
    """The first `count` (at most PEEK_MOST) messages, left in the queue."""
    sqs = stack.client("sqs")
    received: dict[str, dict[str, Any]] = {}
    try:
        while len(received) < min(count, PEEK_MOST):
            messages = sqs.receive_message(
                QueueUrl=queue.url,
                MaxNumberOfMessages=min(count, PEEK_MOST) - len(received),
                VisibilityTimeout=_PEEK_VISIBILITY_SECONDS,
                WaitTimeSeconds=1,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not messages:
                break
            received |= {message["MessageId"]: message for message in messages}
    finally:
        _show_again(sqs, queue.url, list(received.values()))
    consumer = _consumer(stack, queue) if with_logs and received else None
    peeked = [_peeked(message) for message in received.values()]
    if consumer is None:
        return peeked
    return [replace(one, logged=_logged(stack, consumer, one)) for one in peeked]


def _show_again(sqs: Any, url: str, messages: list[dict[str, Any]]) -> None:
    for start in range(0, len(messages), PEEK_MOST):
        sqs.change_message_visibility_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                for i, m in enumerate(messages[start : start + PEEK_MOST])
            ],
        )


def _peeked(message: dict[str, Any]) -> Peeked:
    attributes = message.get("Attributes", {})
    sent_at = datetime.fromtimestamp(int(attributes.get("SentTimestamp", 0)) / 1000, UTC)
    values = {
        name: value.get("StringValue", "")
        for name, value in message.get("MessageAttributes", {}).items()
    }
    error = ": ".join(values[name] for name in _EVENTBRIDGE_ERROR if name in values)
    return Peeked(
        message_id=message["MessageId"],
        sent_at=sent_at,
        receive_count=int(attributes.get("ApproximateReceiveCount", 0)),
        what=_what(message.get("Body", "")),
        delivery_error=error or None,
    )


def _what(body: str) -> str:
    """The event a message holds, by type and id: never its content (answers, e-mails)."""
    try:
        event = json.loads(body)
    except ValueError:
        return f"not JSON ({len(body.encode())} bytes)"
    if not isinstance(event, dict) or "detail-type" not in event:
        return f"not an EventBridge event ({len(body.encode())} bytes)"
    detail = event.get("detail")
    event_id = detail.get("id") if isinstance(detail, dict) else None
    return f"{event['detail-type']} {event_id or event.get('id', '?')}"


def _consumer(stack: OperatedStack, queue: DeadLetterQueue) -> str | None:
    source = source_queue_arn(stack, queue)
    return stack.logs.consumer(source) if source else None


def _logged(stack: OperatedStack, function: str, message: Peeked) -> list[LogLine]:
    lines = stack.logs.lines(
        function,
        containing=message.message_id,
        since=message.sent_at - timedelta(minutes=1),
        until=message.sent_at + _FAILED_WITHIN,
    )
    return [line for line in lines if line.level in _LOGGED_LEVELS]


def source_queue_arn(stack: OperatedStack, queue: DeadLetterQueue) -> str | None:
    """The queue whose dead-letter queue `queue` is (the bridge's have one each), if any."""
    sqs = stack.client("sqs")
    urls = sqs.list_dead_letter_source_queues(QueueUrl=queue.url).get("queueUrls", [])
    if not urls:
        return None
    arn: str = sqs.get_queue_attributes(QueueUrl=urls[0], AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    return arn


class Redrive:
    """A dead-letter queue's messages back to its source queue (SQS's message move task)."""

    def __init__(
        self,
        stack: OperatedStack,
        *,
        say: Callable[[str], None],
        poll_seconds: float = 2.0,
    ) -> None:
        self._stack = stack
        self._say = say
        self._poll_seconds = poll_seconds

    def run(self, queue: DeadLetterQueue) -> RedriveOutcome:
        source = source_queue_arn(self._stack, queue)
        if source is None:
            raise RedriveRefusedError(
                f"{queue.name} is the dead-letter queue of no queue: it holds events "
                "EventBridge could not deliver to their target, which SQS cannot move back. "
                "Send them again from the archive: p4f-bridge replay --stack NAME (or --local) "
                f"--from T --to {queue.name}"
            )
        sqs = self._stack.client("sqs")
        started = int(time.time() * 1000) - _CLOCKS_APART_MS
        handle = sqs.start_message_move_task(SourceArn=queue.arn, DestinationArn=source)
        self._say(f"moving {queue.name}'s messages to {source.rsplit(':', 1)[-1]} ...")
        shown = None
        while True:
            task = self._task(handle["TaskHandle"], started, queue.arn)
            progress = (task.status, task.moved, task.to_move)
            if progress != shown:
                self._say(f"  {task.status.lower()}: {task.moved} of {task.to_move} moved")
                shown = progress
            if task.status in _MOVE_FINAL:
                return task
            time.sleep(self._poll_seconds)

    def _task(self, handle: str, started: int, source_arn: str) -> RedriveOutcome:
        """The task started: by its handle while it runs (SQS gives it only then), after by
        its start (newest first: the first task started since this one was)."""
        results = self._stack.client("sqs").list_message_move_tasks(
            SourceArn=source_arn, MaxResults=10
        )["Results"]
        for task in results:
            ours = task.get("TaskHandle") == handle or (
                "TaskHandle" not in task and int(task.get("StartedTimestamp", 0)) >= started
            )
            if ours:
                return RedriveOutcome(
                    status=task["Status"],
                    moved=int(task.get("ApproximateNumberOfMessagesMoved", 0)),
                    to_move=int(task.get("ApproximateNumberOfMessagesToMove", 0)),
                    failure=task.get("FailureReason"),
                )
        return RedriveOutcome(status="FAILED", moved=0, to_move=0, failure="the task is gone")


def _now() -> datetime:
    return datetime.now(UTC)
