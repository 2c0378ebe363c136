"""Which events were already delivered somewhere: a ledger in DynamoDB keyed by event id.

The one claim protocol of the bridge, for whatever must happen once per event although the
event comes again: Pay4Feedback redelivers an event (same `id`) until it gets a 2xx, for up
to 3 days, so the webhook receiver claims each id before publishing it; SQS and EventBridge
deliver at least once, so the Slack forwarder claims each id before posting it.

    claim     set {status: IN_PROGRESS, until: <end of this invocation>, holder: <a new
              id>}, only if the id is unknown, RELEASED, or IN_PROGRESS past its `until`
              (a crashed invocation); a claim whose answer was lost, and that botocore
              sent again, finds its own holder and is taken, not "busy"
    record    add a target that took the event to `done`, before the next one is tried
    complete  status COMPLETED, with the targets that took it in `done`: later deliveries
              of the id are duplicates
    release   status RELEASED with the targets that did accept it: the next delivery
              claims it again and sends only to the others (as after a crash: `done`
              outlives the invocation that wrote it)

An event about a state change (p4f.changes: a campaign's or response's) also claims the
change's identity, in the same table and the same round trip: its first claim is a
transaction of two puts, the event's item (only if the id is unknown) and the change's item
{id: change#..., event_id} (only if the change is unknown or this event's; a webhook's also
if another webhook's). A webhook and the reconciler's event for one change have different
ids but one change item: whichever comes second is a duplicate. Any later claim of an id
known already (a redelivery, a crash's retry) is the update above, as the change is this
event's by then. Releasing an event that
no target took deletes its change item too, so that the other path may bring the change.

A delivery that finds the id IN_PROGRESS is "busy" (the receiver answers 409, the Slack
forwarder defers the record), so two concurrent deliveries never both act and neither is
lost. `record` and `complete` follow a side effect (a publish, a post): they are tried
again after a failure while the caller's deadline allows, so that only the side effect's
own call is an at-least-once window. Records expire through the table's TTL attribute
`expires_at`, well after the last redelivery. This is Powertools' idempotency protocol,
kept to two DynamoDB calls (three with two targets) and no extra imports.
"""

from __future__ import annotations

import itertools
import math
import time
import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from p4f.changes import RECONCILED_ID_PREFIX
from p4f.retries import RetryPolicy

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Mapping

    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef, UpdateItemInputTypeDef

    from p4f.changes import Change
    from p4f.retries import Deadline

DEFAULT_TTL_SECONDS = 7 * 24 * 3600
"""A record outlives the sender's 3 days of retries by 4 days."""
WRITE_RETRIES = RetryPolicy(max_attempts=3, base_delay=0.1, max_delay=0.5)
"""How a write that records a side effect is repeated (after botocore's own retries)."""


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
    retry_after: float = 0.0
    """Seconds until the holder's claim lapses (BUSY): by then it finished or died."""


