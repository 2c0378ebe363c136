"""What a trigger asks for: a campaign's fields, whether to launch it, and its external id.

The same body arrives two ways: as the body of `POST /triggers/campaigns` (JSON, a form or
multipart, with flattened keys or not: `trigger_form`) and as the `detail` of a
`CreateCampaign` event on the bridge's bus. It is read the way no-code tools send it:

* values are read leniently: Zapier sends every value as a string, so "100" is a number,
  "true" (or "yes") a boolean and "5.00" an amount; an empty optional field ("" from a
  mapped field with nothing in it) is an absent one;
* `questions` may be text, one question a line (or a list of texts): text questions; a
  question without a `type` is a text question;
* a field the trigger does not know is refused, never dropped: a misspelt field would make
  a campaign without what it meant to set;
* a refusal names the field as the API does (`reward.amount: must be a decimal number`) and,
  where a tool's way of writing keys explains it, says what to send instead.

The campaign's own rules (a positive amount, a 3-letter currency...) are the API's: a body
that breaks them is refused by the API, with the same kind of message.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)
from trigger_form import Convention, Fields, UnreadableBodyError, read_body, read_value

from p4f.field_errors import describe, location
from p4f.json_text import encode_json
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


def _blank_is_absent(fields: Any, optional: frozenset[str]) -> Any:
    """An object's fields without the optional ones given as "" (a mapped field left empty);
    an unknown field is kept even when blank, to be refused (a misspelt one, too)."""
    if not isinstance(fields, dict):
        return fields
    return {k: v for k, v in fields.items() if not (v == "" and k in optional)}


_STRICT = ConfigDict(extra="forbid")


class _Strict(BaseModel):
    """Unknown fields refused (each subclass says so: its API model base allows them), and
    optional fields given as "" left out."""

    @model_validator(mode="before")
    @classmethod
    def _optional_blanks(cls, fields: Any) -> Any:
        optional = frozenset(n for n, f in cls.model_fields.items() if not f.is_required())
        return _blank_is_absent(fields, optional)


class TriggerReward(_Strict, Money):
    model_config = _STRICT


class TriggerQuestion(_Strict, NewQuestion):
    model_config = _STRICT

    type: str = "text"
    """A question without a type is a text question."""


def _questions(value: Any) -> Any:
    """Questions as text (one a line), a list of texts, or one question object: a list."""
    if isinstance(value, str):
        return [{"prompt": line.strip()} for line in value.splitlines() if line.strip()]
    if isinstance(value, dict):
        return [value]  # questions__type / questions__prompt: one question, no index
    if isinstance(value, list):
        return [{"prompt": item} if isinstance(item, str) else item for item in value]
    return value


class TriggerBody(_Strict, NewCampaign):
    """The campaign to create (the fields of `POST /api/v1/campaigns`) and what to do with it."""

    model_config = _STRICT

    reward: TriggerReward
    # Only ever read, so a list of NewQuestion's subclass is safe where NewQuestion is typed.
    questions: list[TriggerQuestion] = Field(default_factory=list)  # type: ignore[assignment]
    activate: bool = False
    """Launch the campaign (status ACTIVE) right after creating it; else it stays a DRAFT."""
    external_id: ExternalId | None = None
    """The caller's id for the campaign: every trigger with it gets the same campaign."""

    _read_questions = field_validator("questions", mode="before")(_questions)

    @classmethod
    def parse(cls, body: bytes | JsonValue) -> TriggerBody:
        """A JSON body's raw bytes, or an event's (parsed) detail; InvalidTriggerError
        naming the field."""
        if isinstance(body, bytes):
            return cls.from_http(None, body)
        try:
            fields = read_value(body)
        except UnreadableBodyError as exc:
            raise InvalidTriggerError(str(exc)) from None
        return cls._validated(fields)

    @classmethod
    def from_http(cls, content_type: str | None, raw: bytes) -> TriggerBody:
        """An HTTP request's body, as its Content-Type says it is encoded."""
        try:
            fields = read_body(content_type, raw)
        except UnreadableBodyError as exc:
            raise InvalidTriggerError(str(exc)) from None
        return cls._validated(fields)

    @classmethod
    def _validated(cls, fields: Fields) -> TriggerBody:
        try:
            return cls.model_validate(fields.value)
        except ValidationError as exc:
            raise InvalidTriggerError(_refusal(exc, fields)) from None

    def fingerprint(self) -> str:
        """A digest of what was asked for: the same key with another body is refused."""
        # encode_json: model_dump_json raises on a lone surrogate, which the API is sent as
        # U+FFFD (p4f.client); the digest is of the same bytes model_dump_json would give.
        return hashlib.sha256(encode_json(self.model_dump(mode="json"))).hexdigest()

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


