"""Which trigger made which campaign: the trigger table in DynamoDB.

One item per idempotency key (`key`: "external_id:...", "idempotency_key:..." or
"event:<EventBridge event id>"):

    status       IN_PROGRESS  an invocation holds the key until `until` (its end)
                 RELEASED     an attempt failed and gave the key back for a retry
                 COMPLETED    done: `campaign` is the campaign as the trigger left it
    body_hash    the body's fingerprint: the key with another body is refused
    since        when the first attempt began: a POST for the key may have been sent since
    campaign_id  the key's campaign, as soon as it is known
    holder       the invocation holding the key; only it may change the item
    expires_at   TTL (epoch seconds)

and one item per campaign the trigger made or adopted (`key`: "campaign:<id>", `owner`:
the idempotency key), written before the key records it: a campaign belongs to one key,
so two triggers with the same fields whose POSTs were both lost never adopt the same one.

A claim is taken when the key is new, RELEASED, or IN_PROGRESS past `until` (its
invocation crashed or timed out). Taking a key that was held before is a *resumed* claim:
a POST may have reached Pay4Feedback, so the caller looks before it posts again.
"""

from __future__ import annotations

import math
import re
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from p4f.models import Campaign

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

RETENTION_SECONDS = 30 * 24 * 3600
"""How long a key is remembered: repeats within 30 days get the same campaign. Longer than
SQS keeps a message (14 days), so no redelivery can outlive its key."""

_NAMES = {
    "#key": "key",
    "#status": "status",
    "#until": "until",
    "#hash": "body_hash",
    "#since": "since",
    "#holder": "holder",
    "#expires": "expires_at",
    "#campaign_id": "campaign_id",
    "#campaign": "campaign",
}


class ClaimOutcome(StrEnum):
    NEW = "new"
    RESUMED = "resumed"
    """Held before by an attempt that failed or crashed: a POST may already have been sent."""
    COMPLETED = "completed"
    BUSY = "busy"
    MISMATCH = "mismatch"
    """The key was used with another body."""


class _Status(StrEnum):
    IN_PROGRESS = "IN_PROGRESS"
    RELEASED = "RELEASED"
    COMPLETED = "COMPLETED"


class ClaimLostError(RuntimeError):
    """Another invocation took the key over (this one ran past the time it claimed)."""


@dataclass(frozen=True)
class Claim:
    key: str
    outcome: ClaimOutcome
    holder: str = ""
    since: datetime | None = None
    """When the key's first attempt began (claims that hold the key)."""
    campaign_id: str | None = None
    """The campaign an earlier attempt made or found (resumed claims)."""
    campaign: Campaign | None = None
    """The finished campaign (COMPLETED)."""
    retry_after: int = 0
    """Seconds until the key's holder is presumed dead (BUSY)."""


