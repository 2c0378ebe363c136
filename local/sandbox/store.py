"""The sandbox's memory: tenants, their API keys and resources, and the API's state rules.

Plain Python, no HTTP: methods take validated bodies (`local.sandbox.bodies`), return the
resources of `p4f.models`, and raise `local.sandbox.errors` when a request is refused.
Every state change is handed to an `EventPublisher` as a webhook event.

All of it runs on the server's event loop, one request at a time, so it needs no locks.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from pydantic import BaseModel, JsonValue

from local.sandbox.bodies import (
    CampaignBody,
    CampaignPatch,
    FaultBody,
    PayoutBody,
    QuestionBody,
    ScoreBody,
    SubmissionBody,
    WebhookBody,
)
from local.sandbox.errors import (
    AuthenticationError,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    RateLimitedError,
)
from local.sandbox.idempotency import IdempotencyKeys
from local.sandbox.pages import LIST_LIMIT, ListQuery, Page, ResponseFilters, paginate
from p4f.models import (
    Answer,
    Campaign,
    CampaignStatus,
    EventType,
    Me,
    Payout,
    PayoutStatus,
    Ping,
    Quality,
    QualityVerdict,
    Question,
    Response,
    ResponseStatus,
    WebhookSubscription,
)
from p4f.ratelimit import SlidingWindowLimiter

KEY_PREFIX_LENGTH = 12
DEFAULT_REJECTION_REASON = "No reason given"
DEFAULT_FAILURE_REASON = "Payment provider declined the transfer"
QUALITY_DIMENSIONS = ("relevance", "depth", "clarity")
_MAX_FAULTS = 100


def utc_now() -> datetime:
    """Now, in whole seconds like every timestamp of the API."""
    return datetime.now(UTC).replace(microsecond=0)


def _new_id() -> str:
    return str(uuid.uuid4())


def _digest(api_key: str) -> str:
    return hashlib.sha256(api_key.encode("utf-8")).hexdigest()


def _newest_first[R](resources: dict[str, R]) -> list[R]:
    # Dicts keep insertion order, which is creation order even within one second.
    return list(reversed(resources.values()))


def _id_of(resource: Campaign | Response) -> str:
    return resource.id


def _verdict_for(score: float) -> QualityVerdict:
    """The verdict the AI scorer gives a score, when the caller names none."""
    if score >= 70:
        return QualityVerdict.HIGH
    if score >= 40:
        return QualityVerdict.MEDIUM
    return QualityVerdict.LOW


@dataclass
class Subscription:
    """A webhook subscription with the secret its deliveries are signed with."""

    resource: WebhookSubscription
    secret: str = field(repr=False)
    deleted: bool = False
    """Set when the subscription is deleted; pending retries to it then stop."""

    def wants(self, event_type: EventType) -> bool:
        return event_type in self.resource.events


class EventPublisher(Protocol):
    """Where the store sends the webhook events of state changes."""

    def publish(
        self,
        tenant_id: str,
        event_type: EventType,
        data: dict[str, JsonValue],
        recipients: Sequence[Subscription],
        *,
        dropping: Callable[[], bool],
    ) -> None:
        """Record the event and deliver it to each of `recipients`, holding a delivery
        back until released, unattempted, whenever `dropping()` says so before an attempt."""
        ...


@dataclass
class RequestStats:
    """What a tenant's /api/v1 requests got: every answer, and the 429s among them."""

    requests: int = 0
    rate_limited: int = 0


@dataclass
class _ArmedFault:
    rule: FaultBody
    remaining: int


