"""The backfill: snapshots of what the API lists, onto the bus, ten a call, in the budget's
background share; it stops cleanly at an API error and retries what a retry can fix."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from local.sample_events import SAMPLE_CAMPAIGN, SAMPLE_EVENT
from p4f.backfill import Backfill, BackfillError
from p4f.budget import Priority
from p4f.errors import RateLimitError, ServerError
from p4f.fanout import BRIDGE_SOURCE, MAX_EVENT_BYTES
from p4f.mirror import MirrorKind
from p4f.models import Campaign, Me, Response

TENANT = "5b3a1f0c-2d4e-4f6a-9b8c-7d6e5f4a3b2c"
TAKEN_AT = datetime(2026, 4, 20, 8, 0, tzinfo=UTC)


def campaigns(count: int) -> list[Campaign]:
    return [Campaign.model_validate(SAMPLE_CAMPAIGN | {"id": f"c{n}"}) for n in range(count)]


def responses(count: int, **data: Any) -> list[Response]:
    return [
        Response.model_validate(SAMPLE_EVENT["data"] | {"id": f"r{n}"} | data) for n in range(count)
    ]


@dataclass
class FakeApi:
    """Lists what it is given, noting the priority of each call; `fail_after` rows of a
    listing, it raises `error` (the next page failed)."""

    listed_campaigns: list[Campaign] = field(default_factory=list)
    listed_responses: list[Response] = field(default_factory=list)
    fail_after: int | None = None
    error: Exception = field(default_factory=lambda: ServerError("the API is down", status=503))
    priorities: list[Priority] = field(default_factory=list)
    _priority: Priority = Priority.INTERACTIVE

    def me(self) -> Me:
        self.priorities.append(self._priority)
        return Me(tenant_id=TENANT, tenant_name="Acme", key_prefix="p4f_live_ab")

    def iter_campaigns(self) -> Iterator[Campaign]:
        return self._listing(self.listed_campaigns)

    def iter_responses(self) -> Iterator[Response]:
        return self._listing(self.listed_responses)

    def _listing[M](self, rows: list[M]) -> Iterator[M]:
        for number, row in enumerate(rows):
            if number == self.fail_after:
                raise self.error
            if number % 3 == 0:  # a page of three
                self.priorities.append(self._priority)
            yield row

    @contextmanager
    def priority(self, priority: Priority) -> Iterator[None]:
        before, self._priority = self._priority, priority
        try:
            yield
        finally:
            self._priority = before


@dataclass
class FakeBus:
    """PutEvents that answers each entry with the next of `codes` (None: taken)."""

    codes: list[str | None] = field(default_factory=list)
    calls: list[list[dict[str, Any]]] = field(default_factory=list)

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls.append(Entries)
        answers = []
        for _ in Entries:
            code = self.codes.pop(0) if self.codes else None
            answers.append({"ErrorCode": code, "ErrorMessage": "no"} if code else {"EventId": "x"})
        return {"FailedEntryCount": sum(1 for a in answers if "ErrorCode" in a), "Entries": answers}

    def snapshots(self) -> list[dict[str, Any]]:
        return [json.loads(e["Detail"]) for call in self.calls for e in call]


def backfill(api: FakeApi, bus: FakeBus) -> Backfill:
    return Backfill(api, bus, "p4f-bridge-events", now=lambda: TAKEN_AT, sleep=lambda _: None)  # type: ignore[arg-type]


def test_every_campaign_then_every_response_goes_on_the_bus_ten_a_call() -> None:
    api, bus = FakeApi(campaigns(12), responses(5)), FakeBus()
    done = backfill(api, bus).run()
    assert done.complete
    assert done.published == {MirrorKind.CAMPAIGNS: 12, MirrorKind.RESPONSES: 5}
    assert [len(call) for call in bus.calls] == [10, 2, 5]
    entry = bus.calls[0][0]
    assert entry["Source"] == BRIDGE_SOURCE
    assert entry["DetailType"] == "campaign_snapshot"
    assert entry["EventBusName"] == "p4f-bridge-events"
    snapshot = bus.snapshots()[0]
    assert snapshot["tenant_id"] == TENANT
    assert snapshot["created_at"] == "2026-04-20T08:00:00Z"
    assert snapshot["data"]["id"] == "c0"
    assert [s["type"] for s in bus.snapshots()[12:]] == ["response_snapshot"] * 5


def test_every_api_call_is_a_background_one() -> None:
    api = FakeApi(campaigns(4), responses(4))
    backfill(api, FakeBus()).run()
    assert api.priorities
    assert set(api.priorities) == {Priority.BACKGROUND}


def test_an_api_error_stops_it_after_publishing_what_was_listed() -> None:
    api, bus = FakeApi(campaigns(14), responses(3), fail_after=13), FakeBus()
    done = backfill(api, bus).run()
    assert not done.complete
    assert done.published == {MirrorKind.CAMPAIGNS: 13}
    assert "ServerError" in (done.stopped or "")
    assert len(bus.snapshots()) == 13  # the partial page too; no response was listed


def test_the_clients_deadline_stops_it_the_same_way() -> None:
    api = FakeApi(campaigns(3), responses(30), fail_after=20)
    api.error = RateLimitError("the bridge's budget has no slot before the deadline", retry_after=9)
    done = backfill(api, FakeBus()).run()
    assert done.published == {MirrorKind.CAMPAIGNS: 3, MirrorKind.RESPONSES: 20}
    assert "RateLimitError" in (done.stopped or "")
    assert "for the rest" not in done.describe()  # the caller says what to run
    assert "stopped early" in done.describe()


def test_throttled_entries_are_sent_again_and_refused_ones_are_named() -> None:
    bus = FakeBus(codes=[None, "ThrottlingException", "ValidationException", None])
    done = backfill(FakeApi(campaigns(3)), bus).run()
    assert [len(call) for call in bus.calls] == [3, 1]  # only the throttled one again
    assert done.published == {MirrorKind.CAMPAIGNS: 2}
    assert list(done.refused) == ["c2"]
    assert "ValidationException" in done.refused["c2"]
    assert not done.complete


def test_a_bus_that_keeps_throttling_stops_it_with_an_error() -> None:
    bus = FakeBus(codes=["ThrottlingException"] * 3)
    with pytest.raises(BackfillError, match="kept refusing 1"):
        backfill(FakeApi(campaigns(1)), bus).run()


def test_a_resource_too_large_for_an_event_is_refused_without_a_call() -> None:
    huge = responses(
        1, answers=[{"question_id": "q", "prompt": "p", "value": "x" * MAX_EVENT_BYTES}]
    )
    bus = FakeBus()
    done = backfill(FakeApi([], huge + responses(2)), bus).run()
    assert done.refused == {"r0": f"larger than the {MAX_EVENT_BYTES:,} bytes of an event"}
    assert done.published == {MirrorKind.RESPONSES: 2}
    assert [len(call) for call in bus.calls] == [2]


def test_a_call_holds_no_more_bytes_than_one_event() -> None:
    big = "x" * (MAX_EVENT_BYTES // 3)
    listed = responses(4, answers=[{"question_id": "q", "prompt": "p", "value": big}])
    bus = FakeBus()
    backfill(FakeApi([], listed), bus).run()
    assert [len(call) for call in bus.calls] == [2, 2]


def test_the_same_state_listed_twice_is_the_same_snapshot() -> None:
    first, second = FakeBus(), FakeBus()
    backfill(FakeApi(campaigns(2)), first).run()
    backfill(FakeApi(campaigns(2)), second).run()
    assert [s["id"] for s in first.snapshots()] == [s["id"] for s in second.snapshots()]
    changed = FakeBus()
    backfill(
        FakeApi([c.model_copy(update={"status": "PAUSED"}) for c in campaigns(1)]), changed
    ).run()
    assert changed.snapshots()[0]["id"] != first.snapshots()[0]["id"]
