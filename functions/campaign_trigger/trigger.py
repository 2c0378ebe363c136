"""The campaign trigger's logic: exactly one campaign per trigger, whatever is retried.

    trigger(request, seconds)
        no key (HTTP without Idempotency-Key or external_id): create, launch, done
        claim the key (trigger_ledger)       COMPLETED      -> the stored campaign again
                                             held elsewhere -> DEFERRED (retry later)
                                             other body     -> REFUSED 422
        the key's campaign: the one an earlier attempt recorded, else (resumed claims)
        one a lost POST made since the first attempt, else a new one (POST; the client
        looks up a lost answer before it posts again)
        launch it if asked and it is still a DRAFT
        complete the key with the campaign

Plain Python with its collaborators passed in; `app.py` builds them. Both entries (the
function URL, the queue) call `trigger` and turn its `TriggerResult` into their answer.
`failure` is the one place where an exception becomes an HTTP status.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError
from trigger_ledger import ClaimLostError, ClaimOutcome

from p4f import settings as env_readers
from p4f.api import ApiSettings
from p4f.budget import BudgetExhaustedError, BudgetUnavailableError
from p4f.errors import (
    AuthenticationError,
    ConflictError,
    InvalidRequestError,
    Pay4FeedbackError,
    RateLimitError,
)
from p4f.models import Campaign, CampaignStatus
from p4f.secrets import SecretError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from trigger_body import TriggerBody
    from trigger_ledger import Claim, TriggerLedger

    from p4f.client import Pay4FeedbackClient

logger = Logger(child=True)

DEADLINE_MARGIN_SECONDS = 2.0
"""Time kept back from the API calls for recording the outcome and answering."""
BUSY_RETRY_SECONDS = 5
"""The most a repeat of a key being processed is told to wait: the holder usually finishes
(or gives the key back) within seconds, long before its claim would lapse."""


@dataclass(frozen=True)
class Settings:
    token_secret_arn: str
    api: ApiSettings
    table_name: str
    event_bus_name: str
    queue_url: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        return cls(
            token_secret_arn=env_readers.required(env, "TRIGGER_TOKEN_SECRET_ARN"),
            api=ApiSettings.from_env(env),
            table_name=env_readers.required(env, "TRIGGER_TABLE"),
            event_bus_name=env_readers.required(env, "EVENT_BUS_NAME"),
            queue_url=env_readers.required(env, "TRIGGER_QUEUE_URL"),
        )


class Outcome(StrEnum):
    CREATED = "created"
    REPLAYED = "replayed"
    """The key was done before: its campaign again."""
    REFUSED = "refused"
    """Permanent: the request must change (validation, the API's 400/409, a reused key)."""
    DEFERRED = "deferred"
    """Not now: retry after `retry_after` (429: the bridge's API budget or Pay4Feedback's rate
    limit is used up; 409: another invocation holds the key)."""
    FAILED = "failed"
    """Transient: Pay4Feedback or AWS failed; retry later."""
    DESCRIBED = "described"
    """Not a trigger: the caller asked what the trigger accepts (GET)."""


@dataclass(frozen=True)
class TriggerResult:
    outcome: Outcome
    status: int
    """The HTTP status that says it (201 for a campaign)."""
    campaign: Campaign | None = None
    error: str | None = None
    retry_after: int | None = None
    key: str | None = None
    """The idempotency key, when the trigger had one."""


class CampaignTakenError(RuntimeError):
    """The campaign this trigger created was adopted by another trigger with the same fields
    (whose own POST was lost) before this one could record it."""


def api_idempotency_key(key: str) -> str:
    """The Idempotency-Key the trigger's POST for `key` carries: the same for every attempt,
    in a form the API takes whatever the caller's key holds (a digest, not the key)."""
    return f"p4f-bridge-trigger-{hashlib.sha256(key.encode()).hexdigest()}"


def refused(status: int, error: str) -> TriggerResult:
    return TriggerResult(Outcome.REFUSED, status, error=error)


def failure(exc: Exception) -> TriggerResult:
    """The result of a trigger that raised `exc`: the one mapping of failures to statuses."""
    if isinstance(exc, RateLimitError):
        wait = max(1, math.ceil(exc.retry_after))
        if isinstance(exc, BudgetExhaustedError):
            why = (
                "the bridge's API budget is used up (all its functions share "
                "ApiRequestsPerMinute; Pay4Feedback itself refused nothing)"
            )
        else:
            why = "Pay4Feedback's rate limit is used up"
        return TriggerResult(
            Outcome.DEFERRED, 429, error=f"{why}; retry in {wait}s", retry_after=wait
        )
    if isinstance(exc, InvalidRequestError | ConflictError):
        # The API refused this campaign: its message names the field or the state.
        return refused(exc.status or 400, exc.message)
    status, error = _transient(exc)
    return TriggerResult(Outcome.FAILED, status, error=error)


def _transient(exc: Exception) -> tuple[int, str]:
    """The status and message of a failure that a later retry may not meet."""
    if isinstance(exc, AuthenticationError):
        return 502, f"Pay4Feedback refused the bridge's API key: {exc}"
    if isinstance(exc, Pay4FeedbackError):
        return 502, f"Pay4Feedback failed: {exc}"
    if isinstance(exc, SecretError):
        return 500, str(exc)
    if isinstance(exc, ClaimLostError | CampaignTakenError):
        return 503, f"{exc}; retry later"
    if isinstance(exc, BudgetUnavailableError):
        return 503, str(exc)
    return 503, f"the trigger table did not answer ({type(exc).__name__}); retry later"


_FAILURES = (
    Pay4FeedbackError,
    SecretError,
    ClaimLostError,
    CampaignTakenError,
    BudgetUnavailableError,
    ClientError,
    BotoCoreError,
)
"""What a trigger can fail with; `failure` has a status for each."""


@dataclass(frozen=True)
class TriggerRequest:
    body: TriggerBody
    key: str | None
    """The idempotency key; None creates a campaign on every call."""


class CampaignTrigger:
    def __init__(
        self,
        client: Pay4FeedbackClient,
        ledger: TriggerLedger,
        *,
        margin_seconds: float = DEADLINE_MARGIN_SECONDS,
    ) -> None:
        self._client = client
        self._ledger = ledger
        self._margin = margin_seconds

    def trigger(self, request: TriggerRequest, seconds: float) -> TriggerResult:
        """Make the request's campaign; `seconds` is how long this invocation may still run."""
        try:
            with self._client.deadline(seconds - self._margin):
                if request.key is None:
                    campaign = self._launch(self._create(request.body), request.body.activate)
                    return TriggerResult(Outcome.CREATED, 201, campaign)
                return self._trigger_once(request.body, request.key, seconds)
        except _FAILURES as exc:
            logger.warning("trigger failed", extra={"key": request.key, "error": repr(exc)})
            return replace(failure(exc), key=request.key)

    def _trigger_once(self, body: TriggerBody, key: str, seconds: float) -> TriggerResult:
        claim = self._ledger.claim(key, body.fingerprint(), seconds)
        if claim.outcome is ClaimOutcome.COMPLETED:
            return TriggerResult(Outcome.REPLAYED, 201, claim.campaign, key=key)
        if claim.outcome is ClaimOutcome.BUSY:
            reason = "another request with this key is being processed; retry later"
            wait = min(claim.retry_after, BUSY_RETRY_SECONDS)
            return TriggerResult(Outcome.DEFERRED, 409, error=reason, retry_after=wait, key=key)
        if claim.outcome is ClaimOutcome.MISMATCH:
            reason = (
                "Idempotency-Key reused with a different body: this key (or external_id) "
                "already made a campaign from another body; use a new key for a new campaign"
            )
            return replace(refused(422, reason), key=key)
        try:
            campaign = self._launch(self._campaign_for(claim, body), body.activate)
        except Exception:
            self._release(claim)
            raise
        try:
            self._ledger.complete(claim, campaign)
        except (ClaimLostError, ClientError, BotoCoreError):
            # The campaign exists and the key records it: a repeat finds it and completes.
            logger.exception("could not mark the trigger completed", extra={"key": key})
        return TriggerResult(Outcome.CREATED, 201, campaign, key=key)

    def _campaign_for(self, claim: Claim, body: TriggerBody) -> Campaign:
        if claim.campaign_id is not None:
            return self._client.get_campaign(claim.campaign_id)

        def accept(campaign: Campaign) -> bool:
            return self._ledger.adopt(claim, campaign.id)

        if claim.outcome is ClaimOutcome.RESUMED and claim.since is not None:
            # An earlier attempt may have posted, and crashed before it heard back.
            found = self._client.find_created_campaign(body, since=claim.since, accept=accept)
            if found is not None:
                logger.info("adopted the campaign of an earlier attempt", extra={"key": claim.key})
                return found
        campaign = self._create(body, accept, key=claim.key)
        if not accept(campaign):
            raise CampaignTakenError(
                f"campaign {campaign.id} was adopted by another trigger with the same fields"
            )
        return campaign

    def _create(
        self,
        body: TriggerBody,
        accept: Callable[[Campaign], bool] | None = None,
        *,
        key: str | None = None,
    ) -> Campaign:
        """POST the campaign; with the trigger's key, its POSTs carry one Idempotency-Key
        derived from it, in every invocation (API v1.1 then makes one campaign per key)."""
        return self._client.create_campaign(
            name=body.name,
            description=body.description,
            reward=body.reward,
            max_responses=body.max_responses,
            questions=body.questions,
            accept=accept,
            idempotency_key=api_idempotency_key(key) if key is not None else None,
        )

    def _launch(self, campaign: Campaign, activate: bool) -> Campaign:
        if activate and campaign.status == CampaignStatus.DRAFT:
            return self._client.update_campaign(campaign.id, status=CampaignStatus.ACTIVE)
        return campaign

    def _release(self, claim: Claim) -> None:
        try:
            self._ledger.release(claim)
        except (ClaimLostError, ClientError, BotoCoreError):
            # The claim lapses at the end of this invocation; a retry then resumes it.
            logger.exception("could not release the trigger's key", extra={"key": claim.key})
