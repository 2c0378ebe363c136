"""The sandbox as API v1.1 (the reference's changelog): cursor pagination, Idempotency-Key on
POSTs, filters on /responses; in v1.0 it ignores all three, as the real v1.0 does. And its
request statistics. Plain httpx, as in test_sandbox.py."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from local.sandbox import SandboxAdmin, SandboxServer, running_sandbox
from tests.integration.test_sandbox import (
    NEW_CAMPAIGN,
    active_campaign,
    client,
    create_campaign,
    data,
    error,
    submit,
)

KEYS = [f"p4f_test_v11_{n:03}_0123456789" for n in range(1, 41)]
PAGE_SIZE = 4


@pytest.fixture(scope="module")
def v1_1() -> Iterator[SandboxServer]:
    with running_sandbox(KEYS, api_version="1.1", page_size=PAGE_SIZE, rate_limit=10_000) as s:
        yield s


@pytest.fixture(scope="module")
def v1_0() -> Iterator[SandboxServer]:
    with running_sandbox(KEYS, rate_limit=10_000) as s:
        yield s


@pytest.fixture(scope="module")
def unused_keys() -> Iterator[str]:
    return iter(KEYS)


@pytest.fixture
def api(v1_1: SandboxServer, unused_keys: Iterator[str]) -> Iterator[httpx.Client]:
    with client(v1_1, {"X-API-Key": next(unused_keys)}) as http:
        yield http


@pytest.fixture
def api_1_0(v1_0: SandboxServer, unused_keys: Iterator[str]) -> Iterator[httpx.Client]:
    with client(v1_0, {"X-API-Key": next(unused_keys)}) as http:
        yield http


def page(answer: httpx.Response) -> tuple[list[Any], str | None]:
    rows = data(answer)
    return rows, answer.json().get("next")


def every_page(api: httpx.Client, path: str, **params: str) -> list[list[Any]]:
    pages, cursor = [], None
    while True:
        rows, cursor = page(api.get(path, params=params | ({"cursor": cursor} if cursor else {})))
        pages.append(rows)
        if cursor is None:
            return pages


# --- pagination -----------------------------------------------------------------------------


def test_lists_page_with_next_until_the_last_page(api: httpx.Client) -> None:
    made = [create_campaign(api, name=f"c{n}")["id"] for n in range(10)]
    pages = every_page(api, "/api/v1/campaigns")
    assert [len(rows) for rows in pages] == [4, 4, 2]
    assert [c["id"] for rows in pages for c in rows] == made[::-1]  # newest first, each once
    second = api.get("/api/v1/campaigns", params={"cursor": page(api.get("/api/v1/campaigns"))[1]})
    assert "next" in second.json()  # a middle page has one too


def test_a_full_last_page_has_no_next(api: httpx.Client) -> None:
    for n in range(PAGE_SIZE):
        create_campaign(api, name=f"c{n}")
    rows, cursor = page(api.get("/api/v1/campaigns"))
    assert (len(rows), cursor) == (PAGE_SIZE, None)


def test_rows_created_between_pages_do_not_shift_the_next_page(api: httpx.Client) -> None:
    older = [create_campaign(api, name=f"old{n}")["id"] for n in range(6)]
    first, cursor = page(api.get("/api/v1/campaigns"))
    create_campaign(api, name="newer than every page given")
    assert cursor is not None
    second, _ = page(api.get("/api/v1/campaigns", params={"cursor": cursor}))
    assert [c["id"] for c in first + second] == older[::-1]


@pytest.mark.parametrize("cursor", ["nonsense", "eyJhZnRlciI6IDF9", "eyJhZnRlciI6ICJ4In0"])
def test_a_cursor_the_list_did_not_give_is_a_400(api: httpx.Client, cursor: str) -> None:
    create_campaign(api)
    message = error(api.get("/api/v1/campaigns", params={"cursor": cursor}), 400)
    assert message.startswith("cursor: ")


def test_v1_0_ignores_cursors_and_returns_the_newest_500(api_1_0: httpx.Client) -> None:
    for n in range(3):
        create_campaign(api_1_0, name=f"c{n}")
    answer = api_1_0.get("/api/v1/campaigns", params={"cursor": "nonsense"})
    assert len(data(answer)) == 3
    assert "next" not in answer.json()


# --- /responses filters ---------------------------------------------------------------------


def test_responses_filter_by_campaign_status_and_time(api: httpx.Client) -> None:
    first, second = active_campaign(api)["id"], active_campaign(api)["id"]
    of_first = [submit(api, first)["id"] for _ in range(5)]
    of_second = [submit(api, second)["id"] for _ in range(2)]
    approved = data(api.post(f"/api/v1/responses/{of_first[0]}/approve"))["id"]

    def ids(**params: str) -> list[str]:
        return [r["id"] for rows in every_page(api, "/api/v1/responses", **params) for r in rows]

    assert ids(campaign_id=first) == of_first[::-1]
    assert ids(campaign_id=second, status="PENDING") == of_second[::-1]
    assert ids(status="APPROVED") == [approved]
    future = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert ids(since=future) == []
    assert len(ids(since="2000-01-01T00:00:00+00:00")) == 7


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"campaign_id": "not-a-uuid"}, "campaign_id"),
        ({"status": "APPROVED_ISH"}, "status"),
        ({"since": "yesterday"}, "since"),
        ({"since": "2026-04-19T14:22:51"}, "since"),  # no time zone
    ],
)
def test_an_invalid_filter_is_a_400_naming_it(
    api: httpx.Client, params: dict[str, str], field: str
) -> None:
    assert error(api.get("/api/v1/responses", params=params), 400).startswith(f"{field}: ")


def test_v1_0_ignores_the_response_filters(api_1_0: httpx.Client) -> None:
    campaign = active_campaign(api_1_0)["id"]
    submit(api_1_0, campaign)
    other = active_campaign(api_1_0)["id"]
    submit(api_1_0, other)
    answer = api_1_0.get("/api/v1/responses", params={"campaign_id": campaign, "status": "x"})
    assert len(data(answer)) == 2


# --- Idempotency-Key ------------------------------------------------------------------------


def test_a_repeated_post_with_its_key_gets_the_first_answer_and_does_nothing(
    api: httpx.Client,
) -> None:
    headers = {"Idempotency-Key": "create-once"}
    first = api.post("/api/v1/campaigns", json=NEW_CAMPAIGN, headers=headers)
    again = api.post("/api/v1/campaigns", json=NEW_CAMPAIGN, headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert len(data(api.get("/api/v1/campaigns"))) == 1


def test_the_same_key_for_another_request_is_a_422(api: httpx.Client) -> None:
    headers = {"Idempotency-Key": "one-request-only"}
    data(api.post("/api/v1/campaigns", json=NEW_CAMPAIGN, headers=headers), 201)
    other = NEW_CAMPAIGN | {"name": "Another campaign"}
    message = error(api.post("/api/v1/campaigns", json=other, headers=headers), 422)
    assert "use a new key" in message
    assert len(data(api.get("/api/v1/campaigns"))) == 1


def test_a_refused_request_is_answered_the_same_again(api: httpx.Client) -> None:
    response = submit(api, active_campaign(api)["id"])
    data(api.post(f"/api/v1/responses/{response['id']}/approve"))
    headers = {"Idempotency-Key": "reject-late"}
    path = f"/api/v1/responses/{response['id']}/reject"
    first = api.post(path, headers=headers)
    assert first.status_code == 409
    assert api.post(path, headers=headers).json() == first.json()


def test_a_key_is_per_tenant(
    api: httpx.Client, v1_1: SandboxServer, unused_keys: Iterator[str]
) -> None:
    headers = {"Idempotency-Key": "shared-name"}
    data(api.post("/api/v1/campaigns", json=NEW_CAMPAIGN, headers=headers), 201)
    with client(v1_1, {"X-API-Key": next(unused_keys)}) as other:
        data(other.post("/api/v1/campaigns", json=NEW_CAMPAIGN, headers=headers), 201)
        assert len(data(other.get("/api/v1/campaigns"))) == 1


def test_a_failed_request_may_be_retried_with_its_key(
    api: httpx.Client, v1_1: SandboxServer
) -> None:
    key = api.headers["X-API-Key"]
    admin = SandboxAdmin(v1_1.url, key)
    admin.arm_fault(method="POST", path="/api/v1/campaigns", status=500)
    headers = {"Idempotency-Key": "after-a-500"}
    assert api.post("/api/v1/campaigns", json=NEW_CAMPAIGN, headers=headers).status_code == 500
    data(api.post("/api/v1/campaigns", json=NEW_CAMPAIGN, headers=headers), 201)
    assert len(data(api.get("/api/v1/campaigns"))) == 1


def test_v1_0_ignores_idempotency_keys(api_1_0: httpx.Client) -> None:
    headers = {"Idempotency-Key": "ignored"}
    for _ in range(2):
        data(api_1_0.post("/api/v1/campaigns", json=NEW_CAMPAIGN, headers=headers), 201)
    assert len(data(api_1_0.get("/api/v1/campaigns"))) == 2


# --- statistics -----------------------------------------------------------------------------


def test_stats_count_the_tenants_requests_and_its_429s(unused_keys: Iterator[str]) -> None:
    key = next(unused_keys)
    with (
        running_sandbox([key], rate_limit=3, rate_window=30) as sandbox,
        client(sandbox, {"X-API-Key": key}) as api,
    ):
        statuses = [api.get("/api/v1/me").status_code for _ in range(5)]
        assert statuses == [200, 200, 200, 429, 429]
        stats = SandboxAdmin(sandbox.url, key).stats()
        assert (stats.requests, stats.rate_limited) == (5, 2)
        assert data(api.get("/_sandbox/stats")) == {"requests": 5, "rate_limited": 2}
