"""What Zapier, Make and n8n really send, posted to the campaign trigger's URL: each shape
makes its campaign with every field it meant, or is refused with a message that names the
field, the cause and the fix. Against the sandbox over real HTTP, AWS in moto."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.unit.campaign_trigger.stack import Stack, data, error

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
BOUNDARY = "----n8nFormBoundary7MA4YWxkTrZu0gW"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"


def form(*pairs: tuple[str, str]) -> bytes:
    return urlencode(pairs).encode()


def multipart(*pairs: tuple[str, str], filename: str | None = None) -> bytes:
    parts = []
    for name, value in pairs:
        disposition = f'form-data; name="{name}"'
        if filename is not None and name == pairs[-1][0]:
            disposition += f'; filename="{filename}"'
        parts.append(f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n{value}\r\n")
    return ("".join(parts) + f"--{BOUNDARY}--\r\n").encode()


def as_json(value: Any) -> bytes:
    return json.dumps(value).encode()


NESTED = {"name": "Checkout feedback", "reward": {"amount": "5.00", "currency": "USD"}}
REWARD_PAIRS = (("name", "Checkout feedback"), ("reward__amount", "5.00"))


@dataclass(frozen=True)
class Shape:
    tool: str
    what: str
    content_type: str
    body: bytes
    questions: tuple[str, ...] = ()
    """The prompts the campaign must have (created shapes)."""
    status: str = "DRAFT"
    """ACTIVE where the shape asks to activate it."""
    max_responses: int | None = None
    description: str | None = None
    refused: str | None = None
    """The start of the 400's message (refused shapes)."""


