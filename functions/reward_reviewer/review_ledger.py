"""Who decides each reward, and how much was approved automatically today: the review table.

One item per response (`id` = "response:<response id>"), written *before* any approve or
reject is sent, so that exactly one decision per response is ever attempted:

    state        DECIDING         a decider holds the response until `until` (its end)
                 AWAITING_REVIEW  a Slack message waits for a person (`channel`, `ts`)
                 DECIDED          done: `decision`, `status` (as Pay4Feedback has it), `outcome`
    by           policy | slack   who holds or made the decision (`user_id`, `user_name`)
    holder       the claim's own id: only it may change the item
    cap_day      the UTC day whose caps this response's automatic approval counts in
    channel, ts  its review message in Slack, kept as soon as it is posted (posted once)

    claim_automatic   a response the ledger does not know, or one whose automatic claim
                      lapsed (its invocation died): redelivered events find it taken
    claim_human       a response AWAITING_REVIEW, or whose human claim lapsed: a second
                      click, or a click after an automatic decision, finds it taken

and one item per UTC day (`id` = "caps:<YYYY-MM-DD>"): `approvals` and `amount_<CCY>` of the
automatic approvals reserved that day. A reservation is one transaction with the claim it is
for, conditional on the caps (`approvals < count cap`, `amount + this <= amount cap`), so
that 20 approvals racing against a cap of 10 reserve exactly 10, and a response reserves at
most once, however often its event comes. A reservation whose approval then found the
response decided elsewhere is given back, once: the claim's item forgets its `cap_day` in
the same transaction.
"""

from __future__ import annotations

import math
import random
import re
import time
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from p4f.reviews import Decision, ReviewOutcome

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef, UpdateTypeDef

    from p4f.models import Money

RETENTION_SECONDS = 90 * 24 * 3600
"""How long a response's decision is remembered: far longer than any redelivery (SQS keeps
a message 14 days at most) or a Slack message that waits for a click."""
_CURRENCY = re.compile(r"[A-Z]{3}")


class ClaimState(StrEnum):
    DECIDING = "DECIDING"
    AWAITING_REVIEW = "AWAITING_REVIEW"
    DECIDED = "DECIDED"


class ClaimLostError(RuntimeError):
    """Another invocation took the response over (this one ran past the time it claimed)."""


@dataclass(frozen=True)
class Claim:
    """A response held by this invocation."""

    response_id: str
    holder: str
    resumed: bool
    """Held before by an invocation that died: a decision may have been sent already."""
    cap_day: str | None = None
    """The day the response's automatic approval is counted in, if reserved already."""
    channel: str | None = None
    ts: str | None = None
    """The review message in Slack, for a response that waited for a person."""


@dataclass(frozen=True)
class Taken:
    """Why a response could not be claimed: what the ledger holds for it."""

    state: ClaimState | None
    """None: the ledger does not know the response."""
    decision: Decision | None = None
    outcome: ReviewOutcome | None = None
    status: str | None = None
    by: str | None = None
    user_id: str | None = None
    user_name: str | None = None
    retry_after: float = 0.0
    """Seconds until a DECIDING holder's claim lapses."""


class _TransactionConflictError(Exception):
    """DynamoDB cancelled the transaction: another one changed the day's item at once."""


_TRANSACTION_ATTEMPTS = 5


class CapsReachedError(RuntimeError):
    """Today's automatic approvals would pass a cap."""


@dataclass(frozen=True)
class DailyCaps:
    """At most `count` automatic approvals, and at most `amounts[currency]` of each currency,
    per UTC day. A currency without an amount is never approved automatically."""

    count: int
    amounts: Mapping[str, Decimal]

    def refusal(self, reward: Money) -> str | None:
        """Why `reward` can never fit today's caps, whatever was approved; None if it can."""
        if self.count < 1:
            return "automatic approvals are capped at 0 a day"
        limit = self.amounts.get(reward.currency)
        if limit is None:
            return (
                f"no daily amount cap is set for {reward.currency} "
                "(AutoApproveDailyAmounts), so its rewards are never approved automatically"
            )
        if reward.amount > limit:
            return f"the reward is more than the daily cap of {limit:f} {reward.currency}"
        return None