class DeliveryLedger:
    """The idempotency table: one item per event id (key `id`, TTL attribute `expires_at`)."""

    def __init__(
        self,
        table_name: str,
        dynamodb: DynamoDBClient,
        *,
        ttl_seconds: int = DEFAULT_TTL_SECONDS,
        clock: Callable[[], float] = time.time,
        write_retries: RetryPolicy = WRITE_RETRIES,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._table = table_name
        self._dynamodb = dynamodb
        self._ttl = ttl_seconds
        self._clock = clock
        self._write_retries = write_retries
        self._sleep = sleep

    def claim(self, event_id: str, hold_seconds: float, change: Change | None = None) -> Claim:
        """Take the event for this delivery for at most `hold_seconds` (its remaining time),
        and the state change it is about, if it is about one: DUPLICATE when another event
        brought that change."""
        now = self._clock()
        holder = uuid.uuid4().hex
        if change is not None:
            first = self._claim_first(event_id, change, holder, now, hold_seconds)
            if first is not None:
                return first
        return self._claim_again(event_id, holder, now, hold_seconds)

    def _claim_first(
        self, event_id: str, change: Change, holder: str, now: float, hold_seconds: float
    ) -> Claim | None:
        """The first claim of an event about a change: one transaction for both items; None
        when the event's id is known already (then the change is this event's, or nobody's)."""
        expires = {"N": str(math.ceil(now) + self._ttl)}
        condition, values = _change_condition(event_id, change)
        try:
            self._dynamodb.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": {
                                "id": {"S": event_id},
                                "status": {"S": _Status.IN_PROGRESS},
                                "until": {"N": str(math.ceil(now + max(1.0, hold_seconds)))},
                                "holder": {"S": holder},
                                "change": {"S": change.key},
                                "expires_at": expires,
                            },
                            "ConditionExpression": "attribute_not_exists(id)",
                        }
                    },
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": {
                                "id": {"S": change.key},
                                "event_id": {"S": event_id},
                                "change": {"S": change.identity},
                                "expires_at": expires,
                            },
                            "ConditionExpression": condition,
                            "ExpressionAttributeValues": values,
                        }
                    },
                ]
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
            if reasons[:1] == ["ConditionalCheckFailed"]:
                return None  # the event is known: the usual claim decides
            if reasons[1:2] == ["ConditionalCheckFailed"]:
                return Claim(ClaimOutcome.DUPLICATE)  # another event brought the change
            raise
        return Claim(ClaimOutcome.NEW)

    def _claim_again(self, event_id: str, holder: str, now: float, hold_seconds: float) -> Claim:
        try:
            # An update, not a put: the targets an earlier delivery recorded stay recorded,
            # even when that delivery died before it could release the claim.
            answer = self._dynamodb.update_item(
                TableName=self._table,
                Key={"id": {"S": event_id}},
                UpdateExpression=(
                    "SET #status = :in_progress, #until = :until, #holder = :holder,"
                    " expires_at = :expires"
                ),
                ConditionExpression=(
                    "attribute_not_exists(id) OR #status = :released"
                    " OR (#status = :in_progress AND #until < :now)"
                ),
                ExpressionAttributeNames={
                    "#status": "status",
                    "#until": "until",
                    "#holder": "holder",
                },
                ExpressionAttributeValues={
                    ":released": {"S": _Status.RELEASED},
                    ":in_progress": {"S": _Status.IN_PROGRESS},
                    ":holder": {"S": holder},
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
            return self._refusal(returned or self._read(event_id), holder, now)
        return Claim(ClaimOutcome.NEW, _done(answer.get("Attributes", {})))

    @staticmethod
    def _refusal(item: Mapping[str, Any], holder: str, now: float) -> Claim:
        """What an item that refused the claim means."""
        status = item.get("status", {}).get("S")
        if status == _Status.COMPLETED:
            return Claim(ClaimOutcome.DUPLICATE)
        if status == _Status.IN_PROGRESS and item.get("holder", {}).get("S") == holder:
            return Claim(ClaimOutcome.NEW, _done(item))  # this claim, whose answer was lost
        until = float(item.get("until", {}).get("N", now))
        return Claim(ClaimOutcome.BUSY, retry_after=max(0.0, until - now))

    def record_done(self, event_id: str, target: str, deadline: Deadline) -> None:
        """Remember that `target` took the event, before the next target is tried."""
        self._write_after_side_effect(
            {
                "TableName": self._table,
                "Key": {"id": {"S": event_id}},
                "UpdateExpression": "ADD done :target",
                "ExpressionAttributeValues": {":target": {"SS": [target]}},
            },
            deadline,
        )

    def complete(self, event_id: str, done: Collection[str], deadline: Deadline) -> None:
        """Mark the event delivered to `done` (every target): later deliveries are duplicates."""
        self._write_after_side_effect(
            {
                "TableName": self._table,
                "Key": {"id": {"S": event_id}},
                "UpdateExpression": "SET #status = :completed REMOVE #until ADD done :done",
                "ExpressionAttributeNames": {"#status": "status", "#until": "until"},
                "ExpressionAttributeValues": {
                    ":completed": {"S": _Status.COMPLETED},
                    ":done": {"SS": sorted(done)},
                },
            },
            deadline,
        )

    def release(self, event_id: str, done: Collection[str], change: Change | None = None) -> None:
        """Give the event back for the sender's retry, remembering the targets that took it;
        when none did, the change it is about is given back too."""
        if not done:
            self._dynamodb.delete_item(TableName=self._table, Key={"id": {"S": event_id}})
            if change is not None:
                self._give_back(change, event_id)
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

    def _give_back(self, change: Change, event_id: str) -> None:
        try:
            self._dynamodb.delete_item(
                TableName=self._table,
                Key={"id": {"S": change.key}},
                ConditionExpression="event_id = :event",
                ExpressionAttributeValues={":event": {"S": event_id}},
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise

    def _write_after_side_effect(self, request: UpdateItemInputTypeDef, deadline: Deadline) -> None:
        """An idempotent update that records a side effect, tried again after a failure
        while `deadline` allows the wait: a record that never lands means the side effect
        may happen twice."""
        for attempt in itertools.count(1):
            try:
                self._dynamodb.update_item(**request)
                return
            except (ClientError, BotoCoreError):
                wait = self._write_retries.backoff(attempt)
                if attempt >= self._write_retries.max_attempts or not deadline.allows(wait):
                    raise
                self._sleep(wait)

    def _read(self, event_id: str) -> dict[str, AttributeValueTypeDef]:
        answer = self._dynamodb.get_item(
            TableName=self._table, Key={"id": {"S": event_id}}, ConsistentRead=True
        )
        return dict(answer.get("Item", {}))


def _change_condition(
    event_id: str, change: Change
) -> tuple[str, dict[str, AttributeValueTypeDef]]:
    """When an event may take a change's item: when nobody has it, or it has it already; a
    webhook also when another webhook has it (two deliveries of distinct ids are two events,
    as before changes were claimed: two edits in one second), never from the reconciler."""
    mine = "attribute_not_exists(id) OR event_id = :event"
    values: dict[str, AttributeValueTypeDef] = {":event": {"S": event_id}}
    if event_id == change.event_id:  # the reconciler's event for the change
        return mine, values
    values[":reconciled"] = {"S": RECONCILED_ID_PREFIX}
    return f"{mine} OR NOT begins_with(event_id, :reconciled)", values


def _done(item: Mapping[str, Any]) -> frozenset[str]:
    """The targets an item records as having taken the event."""
    return frozenset(item.get("done", {}).get("SS", []))
