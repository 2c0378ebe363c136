"""The local Pay4Feedback sandbox over real HTTP, held to the REST API reference and the
webhook contract. Plain httpx on purpose: the p4f client has tests of its own."""

from __future__ import annotations

import os
import re
import selectors
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from local.sandbox import SandboxServer, running_sandbox
from p4f.signing import SignatureMismatchError, verify
from tests.http_recorder import Receiver, Reply, wait_until

TENANT_KEYS = [f"p4f_test_tenant_{n:03}_0123456789" for n in range(1, 301)]
"""The shared sandbox's tenants: each test takes unused ones, so tests never see each other."""
KEY_1, KEY_2 = TENANT_KEYS[:2]
SECRET = "whsec_sandbox_test_secret"
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
REPO = Path(__file__).resolve().parents[2]
NEW_CAMPAIGN = {"name": "Onboarding survey", "reward": {"amount": "5.00", "currency": "USD"}}

# --- helpers ------------------------------------------------------------------------------


def data(answer: httpx.Response, status: int = 200) -> Any:
    """The `data` of a success envelope, after checking the status and the envelope."""
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert body["success"] is True
    assert TIMESTAMP.fullmatch(body["timestamp"])
    return body["data"]


def error(answer: httpx.Response, status: int) -> str:
    """The message of an error envelope, after checking the status and the envelope."""
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert body["success"] is False
    assert TIMESTAMP.fullmatch(body["timestamp"])
    message: str = body["error"]
    return message


def create_campaign(api: httpx.Client, **fields: Any) -> Any:
    return data(api.post("/api/v1/campaigns", json=NEW_CAMPAIGN | fields), 201)


def active_campaign(api: httpx.Client, **fields: Any) -> Any:
    campaign = create_campaign(api, **fields)
    return data(api.patch(f"/api/v1/campaigns/{campaign['id']}", json={"status": "ACTIVE"}))


def submit(api: httpx.Client, campaign_id: str, body: Any = None) -> Any:
    return data(api.post(f"/_sandbox/campaigns/{campaign_id}/responses", json=body or {}), 201)


def approved_response(api: httpx.Client) -> Any:
    response = submit(api, active_campaign(api)["id"])
    return data(api.post(f"/api/v1/responses/{response['id']}/approve"))


def events(api: httpx.Client, event_type: str) -> list[Any]:
    """The tenant's events of one type, newest first."""
    return [e for e in data(api.get("/_sandbox/events")) if e["type"] == event_type]


def attempts(api: httpx.Client, event_type: str) -> list[Any]:
    """The tenant's delivery attempts of events of one type, newest first."""
    return [a for a in data(api.get("/_sandbox/deliveries")) if a["event_type"] == event_type]


def client(sandbox: SandboxServer, headers: dict[str, str]) -> httpx.Client:
    return httpx.Client(base_url=sandbox.url, headers=headers, timeout=5, trust_env=False)


# --- fixtures -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    """One sandbox for the module (a high limit: the rate limit has tests of its own)."""
    with running_sandbox(TENANT_KEYS, rate_limit=10_000, webhook_retry_base=0.05) as server:
        yield server


@pytest.fixture(scope="module")
def unused_keys() -> Iterator[str]:
    return iter(TENANT_KEYS)


@pytest.fixture
def key(unused_keys: Iterator[str]) -> str:
    """The key of a tenant of the shared sandbox that no other test uses."""
    return next(unused_keys)


@pytest.fixture
def api(sandbox: SandboxServer, key: str) -> Iterator[httpx.Client]:
    """A fresh tenant, with a Bearer key."""
    with client(sandbox, {"Authorization": f"Bearer {key}"}) as http:
        yield http


@pytest.fixture
def other_tenant(sandbox: SandboxServer, unused_keys: Iterator[str]) -> Iterator[httpx.Client]:
    """Another fresh tenant, with an X-API-Key key."""
    with client(sandbox, {"X-API-Key": next(unused_keys)}) as http:
        yield http


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.close()


def subscribe(api: httpx.Client, url: str, events: list[str]) -> Any:
    return data(
        api.post("/api/v1/webhooks", json={"url": url, "events": events, "secret": SECRET}), 201
    )


# --- authentication and tenants -----------------------------------------------------------


def test_both_key_headers_identify_the_tenant(
    api: httpx.Client, sandbox: SandboxServer, key: str, other_tenant: httpx.Client
) -> None:
    me = data(api.get("/api/v1/me"))
    with client(sandbox, {"X-API-Key": key}) as x_api_key:
        assert data(x_api_key.get("/api/v1/me")) == me
    assert UUID.fullmatch(me["tenant_id"])
    assert me["tenant_name"] == f"Sandbox tenant {TENANT_KEYS.index(key) + 1}"
    assert me["key_prefix"] == key[:12]
    other = data(other_tenant.get("/api/v1/me"))
    assert other["tenant_id"] != me["tenant_id"]
    assert other["tenant_name"] != me["tenant_name"]


