"""The campaign trigger's body parsing fuzzed (Hypothesis): any bytes under any Content-Type,
forms and JSON with keys in every convention (and none), odd values, nesting, lone
surrogates, NaN, numbers past any double, and EventBridge details.

Whatever comes, the result is a campaign trigger (which can be fingerprinted and keyed, as
the trigger does) or the module's own refusal, InvalidTriggerError: never another
exception, which would escape the handler as a 502 or fail a whole queue batch."""

from __future__ import annotations

import json
from collections.abc import Callable
from urllib.parse import urlencode

from hypothesis import given
from hypothesis import strategies as st
from pydantic import JsonValue
from trigger_body import InvalidTriggerError, TriggerBody

from tests.fuzz.strategies import any_text, json_values, lone_surrogate, mutated

CONTENT_TYPES = [
    None,
    "application/json",
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=b",
    "multipart/form-data",
    "application/xml",
]
_PARTS = ["name", "description", "reward", "amount", "currency", "questions", "0", "1"]
_PARTS += ["prompt", "type", "activate", "max_responses", "external_id", "", "a"]


@st.composite
def keys(draw: st.DrawFn) -> str:
    """A field's key as a tool writes it (reward__amount, reward.amount, reward[amount]),
    misspelt, empty, nested too deep, or any text at all."""
    parts = draw(st.lists(st.sampled_from(_PARTS) | any_text, max_size=6))
    style = draw(st.sampled_from(["__", ".", "[]"]))
    if style == "[]":
        key = (parts[0] if parts else "") + "".join(f"[{part}]" for part in parts[1:])
    else:
        key = style.join(parts)
    deep = st.integers(min_value=30, max_value=60_000).map(lambda n: "description" + "[a]" * n)
    return draw(st.just(key) | st.sampled_from(["__", ".", "[]", ""]) | deep | any_text)


def nested(depth: int) -> JsonValue:
    value: JsonValue = "x"
    for _ in range(depth):
        value = {"a": value}
    return value


values = st.one_of(
    any_text,
    lone_surrogate,
    st.sampled_from(["", "5.00", "USD", "true", "yes", "100", "NaN", "1e400", "9" * 5_000]),
)
deep_values = st.integers(min_value=30, max_value=990).map(nested)
"""Objects nested up to EventBridge's limit: past Python's recursion limit if recursed."""


def form_body(pairs: list[tuple[str, str]]) -> bytes:
    # surrogatepass: a lone surrogate goes out as the %-escaped bytes a broken tool sends.
    return urlencode(pairs, encoding="utf-8", errors="surrogatepass").encode()


def multipart_body(pairs: list[tuple[str, str]]) -> bytes:
    parts = [
        f'--b\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in pairs
    ]
    return ("".join(parts) + "--b--\r\n").encode("utf-8", "surrogatepass")


details = st.dictionaries(keys(), json_values | values | deep_values, max_size=8)


@st.composite
def json_body(draw: st.DrawFn) -> bytes:
    fields = draw(details)
    base = {"name": draw(values), "reward": {"amount": "5.00", "currency": "USD"}}
    body = (base if draw(st.booleans()) else {}) | fields
    return draw(mutated(json.dumps(body, ensure_ascii=False)))


@st.composite
def http_bodies(draw: st.DrawFn) -> tuple[str | None, bytes]:
    content_type = draw(st.sampled_from(CONTENT_TYPES))
    pairs = draw(st.lists(st.tuples(keys(), values), max_size=8))
    raw = draw(
        st.one_of(
            st.binary(max_size=200),
            json_body(),
            st.just(form_body(pairs)),
            st.just(multipart_body(pairs)),
        )
    )
    return content_type, raw


def is_a_trigger_or_refused(read: Callable[[], TriggerBody]) -> None:
    """`read()` is a trigger the trigger can fingerprint and key, or a refusal saying why."""
    try:
        trigger = read()
    except InvalidTriggerError as exc:
        refusal = str(exc)
    else:
        assert len(trigger.fingerprint()) == 64
        trigger.idempotency_key(header="h", event_id="e")
        return
    assert ": " in refusal, refusal  # `<field or body>: <what is wrong>`


@given(request=http_bodies())
def test_any_http_body_is_a_trigger_or_refused(request: tuple[str | None, bytes]) -> None:
    is_a_trigger_or_refused(lambda: TriggerBody.from_http(*request))


@given(detail=details | json_values)
def test_any_event_detail_is_a_trigger_or_refused(detail: JsonValue) -> None:
    is_a_trigger_or_refused(lambda: TriggerBody.parse(detail))
