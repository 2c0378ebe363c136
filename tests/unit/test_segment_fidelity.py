"""The forwarder's calls, field by field, against what Segment's own Python library
(segment-analytics-python, a test-only dependency) sends for the same call.

The library is pointed at the local Segment (it checks every request against Segment's
limits) in sync mode: each call is one request, recorded there. The only differences
allowed are the library's own: its name in context.library, an empty `integrations`, and
the ids it was not given written as null.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from segment.analytics import Client
from segment.analytics.consumer import MAX_MSG_SIZE
from segment_calls import MAX_CALL_BYTES, call_size, calls_for

from local.asgi_server import ThreadedAsgiServer
from local.segment_receiver import LocalSegment
from p4f import __version__
from p4f.models import EventType
from tests.conftest import queued_event

LIBRARY_DEFAULTS: dict[str, Any] = {"integrations": {}, "userId": None, "anonymousId": None}
"""What the library writes into every call it was not given something for."""


class Library:
    """segment-analytics-python, sending to the local Segment one call a request."""

    def __init__(self, segment: LocalSegment, url: str) -> None:
        self.segment = segment
        self.client = Client(segment.write_key, host=url, sync_mode=True, max_retries=0)

    def send(self, ours: dict[str, Any]) -> dict[str, Any]:
        """Make our call with the library, as its API takes it; the call it sent."""
        before = len(self.segment.requests)
        common: dict[str, Any] = {
            "user_id": ours.get("userId"),
            "anonymous_id": ours.get("anonymousId"),
            "context": {},
            "timestamp": datetime.fromisoformat(ours["timestamp"]),
            "message_id": ours["messageId"],
        }
        if ours["type"] == "identify":
            self.client.identify(traits=ours["traits"], **common)
        else:
            self.client.track(event=ours["event"], properties=ours["properties"], **common)
        [request] = self.segment.requests[before:]
        assert request.accepted, request.problems  # the local Segment took the library's call
        [sent] = request.json()["batch"]
        return dict(sent)


@pytest.fixture(scope="module")
def library() -> Iterator[Library]:
    segment = LocalSegment()
    with ThreadedAsgiServer(segment.app, name="segment-library") as server:
        yield Library(segment, server.url)


def differences(ours: dict[str, Any], theirs: dict[str, Any]) -> list[str]:
    """Each field where our call and the library's differ, but for the library's own."""
    found = []
    for name in sorted(set(ours) | set(theirs)):
        if name == "context":
            library = theirs["context"].pop("library")
            assert library["name"] == "analytics-python"
            assert (
                ours["context"]
                == {"library": {"name": "p4f-bridge", "version": __version__}} | theirs["context"]
            )
        elif name not in ours:
            if theirs[name] != LIBRARY_DEFAULTS.get(name, "absent"):
                found.append(name)
        elif ours[name] != theirs.get(name):
            found.append(name)
    return found


def our_calls(event_type: EventType | str, *, personal_data: bool, **data: Any) -> list[Any]:
    return calls_for(queued_event(event_type, **data), personal_data=personal_data)


def test_the_library_refuses_an_empty_user_id_which_is_why_the_bridge_never_sends_one(
    library: Library,
) -> None:
    with pytest.raises(AssertionError, match="user_id or anonymous_id"):
        library.client.track(user_id="", event="Response Submitted")


@pytest.mark.parametrize("personal_data", [False, True])
@pytest.mark.parametrize("event_type", list(EventType))
def test_every_call_is_what_the_library_sends_field_by_field(
    library: Library, event_type: EventType, personal_data: bool
) -> None:
    calls = our_calls(event_type, personal_data=personal_data)
    for call in calls:
        ours = json.loads(call.encoded)
        theirs = library.send(ours)
        assert differences(ours, theirs) == []


@pytest.mark.parametrize(
    ("event_type", "data"),
    [
        (EventType.RESPONSE_SUBMITTED, {"respondent": {"id": "", "email": "ana@example.com"}}),
        (EventType.PAYOUT_FAILED, {"respondent": {"id": ""}}),
        ("respondent_banned", {"respondent_id": ""}),
        ("__odd__type", {}),
    ],
)
def test_a_respondent_without_an_id_is_a_call_the_library_makes_the_same(
    library: Library, event_type: EventType | str, data: dict[str, Any]
) -> None:
    [call] = our_calls(event_type, personal_data=True, **data)
    ours = json.loads(call.encoded)
    assert ours["anonymousId"]
    assert differences(ours, library.send(ours)) == []


def test_a_trimmed_call_is_what_the_library_sends_and_sizes_are_counted_as_it_counts(
    library: Library,
) -> None:
    answers = [
        {"question_id": f"q_{n}", "prompt": f"Question {n}?", "value": "\u00e9t\u00e9 " * 300}
        for n in range(40)
    ]
    _, call = our_calls(EventType.RESPONSE_SUBMITTED, personal_data=True, answers=answers)
    assert call.cut_items["answers"] > 0
    ours = json.loads(call.encoded)
    theirs = library.send(ours)  # the library checks its own count against MAX_MSG_SIZE
    assert MAX_CALL_BYTES == MAX_MSG_SIZE
    assert call.size == call_size(ours) <= MAX_CALL_BYTES
    assert differences(ours, theirs) == []