def test_missing_key_is_401_naming_the_accepted_headers(sandbox: SandboxServer) -> None:
    with client(sandbox, {"Authorization": f"Basic {KEY_1}"}) as http:
        message = error(http.get("/api/v1/campaigns"), 401)
    assert "Authorization: Bearer" in message
    assert "X-API-Key" in message


def test_unknown_key_is_401(sandbox: SandboxServer) -> None:
    with client(sandbox, {"X-API-Key": "p4f_test_unknown"}) as http:
        assert error(http.get("/api/v1/me"), 401) == "Invalid API key"
        assert error(http.get("/_sandbox/events"), 401) == "Invalid API key"


def test_a_new_key_works_at_once_and_a_revoked_key_is_refused_on_the_next_request(
    api: httpx.Client, sandbox: SandboxServer, key: str, other_tenant: httpx.Client
) -> None:
    new_key = data(api.post("/_sandbox/keys"), 201)["api_key"]
    tenant_id = data(api.get("/api/v1/me"))["tenant_id"]
    with client(sandbox, {"Authorization": f"Bearer {new_key}"}) as rotated:
        me = data(rotated.get("/api/v1/me"))
        assert (me["tenant_id"], me["key_prefix"]) == (tenant_id, new_key[:12])
        revoked = data(rotated.post("/_sandbox/keys/revoke", json={"api_key": key}))
        assert revoked == {"key_prefix": key[:12], "revoked": True}
        assert error(api.get("/api/v1/me"), 401) == "API key has been revoked"
        assert data(rotated.get("/api/v1/me"))["tenant_id"] == tenant_id
    # A tenant cannot revoke another tenant's key.
    assert error(other_tenant.post("/_sandbox/keys/revoke", json={"api_key": new_key}), 404)


def test_other_tenants_ids_answer_404(
    api: httpx.Client, other_tenant: httpx.Client, receiver: Receiver
) -> None:
    campaign = active_campaign(api)
    response = submit(api, campaign["id"])
    webhook = subscribe(api, receiver.url, ["ping"])
    for method, path in [
        ("GET", f"/api/v1/campaigns/{campaign['id']}"),
        ("PATCH", f"/api/v1/campaigns/{campaign['id']}"),
        ("POST", f"/api/v1/campaigns/{campaign['id']}/pause"),
        ("GET", f"/api/v1/responses/{response['id']}"),
        ("POST", f"/api/v1/responses/{response['id']}/approve"),
        ("DELETE", f"/api/v1/webhooks/{webhook['id']}"),
        ("POST", f"/_sandbox/campaigns/{campaign['id']}/responses"),
        ("POST", f"/_sandbox/responses/{response['id']}/score"),
    ]:
        assert error(other_tenant.request(method, path, json={"score": 50}), 404), path
    for listing in ("campaigns", "responses", "webhooks"):
        assert data(other_tenant.get(f"/api/v1/{listing}")) == []
    assert data(api.get(f"/api/v1/responses/{response['id']}"))["status"] == "PENDING"


# --- envelope, routing and validation -----------------------------------------------------


