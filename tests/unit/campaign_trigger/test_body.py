"""The campaign trigger's body: read as no-code tools send it, refused naming the field."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

import pytest
from trigger_body import InvalidTriggerError, TriggerBody


def body(**fields: Any) -> dict[str, Any]:
    return {"name": "Checkout feedback", "reward": {"amount": "5.00", "currency": "USD"}} | fields


def test_the_campaign_fields_and_the_trigger_options_are_read() -> None:
    trigger = TriggerBody.parse(
        json.dumps(
            body(
                description="Why people leave",
                max_responses=100,
                questions=[{"type": "text", "prompt": "What stopped you?"}],
                activate=True,
                external_id="crm-7",
            )
        ).encode()
    )
    assert trigger.name == "Checkout feedback"
    assert trigger.reward.amount == Decimal("5.00")
    assert trigger.questions[0].prompt == "What stopped you?"
    assert (trigger.activate, trigger.external_id) == (True, "crm-7")


def test_blank_optional_fields_are_absent_and_questions_may_be_text() -> None:
    trigger = TriggerBody.parse(
        body(
            description="",
            max_responses="",
            activate="",
            external_id="",
            questions="What almost stopped you?\n\n  Anything else?  \n",
        )
    )
    assert (trigger.description, trigger.max_responses, trigger.activate) == (None, None, False)
    assert trigger.external_id is None
    assert [(q.type, q.prompt) for q in trigger.questions] == [
        ("text", "What almost stopped you?"),
        ("text", "Anything else?"),
    ]
    listed = TriggerBody.parse(body(questions=["Why?", {"type": "rating", "prompt": "Rate"}]))
    assert [(q.type, q.prompt) for q in listed.questions] == [("text", "Why?"), ("rating", "Rate")]
    one = TriggerBody.parse(body(questions={"type": "text", "prompt": "Why?"}))
    assert [q.prompt for q in one.questions] == ["Why?"]


def test_the_defaults_make_a_draft_without_a_key() -> None:
    trigger = TriggerBody.parse(body())
    assert trigger.activate is False
    assert trigger.external_id is None
    assert trigger.idempotency_key() is None


def test_strings_from_no_code_tools_are_read_as_what_they_say() -> None:
    trigger = TriggerBody.parse(
        body(max_responses="100", activate="true", reward={"amount": 5, "currency": "USD"})
    )
    assert trigger.max_responses == 100
    assert trigger.activate is True
    assert trigger.reward.amount == Decimal(5)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"zap_id": "123"}, "zap_id: is not a field of a campaign trigger. The fields are"),
        (
            {"reward": {"amount": "5.00", "currency": "USD", "note": "x"}},
            "reward.note: is not a field of a campaign trigger. The fields are",
        ),
        (
            {"questions": [{"type": "text", "promt": "Why?"}]},
            "questions[0].promt: is not a field of a campaign trigger (did you mean "
            "questions[0].prompt?).",
        ),
        (
            {"reward_amount": "5"},
            "reward_amount: is not a field of a campaign trigger (did you mean reward.amount?).",
        ),
        # Blank, as a mapped field with nothing in it: still not a field, still refused.
        ({"foo": ""}, "foo: is not a field of a campaign trigger."),
        (
            {"max_respones": ""},
            "max_respones: is not a field of a campaign trigger (did you mean max_responses?).",
        ),
        (
            {"reward": {"amount": "5", "currency": "USD", "curency": ""}},
            "reward.curency: is not a field of a campaign trigger (did you mean reward.currency?).",
        ),
    ],
)
def test_an_unknown_field_is_refused_never_dropped(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidTriggerError) as raised:
        TriggerBody.parse(body(**fields))
    assert str(raised.value).startswith(message)
    assert "name, description, reward.amount, reward.currency" in str(raised.value)


def test_a_numeric_external_id_is_an_id_all_the_same() -> None:
    assert TriggerBody.parse(body(external_id=42)).external_id == "42"
    assert TriggerBody.parse(body(external_id="  crm-7 ")).external_id == "crm-7"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": None}, "name: must be a string"),
        ({"reward": None}, "reward: must be an object"),
        (
            {"reward": {"amount": "five", "currency": "USD"}},
            "reward.amount: must be a decimal number",
        ),
        (
            {"reward": {"amount": "5"}},
            "reward.currency: is required; send it nested in JSON, or flattened: "
            "reward__currency (Zapier with Unflatten off), reward.currency (n8n) or "
            "reward[currency] (Make's forms)",
        ),
        ({"max_responses": "many"}, "max_responses: must be an integer"),
        (
            {"questions": [{"type": "text"}]},
            "questions[0].prompt: is required; send it nested in JSON, or flattened: "
            "questions__0__prompt (Zapier with Unflatten off), questions.0.prompt (n8n) or "
            "questions[0][prompt] (Make's forms)",
        ),
        ({"questions": 7}, "questions: must be a list"),
        ({"activate": "maybe"}, "activate: must be true or false"),
        ({"external_id": " "}, "external_id: must not be empty"),
        ({"external_id": "x" * 256}, "external_id: must be at most 255 characters"),
        ({"external_id": True}, "external_id: must be a string"),
        (
            {"external_id": "crm-\ud83d"},
            "external_id: holds half a character (a lone surrogate); send whole characters",
        ),
        (
            {"reward": {"amount": float("nan"), "currency": "USD"}},
            "reward.amount: must be a finite number (not NaN or Infinity)",
        ),
        ({"max_responses": float("inf")}, "max_responses: must be a finite number (not NaN or"),
    ],
)
def test_a_refusal_names_the_field(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidTriggerError) as raised:
        TriggerBody.parse(body(**fields))
    assert str(raised.value).startswith(message)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "body: is not valid JSON (Expecting value at line 1, column 1)"),
        (b"not json", "body: is not valid JSON (Expecting value at line 1, column 1)"),
        (b"[]", "body: is a list of 0 items"),
        (b'"a string"', "body: must be a JSON object"),
        (b"\xff", "body: is not valid JSON (not UTF-8 text)"),
        (
            b'{"max_responses": 1' + b"0" * 5000 + b"}",
            "body: is not valid JSON (a number has more than 4,300 digits)",
        ),
    ],
)
def test_a_body_that_is_not_a_json_object_is_refused(raw: bytes, message: str) -> None:
    with pytest.raises(InvalidTriggerError) as raised:
        TriggerBody.parse(raw)
    assert str(raised.value).startswith(message)


FORM = "application/x-www-form-urlencoded"
TOO_DEEP = (
    "is nested deeper than 32 levels; a campaign's fields nest 3 deep at most (questions[0].prompt)"
)
NOT_A_NAME = "is not a field name; name each field as in name, reward.amount or"


@pytest.mark.parametrize(
    ("content_type", "raw", "message"),
    [
        # Each of these escaped the handler (a 502) before: RecursionError, ValueError.
        (
            "application/json",
            b'{"description": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
            "body: " + TOO_DEEP,
        ),
        (
            "application/json",
            json.dumps(body(description={"a": {"a": {"a": {}}}}))
            .replace("{}", "[" * 40 + "]" * 40)
            .encode(),
            "body: " + TOO_DEEP,
        ),
        *[
            (FORM, f"name=N&{key}=x".encode(), f"{key[:64]}...: {TOO_DEEP}")
            for key in ("description" + "[a]" * 60_000, "description" + "__a" * 40)
        ],
        (FORM, b"name=N&__=x", "__: " + NOT_A_NAME),
        (FORM, b"name=N&.=x", ".: " + NOT_A_NAME),
        (FORM, b"name=N&[]=x", "[]: " + NOT_A_NAME),
        (FORM, b"name=N&=x", "(an empty key): " + NOT_A_NAME),
        ("application/json", b'{"name": "N", "__": "x"}', "__: " + NOT_A_NAME),
        ("application/json", b'{"name": "N", ".": "x"}', ".: " + NOT_A_NAME),
        # Percent-encoded bytes that are not UTF-8 are refused as raw ones are, not replaced.
        (FORM, b"name=%ED%A0%BD&reward__amount=5", "form: a %-escaped value is not UTF-8 text"),
        (FORM, b"name=\xff", "form: is not UTF-8 text"),
        (
            FORM,
            json.dumps(body()).encode(),
            "body: is JSON, but its Content-Type says application/x-www-form-urlencoded; send "
            "it as application/json (in Zapier, Payload Type json;",
        ),
    ],
)
def test_a_body_that_cannot_be_read_is_refused_saying_why(
    content_type: str, raw: bytes, message: str
) -> None:
    with pytest.raises(InvalidTriggerError) as raised:
        TriggerBody.from_http(content_type, raw)
    assert str(raised.value).startswith(message), str(raised.value)


def test_a_detail_too_deep_or_with_a_nameless_key_is_refused_not_raised() -> None:
    deep: Any = "x"
    for _ in range(900):  # within EventBridge's 1,000 levels, beyond Python's recursion
        deep = {"a": deep}
    with pytest.raises(InvalidTriggerError, match=f"^body: {re.escape(TOO_DEEP)}$"):
        TriggerBody.parse(body(description=deep))
    with pytest.raises(InvalidTriggerError, match=r"^\.: is not a field name"):
        TriggerBody.parse(body(**{".": "x"}))


def test_a_lone_surrogate_in_text_is_kept_and_fingerprinted() -> None:
    # Half an emoji (text cut by a tool): the API is sent U+FFFD for it (p4f.client).
    trigger = TriggerBody.parse(body(name="Love it \ud83d", external_id="crm-7"))
    assert trigger.name == "Love it \ud83d"
    assert (
        trigger.fingerprint()
        == TriggerBody.parse(body(name="Love it \ufffd", external_id="crm-7")).fingerprint()
    )


def test_a_detail_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(InvalidTriggerError, match=r"^body: is a list of 3 items"):
        TriggerBody.parse(["not", "an", "object"])
    with pytest.raises(InvalidTriggerError, match=r"^body: must be a JSON object$"):
        TriggerBody.parse(42)


def test_the_fingerprint_is_what_was_asked_for_not_how_it_was_written() -> None:
    plain = TriggerBody.parse(body(max_responses=100, activate=True))
    as_strings = TriggerBody.parse(body(max_responses="100", activate="true", description=""))
    assert plain.fingerprint() == as_strings.fingerprint()
    assert plain.fingerprint() != TriggerBody.parse(body(max_responses=101)).fingerprint()
    assert plain.fingerprint() != TriggerBody.parse(body(max_responses=100)).fingerprint()


def test_the_idempotency_key_prefers_the_external_id_then_the_header_then_the_event() -> None:
    with_external_id = TriggerBody.parse(body(external_id="crm-7"))
    assert with_external_id.idempotency_key(header="h", event_id="e") == "external_id:crm-7"
    plain = TriggerBody.parse(body())
    assert plain.idempotency_key(header="h", event_id="e") == "idempotency_key:h"
    assert plain.idempotency_key(event_id="e") == "event:e"
    # The same value in another role is another key.
    assert TriggerBody.parse(body(external_id="h")).idempotency_key() != (
        plain.idempotency_key(header="h")
    )
