"""The one hop moto does not make: a bus rule's Firehose target.

moto matches the rule and puts the event in the target's stand-in queue
(local.cloudformation); the relay takes it from there, applies the target's InputPath or
InputTransformer as EventBridge would (local.input_transformer) and hands the result to
the stream with PutRecordBatch, one record per event, as EventBridge does. moto's Firehose
then writes the S3 object (local.moto_firehose makes it write what Firehose writes).

    with FirehoseRelay(sqs, firehose, deployment.firehose_targets) as relay:
        ...                                   # events on the bus
        relay.wait_until_idle(timeout=10)     # every one of them handed to Firehose

An event the transformation cannot handle, or that Firehose refuses, stays in its queue and
after a few tries lands in the target's dead-letter queue, as undeliverable events do.
One thread serves every stand-in queue with short polls, pausing when all are empty, so
that an idle stack costs little and stops at once.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from local.input_transformer import TransformError
from local.lifecycle import Outage, Started

if TYPE_CHECKING:
    from collections.abc import Sequence

    from local.cloudformation import FirehoseTarget

logger = logging.getLogger(__name__)

IDLE_PAUSE_SECONDS = 0.2
"""How long the relay rests when no stand-in queue had anything (the hop's latency)."""
_MAX_MESSAGES = 10
_COUNTS = [
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
]


class RelayError(RuntimeError):
    """The relay did not go idle, or stop, in time."""


class FirehoseRelay(Started):
    """Hands every Firehose target's events to its stream, while started."""

    def __init__(
        self,
        sqs: Any,
        firehose: Any,
        targets: Sequence[FirehoseTarget],
        *,
        idle_pause: float = IDLE_PAUSE_SECONDS,
    ) -> None:
        self._sqs = sqs
        self._firehose = firehose
        self._targets = list(targets)
        self._idle_pause = idle_pause
        # moto's in-process SQS is not thread-safe: one caller at a time.
        self._lock = threading.Lock()
        self._passes = threading.Condition()
        self._quiet_passes = 0
        """Passes over every queue that found nothing, so far."""
        self._stopping = threading.Event()
        self._outage = Outage(logger, "the Firehose relay could not reach SQS or Firehose")
        self._thread = threading.Thread(target=self._run, name="firehose-relay", daemon=True)
        self.delivered = 0
        """Events handed to Firehose so far."""

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        if self._thread.is_alive():
            raise RelayError("the Firehose relay did not stop")

    def wait_until_idle(self, timeout: float = 10.0) -> None:
        """Return once no stand-in queue holds an event (every one went to Firehose, or to
        its dead-letter queue); RelayError after `timeout` seconds.

        The queues are only counted after the relay found all of them empty in a pass that
        began after the call: while it is busy, counting would only slow it down.
        """
        deadline = time.monotonic() + timeout
        while True:
            if not self._quiet_pass_begun_after_now(deadline):
                raise RelayError(f"events still waited for Firehose after {timeout}s")
            if self._nothing_in_flight():
                return

    def _quiet_pass_begun_after_now(self, deadline: float) -> bool:
        with self._passes:
            # The pass under way now may have begun before the caller's last event.
            wanted = self._quiet_passes + 2
            return self._passes.wait_for(
                lambda: self._quiet_passes >= wanted,
                timeout=max(0.0, deadline - time.monotonic()),
            )

    def _nothing_in_flight(self) -> bool:
        """No event in any queue, visible or not (one that failed comes back, or goes to
        the dead-letter queue)."""
        with self._lock:
            return all(
                count == "0"
                for target in self._targets
                for count in self._sqs.get_queue_attributes(
                    QueueUrl=target.stand_in_queue_url, AttributeNames=_COUNTS
                )["Attributes"].values()
            )

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                received = sum(self._drain(target) for target in self._targets)
            except (ClientError, BotoCoreError) as exc:
                if self._stopping.is_set():
                    return  # what it calls may have stopped first
                self._outage.failed(exc)
                received = -1
            else:
                self._outage.ended()
            if received == 0:
                with self._passes:
                    self._quiet_passes += 1
                    self._passes.notify_all()
            if received <= 0:
                self._stopping.wait(self._idle_pause)

    def _drain(self, target: FirehoseTarget) -> int:
        """Relay `target`'s queue while it gives full batches; how many it received."""
        received = 0
        while not self._stopping.is_set():
            with self._lock:
                batch = self._relay(target)
            received += batch
            if batch < _MAX_MESSAGES:
                break
        return received

    def _relay(self, target: FirehoseTarget) -> int:
        """Hand one batch of `target`'s stand-in queue to its stream; how many it received."""
        messages = self._sqs.receive_message(
            QueueUrl=target.stand_in_queue_url, MaxNumberOfMessages=_MAX_MESSAGES
        ).get("Messages", [])
        records = []
        for message in messages:
            try:
                records.append((message, target.target_input.apply(json.loads(message["Body"]))))
            except (TransformError, json.JSONDecodeError) as exc:
                # Left in the queue: it comes back, then goes to the dead-letter queue.
                logger.error("%s: an event cannot be delivered: %s", target.stream_name, exc)
        if not records:
            return len(messages)
        answer = self._firehose.put_record_batch(
            DeliveryStreamName=target.stream_name,
            Records=[{"Data": text.encode()} for _, text in records],
        )
        taken = [
            message
            for (message, _), result in zip(records, answer["RequestResponses"], strict=True)
            if not result.get("ErrorCode")
        ]
        if taken:
            self._sqs.delete_message_batch(
                QueueUrl=target.stand_in_queue_url,
                Entries=[
                    {"Id": str(n), "ReceiptHandle": message["ReceiptHandle"]}
                    for n, message in enumerate(taken)
                ],
            )
        self.delivered += len(taken)
        return len(messages)