def test_unknown_route_wrong_method_and_non_object_body(api: httpx.Client) -> None:
    assert "/api/v1/surveys" in error(api.get("/api/v1/surveys"), 404)
    answer = api.delete("/api/v1/campaigns")
    error(answer, 405)
    assert set(answer.headers["allow"].split(", ")) == {"GET", "HEAD", "POST"}
    for raw in (b"[1, 2]", b'"name"', b"{not json"):
        answer = api.post("/api/v1/campaigns", content=raw)
        assert error(answer, 400) == "body: must be a JSON object"


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("/campaigns", {"reward": NEW_CAMPAIGN["reward"]}, "name: is required"),
        ("/campaigns", {"name": " ", "reward": NEW_CAMPAIGN["reward"]}, "name: must not be empty"),
        ("/campaigns", {"name": "x"}, "reward: is required"),
        (
            "/campaigns",
            {"name": "x", "reward": {"amount": "-5", "currency": "USD"}},
            'reward.amount: must be a positive decimal string such as "5.00"',
        ),
        (
            "/campaigns",
            {"name": "x", "reward": {"amount": "five", "currency": "USD"}},
            'reward.amount: must be a positive decimal string such as "5.00"',
        ),
        (
            "/campaigns",
            {"name": "x", "reward": {"amount": "5.001", "currency": "USD"}},
            'reward.amount: must be a positive decimal string such as "5.00"',
        ),
        (
            "/campaigns",
            {"name": "x", "reward": {"amount": "1" + "0" * 400, "currency": "USD"}},
            "reward.amount: must be less than 1000000",
        ),
        (
            "/campaigns",
            {"name": "x", "reward": {"amount": "1e400", "currency": "USD"}},
            "reward.amount: must be less than 1000000",
        ),
        (
            "/campaigns",
            {"name": "x", "reward": {"amount": "5", "currency": "DOLLARS"}},
            "reward.currency: must be a 3-letter ISO 4217 code",
        ),
        (
            "/campaigns",
            NEW_CAMPAIGN | {"max_responses": 0},
            "max_responses: must be a positive integer or null",
        ),
        (
            "/campaigns",
            NEW_CAMPAIGN | {"max_responses": "10"},
            "max_responses: must be a positive integer or null",
        ),
        (
            "/campaigns",
            NEW_CAMPAIGN | {"questions": [{"type": "text", "prompt": "Why?"}, {"type": "text"}]},
            "questions[1].prompt: is required",
        ),
        (
            "/webhooks",
            {"url": "https://example.com/hook", "events": ["ping", "x"], "secret": SECRET},
            "events[1]: unknown event type 'x'",
        ),
        (
            "/webhooks",
            {"url": "https://example.com/hook", "events": [], "secret": SECRET},
            "events: must have at least 1 item",
        ),
        (
            "/webhooks",
            {"url": "ftp://example.com/hook", "events": ["ping"], "secret": SECRET},
            "url: must be an http(s) URL",
        ),
        (
            "/webhooks",
            {"url": "https://example.com/hook", "events": ["ping"]},
            "secret: is required",
        ),
    ],
)
def test_invalid_bodies_are_400_naming_the_field(
    api: httpx.Client, path: str, body: Any, message: str
) -> None:
    assert error(api.post(f"/api/v1{path}", json=body), 400) == message
    assert data(api.get(f"/api/v1{path}")) == []


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        (
            {"status": "PAUSED"},
            "status: must be ACTIVE or ENDED (pause and resume have their own endpoints)",
        ),
        ({"name": None}, "name: must not be null"),
        (
            {"reward": {"amount": 0, "currency": "USD"}},
            'reward.amount: must be a positive decimal string such as "5.00"',
        ),
    ],
)
def test_invalid_patches_are_400(api: httpx.Client, patch: Any, message: str) -> None:
    campaign = create_campaign(api)
    assert error(api.patch(f"/api/v1/campaigns/{campaign['id']}", json=patch), 400) == message


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/campaigns/42"),
        ("POST", "/api/v1/responses/not-a-uuid/approve"),
        ("DELETE", "/api/v1/webhooks/123e4567"),
        ("POST", "/_sandbox/campaigns/xyz/responses"),
    ],
)
def test_a_bad_path_id_is_400(api: httpx.Client, method: str, path: str) -> None:
    assert error(api.request(method, path), 400) == "id: must be a UUID"


def test_money_is_normalised_to_two_decimals_and_an_upper_case_currency(
    api: httpx.Client,
) -> None:
    for amount, expected in [("5", "5.00"), (5, "5.00"), (7.5, "7.50"), ("0.25", "0.25")]:
        campaign = create_campaign(api, reward={"amount": amount, "currency": "eur"})
        assert campaign["reward"] == {"amount": expected, "currency": "EUR"}


# --- state rules --------------------------------------------------------------------------


def test_campaign_lifecycle_and_its_409s(api: httpx.Client) -> None:
    campaign = create_campaign(api, description="first", max_responses=3)
    assert campaign["status"] == "DRAFT"
    assert UUID.fullmatch(campaign["id"])
    url = f"/api/v1/campaigns/{campaign['id']}"

    def status_after(method: str, path: str, body: Any = None) -> str:
        status: str = data(api.request(method, url + path, json=body))["status"]
        return status

    assert "only be paused when ACTIVE" in error(api.post(f"{url}/pause"), 409)
    assert "only be resumed when PAUSED" in error(api.post(f"{url}/resume"), 409)
    assert status_after("PATCH", "", {"status": "ACTIVE"}) == "ACTIVE"
    assert "only a DRAFT campaign can be launched" in error(
        api.patch(url, json={"status": "ACTIVE"}), 409
    )
    assert error(api.post(f"{url}/resume"), 409)
    assert status_after("POST", "/pause") == "PAUSED"
    assert error(api.post(f"{url}/pause"), 409)
    assert error(api.patch(url, json={"status": "ACTIVE"}), 409)
    assert status_after("POST", "/resume") == "ACTIVE"
    assert status_after("PATCH", "", {"status": "ENDED"}) == "ENDED"
    for method, path, body in [
        ("PATCH", "", {"name": "renamed"}),
        ("PATCH", "", {"status": "ENDED"}),
        ("POST", "/pause", None),
        ("POST", "/resume", None),
    ]:
        assert "has ENDED and cannot be changed" in error(
            api.request(method, url + path, json=body), 409
        )
    kinds = [e["type"] for e in data(api.get("/_sandbox/events"))]
    assert kinds == [
        "campaign_updated",  # ended
        "campaign_resumed",
        "campaign_paused",
        "campaign_updated",  # launched
        "campaign_created",
    ]


