"""What the fuzz tests throw at the bridge: JSON of every shape and size, text with every
kind of character (lone surrogates, U+FFFF, controls), numbers past 64 bits, nesting past
EventBridge's limit, bodies that are not JSON or not UTF-8, and events around them."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

from local.sample_events import catalogue_event
from p4f.models import EventType

any_text = st.text(st.characters(codec=None, categories=None), max_size=40)
"""Any code points, lone surrogates and noncharacters included."""
type_text = any_text.filter(lambda text: not set(text) & set('"\\<>'))
"""Any text for an event type but what moto cannot put in a rule target's event: it renders
the detail-type into a JSON template unescaped (AWS does not)."""
lone_surrogate = st.sampled_from(["\ud83d", "\udc00", "Love it \ud83d", "\ude00\ud83d"])
leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**25), max_value=10**25),
    st.floats(allow_nan=False, allow_infinity=False),
    any_text,
    lone_surrogate,
)
json_values = st.recursive(
    leaves,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(any_text, children, max_size=4)
    ),
    max_leaves=25,
)


@st.composite
def event_bodies(draw: st.DrawFn) -> bytes:
    """A JSON body shaped like a webhook event, every field of it possibly odd."""
    event_type = draw(st.sampled_from([*EventType, "respondent_banned"]) | type_text)
    body: dict[str, Any] = catalogue_event(event_type) if event_type in set(EventType) else {}
    body |= {
        "id": draw(st.just("evt_fuzz") | any_text | st.text(min_size=2_040, max_size=2_100)),
        "type": event_type,
        "created_at": draw(
            st.sampled_from(
                ["2026-04-19T14:22:51Z", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"]
            )
            | any_text
        ),
        "tenant_id": draw(st.just("5b3a1f0c-2d4e-4f6a-9b8c-7d6e5f4a3b2c") | any_text),
    }
    if draw(st.booleans()):
        body["data"] = draw(st.dictionaries(any_text, json_values, max_size=5))
    text = json.dumps(body, separators=(",", ":"))
    return draw(mutated(text))


@st.composite
def mutated(draw: st.DrawFn, text: str) -> bytes:
    """`text`, sometimes with one change no JSON encoder makes: deep nesting, a NaN, a
    number past any double, a raw U+FFFF, padding to EventBridge's size."""
    change = draw(st.sampled_from(["none", "deep", "nan", "huge", "ffff", "pad", "bom", "utf16"]))
    match change:
        case "deep":
            depth = draw(st.integers(min_value=990, max_value=12_000))
            text = text[:-1] + ',"deep":' + "[" * depth + "]" * depth + "}"
        case "nan":
            text = (
                text[:-1]
                + ',"score":'
                + draw(st.sampled_from(["NaN", "Infinity", "-Infinity"]))
                + "}"
            )
        case "huge":
            text = (
                text[:-1] + ',"n":' + draw(st.sampled_from(["1e400", "9" * 30, "9" * 5_000])) + "}"
            )
        case "ffff":
            text = text[:-1] + ',"note":"\uffff"}'
        case "pad":
            text = text[:-1] + ',"pad":"' + "x" * draw(st.integers(999_000, 1_000_100)) + '"}'
    raw = text.encode("utf-8", "surrogatepass")
    if change == "bom":
        return b"\xef\xbb\xbf" + raw
    if change == "utf16":
        return text.encode("utf-16", "surrogatepass")
    return raw