class TriggerLedger:
    """The trigger table: key `key`, TTL attribute `expires_at`."""

    def __init__(
        self,
        table_name: str,
        dynamodb: DynamoDBClient,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._table = table_name
        self._dynamodb = dynamodb
        self._clock = clock

    def claim(self, key: str, body_hash: str, hold_seconds: float) -> Claim:
        """Take `key` for at most `hold_seconds` (the invocation's remaining time)."""
        now = self._clock()
        holder = uuid.uuid4().hex
        update = (
            "SET #status = :in_progress, #holder = :holder, #until = :until, #hash = :hash,"
            " #since = if_not_exists(#since, :now), #expires = :expires"
        )
        condition = (
            "attribute_not_exists(#key) OR (#hash = :hash AND (#status = :released"
            " OR (#status = :in_progress AND #until < :now)))"
        )
        values: dict[str, AttributeValueTypeDef] = {
            ":in_progress": {"S": _Status.IN_PROGRESS},
            ":released": {"S": _Status.RELEASED},
            ":holder": {"S": holder},
            ":until": {"N": str(now + max(1.0, hold_seconds))},
            ":hash": {"S": body_hash},
            ":now": {"N": str(now)},
            ":expires": {"N": str(int(now) + RETENTION_SECONDS)},
        }
        try:
            old = self._update(key, update, condition, values)
        except ClientError as exc:
            if not _condition_failed(exc):
                raise
            # Moto and older endpoints may not return the item with the failure.
            returned: Any = exc.response.get("Item")
            return _refusal(key, returned or self._read(key), body_hash, now)
        since = float(old["since"]["N"]) if "since" in old else now
        return Claim(
            key,
            ClaimOutcome.RESUMED if old else ClaimOutcome.NEW,
            holder,
            since=datetime.fromtimestamp(since, UTC),
            campaign_id=old["campaign_id"]["S"] if "campaign_id" in old else None,
        )

    def adopt(self, claim: Claim, campaign_id: str) -> bool:
        """Make `campaign_id` the claim's campaign; False if it belongs to another key."""
        try:
            self._dynamodb.put_item(
                TableName=self._table,
                Item={
                    "key": {"S": f"campaign:{campaign_id}"},
                    "owner": {"S": claim.key},
                    "expires_at": {"N": str(int(self._clock()) + RETENTION_SECONDS)},
                },
                ConditionExpression="attribute_not_exists(#key) OR #owner = :owner",
                ExpressionAttributeNames={"#key": "key", "#owner": "owner"},
                ExpressionAttributeValues={":owner": {"S": claim.key}},
            )
        except ClientError as exc:
            if not _condition_failed(exc):
                raise
            return False
        self._update_held(
            claim, "SET #campaign_id = :campaign_id", {":campaign_id": {"S": campaign_id}}
        )
        return True

    def complete(self, claim: Claim, campaign: Campaign) -> None:
        """Mark the key done: its repeats get `campaign`."""
        self._update_held(
            claim,
            "SET #status = :completed, #campaign_id = :campaign_id, #campaign = :campaign"
            " REMOVE #until, #holder",
            {
                ":completed": {"S": _Status.COMPLETED},
                ":campaign_id": {"S": campaign.id},
                ":campaign": {"S": campaign.model_dump_json()},
            },
        )

    def release(self, claim: Claim) -> None:
        """Give the key back for a retry (which will look for a campaign before posting)."""
        self._update_held(
            claim,
            "SET #status = :released REMOVE #until, #holder",
            {":released": {"S": _Status.RELEASED}},
        )

    def _update_held(
        self, claim: Claim, expression: str, values: Mapping[str, AttributeValueTypeDef]
    ) -> None:
        """Change the claim's item, if the claim still holds it; else ClaimLostError."""
        condition = "#status = :in_progress AND #holder = :holder"
        held: dict[str, AttributeValueTypeDef] = {
            ":in_progress": {"S": _Status.IN_PROGRESS},
            ":holder": {"S": claim.holder},
        }
        try:
            self._update(claim.key, expression, condition, {**values, **held})
        except ClientError as exc:
            if not _condition_failed(exc):
                raise
            raise ClaimLostError(
                f"another invocation took over the trigger {claim.key!r} while this one held it"
            ) from exc

    def _update(
        self, key: str, update: str, condition: str, values: Mapping[str, AttributeValueTypeDef]
    ) -> dict[str, Any]:
        """A conditional update of `key`'s item; its attributes before the update."""
        answer = self._dynamodb.update_item(
            TableName=self._table,
            Key={"key": {"S": key}},
            UpdateExpression=update,
            ConditionExpression=condition,
            ExpressionAttributeNames=_names_in(update, condition),
            ExpressionAttributeValues=values,
            ReturnValues="ALL_OLD",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
        return dict(answer.get("Attributes", {}))

    def _read(self, key: str) -> dict[str, AttributeValueTypeDef]:
        answer = self._dynamodb.get_item(
            TableName=self._table, Key={"key": {"S": key}}, ConsistentRead=True
        )
        return dict(answer.get("Item", {}))


def _names_in(*expressions: str) -> dict[str, str]:
    """The attribute names the expressions use (DynamoDB refuses unused ones)."""
    used = {name for expression in expressions for name in re.findall(r"#\w+", expression)}
    return {placeholder: _NAMES[placeholder] for placeholder in used}


def _condition_failed(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def _refusal(key: str, item: Mapping[str, Any], body_hash: str, now: float) -> Claim:
    """Why a claim was not taken, from the key's item."""
    if not item:  # deleted by its TTL in between: rare, and a retry takes it
        return Claim(key, ClaimOutcome.BUSY, retry_after=1)
    if item.get("body_hash", {}).get("S") != body_hash:
        return Claim(key, ClaimOutcome.MISMATCH)
    if item.get("status", {}).get("S") == _Status.COMPLETED:
        campaign = Campaign.model_validate_json(item["campaign"]["S"])
        return Claim(key, ClaimOutcome.COMPLETED, campaign_id=campaign.id, campaign=campaign)
    until = float(item.get("until", {}).get("N", now))
    return Claim(key, ClaimOutcome.BUSY, retry_after=max(1, math.ceil(until - now)))