class Tenant:
    """One tenant's resources, rate limit and injected faults, and the rules that guard them."""

    def __init__(
        self, name: str, *, rate_limit: int, rate_window: float, publisher: EventPublisher
    ) -> None:
        self.id = _new_id()
        self.name = name
        self._publisher = publisher
        self._limiter = self._new_limiter(rate_limit, rate_window)
        self._faults: list[_ArmedFault] = []
        self.stats = RequestStats()
        self.idempotency_keys = IdempotencyKeys()
        self._campaigns: dict[str, Campaign] = {}
        self._responses: dict[str, Response] = {}
        self._subscriptions: dict[str, Subscription] = {}
        self._responses_per_campaign: Counter[str] = Counter()
        self._paid_responses: set[str] = set()

    # --- rate limit and faults --------------------------------------------------------

    @staticmethod
    def _new_limiter(limit: int, window: float) -> SlidingWindowLimiter:
        return SlidingWindowLimiter(limit, window, clock=time.monotonic)

    def count_request(self) -> None:
        """Count one request against the window; RateLimitedError (not counted) when full."""
        self.stats.requests += 1
        wait = self._limiter.try_acquire()
        if wait:
            self.stats.rate_limited += 1
            raise RateLimitedError(max(1, math.ceil(wait)))

    def set_rate_limit(self, limit: int, window: float) -> None:
        """Change the limit; the new window starts empty."""
        self._limiter = self._new_limiter(limit, window)

    def arm_fault(self, rule: FaultBody) -> None:
        if len(self._faults) >= _MAX_FAULTS:
            raise ConflictError(f"at most {_MAX_FAULTS} faults can be armed; clear them first")
        self._faults.append(_ArmedFault(rule, rule.times))

    def clear_faults(self) -> int:
        """Disarm every fault; how many were armed."""
        count = len(self._faults)
        self._faults.clear()
        return count

    def drops_deliveries(self) -> bool:
        """Whether a drop_deliveries fault is armed."""
        return any(armed.rule.drop_deliveries for armed in self._faults)

    def take_fault(self, method: str, path: str) -> FaultBody | None:
        """The first armed fault matching the request, used up once."""
        for armed in self._faults:
            if armed.rule.matches(method, path):
                armed.remaining -= 1
                if armed.remaining == 0:
                    self._faults.remove(armed)
                return armed.rule
        return None

    # --- campaigns --------------------------------------------------------------------

    def list_campaigns(self, query: ListQuery) -> Page[Campaign]:
        return paginate(_newest_first(self._campaigns), query, _id_of)

    def get_campaign(self, campaign_id: str) -> Campaign:
        campaign = self._campaigns.get(campaign_id)
        if campaign is None:
            raise NotFoundError(f"campaign {campaign_id} not found in this tenant")
        return campaign

    def create_campaign(self, body: CampaignBody) -> Campaign:
        now = utc_now()
        campaign = Campaign(
            id=_new_id(),
            name=body.name,
            description=body.description,
            status=CampaignStatus.DRAFT,
            reward=body.reward.to_money(),
            max_responses=body.max_responses,
            questions=_questions(body.questions),
            created_at=now,
            updated_at=now,
        )
        return self._save_campaign(campaign, EventType.CAMPAIGN_CREATED)

    def update_campaign(self, campaign_id: str, patch: CampaignPatch) -> Campaign:
        """Change the fields given; status ACTIVE launches a DRAFT, status ENDED ends it."""
        campaign = self._changeable_campaign(campaign_id)
        given = patch.model_fields_set
        changes: dict[str, object] = {}
        if patch.name is not None:
            changes["name"] = patch.name
        if "description" in given:
            changes["description"] = patch.description
        if patch.reward is not None:
            changes["reward"] = patch.reward.to_money()
        if "max_responses" in given:
            received = self._responses_per_campaign[campaign_id]
            if patch.max_responses is not None and patch.max_responses <= received:
                raise ConflictError(
                    f"max_responses must be more than the {received} responses campaign "
                    f"{campaign_id} already has"
                )
            changes["max_responses"] = patch.max_responses
        if patch.questions is not None:
            changes["questions"] = _questions(patch.questions)
        if patch.status is CampaignStatus.ACTIVE and campaign.status != CampaignStatus.DRAFT:
            raise ConflictError(
                f"only a DRAFT campaign can be launched; campaign {campaign_id} is "
                f"{campaign.status}"
            )
        if patch.status is not None:
            changes["status"] = patch.status
        updated = campaign.model_copy(update=changes)
        if updated == campaign:
            return campaign
        return self._save_campaign(
            updated.model_copy(update={"updated_at": utc_now()}), EventType.CAMPAIGN_UPDATED
        )

    def pause_campaign(self, campaign_id: str) -> Campaign:
        return self._move_campaign(
            campaign_id, CampaignStatus.ACTIVE, CampaignStatus.PAUSED, EventType.CAMPAIGN_PAUSED
        )

    def resume_campaign(self, campaign_id: str) -> Campaign:
        return self._move_campaign(
            campaign_id, CampaignStatus.PAUSED, CampaignStatus.ACTIVE, EventType.CAMPAIGN_RESUMED
        )

    def _move_campaign(
        self,
        campaign_id: str,
        source: CampaignStatus,
        target: CampaignStatus,
        event_type: EventType,
    ) -> Campaign:
        campaign = self._changeable_campaign(campaign_id)
        if campaign.status != source:
            raise ConflictError(
                f"campaign {campaign_id} is {campaign.status}; it can only be "
                f"{event_type.removeprefix('campaign_')} when {source}"
            )
        return self._save_campaign(
            campaign.model_copy(update={"status": target, "updated_at": utc_now()}), event_type
        )

    def _changeable_campaign(self, campaign_id: str) -> Campaign:
        campaign = self.get_campaign(campaign_id)
        if campaign.status == CampaignStatus.ENDED:
            raise ConflictError(f"campaign {campaign_id} has ENDED and cannot be changed")
        return campaign

    def _save_campaign(self, campaign: Campaign, event_type: EventType) -> Campaign:
        self._campaigns[campaign.id] = campaign
        self._emit(event_type, campaign)
        return campaign

    # --- responses --------------------------------------------------------------------

    def list_responses(
        self, query: ListQuery, filters: ResponseFilters | None = None
    ) -> Page[Response]:
        return paginate(_newest_first(self._responses), query, _id_of, filters or ResponseFilters())

    def get_response(self, response_id: str) -> Response:
        response = self._responses.get(response_id)
        if response is None:
            raise NotFoundError(f"response {response_id} not found in this tenant")
        return response

    def approve_response(self, response_id: str) -> Response:
        return self._review(response_id, ResponseStatus.APPROVED, None)

    def reject_response(self, response_id: str, reason: str | None) -> Response:
        reason = reason or DEFAULT_REJECTION_REASON
        return self._review(response_id, ResponseStatus.REJECTED, reason)

    def _review(self, response_id: str, verdict: ResponseStatus, reason: str | None) -> Response:
        response = self.get_response(response_id)
        if response.status != ResponseStatus.PENDING:
            raise ConflictError(
                f"response {response_id} is already {response.status}; only a PENDING "
                "response can be approved or rejected"
            )
        reviewed = response.model_copy(
            update={"status": verdict, "rejection_reason": reason, "reviewed_at": utc_now()}
        )
        event_type = (
            EventType.REWARD_APPROVED
            if verdict == ResponseStatus.APPROVED
            else EventType.REWARD_REJECTED
        )
        return self._save_response(reviewed, event_type)

    def _save_response(self, response: Response, event_type: EventType) -> Response:
        self._responses[response.id] = response
        self._emit(event_type, response)
        return response

    # --- webhooks ---------------------------------------------------------------------

    def list_webhooks(self) -> list[WebhookSubscription]:
        subscriptions = _newest_first(self._subscriptions)[:LIST_LIMIT]
        return [subscription.resource for subscription in subscriptions]

    def create_webhook(self, body: WebhookBody) -> WebhookSubscription:
        """A new subscription, which gets a `ping` event (and only it does)."""
        resource = WebhookSubscription(
            id=_new_id(),
            url=body.url,
            events=list(dict.fromkeys(body.events)),
            created_at=utc_now(),
        )
        subscription = Subscription(resource, body.secret)
        self._subscriptions[resource.id] = subscription
        ping = Ping(webhook_id=resource.id)
        self._publisher.publish(
            self.id,
            EventType.PING,
            ping.model_dump(mode="json"),
            [subscription],
            dropping=self.drops_deliveries,
        )
        return resource

    def delete_webhook(self, webhook_id: str) -> None:
        subscription = self._subscriptions.pop(webhook_id, None)
        if subscription is None:
            raise NotFoundError(f"webhook {webhook_id} not found in this tenant")
        subscription.deleted = True

    # --- what only the sandbox can do: respondents, the AI scorer, the payment provider -

    def submit_response(self, campaign_id: str, body: SubmissionBody) -> Response:
        """A respondent's feedback; the campaign ENDS when it reaches max_responses."""
        campaign = self.get_campaign(campaign_id)
        if campaign.status != CampaignStatus.ACTIVE:
            raise ConflictError(
                f"campaign {campaign_id} is {campaign.status}; only an ACTIVE campaign "
                "receives responses"
            )
        response = Response(
            id=_new_id(),
            campaign_id=campaign.id,
            status=ResponseStatus.PENDING,
            respondent=body.respondent.to_respondent(),
            answers=_answers(campaign, body),
            reward=campaign.reward,
            submitted_at=utc_now(),
        )
        self._save_response(response, EventType.RESPONSE_SUBMITTED)
        self._responses_per_campaign[campaign.id] += 1
        if (
            campaign.max_responses is not None
            and self._responses_per_campaign[campaign.id] >= campaign.max_responses
        ):
            ended = {"status": CampaignStatus.ENDED, "updated_at": utc_now()}
            self._save_campaign(campaign.model_copy(update=ended), EventType.CAMPAIGN_UPDATED)
        return response

    def score_response(self, response_id: str, body: ScoreBody) -> Response:
        """The AI quality score of a response; it is scored once."""
        response = self.get_response(response_id)
        if response.quality is not None:
            raise ConflictError(f"response {response_id} is already scored")
        quality = Quality(
            score=body.score,
            verdict=body.verdict or _verdict_for(body.score),
            breakdown=body.breakdown
            if body.breakdown is not None
            else dict.fromkeys(QUALITY_DIMENSIONS, body.score),
        )
        return self._save_response(
            response.model_copy(update={"quality": quality}), EventType.RESPONSE_SCORED
        )

    def pay_out(self, response_id: str, body: PayoutBody) -> Payout:
        """The payment provider's verdict on the reward of an APPROVED response."""
        response = self.get_response(response_id)
        if response.status != ResponseStatus.APPROVED:
            raise ConflictError(
                f"response {response_id} is {response.status}; only an APPROVED response "
                "is paid out"
            )
        if response_id in self._paid_responses:
            raise ConflictError(f"the reward of response {response_id} is already paid out")
        completed = body.status == PayoutStatus.COMPLETED
        payout = Payout(
            id=_new_id(),
            response_id=response.id,
            campaign_id=response.campaign_id,
            respondent=response.respondent,
            amount=response.reward.amount,
            currency=response.reward.currency,
            status=body.status,
            failure_reason=None if completed else body.failure_reason or DEFAULT_FAILURE_REASON,
            completed_at=utc_now(),
        )
        if completed:
            self._paid_responses.add(response_id)
        self._emit(EventType.PAYOUT_COMPLETED if completed else EventType.PAYOUT_FAILED, payout)
        return payout

    def _emit(self, event_type: EventType, resource: BaseModel) -> None:
        recipients = [s for s in self._subscriptions.values() if s.wants(event_type)]
        self._publisher.publish(
            self.id,
            event_type,
            resource.model_dump(mode="json"),
            recipients,
            dropping=self.drops_deliveries,
        )