def test_a_draft_can_be_ended_without_launching(api: httpx.Client) -> None:
    campaign = create_campaign(api)
    ended = data(api.patch(f"/api/v1/campaigns/{campaign['id']}", json={"status": "ENDED"}))
    assert ended["status"] == "ENDED"


def test_patch_changes_only_the_fields_given(api: httpx.Client) -> None:
    campaign = create_campaign(
        api, description="old", questions=[{"type": "rating", "prompt": "How likely?"}]
    )
    url = f"/api/v1/campaigns/{campaign['id']}"
    patched = data(
        api.patch(
            url,
            json={
                "description": None,
                "reward": {"amount": "7", "currency": "gbp"},
                "max_responses": 9,
            },
        )
    )
    assert patched == campaign | {
        "description": None,
        "reward": {"amount": "7.00", "currency": "GBP"},
        "max_responses": 9,
        "updated_at": patched["updated_at"],
    }
    assert data(api.get(url)) == patched
    assert [e["data"] for e in events(api, "campaign_updated")] == [patched]
    # A patch that changes nothing is not a state change: no event.
    assert data(api.patch(url, json={"name": campaign["name"]})) == patched
    assert len(events(api, "campaign_updated")) == 1


def test_a_response_is_reviewed_once(api: httpx.Client) -> None:
    campaign = active_campaign(api)
    first, second, third = (submit(api, campaign["id"]) for _ in range(3))
    approved = data(api.post(f"/api/v1/responses/{first['id']}/approve"))
    assert approved["status"] == "APPROVED"
    assert TIMESTAMP.fullmatch(approved["reviewed_at"])
    for action in ("approve", "reject"):
        message = error(api.post(f"/api/v1/responses/{first['id']}/{action}"), 409)
        assert "already APPROVED" in message
    rejected = data(api.post(f"/api/v1/responses/{second['id']}/reject", json={"reason": "Spam"}))
    assert (rejected["status"], rejected["rejection_reason"]) == ("REJECTED", "Spam")
    assert "already REJECTED" in error(api.post(f"/api/v1/responses/{second['id']}/approve"), 409)
    unexplained = data(api.post(f"/api/v1/responses/{third['id']}/reject"))
    assert unexplained["rejection_reason"] == "No reason given"
    assert [e["data"]["id"] for e in events(api, "reward_rejected")] == [third["id"], second["id"]]
    assert [e["data"] for e in events(api, "reward_approved")] == [approved]


# --- lists --------------------------------------------------------------------------------


def test_lists_are_newest_first(api: httpx.Client, receiver: Receiver) -> None:
    campaigns = [active_campaign(api, name=f"Campaign {n}") for n in range(3)]
    responses = [submit(api, campaigns[0]["id"]) for _ in range(3)]
    webhooks = [subscribe(api, f"{receiver.url}/{n}", ["ping"]) for n in range(3)]
    for listing, created in [
        ("campaigns", campaigns),
        ("responses", responses),
        ("webhooks", webhooks),
    ]:
        assert [r["id"] for r in data(api.get(f"/api/v1/{listing}"))] == [
            r["id"] for r in reversed(created)
        ]


def test_lists_stop_at_500_rows(api: httpx.Client) -> None:
    created = [create_campaign(api, name=f"Campaign {n}")["id"] for n in range(501)]
    listed = [c["id"] for c in data(api.get("/api/v1/campaigns"))]
    assert listed == created[:0:-1]


# --- rate limit ---------------------------------------------------------------------------


def test_rate_limit_answers_exactly_the_references_429() -> None:
    with (
        running_sandbox([KEY_1, KEY_2], rate_limit=5, rate_window=1) as sandbox,
        client(sandbox, {"X-API-Key": KEY_1}) as api,
        client(sandbox, {"X-API-Key": KEY_2}) as other_tenant,
    ):
        started = time.monotonic()
        for _ in range(5):
            data(api.get("/api/v1/me"))
        limited = api.get("/api/v1/me")
        assert limited.status_code == 429
        assert limited.headers["retry-after"] == "1"
        assert limited.headers["content-type"] == "application/json"
        assert limited.content == b'{"success":false,"error":"Rate limit exceeded. Retry in 1s."}'
        # Per tenant, and only /api/v1.
        data(other_tenant.get("/api/v1/me"))
        data(api.get("/_sandbox/events"))
        # 429s late in the window do not count: once the first five leave it, five more pass.
        time.sleep(max(0.0, started + 0.6 - time.monotonic()))
        assert api.get("/api/v1/me").status_code == 429
        time.sleep(max(0.0, started + 1.1 - time.monotonic()))
        for _ in range(5):
            data(api.get("/api/v1/me"))


