"""The request bodies the sandbox accepts, and the 400 messages that name the bad field.

`parse_body(Model, raw)` is the one way a body gets in. Bodies are validated strictly from
the raw JSON ("5" is not an integer) and unknown fields are ignored. Whatever is refused
becomes an `InvalidRequestError` whose message starts with the field's path, e.g.
`reward.amount: must be a positive decimal string such as "5.00"` or
`questions[1].prompt: is required` (worded by `p4f.field_errors`, as the bridge's own
endpoints word theirs).
"""

from __future__ import annotations

import secrets
from decimal import Decimal, InvalidOperation
from typing import Annotated, Self

import httpx
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    PlainValidator,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from local.sandbox.errors import InvalidRequestError
from p4f.field_errors import describe
from p4f.field_errors import rule as _rule
from p4f.models import (
    EVENT_TYPES,
    CampaignStatus,
    EventType,
    Money,
    PayoutStatus,
    QualityVerdict,
    Respondent,
)

API_PREFIX = "/api/v1"

_CENT = Decimal("0.01")
_MAX_AMOUNT = Decimal(1_000_000)


def _amount(value: object) -> Decimal:
    """A positive amount with at most two decimals, from "5", "5.00" or a JSON number."""
    invalid = _rule('must be a positive decimal string such as "5.00"')
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise invalid
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise invalid from None
    # is_finite first: comparing a NaN raises.
    if not (amount.is_finite() and amount > 0):
        raise invalid
    # Before quantizing: a 400-digit amount has no room for cents in the decimal context.
    if amount >= _MAX_AMOUNT:
        raise _rule(f"must be less than {_MAX_AMOUNT}")
    if amount != amount.quantize(_CENT):
        raise invalid
    return amount.quantize(_CENT)


def _currency(value: object) -> str:
    if isinstance(value, str) and len(value) == 3 and value.isascii() and value.isalpha():
        return value.upper()
    raise _rule("must be a 3-letter ISO 4217 code")


def _max_responses(value: object) -> int | None:
    if value is None or (type(value) is int and value > 0):
        return value
    raise _rule("must be a positive integer or null")


def _launch_or_end(value: object) -> CampaignStatus:
    if isinstance(value, str) and value in (CampaignStatus.ACTIVE, CampaignStatus.ENDED):
        return CampaignStatus(value)
    raise _rule("must be ACTIVE or ENDED (pause and resume have their own endpoints)")


def _event_type(value: object) -> EventType:
    if isinstance(value, str) and value in EVENT_TYPES:
        return EventType(value)
    raise _rule(f"unknown event type {str(value)[:40]!r}")


def _http_url(value: object) -> str:
    if isinstance(value, str) and len(value) <= 2048:
        try:
            # The parser the deliveries will use, so that an accepted URL can be called.
            url = httpx.URL(value)
        except httpx.InvalidURL:
            url = None
        if url is not None and url.scheme in ("http", "https") and url.host:
            return value
    raise _rule("must be an http(s) URL")


def _score(value: object) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 100:
        return value
    raise _rule("must be a number from 0 to 100")


def _http_method(value: object) -> str:
    if isinstance(value, str) and value.isascii() and value.isalpha():
        return value.upper()
    raise _rule("must be an HTTP method such as POST")


def _api_path(value: object) -> str:
    if isinstance(value, str) and value.startswith(API_PREFIX):
        return value
    raise _rule(f"must be a path starting with {API_PREFIX}")


Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Description = Annotated[str, StringConstraints(max_length=5000)] | None
Amount = Annotated[Decimal, PlainValidator(_amount)]
Currency = Annotated[str, PlainValidator(_currency)]
MaxResponses = Annotated[int | None, PlainValidator(_max_responses)]
Score = Annotated[float, PlainValidator(_score)]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, max_length=1000)]


class _Body(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")


class MoneyBody(_Body):
    """A reward; create and update validate it the same way."""

    amount: Amount
    currency: Currency

    def to_money(self) -> Money:
        return Money(amount=self.amount, currency=self.currency)


class QuestionBody(_Body):
    type: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)]
    prompt: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)]


Questions = Annotated[list[QuestionBody], Field(max_length=50)]


class CampaignBody(_Body):
    """`POST /api/v1/campaigns`."""

    name: Name
    description: Description = None
    reward: MoneyBody
    max_responses: MaxResponses = None
    questions: Questions = Field(default_factory=list)


