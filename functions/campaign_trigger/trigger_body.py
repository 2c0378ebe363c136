"""What a trigger asks for: a campaign's fields, whether to launch it, and its external id.

The same body arrives two ways: as the JSON body of `POST /triggers/campaigns` and as the
`detail` of a `CreateCampaign` event on the bridge's bus. It is read the way no-code tools
send it:

* unknown fields are ignored (tools add their own; a misspelt optional field is ignored
  too, so check the campaign in the answer);
* values are read leniently: Zapier sends every value as a string, so "100" is a number,
  "true" a boolean and "5.00" an amount;
* a refusal names the field as the API does: `reward.amount: must be a decimal number`.

The campaign's own rules (a positive amount, a 3-letter currency...) are the API's: a body
that breaks them is refused by the API, with the same kind of message.
"""

from __future__ import annotations

import hashlib
from typing import Annotated

from pydantic import (
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    StringConstraints,
    ValidationError,
)

from p4f.field_errors import describe
from p4f.models import Money, NewCampaign, NewQuestion

MAX_KEY_LENGTH = 255
"""The longest external id or Idempotency-Key accepted."""


class InvalidTriggerError(ValueError):
    """The body is not a trigger; the message names the field and what is wrong with it."""


def _number_as_text(value: object) -> object:
    # A CRM id is often a number; it identifies the campaign all the same.
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


type ExternalId = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_KEY_LENGTH),
    BeforeValidator(_number_as_text),
]


class TriggerReward(Money):
    model_config = ConfigDict(extra="ignore")


class TriggerQuestion(NewQuestion):
    model_config = ConfigDict(extra="ignore")


class TriggerBody(NewCampaign):
    """The campaign to create (the fields of `POST /api/v1/campaigns`) and what to do with it."""

    model_config = ConfigDict(extra="ignore")

    reward: TriggerReward
    # Only ever read, so a list of NewQuestion's subclass is safe where NewQuestion is typed.
    questions: list[TriggerQuestion] = Field(default_factory=list)  # type: ignore[assignment]
    activate: bool = False
    """Launch the campaign (status ACTIVE) right after creating it; else it stays a DRAFT."""
    external_id: ExternalId | None = None
    """The caller's id for the campaign: every trigger with it gets the same campaign."""

    @classmethod
    def parse(cls, body: bytes | JsonValue) -> TriggerBody:
        """An HTTP request's raw body, or an event's (parsed) detail; InvalidTriggerError
        naming the field."""
        try:
            if isinstance(body, bytes):
                return cls.model_validate_json(body)
            return cls.model_validate(body)
        except ValidationError as exc:
            raise InvalidTriggerError(describe(exc)) from None

    def fingerprint(self) -> str:
        """A digest of what was asked for: the same key with another body is refused."""
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()

    def idempotency_key(
        self, *, header: str | None = None, event_id: str | None = None
    ) -> str | None:
        """The key that maps this trigger to one campaign, or None (a campaign per call).

        external_id first: it names the campaign whichever entry it comes through. Else the
        HTTP request's Idempotency-Key, else the EventBridge event's id (so that a
        redelivered event never makes a second campaign).
        """
        if self.external_id is not None:
            return f"external_id:{self.external_id}"
        if header is not None:
            return f"idempotency_key:{header}"
        if event_id is not None:
            return f"event:{event_id}"
        return None