def utc_day(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d")


class ReviewLedger:
    """The review table: key `id`, TTL attribute `expires_at`."""

    def __init__(
        self,
        table_name: str,
        dynamodb: DynamoDBClient,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._table = table_name
        self._dynamodb = dynamodb
        self._clock = clock
        self._sleep = sleep

    # --- claims -------------------------------------------------------------------------

    def claim_automatic(self, response_id: str, hold_seconds: float) -> Claim | Taken:
        """Hold a response the policy decides; `Taken` if it is known and not lapsed."""
        return self._claim(
            response_id,
            hold_seconds,
            by="policy",
            condition="attribute_not_exists(#id)"
            " OR (#state = :deciding AND #by = :by AND #until < :now)",
        )

    def claim_human(
        self, response_id: str, user_id: str, user_name: str | None, hold_seconds: float
    ) -> Claim | Taken:
        """Hold a response a person decides; `Taken` unless it awaits review (or a person's
        claim on it lapsed)."""
        return self._claim(
            response_id,
            hold_seconds,
            by="slack",
            condition="#state = :awaiting OR (#state = :deciding AND #by = :by AND #until < :now)",
            extra={"user_id": user_id, "user_name": user_name or ""},
        )

    def _claim(
        self,
        response_id: str,
        hold_seconds: float,
        *,
        by: str,
        condition: str,
        extra: Mapping[str, str] | None = None,
    ) -> Claim | Taken:
        now = self._clock()
        holder = uuid.uuid4().hex
        sets = ["#state = :deciding", "#by = :by", "holder = :holder", "#until = :until"]
        values: dict[str, AttributeValueTypeDef] = {
            ":deciding": {"S": ClaimState.DECIDING},
            ":by": {"S": by},
            ":holder": {"S": holder},
            ":until": {"N": str(now + max(1.0, hold_seconds))},
            ":now": {"N": str(now)},
            ":expires": {"N": str(int(now) + RETENTION_SECONDS)},
        }
        if ":awaiting" in condition:
            values[":awaiting"] = {"S": ClaimState.AWAITING_REVIEW}
        for name, value in (extra or {}).items():
            sets.append(f"{name} = :{name}")
            values[f":{name}"] = {"S": value}
        update = "SET " + ", ".join([*sets, "expires_at = :expires"])
        try:
            answer = self._dynamodb.update_item(
                TableName=self._table,
                Key=_key(response_id),
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames=_names_in(update, condition),
                ExpressionAttributeValues=values,
                ReturnValues="ALL_OLD",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if not _condition_failed(exc):
                raise
            # moto and older endpoints may not return the item with the failure
            returned: Any = exc.response.get("Item")
            return _taken(returned or self._read(response_id), now)
        old = answer.get("Attributes", {})
        return Claim(
            response_id,
            holder,
            resumed=old.get("state", {}).get("S") == ClaimState.DECIDING,
            cap_day=_text(old, "cap_day"),
            channel=_text(old, "channel"),
            ts=_text(old, "ts"),
        )

    def reserve(self, claim: Claim, reward: Money, caps: DailyCaps) -> Claim:
        """Count the claim's automatic approval in today's caps, in the same transaction as
        the claim records it; CapsReachedError if it would pass one. A claim that reserved
        before (a resumed one) is not counted again."""
        if claim.cap_day is not None:
            return claim
        if caps.refusal(reward) is not None or not _CURRENCY.fullmatch(reward.currency):
            raise CapsReachedError(caps.refusal(reward) or f"{reward.currency!r} is no currency")
        day = self._transact(claim, lambda: self._reserve_once(claim, reward, caps))
        return replace(claim, cap_day=day)

    def _transact[T](self, claim: Claim, once: Callable[[], T]) -> T:
        """`once()`, again after a pause while another transaction on the day's item
        cancels it (_TransactionConflictError)."""
        for attempt in range(_TRANSACTION_ATTEMPTS):
            if attempt:
                self._sleep(random.uniform(0.02, 0.1 * attempt))  # noqa: S311 (jitter)
            try:
                return once()
            except _TransactionConflictError:
                continue  # another approval counted at the same moment: count again
        raise ClaimLostError(
            f"today's caps were too busy to update for response {claim.response_id}; it is "
            "tried again later"
        )

    def _reserve_once(self, claim: Claim, reward: Money, caps: DailyCaps) -> str:
        """One transaction of `reserve`; the day it counted in."""
        now = self._clock()
        day = utc_day(now)
        room = caps.amounts[reward.currency] - reward.amount
        try:
            self._dynamodb.transact_write_items(
                TransactItems=[
                    {
                        "Update": {
                            "TableName": self._table,
                            "Key": {"id": {"S": f"caps:{day}"}},
                            "UpdateExpression": "ADD approvals :one, #amount :amount"
                            " SET expires_at = :expires",
                            "ConditionExpression": "(attribute_not_exists(approvals)"
                            " OR approvals < :count) AND (attribute_not_exists(#amount)"
                            " OR #amount <= :room)",
                            "ExpressionAttributeNames": {"#amount": f"amount_{reward.currency}"},
                            "ExpressionAttributeValues": {
                                ":one": {"N": "1"},
                                ":amount": {"N": f"{reward.amount:f}"},
                                ":count": {"N": str(caps.count)},
                                ":room": {"N": f"{room:f}"},
                                ":expires": {"N": str(int(now) + RETENTION_SECONDS)},
                            },
                        }
                    },
                    {"Update": self._held_update(claim, "SET cap_day = :day", {":day": day})},
                ]
            )
        except ClientError as exc:
            reasons = exc.response.get("CancellationReasons", [])
            codes = [reason.get("Code") for reason in reasons]
            if codes[:1] == ["ConditionalCheckFailed"]:
                raise CapsReachedError(
                    f"today's caps on automatic approvals are reached ({caps.count} approvals, "
                    f"{caps.amounts[reward.currency]:f} {reward.currency}; "
                    "AutoApproveDailyCount, AutoApproveDailyAmounts)"
                ) from exc
            if codes[1:2] == ["ConditionalCheckFailed"]:
                raise ClaimLostError(_lost(claim)) from exc
            if "TransactionConflict" in codes:  # another transaction on the day's item
                raise _TransactionConflictError from exc
            raise
        return day

    def give_back(self, claim: Claim, reward: Money) -> Claim:
        """Take the claim's reservation out of its day's caps (its approval did not happen);
        the claim without it. One transaction with the claim's item forgetting `cap_day`, so
        that a redelivery of the record (after a later step failed) never gives it back
        twice; a reservation given back already is left alone."""
        if claim.cap_day is None:
            return claim
        self._transact(claim, lambda: self._give_back_once(claim, reward))
        return replace(claim, cap_day=None)

    def _give_back_once(self, claim: Claim, reward: Money) -> None:
        assert claim.cap_day is not None  # noqa: S101 (give_back checked it)
        held = self._held_update(claim, "REMOVE cap_day", {":day": claim.cap_day})
        held["ConditionExpression"] = "holder = :holder AND cap_day = :day"
        try:
            self._dynamodb.transact_write_items(
                TransactItems=[
                    {
                        "Update": {
                            "TableName": self._table,
                            "Key": {"id": {"S": f"caps:{claim.cap_day}"}},
                            "UpdateExpression": "ADD approvals :minus_one, #amount :minus_amount",
                            "ExpressionAttributeNames": {"#amount": f"amount_{reward.currency}"},
                            "ExpressionAttributeValues": {
                                ":minus_one": {"N": "-1"},
                                ":minus_amount": {"N": f"{-reward.amount:f}"},
                            },
                        }
                    },
                    {"Update": held},
                ]
            )
        except ClientError as exc:
            codes = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
            if codes[1:2] == ["ConditionalCheckFailed"]:
                return  # given back already (or the claim is lost): nothing to take out
            if "TransactionConflict" in codes:
                raise _TransactionConflictError from exc
            raise

    def note_message(self, claim: Claim, channel: str, ts: str) -> Claim:
        """The response's review message is in Slack: kept before anything else can fail, so
        that a redelivery resumes the claim with it rather than posting a second one."""
        self._update_held(
            claim,
            "SET channel = :channel, ts = :ts",
            {":channel": {"S": channel}, ":ts": {"S": ts}},
        )
        return replace(claim, channel=channel, ts=ts)

    def await_review(self, claim: Claim) -> None:
        """The response's review message (`note_message`) waits in Slack: a person decides."""
        self._update_held(
            claim,
            "SET #state = :awaiting REMOVE holder, #until",
            {":awaiting": {"S": ClaimState.AWAITING_REVIEW}},
        )

    def complete(
        self, claim: Claim, decision: Decision, outcome: ReviewOutcome, status: str
    ) -> None:
        """The response is decided: later events and clicks find it so."""
        self._update_held(
            claim,
            "SET #state = :decided, decision = :decision, outcome = :outcome, #status = :status"
            " REMOVE holder, #until",
            {
                ":decided": {"S": ClaimState.DECIDED},
                ":decision": {"S": decision},
                ":outcome": {"S": outcome},
                ":status": {"S": status},
            },
        )

    def release(self, claim: Claim) -> None:
        """Give the response back at once (this attempt failed): the next delivery of its
        record takes it again, and repeats the decision with the same idempotency key."""
        self._update_held(claim, "SET #until = :now", {":now": {"N": str(self._clock())}})

    def day_totals(self, day: str) -> dict[str, Decimal]:
        """What a day's caps counted: `approvals` and `amount_<CCY>` (for tests and operators)."""
        item = self._read_key(f"caps:{day}")
        return {
            name: Decimal(value["N"])
            for name, value in item.items()
            if name == "approvals" or name.startswith("amount_")
        }

    # --- the item ---------------------------------------------------------------------

    def _held_update(
        self, claim: Claim, expression: str, values: Mapping[str, str]
    ) -> UpdateTypeDef:
        return {
            "TableName": self._table,
            "Key": _key(claim.response_id),
            "UpdateExpression": expression,
            "ConditionExpression": "holder = :holder",
            "ExpressionAttributeValues": {
                **{name: {"S": value} for name, value in values.items()},
                ":holder": {"S": claim.holder},
            },
        }

    def _update_held(
        self, claim: Claim, expression: str, values: Mapping[str, AttributeValueTypeDef]
    ) -> None:
        try:
            self._dynamodb.update_item(
                TableName=self._table,
                Key=_key(claim.response_id),
                UpdateExpression=expression,
                ConditionExpression="holder = :holder",
                ExpressionAttributeNames=_names_in(expression),
                ExpressionAttributeValues={**values, ":holder": {"S": claim.holder}},
            )
        except ClientError as exc:
            if not _condition_failed(exc):
                raise
            raise ClaimLostError(_lost(claim)) from exc

    def _read(self, response_id: str) -> dict[str, Any]:
        return self._read_key(_key(response_id)["id"]["S"])

    def _read_key(self, key: str) -> dict[str, Any]:
        answer = self._dynamodb.get_item(
            TableName=self._table, Key={"id": {"S": key}}, ConsistentRead=True
        )
        return dict(answer.get("Item", {}))


_NAMES = {"#id": "id", "#state": "state", "#by": "by", "#until": "until", "#status": "status"}


def _names_in(*expressions: str) -> dict[str, str]:
    """The attribute names the expressions use (DynamoDB refuses unused ones)."""
    used = {name for expression in expressions for name in re.findall(r"#\w+", expression)}
    return {placeholder: _NAMES[placeholder] for placeholder in used}


def _key(response_id: str) -> dict[str, AttributeValueTypeDef]:
    return {"id": {"S": f"response:{response_id}"}}


def _text(item: Mapping[str, Any], name: str) -> str | None:
    value = item.get(name, {}).get("S")
    return str(value) if value else None


def _taken(item: Mapping[str, Any], now: float) -> Taken:
    if not item:
        return Taken(None)
    until = float(item.get("until", {}).get("N", now))
    decision, outcome = _text(item, "decision"), _text(item, "outcome")
    return Taken(
        ClaimState(item["state"]["S"]),
        decision=Decision(decision) if decision else None,
        outcome=ReviewOutcome(outcome) if outcome else None,
        status=_text(item, "status"),
        by=_text(item, "by"),
        user_id=_text(item, "user_id"),
        user_name=_text(item, "user_name"),
        retry_after=max(1.0, math.ceil(until - now)),
    )


def _condition_failed(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def _lost(claim: Claim) -> str:
    return f"another invocation took over response {claim.response_id} while this one held it"
