"""The reward reviewer's logic: one decision per response, automatic or human, applied once.

    review(response)   a scored response from the bus (response_scored, or response_submitted
                       with its quality set): the policy's band (review_policy), then
                         approve       claim, reserve today's caps, approve
                         reject        claim, reject with the policy's reason
                         human_review  claim, post the review message, await a click
                       (past a cap, or with an invalid policy: human_review)
    decide(click)      a reviewer's click, queued by review_actions: claim the awaiting
                       response, approve or reject, update the message through response_url

Both end in `_apply`: the one path that sends approve or reject (with an idempotency key
made of the response id and the decision), resolves a 409 by the response as Pay4Feedback
has it (`ResponseAlreadyReviewedError`: decided elsewhere, not an error), publishes
RewardReviewDecided and completes the claim. The claim is a conditional write before any
call (review_ledger), so redelivered events, double clicks and an automatic decision racing
a human one make one call that changes the response. RewardReviewMode `dry-run` reports
each decision and applies nothing; `off` does nothing.

What becomes of each record is a `Reviewed`: done, deferred (a rate limit or Slack's 429:
the record comes back later, uncounted), or failed (Pay4Feedback, AWS or Slack failed: SQS
delivers it again, then the dead-letter queue), that record alone, whichever step failed.
Pay4Feedback's permanent refusals (a 4xx but 409 and 429) say that a retry will not help;
a click that failed is told to whoever clicked, and a permanently refused one is done (the
person clicks again once it is fixed). Plain Python; `app.py` builds the parts.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError
from review_ledger import CapsReachedError, Claim, ClaimLostError, DailyCaps, Taken
from review_messages import (
    decided_message,
    outcome_line,
    review_message,
    reviewer_mention,
    taken_message,
)
from review_policy import InvalidPolicyError, Judgement, PolicyUnreadableError, judge
from review_slack import ReviewSlackError, SlackBusyError

from p4f import settings as env_readers
from p4f.api import ApiSettings
from p4f.budget import BudgetUnavailableError, Priority
from p4f.errors import Pay4FeedbackError, RateLimitError, ResponseAlreadyReviewedError
from p4f.models import Response, ResponseStatus
from p4f.reviews import (
    BRIDGE_EVENT_SOURCE,
    REWARD_REVIEW_DECIDED,
    DecidedBy,
    Decision,
    ReviewMode,
    ReviewOutcome,
    RewardReviewDecided,
    SlackDecision,
    ephemeral,
)
from p4f.secrets import SecretError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from mypy_boto3_events import EventBridgeClient
    from review_ledger import ReviewLedger
    from review_policy import PolicySource
    from review_slack import ReviewSlack

    from p4f.client import Pay4FeedbackClient

logger = Logger(child=True)

DEADLINE_MARGIN_SECONDS = 2.0
"""Time kept back from the API calls to publish, complete the claim and answer SQS."""
DEFAULT_DASHBOARD_URL = "https://app.pay4feedback.com"


@dataclass(frozen=True)
class Settings:
    mode: ReviewMode
    policy_parameter: str
    table_name: str
    caps: DailyCaps
    slack_secret_arn: str | None
    slack_api_url: str
    dashboard_url: str
    event_bus_name: str
    queue_urls: tuple[str, ...]
    """The review queue and the decision queue (a deferred record goes back to its own)."""
    api: ApiSettings

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        mode = env_readers.optional(env, "REVIEW_MODE") or ReviewMode.DRY_RUN
        if mode not in set(ReviewMode):
            raise env_readers.ConfigurationError(
                f"REVIEW_MODE must be one of {', '.join(ReviewMode)}, not {mode!r}"
            )
        return cls(
            mode=ReviewMode(mode),
            policy_parameter=env_readers.required(env, "REVIEW_POLICY_PARAMETER"),
            table_name=env_readers.required(env, "REVIEW_TABLE"),
            caps=DailyCaps(
                count=env_readers.integer(env, "AUTO_APPROVE_DAILY_COUNT", 0),
                amounts=_amounts(env_readers.optional(env, "AUTO_APPROVE_DAILY_AMOUNTS") or ""),
            ),
            slack_secret_arn=env_readers.optional(env, "REVIEW_SLACK_SECRET_ARN"),
            slack_api_url=env_readers.optional(env, "SLACK_API_URL") or "https://slack.com/api",
            dashboard_url=env_readers.optional(env, "P4F_DASHBOARD_URL") or DEFAULT_DASHBOARD_URL,
            event_bus_name=env_readers.required(env, "EVENT_BUS_NAME"),
            queue_urls=(
                env_readers.required(env, "REVIEW_QUEUE_URL"),
                env_readers.required(env, "DECISION_QUEUE_URL"),
            ),
            api=ApiSettings.from_env(env),
        )


def _amounts(text: str) -> dict[str, Decimal]:
    """`USD=200.00,EUR=150` as {currency: amount}."""
    amounts: dict[str, Decimal] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        currency, _, amount = part.partition("=")
        try:
            value = Decimal(amount.strip())
        except InvalidOperation:
            value = Decimal(-1)
        if len(currency.strip()) != 3 or not value.is_finite() or value < 0:
            raise env_readers.ConfigurationError(
                f"AUTO_APPROVE_DAILY_AMOUNTS must read like USD=200.00,EUR=150; {part!r} does not"
            )
        amounts[currency.strip().upper()] = value
    return amounts


class Fate(StrEnum):
    DONE = "done"
    DEFERRED = "deferred"
    FAILED = "failed"


@dataclass(frozen=True)
class Reviewed:
    """What became of one record."""

    fate: Fate
    reason: str
    decided: RewardReviewDecided | None = None
    retry_after: float = 0.0
    policy_invalid: bool = False
    permanent: bool = False
    """Failed for a reason no retry changes (Pay4Feedback's 4xx): it must be fixed first."""


def review_key(response_id: str, decision: Decision) -> str:
    """The Idempotency-Key of a decision: the same in every attempt and every process, so
    that API v1.1 applies a repeated call once."""
    return f"p4f-bridge-review-{decision}-{response_id}"[:255]


class PublishError(RuntimeError):
    """The bus did not take a RewardReviewDecided event."""


class DecisionEvents:
    """RewardReviewDecided events on the bridge's bus (source p4f-bridge)."""

    def __init__(self, events: EventBridgeClient, bus_name: str) -> None:
        self._events = events
        self._bus_name = bus_name

    def publish(self, decided: RewardReviewDecided) -> None:
        answer = self._events.put_events(
            Entries=[
                {
                    "EventBusName": self._bus_name,
                    "Source": BRIDGE_EVENT_SOURCE,
                    "DetailType": REWARD_REVIEW_DECIDED,
                    "Detail": decided.model_dump_json(),
                    "Resources": [],
                }
            ]
        )
        if answer.get("FailedEntryCount", 0):
            entry = answer["Entries"][0]
            raise PublishError(
                f"the bus did not take RewardReviewDecided: {entry.get('ErrorCode')}: "
                f"{entry.get('ErrorMessage', '')}"
            )


_FAILURES = (
    PublishError,
    Pay4FeedbackError,
    SecretError,
    ClaimLostError,
    BudgetUnavailableError,
    ReviewSlackError,
    ClientError,
    BotoCoreError,
    PolicyUnreadableError,
)
"""What a review can fail with: a later attempt may not meet it, except Pay4Feedback's
permanent 4xx (`_permanent`), which fail the record as well but say what must be fixed."""


class RewardReviewer:
    def __init__(
        self,
        client: Pay4FeedbackClient,
        ledger: ReviewLedger,
        policy: PolicySource,
        slack: ReviewSlack,
        publish: Callable[[RewardReviewDecided], None],
        *,
        mode: ReviewMode,
        caps: DailyCaps,
        dashboard_url: str = DEFAULT_DASHBOARD_URL,
        margin_seconds: float = DEADLINE_MARGIN_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._ledger = ledger
        self._policy = policy
        self._slack = slack
        self._publish = publish
        self._mode = mode
        self._caps = caps
        self._dashboard_url = dashboard_url
        self._margin = margin_seconds
        self._clock = clock

    # --- automatic --------------------------------------------------------------------

    def review(self, response: Response, seconds: float) -> Reviewed:
        """Decide a scored response by the policy; `seconds`: the invocation's time left."""
        if self._mode is ReviewMode.OFF:
            return Reviewed(Fate.DONE, "RewardReviewMode is off")
        if response.quality is None:
            return Reviewed(Fate.DONE, "not scored yet: its response_scored event decides it")
        if response.status != ResponseStatus.PENDING:
            return Reviewed(Fate.DONE, f"already {response.status}: nothing to decide")
        with self._client.priority(Priority.BACKGROUND):  # nobody waits for the bus
            return self._review_pending(response, seconds)

    def _review_pending(self, response: Response, seconds: float) -> Reviewed:
        try:
            judgement, invalid = self._judge(response)
            if self._mode is ReviewMode.DRY_RUN:
                decided = self._event(response, judgement.band, ReviewOutcome.DRY_RUN, judgement)
                self._publish(decided)
                return Reviewed(Fate.DONE, "dry-run: reported", decided, policy_invalid=invalid)
            claim = self._ledger.claim_automatic(response.id, seconds)
        except _FAILURES as exc:  # nothing is held yet: the record alone fails
            return _failure(exc)
        if isinstance(claim, Taken):
            return Reviewed(Fate.DONE, f"a duplicate: the response is {claim.state} already")
        try:
            with self._client.deadline(seconds - self._margin):
                decided = self._review_claimed(claim, response, judgement)
        except _FAILURES as exc:
            return replace(self._failed(claim, exc), policy_invalid=invalid)
        return Reviewed(Fate.DONE, decided.reason, decided, policy_invalid=invalid)

    def _judge(self, response: Response) -> tuple[Judgement, bool]:
        assert response.quality is not None  # noqa: S101 (review() checked it)
        policy = self._policy.current()
        if isinstance(policy, InvalidPolicyError):
            return Judgement(Decision.HUMAN_REVIEW, f"{policy}: a person decides"), True
        return judge(policy, response.campaign_id, response.quality), False

    def _review_claimed(
        self, claim: Claim, response: Response, judgement: Judgement
    ) -> RewardReviewDecided:
        decision, reason = judgement.band, judgement.reason
        if decision is Decision.APPROVE:
            try:
                claim = self._ledger.reserve(claim, response.reward, self._caps)
            except CapsReachedError as exc:
                decision, reason = Decision.HUMAN_REVIEW, f"{reason}, but {exc}"
        if decision is not Decision.HUMAN_REVIEW:
            decided, _ = self._apply(
                claim,
                response.id,
                decision,
                DecidedBy(kind="policy"),
                judgement,
                reject_reason=judgement.reject_reason,
                before=response,
            )
            return decided
        if claim.ts is None:  # else a resumed claim posted it before its publish failed
            posted = self._slack.post(review_message(response, reason, self._dashboard_url))
            claim = self._ledger.note_message(claim, posted.channel, posted.ts)
        judged = Judgement(judgement.band, reason)
        decided = self._event(response, decision, ReviewOutcome.SENT_TO_REVIEW, judged)
        self._publish(decided)
        self._ledger.await_review(claim)
        return decided

    # --- human ------------------------------------------------------------------------

    def decide(self, click: SlackDecision, seconds: float) -> Reviewed:
        """Apply a reviewer's click; the message shows the outcome (or who came first)."""
        if self._mode is not ReviewMode.ON:
            self._tell(click, ephemeral(f"Nothing was applied: RewardReviewMode is {self._mode}."))
            return Reviewed(Fate.DONE, f"RewardReviewMode is {self._mode}: not applied")
        try:
            claim = self._ledger.claim_human(
                click.response_id, click.user_id, click.user_name, seconds
            )
        except _FAILURES as exc:  # nothing is held yet: the record alone fails
            return self._click_failed(click, _failure(exc))
        if isinstance(claim, Taken):
            self._tell(click, taken_message(claim))
            return Reviewed(Fate.DONE, f"someone else came first: the response is {claim.state}")
        by = DecidedBy(kind="slack", user_id=click.user_id, user_name=click.user_name)
        judged = Judgement(
            Decision.HUMAN_REVIEW,
            f"decided in Slack by {click.user_name or click.user_id}",
        )
        try:
            with self._client.deadline(seconds - self._margin):
                decided, after = self._apply(claim, click.response_id, click.decision, by, judged)
        except _FAILURES as exc:
            return self._click_failed(click, self._failed(claim, exc))
        who = reviewer_mention(click.user_id, click.user_name)
        line = outcome_line(
            click.decision, decided.outcome, str(after.status), who, click.clicked_at
        )
        self._tell(click, decided_message(after, line))
        return Reviewed(Fate.DONE, decided.reason, decided)

    def _tell(self, click: SlackDecision, message: Mapping[str, object]) -> None:
        """Update the clicked message; a failure here changes no decision, so it is logged."""
        try:
            self._slack.respond(click.response_url, message)
        except ReviewSlackError as exc:
            logger.warning(
                "could not update the review message in Slack",
                extra={"response_id": click.response_id, "error": str(exc)},
            )

    # --- the one path that decides ------------------------------------------------------

    def _apply(
        self,
        claim: Claim,
        response_id: str,
        decision: Decision,
        by: DecidedBy,
        judgement: Judgement,
        *,
        reject_reason: str | None = None,
        before: Response | None = None,
    ) -> tuple[RewardReviewDecided, Response]:
        """Send the decision, publish what became of it, complete the claim; the event and
        the response as it is now. `before`: the response as the event had it (its score)."""
        wanted = (
            ResponseStatus.APPROVED if decision is Decision.APPROVE else ResponseStatus.REJECTED
        )
        key = review_key(response_id, decision)
        try:
            if decision is Decision.APPROVE:
                after = self._client.approve_response(response_id, idempotency_key=key)
            else:
                after = self._client.reject_response(
                    response_id, reject_reason, idempotency_key=key
                )
            outcome = ReviewOutcome.APPLIED
        except ResponseAlreadyReviewedError as exc:
            after = exc.response
            # A resumed claim's own earlier call (its answer lost with its invocation) may
            # be what reviewed it: then it is this decision, applied.
            ours = claim.resumed and after.status == wanted
            outcome = ReviewOutcome.APPLIED if ours else ReviewOutcome.DECIDED_ELSEWHERE
            if not ours:
                claim = self._ledger.give_back(claim, after.reward)
        decided = self._event(before or after, decision, outcome, judgement, by=by, after=after)
        self._publish(decided)  # before completing: a failed publish is repeated, never lost
        self._ledger.complete(claim, decision, outcome, str(after.status))
        return decided, after

    def _event(
        self,
        response: Response,
        decision: Decision,
        outcome: ReviewOutcome,
        judgement: Judgement,
        *,
        by: DecidedBy | None = None,
        after: Response | None = None,
    ) -> RewardReviewDecided:
        quality = response.quality
        return RewardReviewDecided(
            response_id=response.id,
            campaign_id=response.campaign_id,
            decision=decision,
            outcome=outcome,
            decided_by=by or DecidedBy(kind="policy"),
            band=judgement.band,
            reason=judgement.reason,
            score=quality.score if quality else None,
            verdict=str(quality.verdict) if quality else None,
            amount=response.reward,
            status=(after or response).status,
            mode=self._mode,
            decided_at=datetime.fromtimestamp(self._clock(), UTC),
        )

    def _failed(self, claim: Claim, exc: Exception) -> Reviewed:
        """Give the claim back for the record's next delivery (or the next click); defer or
        fail the record."""
        try:
            self._ledger.release(claim)
        except (ClaimLostError, ClientError, BotoCoreError):
            logger.exception("could not give the response back", extra={"id": claim.response_id})
        return _failure(exc)

    def _click_failed(self, click: SlackDecision, failed: Reviewed) -> Reviewed:
        """Tell whoever clicked that their decision was not applied, and what to do. A
        permanent failure is then done: the person, not SQS, tries again."""
        if failed.fate is Fate.DEFERRED:  # applied within seconds: nothing to tell
            return failed
        if failed.permanent:
            then = "Click again once that is fixed, or decide it in the Pay4Feedback dashboard."
        else:
            then = (
                "The bridge tries again within minutes, and this message changes once it is "
                "applied; if it has not changed in 15 minutes, click again."
            )
        self._tell(
            click, ephemeral(f"Your decision was not applied: {failed.reason.rstrip('.')}. {then}")
        )
        return replace(failed, fate=Fate.DONE) if failed.permanent else failed


def _permanent(exc: Exception) -> bool:
    """Pay4Feedback refused the call for a reason no retry changes (design rule 11): a 4xx,
    but neither a 409 (the state changed: resolved by reading it) nor a 429 (a pause)."""
    status = exc.status if isinstance(exc, Pay4FeedbackError) else None
    return status is not None and 400 <= status < 500 and status not in (409, 429)


def _failure(exc: Exception) -> Reviewed:
    """The record's fate after `exc`: deferred for a pause asked for, else failed."""
    if isinstance(exc, RateLimitError | SlackBusyError):
        return Reviewed(Fate.DEFERRED, str(exc), retry_after=max(1.0, math.ceil(exc.retry_after)))
    if _permanent(exc):
        reason = f"Pay4Feedback refused it, and a retry will not change that: {exc}"
        return Reviewed(Fate.FAILED, reason, permanent=True)
    return Reviewed(Fate.FAILED, f"{type(exc).__name__}: {exc}")