def test_the_default_rate_limit_is_60_a_minute() -> None:
    with running_sandbox([KEY_1]) as sandbox, client(sandbox, {"X-API-Key": KEY_1}) as api:
        for _ in range(60):
            data(api.get("/api/v1/me"))
        limited = api.get("/api/v1/me")
    assert limited.status_code == 429
    # Until the first of the 60 leaves the minute: 60 s less the time the 60 took.
    wait = int(limited.headers["retry-after"])
    assert 50 <= wait <= 60
    assert limited.json() == {"success": False, "error": f"Rate limit exceeded. Retry in {wait}s."}


def test_the_rate_limit_can_be_changed_while_running(api: httpx.Client) -> None:
    error(api.put("/_sandbox/rate-limit", json={"limit": 0, "window": 1}), 400)
    assert data(api.put("/_sandbox/rate-limit", json={"limit": 2, "window": 2.5})) == {
        "limit": 2,
        "window": 2.5,
    }
    data(api.get("/api/v1/me"))
    data(api.get("/api/v1/campaigns"))
    limited = api.get("/api/v1/me")
    assert (limited.status_code, limited.headers["retry-after"]) == (429, "3")


# --- simulation: respondents, the AI scorer, the payment provider -------------------------


def test_a_submitted_response_gets_defaults_and_the_campaigns_reward(api: httpx.Client) -> None:
    campaign = active_campaign(
        api,
        reward={"amount": "2.50", "currency": "EUR"},
        questions=[{"type": "text", "prompt": "Why?"}, {"type": "rating", "prompt": "Score?"}],
    )
    response = submit(api, campaign["id"])
    assert response["campaign_id"] == campaign["id"]
    assert (response["status"], response["quality"], response["reviewed_at"]) == (
        "PENDING",
        None,
        None,
    )
    assert response["reward"] == {"amount": "2.50", "currency": "EUR"}
    assert response["respondent"]["id"].startswith("resp_")
    assert "@" in response["respondent"]["email"]
    questions = campaign["questions"]
    assert [(a["question_id"], a["prompt"]) for a in response["answers"]] == [
        (q["id"], q["prompt"]) for q in questions
    ]
    assert all(UUID.fullmatch(q["id"]) for q in questions)
    assert [e["data"] for e in events(api, "response_submitted")] == [response]

    given = submit(
        api,
        campaign["id"],
        {
            "respondent": {"id": "user-7", "email": None},
            "answers": [{"question_id": questions[1]["id"], "value": 4}, {"value": "Because"}],
        },
    )
    assert given["respondent"] == {"id": "user-7", "email": None}
    assert [(a["question_id"], a["value"]) for a in given["answers"]] == [
        (questions[1]["id"], 4),
        (questions[1]["id"], "Because"),
    ]
    unknown = {"answers": [{"question_id": campaign["id"], "value": 1}]}
    message = error(api.post(f"/_sandbox/campaigns/{campaign['id']}/responses", json=unknown), 400)
    assert message.startswith("answers[0].question_id: ")


def test_only_an_active_campaign_receives_responses(api: httpx.Client) -> None:
    campaign = create_campaign(api)
    url = f"/_sandbox/campaigns/{campaign['id']}/responses"
    assert "only an ACTIVE campaign" in error(api.post(url), 409)
    api.patch(f"/api/v1/campaigns/{campaign['id']}", json={"status": "ACTIVE"})
    api.post(f"/api/v1/campaigns/{campaign['id']}/pause")
    assert "is PAUSED" in error(api.post(url), 409)


def test_reaching_max_responses_ends_the_campaign(api: httpx.Client) -> None:
    campaign = active_campaign(api, max_responses=2)
    submit(api, campaign["id"])
    assert data(api.get(f"/api/v1/campaigns/{campaign['id']}"))["status"] == "ACTIVE"
    last = submit(api, campaign["id"])
    assert data(api.get(f"/api/v1/campaigns/{campaign['id']}"))["status"] == "ENDED"
    newest = data(api.get("/_sandbox/events"))[:2]
    assert [(e["type"], e["data"]["id"]) for e in newest] == [
        ("campaign_updated", campaign["id"]),
        ("response_submitted", last["id"]),
    ]
    assert newest[0]["data"]["status"] == "ENDED"
    error(api.post(f"/_sandbox/campaigns/{campaign['id']}/responses"), 409)


def test_max_responses_cannot_drop_to_the_responses_received(api: httpx.Client) -> None:
    campaign = active_campaign(api)
    submit(api, campaign["id"])
    url = f"/api/v1/campaigns/{campaign['id']}"
    assert "more than the 1 responses" in error(api.patch(url, json={"max_responses": 1}), 409)
    assert data(api.patch(url, json={"max_responses": 2}))["max_responses"] == 2


