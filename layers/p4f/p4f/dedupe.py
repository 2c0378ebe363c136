"""Which webhook events were already published: a ledger in DynamoDB keyed by event id.

Pay4Feedback redelivers an event (same `id`) until it gets a 2xx, for up to 3 days, so
the receiver claims each id before publishing it:

    claim     set {status: IN_PROGRESS, until: <end of this invocation>}, only if the id is
              unknown, RELEASED, or IN_PROGRESS past its `until` (a crashed invocation)
    record    add a target that took the event to `done`, before the next one is tried
    complete  status COMPLETED: later deliveries of the id are duplicates
    release   status RELEASED with the targets that did accept it: the sender's retry
              claims it again and publishes only to the others (as after a crash: `done`
              outlives the invocation that wrote it)

A delivery that finds the id IN_PROGRESS answers "busy" (409) and is retried by the sender,
so two concurrent deliveries never both publish and neither can be lost. Records expire
through the table's TTL attribute `expires_at`, well after the sender's last retry.
This is Powertools' idempotency protocol, kept to two DynamoDB calls (three with both
targets) and no extra imports.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Mapping

    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

DEFAULT_TTL_SECONDS = 7 * 24 * 3600
"""A record outlives the sender's 3 days of retries by 4 days."""


class ClaimOutcome(StrEnum):
    NEW = "new"
    DUPLICATE = "duplicate"
    BUSY = "busy"


class _Status(StrEnum):
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    RELEASED = "RELEASED"


@dataclass(frozen=True)
class Claim:
    outcome: ClaimOutcome
    done: frozenset[str] = frozenset()
    """Targets that accepted the event in an earlier, partly failed delivery."""


class DeliveryLedger:
    """The idempotency table: one item per event id (key `id`, TTL attribute `expires_at`)."""

    def __init__(
        self,
        table_name: str,
        dynamodb: DynamoDBClient,
        *,
        ttl_seconds: int = DEFAULT_TTL_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._table = table_name
        self._dynamodb = dynamodb
        self._ttl = ttl_seconds
        self._clock = clock

    def claim(self, event_id: str, hold_seconds: float) -> Claim:
        """Take the event for this delivery for at most `hold_seconds` (its remaining time)."""
        now = self._clock()
        try:
            # An update, not a put: the targets an earlier delivery recorded stay recorded,
            # even when that delivery died before it could release the claim.
            answer = self._dynamodb.update_item(
                TableName=self._table,
                Key={"id": {"S": event_id}},
                UpdateExpression=(
                    "SET #status = :in_progress, #until = :until, expires_at = :expires"
                ),
                ConditionExpression=(
                    "attribute_not_exists(id) OR #status = :released"
                    " OR (#status = :in_progress AND #until < :now)"
                ),
                ExpressionAttributeNames={"#status": "status", "#until": "until"},
                ExpressionAttributeValues={
                    ":released": {"S": _Status.RELEASED},
                    ":in_progress": {"S": _Status.IN_PROGRESS},
                    ":now": {"N": str(math.floor(now))},
                    ":until": {"N": str(math.ceil(now + max(1.0, hold_seconds)))},
                    ":expires": {"N": str(math.ceil(now) + self._ttl)},
                },
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            # Moto and older endpoints may not return the item with the failure.
            returned: Any = exc.response.get("Item")
            item: Mapping[str, Any] = returned or self._read(event_id)
            completed = item.get("status", {}).get("S") == _Status.COMPLETED
            return Claim(ClaimOutcome.DUPLICATE if completed else ClaimOutcome.BUSY)
        claimed = answer.get("Attributes", {})
        return Claim(ClaimOutcome.NEW, frozenset(claimed.get("done", {}).get("SS", [])))

    def record_done(self, event_id: str, target: str) -> None:
        """Remember that `target` took the event, before the next target is tried."""
        self._dynamodb.update_item(
            TableName=self._table,
            Key={"id": {"S": event_id}},
            UpdateExpression="ADD done :target",
            ExpressionAttributeValues={":target": {"SS": [target]}},
        )

    def complete(self, event_id: str) -> None:
        """Mark the event published: later deliveries are duplicates."""
        self._dynamodb.update_item(
            TableName=self._table,
            Key={"id": {"S": event_id}},
            UpdateExpression="SET #status = :completed REMOVE #until",
            ExpressionAttributeNames={"#status": "status", "#until": "until"},
            ExpressionAttributeValues={":completed": {"S": _Status.COMPLETED}},
        )

    def release(self, event_id: str, done: Collection[str]) -> None:
        """Give the event back for the sender's retry, remembering the targets that took it."""
        if not done:
            self._dynamodb.delete_item(TableName=self._table, Key={"id": {"S": event_id}})
            return
        self._dynamodb.update_item(
            TableName=self._table,
            Key={"id": {"S": event_id}},
            UpdateExpression="SET #status = :released, done = :done REMOVE #until",
            ExpressionAttributeNames={"#status": "status", "#until": "until"},
            ExpressionAttributeValues={
                ":released": {"S": _Status.RELEASED},
                ":done": {"SS": sorted(done)},
            },
        )

    def _read(self, event_id: str) -> dict[str, AttributeValueTypeDef]:
        answer = self._dynamodb.get_item(
            TableName=self._table, Key={"id": {"S": event_id}}, ConsistentRead=True
        )
        return dict(answer.get("Item", {}))