class CampaignPatch(_Body):
    """`PATCH /api/v1/campaigns/{id}`: only the fields given change."""

    name: Name | None = None
    description: Description = None
    reward: MoneyBody | None = None
    max_responses: MaxResponses = None
    questions: Questions | None = None
    status: Annotated[CampaignStatus | None, PlainValidator(_launch_or_end)] = None

    @field_validator("name", "reward", "questions", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        # None is only the "not given" default here; these fields cannot be cleared.
        if value is None:
            raise _rule("must not be null")
        return value


class RejectionBody(_Body):
    """`POST /api/v1/responses/{id}/reject` (the body is optional)."""

    reason: Reason | None = None


class WebhookBody(_Body):
    """`POST /api/v1/webhooks`."""

    url: Annotated[str, PlainValidator(_http_url)]
    events: Annotated[
        list[Annotated[EventType, PlainValidator(_event_type)]], Field(min_length=1, max_length=50)
    ]
    secret: Annotated[str, StringConstraints(min_length=1, max_length=500)]


class RespondentBody(_Body):
    id: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)] = (
        Field(default_factory=lambda: f"resp_{secrets.token_hex(8)}")
    )
    email: Annotated[str, StringConstraints(max_length=254)] | None = None

    def to_respondent(self) -> Respondent:
        # An e-mail is made up unless one was given (null: an anonymous respondent).
        email = self.email if "email" in self.model_fields_set else f"{self.id}@example.com"
        return Respondent(id=self.id, email=email)


class AnswerBody(_Body):
    question_id: str | None = None
    """Absent: the answer is to the campaign's question at the same position."""
    value: JsonValue


class SubmissionBody(_Body):
    """`POST /_sandbox/campaigns/{id}/responses`; absent answers are made up."""

    respondent: RespondentBody = Field(default_factory=RespondentBody)
    answers: Annotated[list[AnswerBody], Field(max_length=100)] | None = None


class ScoreBody(_Body):
    """`POST /_sandbox/responses/{id}/score`; absent verdict and breakdown are derived."""

    score: Score
    verdict: QualityVerdict | None = None
    breakdown: Annotated[dict[str, Score], Field(max_length=20)] | None = None


class PayoutBody(_Body):
    """`POST /_sandbox/responses/{id}/payout`."""

    status: PayoutStatus
    failure_reason: Reason | None = None

    @model_validator(mode="after")
    def _reason_only_when_failed(self) -> Self:
        if self.status is PayoutStatus.COMPLETED and self.failure_reason is not None:
            raise _rule("failure_reason: only a FAILED payout has one")
        return self


class FaultBody(_Body):
    """`POST /_sandbox/faults`: what the next matching /api/v1 requests suffer."""

    method: Annotated[str, PlainValidator(_http_method)] | None = None
    path: Annotated[str, PlainValidator(_api_path)] | None = None
    """A prefix of the request path."""
    times: Annotated[int, Field(ge=1, le=1000)] = 1
    status: Annotated[int, Field(ge=400, le=599)] = 500
    html: bool = False
    """Answer with an HTML page, as a proxy in front of the API would."""
    delay: Annotated[float, Field(gt=0, le=60)] | None = None
    """Process the request, then hold the answer back this many seconds."""
    drop_deliveries: bool = False
    """Not a request fault: until the faults are cleared, no webhook is delivered nor retried
    (each event is still recorded); `POST /_sandbox/deliveries/release` delivers them late."""

    @model_validator(mode="after")
    def _delay_or_error(self) -> Self:
        if self.delay is not None and {"status", "html"} & self.model_fields_set:
            raise _rule("delay: a delayed request is answered normally; drop status and html")
        if self.drop_deliveries and self.model_fields_set - {"drop_deliveries"}:
            raise _rule("drop_deliveries: it concerns webhooks, not requests; give it alone")
        return self

    def matches(self, method: str, path: str) -> bool:
        return (
            not self.drop_deliveries
            and (self.method is None or self.method == method)
            and (self.path is None or path.startswith(self.path))
        )


class RateLimitBody(_Body):
    """`PUT /_sandbox/rate-limit`."""

    limit: Annotated[int, Field(ge=1, le=100_000)]
    window: Annotated[float, Field(gt=0, le=86_400)]


class RevokeKeyBody(_Body):
    """`POST /_sandbox/keys/revoke`."""

    api_key: Annotated[str, StringConstraints(min_length=1)]


def parse_body[M: BaseModel](model: type[M], raw: bytes) -> M:
    """`raw` validated as `model` (an empty body counts as `{}`), or InvalidRequestError."""
    try:
        return model.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        raise InvalidRequestError(describe(exc)) from None