@pytest.mark.parametrize(
    ("score", "verdict"),
    [(100, "high"), (70, "high"), (69.5, "medium"), (40, "medium"), (39, "low")],
)
def test_a_score_without_verdict_gets_one(api: httpx.Client, score: float, verdict: str) -> None:
    response = submit(api, active_campaign(api)["id"])
    scored = data(api.post(f"/_sandbox/responses/{response['id']}/score", json={"score": score}))
    assert scored["quality"] == {
        "score": score,
        "verdict": verdict,
        "breakdown": {"relevance": score, "depth": score, "clarity": score},
    }
    assert [e["data"] for e in events(api, "response_scored")] == [scored]


def test_a_response_is_scored_once_and_as_given(api: httpx.Client) -> None:
    response = submit(api, active_campaign(api)["id"])
    url = f"/_sandbox/responses/{response['id']}/score"
    assert error(api.post(url, json={"score": 101}), 400) == "score: must be a number from 0 to 100"
    assert error(api.post(url, json={"score": 50, "verdict": "great"}), 400).startswith("verdict: ")
    quality = {"score": 12, "verdict": "high", "breakdown": {"originality": 90}}
    assert data(api.post(url, json=quality))["quality"] == quality
    assert "already scored" in error(api.post(url, json={"score": 80}), 409)


def test_payouts_follow_approval(api: httpx.Client) -> None:
    pending = submit(api, active_campaign(api)["id"])
    assert "only an APPROVED response" in error(
        api.post(f"/_sandbox/responses/{pending['id']}/payout", json={"status": "COMPLETED"}), 409
    )
    approved = approved_response(api)
    url = f"/_sandbox/responses/{approved['id']}/payout"
    assert error(api.post(url, json={"status": "COMPLETED", "failure_reason": "x"}), 400) == (
        "failure_reason: only a FAILED payout has one"
    )
    failed = data(api.post(url, json={"status": "FAILED"}), 201)
    assert (failed["status"], failed["failure_reason"]) == (
        "FAILED",
        "Payment provider declined the transfer",
    )
    paid = data(api.post(url, json={"status": "COMPLETED"}), 201)
    assert paid == paid | {
        "response_id": approved["id"],
        "campaign_id": approved["campaign_id"],
        "respondent": approved["respondent"],
        "amount": "5.00",
        "currency": "USD",
        "status": "COMPLETED",
        "failure_reason": None,
    }
    assert UUID.fullmatch(paid["id"])
    assert "already paid out" in error(api.post(url, json={"status": "COMPLETED"}), 409)
    assert [e["data"] for e in events(api, "payout_failed")] == [failed]
    assert [e["data"] for e in events(api, "payout_completed")] == [paid]


# --- faults -------------------------------------------------------------------------------


def test_a_status_fault_answers_without_doing_anything(api: httpx.Client) -> None:
    fault = {"method": "post", "path": "/api/v1/campaigns", "status": 503}
    assert data(api.post("/_sandbox/faults", json=fault), 201)["method"] == "POST"
    assert data(api.get("/api/v1/campaigns")) == []  # another method: not faulted
    assert "Service Unavailable" in error(api.post("/api/v1/campaigns", json=NEW_CAMPAIGN), 503)
    assert data(api.get("/api/v1/campaigns")) == []
    assert events(api, "campaign_created") == []
    create_campaign(api)  # times=1: used up


def test_an_html_fault_answers_like_a_proxy(api: httpx.Client) -> None:
    data(api.post("/_sandbox/faults", json={"status": 502, "html": True, "times": 2}), 201)
    for _ in range(2):
        answer = api.get("/api/v1/me")
        assert answer.status_code == 502
        assert answer.headers["content-type"].startswith("text/html")
        assert "<h1>502 Bad Gateway</h1>" in answer.text
    data(api.get("/api/v1/me"))


def test_a_delay_fault_does_the_work_and_answers_late(
    api: httpx.Client, sandbox: SandboxServer, key: str
) -> None:
    fault = {"method": "POST", "path": "/api/v1/campaigns", "delay": 0.5}
    data(api.post("/_sandbox/faults", json=fault), 201)
    with (
        client(sandbox, {"X-API-Key": key}) as impatient,
        pytest.raises(httpx.ReadTimeout),
    ):
        impatient.post("/api/v1/campaigns", json=NEW_CAMPAIGN, timeout=0.2)
    [created] = data(api.get("/api/v1/campaigns"))
    assert created["name"] == NEW_CAMPAIGN["name"]


def test_faults_can_be_cleared_and_are_validated(api: httpx.Client) -> None:
    data(api.post("/_sandbox/faults", json={"times": 5}), 201)
    assert error(api.get("/api/v1/me"), 500)
    assert data(api.delete("/_sandbox/faults")) == {"cleared": 1}
    data(api.get("/api/v1/me"))
    assert error(api.post("/_sandbox/faults", json={"path": "/_sandbox/keys"}), 400) == (
        "path: must be a path starting with /api/v1"
    )
    assert error(api.post("/_sandbox/faults", json={"delay": 1, "status": 500}), 400).startswith(
        "delay: "
    )


