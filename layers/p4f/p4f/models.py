"""Pay4Feedback resources and webhook events, as the API and the webhooks send them.

The API adds fields without notice and may add enum values and event types, so every
model keeps unknown fields (`extra="allow"`) and every enum is open: a known value
parses to its member, an unknown one stays a plain string. Money is `Decimal`, never a
float, and serialises back to a decimal string.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, JsonValue, PlainSerializer

type OpenEnum[E] = Annotated[E | str, Field(union_mode="left_to_right")]
"""An enum field that accepts values added to the API after this code was written."""

type Amount = Annotated[Decimal, PlainSerializer(lambda amount: f"{amount:f}", return_type=str)]
"""A decimal amount of money; always a plain decimal string on the wire ("5.00", never "5E+0")."""


type Percent = Annotated[int, Field(ge=0, le=100)] | Annotated[float, Field(ge=0, le=100)]
"""A 0-100 score; whole numbers stay integers."""


class ApiModel(BaseModel):
    """Base of every resource: unknown fields are kept, never dropped."""

    model_config = ConfigDict(extra="allow")


class CampaignStatus(StrEnum):
    DRAFT = "DRAFT"
    ACTIVE = "ACTIVE"
    PAUSED = "PAUSED"
    ENDED = "ENDED"


class ResponseStatus(StrEnum):
    PENDING = "PENDING"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"


class PayoutStatus(StrEnum):
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


class QualityVerdict(StrEnum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class EventType(StrEnum):
    """The webhook event catalogue (v1)."""

    PING = "ping"
    CAMPAIGN_CREATED = "campaign_created"
    CAMPAIGN_UPDATED = "campaign_updated"
    CAMPAIGN_PAUSED = "campaign_paused"
    CAMPAIGN_RESUMED = "campaign_resumed"
    RESPONSE_SUBMITTED = "response_submitted"
    RESPONSE_SCORED = "response_scored"
    REWARD_APPROVED = "reward_approved"
    REWARD_REJECTED = "reward_rejected"
    PAYOUT_COMPLETED = "payout_completed"
    PAYOUT_FAILED = "payout_failed"


class Money(ApiModel):
    amount: Amount
    currency: str = Field(description="ISO 4217 code, e.g. USD")


class Question(ApiModel):
    id: str
    type: str
    prompt: str


class Campaign(ApiModel):
    id: str
    name: str
    description: str | None = None
    status: OpenEnum[CampaignStatus]
    reward: Money
    max_responses: int | None = None
    questions: list[Question] = []
    created_at: datetime
    updated_at: datetime


class Respondent(ApiModel):
    id: str
    email: str | None = None


class Answer(ApiModel):
    question_id: str
    prompt: str
    value: JsonValue


class Quality(ApiModel):
    score: Percent
    verdict: OpenEnum[QualityVerdict]
    breakdown: dict[str, Percent] = {}


class Response(ApiModel):
    id: str
    campaign_id: str
    status: OpenEnum[ResponseStatus]
    respondent: Respondent
    answers: list[Answer] = []
    quality: Quality | None = None
    reward: Money
    rejection_reason: str | None = None
    submitted_at: datetime
    reviewed_at: datetime | None = None


class Payout(ApiModel):
    id: str
    response_id: str
    campaign_id: str
    respondent: Respondent
    amount: Amount
    currency: str
    status: OpenEnum[PayoutStatus]
    failure_reason: str | None = None
    completed_at: datetime


class WebhookSubscription(ApiModel):
    """A webhook subscription; its secret is never returned by the API."""

    id: str
    url: str
    events: list[OpenEnum[EventType]]
    created_at: datetime


class Me(ApiModel):
    tenant_id: str
    tenant_name: str
    key_prefix: str


class Ping(ApiModel):
    webhook_id: str


class NewQuestion(ApiModel):
    """A question of a campaign to create; the API assigns its id."""

    type: str
    prompt: str


class NewCampaign(ApiModel):
    """The body of `POST /api/v1/campaigns`."""

    name: str
    description: str | None = None
    reward: Money
    max_responses: int | None = None
    questions: list[NewQuestion] = []


class WebhookEvent(ApiModel):
    """The body of a webhook delivery. `data` is the snapshot of the resource."""

    id: str
    type: OpenEnum[EventType]
    created_at: datetime
    tenant_id: str
    api_version: str = "v1"
    data: dict[str, JsonValue] = {}
    reconciled_at: datetime | None = Field(
        default=None,
        exclude_if=lambda value: value is None,  # absent from what Pay4Feedback sends
        description="Set by the bridge, never by Pay4Feedback: when its reconciler found "
        "this state change in the API and published the event no webhook had brought.",
    )

    def resource(self) -> ApiModel | None:
        """`data` parsed as the resource its event type carries; None for unknown types."""
        model = EVENT_DATA_MODELS.get(self.type)  # type: ignore[call-overload]
        return model.model_validate(self.data) if model is not None else None


EVENT_DATA_MODELS: dict[EventType, type[ApiModel]] = {
    EventType.PING: Ping,
    EventType.CAMPAIGN_CREATED: Campaign,
    EventType.CAMPAIGN_UPDATED: Campaign,
    EventType.CAMPAIGN_PAUSED: Campaign,
    EventType.CAMPAIGN_RESUMED: Campaign,
    EventType.RESPONSE_SUBMITTED: Response,
    EventType.RESPONSE_SCORED: Response,
    EventType.REWARD_APPROVED: Response,
    EventType.REWARD_REJECTED: Response,
    EventType.PAYOUT_COMPLETED: Payout,
    EventType.PAYOUT_FAILED: Payout,
}
"""The resource each catalogue event carries in `data`."""

EVENT_TYPES: frozenset[str] = frozenset(EventType)