def _questions(questions: Sequence[QuestionBody]) -> list[Question]:
    return [Question(id=_new_id(), type=q.type, prompt=q.prompt) for q in questions]


def _answers(campaign: Campaign, body: SubmissionBody) -> list[Answer]:
    """The answers given (matched to questions by id or position), or one made up for each."""
    if body.answers is None:
        return [
            Answer(question_id=q.id, prompt=q.prompt, value=f"Sample answer to: {q.prompt}")
            for q in campaign.questions
        ]
    by_id = {q.id: q for q in campaign.questions}
    answers = []
    for index, given in enumerate(body.answers):
        if given.question_id is not None:
            question = by_id.get(given.question_id)
            if question is None:
                raise InvalidRequestError(
                    f"answers[{index}].question_id: campaign {campaign.id} has no question "
                    f"{given.question_id}"
                )
        elif index < len(campaign.questions):
            question = campaign.questions[index]
        else:
            raise InvalidRequestError(
                f"answers[{index}]: campaign {campaign.id} has {len(campaign.questions)} "
                "questions; give a question_id"
            )
        answers.append(Answer(question_id=question.id, prompt=question.prompt, value=given.value))
    return answers


@dataclass(frozen=True)
class Caller:
    """Who made a request: the key's tenant, and the key's visible prefix."""

    tenant: Tenant
    key_prefix: str

    def me(self) -> Me:
        tenant = self.tenant
        return Me(tenant_id=tenant.id, tenant_name=tenant.name, key_prefix=self.key_prefix)