# --- webhooks -----------------------------------------------------------------------------


def test_a_new_subscription_gets_a_signed_ping(api: httpx.Client, receiver: Receiver) -> None:
    answer = api.post(
        "/api/v1/webhooks",
        json={"url": f"{receiver.url}/p4f", "events": ["campaign_created"], "secret": SECRET},
    )
    webhook = data(answer, 201)
    assert SECRET not in answer.text
    assert set(webhook) == {"id", "url", "events", "created_at"}
    assert (webhook["url"], webhook["events"]) == (f"{receiver.url}/p4f", ["campaign_created"])
    assert data(api.get("/api/v1/webhooks")) == [webhook]

    [ping] = receiver.wait_for(1)
    event = ping.event
    assert ping.path == "/p4f"
    assert re.fullmatch(r"evt_[0-9a-f]{32}", event["id"])
    assert event == {
        "id": event["id"],
        "type": "ping",
        "created_at": event["created_at"],
        "tenant_id": data(api.get("/api/v1/me"))["tenant_id"],
        "api_version": "v1",
        "data": {"webhook_id": webhook["id"]},
    }
    assert TIMESTAMP.fullmatch(event["created_at"])
    assert ping.headers["p4f-event-id"] == event["id"]
    assert ping.headers["p4f-event-type"] == "ping"
    assert ping.headers["user-agent"] == "Pay4Feedback-Webhooks/1.0"
    assert ping.headers["content-type"] == "application/json; charset=utf-8"
    verify(ping.body, ping.headers["p4f-signature"], [SECRET])
    with pytest.raises(SignatureMismatchError):
        verify(ping.body, ping.headers["p4f-signature"], ["whsec_another_secret"])


def test_a_ping_goes_only_to_the_new_subscription(api: httpx.Client, receiver: Receiver) -> None:
    first = subscribe(api, f"{receiver.url}/first", ["ping"])
    receiver.wait_for(1)
    second = subscribe(api, f"{receiver.url}/second", ["ping"])
    receiver.wait_for(2)
    pings = events(api, "ping")
    assert [e["data"]["webhook_id"] for e in pings] == [second["id"], first["id"]]
    wait_until(lambda: len(attempts(api, "ping")) == 2)
    deliveries = attempts(api, "ping")
    assert {(d["event_id"], d["webhook_id"]) for d in deliveries} == {
        (pings[0]["id"], second["id"]),
        (pings[1]["id"], first["id"]),
    }
    assert [r.path for r in receiver.received] == ["/first", "/second"]


def test_events_reach_only_the_subscriptions_that_want_them(
    api: httpx.Client, receiver: Receiver
) -> None:
    subscribe(api, f"{receiver.url}/created", ["campaign_created"])
    subscribe(api, f"{receiver.url}/paused", ["campaign_paused", "reward_approved"])
    receiver.wait_for(2, "ping")
    campaign = active_campaign(api)
    paused = data(api.post(f"/api/v1/campaigns/{campaign['id']}/pause"))
    [created_delivery] = receiver.wait_for(1, "campaign_created")
    [paused_delivery] = receiver.wait_for(1, "campaign_paused")
    assert created_delivery.path == "/created"
    assert created_delivery.event["data"]["status"] == "DRAFT"
    assert paused_delivery.path == "/paused"
    assert paused_delivery.event["data"] == paused
    for delivery in (created_delivery, paused_delivery):
        verify(delivery.body, delivery.headers["p4f-signature"], [SECRET])
    # campaign_updated (the launch) was emitted, but nobody subscribed to it.
    assert events(api, "campaign_updated")
    wait_until(lambda: len(data(api.get("/_sandbox/deliveries"))) == 4)
    assert len(receiver.received) == 4


def test_a_failed_delivery_is_retried_with_the_same_event_and_a_new_signature(
    receiver: Receiver,
) -> None:
    # Signatures carry whole seconds: retries a second apart are needed to see new ones.
    with (
        running_sandbox([KEY_1], webhook_retry_base=1.0) as sandbox,
        client(sandbox, {"X-API-Key": KEY_1}) as api,
    ):
        subscribe(api, receiver.url, ["campaign_created"])
        receiver.wait_for(1, "ping")
        receiver.script(Reply(500), Reply(500))
        create_campaign(api)
        received = receiver.wait_for(3, "campaign_created")
        wait_until(lambda: len(attempts(api, "campaign_created")) == 3)
        made = attempts(api, "campaign_created")
    assert len({r.body for r in received}) == 1
    assert len({r.headers["p4f-event-id"] for r in received}) == 1
    signatures = [r.headers["p4f-signature"] for r in received]
    assert len(set(signatures)) == 3
    for signature in signatures:
        verify(received[0].body, signature, [SECRET])
    assert [(a["attempt"], a["status_code"], a["delivery_status"]) for a in made] == [
        (3, 200, "delivered"),
        (2, 500, "delivered"),
        (1, 500, "delivered"),
    ]
    assert made[0]["event_id"] == received[0].headers["p4f-event-id"]


