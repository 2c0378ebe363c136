"""The one hop moto does not make: a bus rule's Firehose target.

moto matches the rule and puts the event in the target's stand-in queue
(local.cloudformation); a relay takes it from there, applies the target's InputPath or
InputTransformer as EventBridge would (local.input_transformer) and hands the result to
the stream with PutRecordBatch, one record per event, as EventBridge does. moto's Firehose
then writes the S3 object (local.moto_firehose makes it write what Firehose writes).

    with FirehoseRelay(sqs, firehose, deployment.firehose_targets) as relay:
        ...                                   # events on the bus
        relay.wait_until_idle(timeout=10)     # every one of them handed to Firehose

An event the transformation cannot handle, or that Firehose refuses, stays in its queue and
after a few tries lands in the target's dead-letter queue, as undeliverable events do.
"""

from __future__ import annotations

import json
import logging
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any, Self

from local.input_transformer import TransformError
from local.sqs_poller import SqsPoller

if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import TracebackType

    from local.cloudformation import FirehoseTarget
    from local.lambda_events import LocalLambdaContext

logger = logging.getLogger(__name__)

_TIMEOUT_SECONDS = 10.0


class _Delivery:
    """What EventBridge does for one Firehose target, as a handler of its stand-in's batches."""

    def __init__(self, firehose: Any, target: FirehoseTarget) -> None:
        self._firehose = firehose
        self._target = target
        self.delivered = 0

    def __call__(self, event: dict[str, Any], _context: LocalLambdaContext) -> dict[str, Any]:
        failed: list[str] = []
        records: list[tuple[str, bytes]] = []
        for record in event["Records"]:
            try:
                text = self._target.target_input.apply(json.loads(record["body"]))
            except (TransformError, json.JSONDecodeError) as exc:
                logger.error("%s: an event cannot be delivered: %s", self._target.stream_name, exc)
                failed.append(record["messageId"])
            else:
                records.append((record["messageId"], text.encode()))
        if records:
            answer = self._firehose.put_record_batch(
                DeliveryStreamName=self._target.stream_name,
                Records=[{"Data": data} for _, data in records],
            )
            for (message_id, _), result in zip(records, answer["RequestResponses"], strict=True):
                if result.get("ErrorCode"):
                    failed.append(message_id)
                else:
                    self.delivered += 1
        return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed]}


class FirehoseRelay:
    """Relays every Firehose target's stand-in queue to its stream, while started."""

    def __init__(self, sqs: Any, firehose: Any, targets: Sequence[FirehoseTarget]) -> None:
        self._deliveries = [_Delivery(firehose, target) for target in targets]
        self._pollers = [
            SqsPoller(
                sqs,
                target.stand_in_queue_url,
                delivery,
                function_name=f"firehose-{target.rule_logical_id}",
                concurrency=1,
                function_timeout=_TIMEOUT_SECONDS,
            )
            for target, delivery in zip(targets, self._deliveries, strict=True)
        ]
        self._exit = ExitStack()

    @property
    def delivered(self) -> int:
        """Events handed to Firehose so far."""
        return sum(delivery.delivered for delivery in self._deliveries)

    def wait_until_idle(self, timeout: float = _TIMEOUT_SECONDS) -> None:
        """Return once every event on a stand-in queue went to Firehose (or its DLQ)."""
        for poller in self._pollers:
            poller.wait_until_idle(timeout)

    def __enter__(self) -> Self:
        try:
            for poller in self._pollers:
                self._exit.enter_context(poller)
        except BaseException:
            self._exit.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._exit.close()
