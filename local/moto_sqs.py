"""moto's SQS with dead-letter queue redrive, as SQS has it.

moto 5 has no message move tasks (StartMessageMoveTask, ListMessageMoveTasks,
CancelMessageMoveTask: what the console's "Start DLQ redrive" and `p4f-bridge dlq redrive`
call). Here they are, for what the bridge relies on:

- the source must be a dead-letter queue of some queue; without DestinationArn its
  messages go back to the queue whose dead-letter queue it is (SQS sends each to the queue
  it came from; here a dead-letter queue has one source queue, as each of the bridge's has);
- the task moves the messages visible when it starts, each as a new message with the same
  body and attributes, and is COMPLETED at once (SQS takes a while, at up to
  MaxNumberOfMessagesPerSecond); a task that cannot run is FAILED with its FailureReason;
- ListMessageMoveTasks gives a source's tasks, newest first, with its handle only while a
  task runs.

    make_sqs_redrive()     # in this process (mock_aws); local.atomic_moto calls it too
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from moto.core.responses import ActionResult
from moto.sqs.exceptions import InvalidParameterValue
from moto.sqs.models import SQSBackend
from moto.sqs.responses import SQSResponse

_PATCHED = "_p4f_redrive"
_TASKS = "_p4f_move_tasks"


@dataclass
class _MoveTask:
    handle: str
    source_arn: str
    destination_arn: str | None
    rate: int | None
    started: int
    status: str = "RUNNING"
    moved: int = 0
    to_move: int = 0
    failure: str | None = None

    def describe(self) -> dict[str, Any]:
        described: dict[str, Any] = {
            "Status": self.status,
            "SourceArn": self.source_arn,
            "ApproximateNumberOfMessagesMoved": self.moved,
            "ApproximateNumberOfMessagesToMove": self.to_move,
            "StartedTimestamp": self.started,
        }
        if self.status == "RUNNING":  # as SQS: a task's handle only while it runs
            described["TaskHandle"] = self.handle
        if self.destination_arn:
            described["DestinationArn"] = self.destination_arn
        if self.rate:
            described["MaxNumberOfMessagesPerSecond"] = self.rate
        if self.failure:
            described["FailureReason"] = self.failure
        return described


def _tasks(backend: SQSBackend) -> dict[str, list[_MoveTask]]:
    if not hasattr(backend, _TASKS):
        setattr(backend, _TASKS, {})
    tasks: dict[str, list[_MoveTask]] = getattr(backend, _TASKS)
    return tasks


def _queue_name(arn: str) -> str:
    return arn.rsplit(":", 1)[-1]


def _run(backend: SQSBackend, task: _MoveTask) -> None:
    source = backend.get_queue(_queue_name(task.source_arn))
    origins = backend.list_dead_letter_source_queues(source.name)
    if task.destination_arn is not None:
        destination = backend.get_queue(_queue_name(task.destination_arn))
    elif len(origins) == 1:
        destination = origins[0]
    else:
        task.status, task.failure = "FAILED", "the messages' source queue is not known"
        return
    messages = source.messages  # the visible ones
    task.to_move = len(messages)
    for message in messages:
        backend.send_message(
            destination.name,
            message.body,
            message_attributes=message.message_attributes,
            validate_group_id=False,
        )
        with source._messages_lock:
            source._messages.remove(message)
        task.moved += 1
    task.status = "COMPLETED"


def start_message_move_task(self: SQSResponse) -> ActionResult:
    source_arn = self._get_param("SourceArn")
    source = self.sqs_backend.get_queue(_queue_name(source_arn))
    if not self.sqs_backend.list_dead_letter_source_queues(source.name):
        raise InvalidParameterValue("Source queue must be configured as a Dead Letter Queue.")
    tasks = _tasks(self.sqs_backend).setdefault(source_arn, [])
    if any(task.status == "RUNNING" for task in tasks):
        raise InvalidParameterValue("There is already a task running for this source queue.")
    rate = self._get_param("MaxNumberOfMessagesPerSecond")
    task = _MoveTask(
        handle=uuid.uuid4().hex,
        source_arn=source_arn,
        destination_arn=self._get_param("DestinationArn"),
        rate=int(rate) if rate else None,
        started=int(time.time() * 1000),
    )
    tasks.insert(0, task)
    _run(self.sqs_backend, task)
    return ActionResult({"TaskHandle": task.handle})


def list_message_move_tasks(self: SQSResponse) -> ActionResult:
    source_arn = self._get_param("SourceArn")
    most = int(self._get_param("MaxResults") or 1)
    tasks = _tasks(self.sqs_backend).get(source_arn, [])[:most]
    return ActionResult({"Results": [task.describe() for task in tasks]})


def cancel_message_move_task(self: SQSResponse) -> ActionResult:
    handle = self._get_param("TaskHandle")
    for tasks in _tasks(self.sqs_backend).values():
        for task in tasks:
            if task.handle == handle:
                if task.status != "RUNNING":
                    raise InvalidParameterValue("Only a running task can be cancelled.")
                task.status = "CANCELLED"
                return ActionResult({"ApproximateNumberOfMessagesMoved": task.moved})
    raise InvalidParameterValue(f"No task {handle}.")


def make_sqs_redrive() -> None:
    """Give moto's SQS the message move tasks (idempotent)."""
    if getattr(SQSResponse, _PATCHED, False):
        return
    responses: Any = SQSResponse
    responses.start_message_move_task = start_message_move_task
    responses.list_message_move_tasks = list_message_move_tasks
    responses.cancel_message_move_task = cancel_message_move_task
    setattr(SQSResponse, _PATCHED, True)