def test_a_delivery_is_given_up_when_the_retry_period_is_over(receiver: Receiver) -> None:
    receiver.script(*[Reply(500)] * 50)
    with (
        running_sandbox([KEY_1], webhook_retry_base=0.05, webhook_retry_for=0.3) as sandbox,
        client(sandbox, {"X-API-Key": KEY_1}) as api,
    ):
        subscribe(api, receiver.url, ["ping"])
        wait_until(
            lambda: [a["delivery_status"] for a in attempts(api, "ping")][:1] == ["given_up"]
        )
        made = attempts(api, "ping")
    assert [a["attempt"] for a in made] == list(range(len(made), 0, -1))
    assert len(made) >= 2
    assert {a["status_code"] for a in made} == {500}
    assert len(receiver.received) == len(made)


def test_a_receiver_too_slow_to_answer_is_retried(receiver: Receiver) -> None:
    receiver.script(Reply(200, delay=2.5))
    with (
        running_sandbox([KEY_1], webhook_retry_base=0.05, webhook_timeout=1.0) as sandbox,
        client(sandbox, {"X-API-Key": KEY_1}) as api,
    ):
        subscribe(api, receiver.url, ["ping"])
        receiver.wait_for(2)
        wait_until(lambda: len(attempts(api, "ping")) == 2)
        second, first = attempts(api, "ping")
    assert (first["status_code"], first["error"]) in {(None, "ReadTimeout"), (None, "TimeoutError")}
    assert (second["status_code"], second["delivery_status"]) == (200, "delivered")


def test_deleting_a_subscription_stops_its_retries(api: httpx.Client, receiver: Receiver) -> None:
    receiver.script(*[Reply(500)] * 100)
    webhook = subscribe(api, receiver.url, ["ping"])
    receiver.wait_for(2)
    assert data(api.delete(f"/api/v1/webhooks/{webhook['id']}")) == {
        "id": webhook["id"],
        "deleted": True,
    }
    wait_until(lambda: attempts(api, "ping")[0]["delivery_status"] == "cancelled")
    assert data(api.get("/api/v1/webhooks")) == []
    assert error(api.delete(f"/api/v1/webhooks/{webhook['id']}"), 404)


# --- server and CLI ---

CLI = [sys.executable, "-m", "local.sandbox"]


def cli_env() -> dict[str, str]:
    """The environment of a CLI run: the pytest pythonpath, which a child does not inherit."""
    return os.environ | {"PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "layers" / "p4f")])}


def test_leaving_the_block_stops_the_server_and_its_pending_deliveries(
    receiver: Receiver,
) -> None:
    receiver.script(Reply(500))
    with (
        running_sandbox([KEY_1], webhook_retry_base=30) as sandbox,
        client(sandbox, {"X-API-Key": KEY_1}) as api,
    ):
        subscribe(api, receiver.url, ["ping"])
        receiver.wait_for(1)
        stopping = time.monotonic()
    assert time.monotonic() - stopping < 2
    port = sandbox.url.rsplit(":", 1)[1]
    assert not [t for t in threading.enumerate() if t.name == f"p4f-sandbox-{port}"]
    # (Whether the port refuses connections is not asserted: another process may reuse it.)


def test_the_cli_serves_until_terminated() -> None:
    command = [*CLI, "--port", "0", "--api-key", KEY_1, "--api-key", KEY_2, "--rate-limit", "100"]
    process = subprocess.Popen(  # noqa: S603 (our own module, fixed arguments)
        command, cwd=REPO, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            assert selector.select(timeout=10), "the sandbox printed nothing"
        line = process.stdout.readline()
        match = re.fullmatch(
            r"Pay4Feedback sandbox \(API v1\.0\) listening on "
            r"(http://127\.0\.0\.1:\d+) \(2 tenants\)\n",
            line,
        )
        assert match, line
        assert KEY_1 not in line
        answer = httpx.get(f"{match[1]}/api/v1/me", headers={"X-API-Key": KEY_2}, trust_env=False)
        assert data(answer)["tenant_name"] == "Sandbox tenant 2"
        process.terminate()
        assert process.wait(timeout=10) == 0
        assert process.stderr is not None
        assert "Traceback" not in process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def test_the_cli_explains_itself() -> None:
    done = subprocess.run(  # noqa: S603 (our own module, fixed arguments)
        [*CLI, "--help"],
        cwd=REPO,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert done.returncode == 0
    for option in ("--port", "--api-key", "--rate-limit", "--webhook-retry-base"):
        assert option in done.stdout