@dataclass
class _Key:
    tenant: Tenant
    revoked: bool = False


class Store:
    """The tenants, one per starting API key, and every key issued since.

    Keys are kept only as SHA-256 digests, as the real API does.
    """

    def __init__(
        self,
        api_keys: Sequence[str],
        *,
        rate_limit: int,
        rate_window: float,
        publisher: EventPublisher,
    ) -> None:
        self._keys: dict[str, _Key] = {}
        for number, api_key in enumerate(api_keys, start=1):
            tenant = Tenant(
                f"Sandbox tenant {number}",
                rate_limit=rate_limit,
                rate_window=rate_window,
                publisher=publisher,
            )
            self._keys[_digest(api_key)] = _Key(tenant)

    def authenticate(self, api_key: str | None) -> Caller:
        if not api_key:
            raise AuthenticationError(
                "Missing API key: send it as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"
            )
        key = self._keys.get(_digest(api_key))
        if key is None:
            raise AuthenticationError("Invalid API key")
        if key.revoked:
            raise AuthenticationError("API key has been revoked")
        return Caller(key.tenant, api_key[:KEY_PREFIX_LENGTH])

    def issue_key(self, tenant: Tenant) -> str:
        """A new key for `tenant` (shown this once, like the dashboard does)."""
        api_key = f"p4f_test_{secrets.token_hex(16)}"
        self._keys[_digest(api_key)] = _Key(tenant)
        return api_key

    def revoke_key(self, tenant: Tenant, api_key: str) -> None:
        """Revoke a key of `tenant`; it is refused from the next request on."""
        key = self._keys.get(_digest(api_key))
        if key is None or key.tenant is not tenant:
            raise NotFoundError("no such API key in this tenant")
        key.revoked = True