SHAPES = [
    # --- JSON --------------------------------------------------------------------------------
    Shape("any", "nested JSON", JSON, as_json(NESTED)),
    Shape(
        "Zapier",
        "JSON, Unflatten on, every value a string",
        JSON,
        as_json(NESTED | {"max_responses": "100", "activate": "true"}),
        status="ACTIVE",
        max_responses=100,
    ),
    Shape(
        "Zapier",
        "JSON, Unflatten off",
        JSON,
        as_json({"name": "Checkout feedback", "reward__amount": "5", "reward__currency": "USD"}),
    ),
    Shape("Zapier", "JSON, Wrap Request In Array", JSON, as_json([NESTED])),
    Shape(
        "Zapier",
        'JSON, empty mapped fields as ""',
        JSON,
        as_json(NESTED | {"description": "", "max_responses": "", "external_id": ""}),
    ),
    Shape(
        "n8n",
        "JSON, Using Fields Below",
        JSON,
        as_json({"name": "Checkout feedback", "reward.amount": "5", "reward.currency": "USD"}),
    ),
    Shape(
        "n8n",
        "JSON, Using Fields Below, a question list",
        JSON,
        as_json(
            {
                "name": "Checkout feedback",
                "reward.amount": "5",
                "reward.currency": "USD",
                "questions.0.prompt": "Why?",
                "questions.1.prompt": "What else?",
            }
        ),
        questions=("Why?", "What else?"),
    ),
    Shape(
        "Make",
        "JSON, questions as text, one a line",
        JSON,
        as_json(NESTED | {"questions": "What almost stopped you?\nAnything else?"}),
        questions=("What almost stopped you?", "Anything else?"),
    ),
    Shape(
        "Zapier",
        "JSON, Unflatten off, questions__0__prompt",
        JSON,
        as_json(NESTED | {"questions__0__type": "text", "questions__0__prompt": "Why?"}),
        questions=("Why?",),
    ),
    Shape(
        "any",
        "JSON sent as text/plain",
        "text/plain",
        as_json(NESTED),
    ),
    # --- forms ------------------------------------------------------------------------------
    Shape(
        "Zapier",
        "form (the default), Unflatten off",
        FORM,
        form(
            *REWARD_PAIRS,
            ("reward__currency", "USD"),
            ("activate", "yes"),
            ("max_responses", "50"),
            ("description", "Why people leave"),
        ),
        status="ACTIVE",
        max_responses=50,
        description="Why people leave",
    ),
    Shape(
        "Zapier",
        "form, questions__0__type / questions__0__prompt",
        FORM,
        form(
            *REWARD_PAIRS,
            ("reward__currency", "USD"),
            ("questions__0__type", "text"),
            ("questions__0__prompt", "Why?"),
            ("questions__1__prompt", "What else?"),
        ),
        questions=("Why?", "What else?"),
    ),
    Shape(
        "Zapier",
        "form, questions__type / questions__prompt (no index)",
        FORM,
        form(
            *REWARD_PAIRS,
            ("reward__currency", "USD"),
            ("questions__type", "text"),
            ("questions__prompt", "Why?"),
        ),
        questions=("Why?",),
    ),
    Shape(
        "Make",
        "form, reward[amount]",
        FORM,
        form(("name", "Checkout feedback"), ("reward[amount]", "5"), ("reward[currency]", "USD")),
    ),
    Shape(
        "Make",
        "form, questions[0][prompt]",
        FORM,
        form(
            ("name", "Checkout feedback"),
            ("reward[amount]", "5"),
            ("reward[currency]", "USD"),
            ("questions[0][type]", "text"),
            ("questions[0][prompt]", "Why?"),
        ),
        questions=("Why?",),
    ),
    Shape(
        "Zapier",
        'form, empty mapped fields as ""',
        FORM,
        form(*REWARD_PAIRS, ("reward__currency", "USD"), ("description", ""), ("activate", "")),
    ),
    Shape(
        "Make",
        "form, questions as text lines",
        FORM,
        form(
            ("name", "Checkout feedback"),
            ("reward[amount]", "5"),
            ("reward[currency]", "USD"),
            ("questions", "Why?\r\nWhat else?"),
        ),
        questions=("Why?", "What else?"),
    ),
    Shape(
        "Make",
        "form, one questions field per question",
        FORM,
        form(
            ("name", "Checkout feedback"),
            ("reward[amount]", "5"),
            ("reward[currency]", "USD"),
            ("questions[]", "Why?"),
            ("questions[]", "What else?"),
        ),
        questions=("Why?", "What else?"),
    ),
    # --- multipart --------------------------------------------------------------------------
    Shape(
        "Make",
        "multipart/form-data, reward[amount]",
        MULTIPART,
        multipart(
            ("name", "Checkout feedback"), ("reward[amount]", "5"), ("reward[currency]", "USD")
        ),
    ),
    Shape(
        "n8n",
        "Form-Data, reward.amount",
        MULTIPART,
        multipart(
            ("name", "Checkout feedback"), ("reward.amount", "5"), ("reward.currency", "USD")
        ),
    ),
    # --- refused, with what to do -----------------------------------------------------------
    Shape(
        "n8n",
        "Form-Data with a file",
        MULTIPART,
        multipart(*REWARD_PAIRS, ("questions", "Why?"), filename="questions.txt"),
        refused="questions: is a file; send campaign fields as text",
    ),
    Shape(
        "Zapier",
        "JSON that is not JSON (a template typo)",
        JSON,
        b'{"name": "Checkout feedback", "reward": {"amount": 5.00, }}',
        refused="body: is not valid JSON (Illegal trailing comma before end of object at line 1, "
        "column 56); check the JSON body in your tool",
    ),
    Shape(
        "Zapier",
        "form, a misspelt field",
        FORM,
        form(*REWARD_PAIRS, ("reward__currency", "USD"), ("reward__ammount", "5")),
        refused="reward.ammount: is not a field of a campaign trigger (did you mean "
        "reward__amount?)",
    ),
    Shape(
        "Make",
        "form, reward missing",
        FORM,
        form(("name", "Checkout feedback"), ("reward[currency]", "USD")),
        refused="reward.amount: is required; send it as reward[amount], as the body's other "
        "fields are",
    ),
    Shape(
        "Zapier",
        "JSON, Wrap Request In Array, two items",
        JSON,
        as_json([NESTED, NESTED]),
        refused="body: is a list of 2 items; send one campaign per request (in Zapier, turn "
        "Wrap Request In Array off)",
    ),
    Shape(
        "Zapier",
        "Payload Type xml",
        "application/xml",
        b"<campaign><name>Checkout feedback</name></campaign>",
        refused="body: a application/xml body cannot be read; send JSON, a form",
    ),
    Shape(
        "Zapier",
        "form, reward given both as a value and as fields",
        FORM,
        form(*REWARD_PAIRS, ("reward", "5.00 USD")),
        refused="reward: is given both as a value and as fields",
    ),
    Shape(
        "Zapier",
        'form, a misspelt field left empty ("")',
        FORM,
        form(*REWARD_PAIRS, ("reward__currency", "USD"), ("max_respones", "")),
        refused="max_respones: is not a field of a campaign trigger (did you mean max_responses?)",
    ),
    Shape(
        "Make",
        "a JSON body with a form Content-Type",
        FORM,
        as_json(NESTED),
        refused="body: is JSON, but its Content-Type says application/x-www-form-urlencoded; "
        "send it as application/json (in Zapier, Payload Type json; in Make, Body type Raw "
        "with Content type JSON; in n8n, Body Content Type JSON)",
    ),
]


@pytest.mark.parametrize("shape", SHAPES, ids=[f"{s.tool}: {s.what}" for s in SHAPES])
def test_what_no_code_tools_send(stack: Stack, shape: Shape) -> None:
    answer = stack.post(shape.body, headers={"Content-Type": shape.content_type})
    if shape.refused is not None:
        assert answer["statusCode"] == 400
        assert error(answer).startswith(shape.refused), error(answer)
        assert stack.campaigns() == []
        return
    assert answer["statusCode"] == 201, error(answer)
    created = data(answer)
    assert (created["name"], created["reward"]["currency"]) == ("Checkout feedback", "USD")
    assert created["reward"]["amount"] in {"5.00", "5"}
    assert [q["prompt"] for q in created["questions"]] == list(shape.questions)
    assert all(q["type"] == "text" for q in created["questions"])
    assert (created["status"], created["max_responses"], created["description"]) == (
        shape.status,
        shape.max_responses,
        shape.description,
    )