_NESTED: dict[str, type[BaseModel]] = {"reward": TriggerReward, "questions": TriggerQuestion}
_INDEX = re.compile(r"\[(\d+)\]")


def field_paths() -> list[str]:
    """Every field a trigger takes, as `reward.amount` and `questions[].prompt` name them."""
    paths = []
    for name in TriggerBody.model_fields:
        nested = _NESTED.get(name)
        prefix = f"{name}[]" if name == "questions" else name
        paths.extend([f"{prefix}.{inner}" for inner in nested.model_fields] if nested else [name])
    return paths


FIELD_HELP: dict[str, str] = {
    "name": "required: the campaign's name",
    "description": "optional: what it is about",
    "reward.amount": 'required: the reward per response, a decimal such as "5.00"',
    "reward.currency": 'required: an ISO 4217 code such as "USD"',
    "max_responses": "optional: stop after this many responses",
    "questions[].type": 'optional, "text" by default: the question\'s type',
    "questions[].prompt": "the question; questions may also be text, one question a line",
    "activate": "optional, false by default: launch the campaign (ACTIVE) at once",
    "external_id": "optional: your id for it; every trigger with it gets the same campaign",
}
"""What `GET /triggers/campaigns` says of each field (a test keeps it to `field_paths()`)."""


def _refusal(exc: ValidationError, fields: Fields) -> str:
    """The message of a refused body: the field, what is wrong, and how to send it."""
    errors = exc.errors(include_url=False)
    # An unknown field first: a misspelt one explains the "is required" of the right one.
    unknown = [e for e in errors if e["type"] == "extra_forbidden"]
    if unknown:
        return _unknown_field(location(unknown[0]["loc"]), fields.convention)
    error = errors[0]
    where = location(error["loc"])
    message = describe(exc)
    if error["type"] == "missing":
        return f"{message}; {_spellings(where, fields.convention)}"
    return message


def _unknown_field(where: str, convention: Convention) -> str:
    known = field_paths()
    index = _INDEX.search(where)
    close = difflib.get_close_matches(_INDEX.sub("[]", where), known, n=1, cutoff=0.8)
    hint = ""
    if close:
        meant = close[0].replace("[]", f"[{index[1] if index else 0}]")
        hint = f" (did you mean {convention.spell(meant)}?)"
    return (
        f"{where}: is not a field of a campaign trigger{hint}. The fields are "
        f"{', '.join(known)} (nested, or flattened as reward__amount, reward.amount or "
        "reward[amount])"
    )


def _spellings(where: str, convention: Convention) -> str:
    """How to send field `where`, in the body's own convention or in each tool's."""
    if "." not in where:
        return f"send it as {where}"
    if convention is not Convention.NESTED:
        return f"send it as {convention.spell(where)}, as the body's other fields are"
    return (
        f"send it nested in JSON, or flattened: {Convention.DOUBLE_UNDERSCORE.spell(where)} "
        f"(Zapier with Unflatten off), {Convention.DOTS.spell(where)} (n8n) or "
        f"{Convention.BRACKETS.spell(where)} (Make's forms)"
    )
