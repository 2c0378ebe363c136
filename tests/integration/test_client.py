"""Pay4FeedbackClient against the local sandbox over real HTTP: the whole API surface."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal

import boto3
import pytest
from moto import mock_aws

from local.sandbox import SandboxAdmin, SandboxServer, running_sandbox
from p4f.client import MoneyFields, Pay4FeedbackClient, RetryPolicy
from p4f.errors import (
    AuthenticationError,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    RateLimitError,
    ServerError,
)
from p4f.models import CampaignStatus, EventType, PayoutStatus, ResponseStatus
from p4f.ratelimit import SlidingWindowLimiter
from p4f.secrets import ApiKeySecret

KEYS = [f"p4f_test_client_{n:03d}" for n in range(40)]
REWARD: MoneyFields = {"amount": "5.00", "currency": "USD"}
FAST_RETRIES = RetryPolicy(base_delay=0.01)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    with running_sandbox(KEYS, webhook_retry_base=0.05, webhook_retry_for=1) as server:
        yield server


_unused_keys = iter(KEYS)


@pytest.fixture
def key() -> str:
    """A tenant no other test has touched."""
    return next(_unused_keys)


@pytest.fixture
def client(sandbox: SandboxServer, key: str) -> Iterator[Pay4FeedbackClient]:
    with Pay4FeedbackClient(sandbox.url, api_key=key, timeout=5) as api:
        yield api


@pytest.fixture
def admin(sandbox: SandboxServer, key: str) -> Iterator[SandboxAdmin]:
    sandbox_admin = SandboxAdmin(sandbox.url, key)
    yield sandbox_admin
    sandbox_admin.close()


def launched_campaign(client: Pay4FeedbackClient) -> str:
    campaign = client.create_campaign(
        name="Checkout feedback",
        reward=REWARD,
        questions=[{"type": "text", "prompt": "What almost stopped you?"}],
    )
    client.update_campaign(campaign.id, status=CampaignStatus.ACTIVE)
    return campaign.id


def test_every_endpoint_end_to_end(
    client: Pay4FeedbackClient, admin: SandboxAdmin, key: str
) -> None:
    assert client.me().key_prefix == key[:12]

    campaign = client.create_campaign(
        name="Checkout feedback",
        description="Why people leave the cart",
        reward={"amount": "2.50", "currency": "EUR"},
        max_responses=10,
        questions=[{"type": "text", "prompt": "What almost stopped you?"}],
    )
    assert campaign.status is CampaignStatus.DRAFT
    assert campaign.reward.amount == Decimal("2.50")
    assert campaign.questions[0].id
    assert [c.id for c in client.list_campaigns()] == [campaign.id]
    assert client.get_campaign(campaign.id).name == "Checkout feedback"

    assert client.update_campaign(campaign.id, status="ACTIVE").status is CampaignStatus.ACTIVE
    assert client.pause_campaign(campaign.id).status is CampaignStatus.PAUSED
    assert client.resume_campaign(campaign.id).status is CampaignStatus.ACTIVE
    renamed = client.update_campaign(campaign.id, name="Checkout, v2", max_responses=20)
    assert (renamed.name, renamed.max_responses) == ("Checkout, v2", 20)

    first = admin.submit_response(campaign.id)
    second = admin.submit_response(campaign.id)
    assert [r.id for r in client.list_responses()] == [second.id, first.id]  # newest first
    assert client.get_response(first.id).status is ResponseStatus.PENDING

    approved = client.approve_response(first.id)
    assert approved.status is ResponseStatus.APPROVED
    assert approved.reviewed_at is not None
    rejected = client.reject_response(second.id, reason="Copied from another answer")
    assert rejected.status is ResponseStatus.REJECTED
    assert rejected.rejection_reason == "Copied from another answer"

    webhook = client.create_webhook(
        "https://hooks.example.com/p4f",
        [EventType.REWARD_APPROVED, EventType.PAYOUT_COMPLETED],
        "whsec_client_test",
    )
    assert [w.id for w in client.list_webhooks()] == [webhook.id]
    assert set(webhook.events) == {"reward_approved", "payout_completed"}
    assert "secret" not in (webhook.model_extra or {})
    client.delete_webhook(webhook.id)
    assert client.list_webhooks() == []


def test_x_api_key_header_works_too(sandbox: SandboxServer, key: str) -> None:
    with Pay4FeedbackClient(sandbox.url, api_key=key, auth_header="x-api-key") as api:
        assert api.me().key_prefix == key[:12]


def test_a_400_names_the_field(client: Pay4FeedbackClient) -> None:
    with pytest.raises(InvalidRequestError, match=r"reward\.currency"):
        client.create_campaign(name="x", reward={"amount": "5.00", "currency": "dollars"})


def test_a_401_for_an_unknown_key(sandbox: SandboxServer) -> None:
    with (
        Pay4FeedbackClient(sandbox.url, api_key="p4f_test_nobody") as api,
        pytest.raises(AuthenticationError, match="Invalid API key"),
    ):
        api.me()


def test_a_401_for_a_revoked_key(sandbox: SandboxServer, admin: SandboxAdmin, key: str) -> None:
    admin.revoke_key(key)
    with (
        Pay4FeedbackClient(sandbox.url, api_key=key) as api,
        pytest.raises(AuthenticationError, match="revoked"),
    ):
        api.me()


def test_another_tenants_campaign_is_404(
    sandbox: SandboxServer, client: Pay4FeedbackClient
) -> None:
    campaign = client.create_campaign(name="Mine", reward=REWARD)
    with Pay4FeedbackClient(sandbox.url, api_key=next(_unused_keys)) as stranger:
        with pytest.raises(NotFoundError):
            stranger.get_campaign(campaign.id)
        with pytest.raises(NotFoundError):
            stranger.pause_campaign(campaign.id)


def test_a_409_when_the_state_forbids_it(client: Pay4FeedbackClient) -> None:
    draft = client.create_campaign(name="Draft", reward=REWARD)
    with pytest.raises(ConflictError, match="ACTIVE"):
        client.pause_campaign(draft.id)


def test_a_429_the_deadline_cannot_cover_is_raised_with_retry_after(
    sandbox: SandboxServer, admin: SandboxAdmin, key: str
) -> None:
    admin.set_rate_limit(2, 30)
    # A client without its own pacing (as if another container used the budget).
    with Pay4FeedbackClient(sandbox.url, api_key=key, budget=SlidingWindowLimiter(1000, 1)) as api:
        api.me()
        api.me()
        with api.deadline(2), pytest.raises(RateLimitError) as raised:
            api.me()
    assert 25 <= raised.value.retry_after <= 30
    assert raised.value.message.startswith("Rate limit exceeded. Retry in")


def test_a_persistent_500_is_retried_then_raised(
    sandbox: SandboxServer, admin: SandboxAdmin, key: str
) -> None:
    admin.arm_fault(method="GET", path="/api/v1/campaigns", status=500, times=4)
    with (
        Pay4FeedbackClient(sandbox.url, api_key=key, retry=FAST_RETRIES) as api,
        pytest.raises(ServerError, match="fault injected"),
    ):
        api.list_campaigns()
    # The fault was armed for four requests: all four were sent.
    admin.arm_fault(method="GET", path="/api/v1/campaigns", status=500, times=1)
    with Pay4FeedbackClient(sandbox.url, api_key=key, retry=FAST_RETRIES) as api:
        assert api.list_campaigns() == []


def test_a_transient_proxy_502_is_retried_away(
    sandbox: SandboxServer, admin: SandboxAdmin, key: str
) -> None:
    admin.arm_fault(method="GET", path="/api/v1/me", status=502, html=True, times=2)
    with Pay4FeedbackClient(sandbox.url, api_key=key, retry=FAST_RETRIES) as api:
        assert api.me().key_prefix == key[:12]


def test_a_burst_of_100_calls_is_paced_without_a_single_429(
    sandbox: SandboxServer, admin: SandboxAdmin, key: str, caplog: pytest.LogCaptureFixture
) -> None:
    window = 1.0
    admin.set_rate_limit(60, window)
    limiter = SlidingWindowLimiter(60, window)
    caplog.set_level(logging.WARNING, logger="p4f.client")
    started = time.monotonic()
    with Pay4FeedbackClient(sandbox.url, api_key=key, budget=limiter) as api:
        answers = [api.me() for _ in range(100)]
    elapsed = time.monotonic() - started
    assert len(answers) == 100
    assert all(a.key_prefix == key[:12] for a in answers)
    assert [r.message for r in caplog.records] == []  # no 429 was even retried
    assert elapsed >= window  # the 61st call waited for the window to move on


def test_a_timed_out_create_makes_exactly_one_campaign(
    sandbox: SandboxServer, admin: SandboxAdmin, key: str
) -> None:
    admin.arm_fault(method="POST", path="/api/v1/campaigns", delay=3.0)
    with Pay4FeedbackClient(sandbox.url, api_key=key, timeout=1.0) as api:
        campaign = api.create_campaign(name="Exactly once", reward=REWARD)
        assert [c.id for c in api.list_campaigns()] == [campaign.id]
    created = [e for e in admin.events() if e.type == EventType.CAMPAIGN_CREATED]
    assert len(created) == 1


def test_an_approve_whose_answer_was_lost_counts_as_done(
    sandbox: SandboxServer, client: Pay4FeedbackClient, admin: SandboxAdmin, key: str
) -> None:
    response = admin.submit_response(launched_campaign(client))
    admin.arm_fault(method="POST", path=f"/api/v1/responses/{response.id}/approve", delay=3.0)
    with Pay4FeedbackClient(sandbox.url, api_key=key, timeout=1.0, retry=FAST_RETRIES) as api:
        assert api.approve_response(response.id).status is ResponseStatus.APPROVED
    approvals = [e for e in admin.events() if e.type == EventType.REWARD_APPROVED]
    assert len(approvals) == 1


def test_a_rotated_key_in_secrets_manager_is_picked_up_after_a_401(
    sandbox: SandboxServer, admin: SandboxAdmin, key: str
) -> None:
    with mock_aws():
        secretsmanager = boto3.client("secretsmanager", region_name="us-east-1")
        secretsmanager.create_secret(Name="p4f/api-key", SecretString=f'{{"api_key": "{key}"}}')
        provider = ApiKeySecret("p4f/api-key", boto3_client=secretsmanager)
        with Pay4FeedbackClient(sandbox.url, key_provider=provider) as api:
            assert api.me().key_prefix == key[:12]  # the old key is cached now
            new_key = admin.issue_key()
            secretsmanager.put_secret_value(SecretId="p4f/api-key", SecretString=new_key)
            SandboxAdmin(sandbox.url, new_key).revoke_key(key)
            assert api.me().key_prefix == new_key[:12]  # 401, re-read, retried


def test_payout_events_follow_an_approved_reward(
    client: Pay4FeedbackClient, admin: SandboxAdmin
) -> None:
    response = admin.submit_response(launched_campaign(client))
    admin.score(response.id, 91)
    client.approve_response(response.id)
    payout = admin.pay_out(response.id, PayoutStatus.COMPLETED)
    assert payout.amount == Decimal("5.00")
    types = [e.type for e in reversed(admin.events())]
    assert types[-4:] == [
        "response_submitted",
        "response_scored",
        "reward_approved",
        "payout_completed",
    ]


# --- the reference's own Quick start, unchanged but for the base URL ---------------------

QUICKSTART_CURL = """\
curl -H "Authorization: Bearer $P4F" \\
https://app.pay4feedback.com/api/v1/me
curl -H "Authorization: Bearer $P4F" \\
https://app.pay4feedback.com/api/v1/campaigns
curl -H "Authorization: Bearer $P4F" \\
https://app.pay4feedback.com/api/v1/responses
curl -X POST \\
-H "Authorization: Bearer $P4F" \\
https://app.pay4feedback.com/api/v1/responses/RESPONSE_UUID/approve
curl -X POST \\
-H "Authorization: Bearer $P4F" \\
-H "Content-Type: application/json" \\
-d '{
"url":"https://api.yourapp.com/p4f-webhook",
"events":["reward_approved","payout_completed"],
"secret":"whsec_generate_a_random_one"
}' \\
https://app.pay4feedback.com/api/v1/webhooks
"""

QUICKSTART_PYTHON = """\
import os, time, requests
P4F = os.environ["P4F_API_KEY"]
BASE = "https://app.pay4feedback.com/api/v1"
def p4f(path, method="GET", json=None):
    r = requests.request(method, BASE + path,
                         headers={"Authorization": f"Bearer {P4F}"},
                         json=json, timeout=10)
    if r.status_code == 429:
        time.sleep(int(r.headers.get("Retry-After", 30)))
        return p4f(path, method, json)
    body = r.json()
    if not body.get("success"):
        raise RuntimeError(body.get("error"))
    return body["data"]
campaigns = p4f("/campaigns")
p4f(f"/responses/{id}/approve", method="POST")
"""


def test_the_references_curl_quick_start_works_against_the_sandbox(
    sandbox: SandboxServer, client: Pay4FeedbackClient, admin: SandboxAdmin, key: str
) -> None:
    response = admin.submit_response(launched_campaign(client))
    script = QUICKSTART_CURL.replace("https://app.pay4feedback.com", sandbox.url).replace(
        "RESPONSE_UUID", response.id
    )
    completed = subprocess.run(
        ["/bin/sh", "-e"],  # the reference's five commands, one after the other
        input=script,
        env={"P4F": key, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert completed.stdout.count('"success":true') == 5, completed.stdout
    assert client.get_response(response.id).status is ResponseStatus.APPROVED
    assert [w.url for w in client.list_webhooks()] == ["https://api.yourapp.com/p4f-webhook"]


def test_the_references_python_quick_start_works_against_the_sandbox(
    sandbox: SandboxServer, client: Pay4FeedbackClient, admin: SandboxAdmin, key: str
) -> None:
    response = admin.submit_response(launched_campaign(client))
    script = QUICKSTART_PYTHON.replace("https://app.pay4feedback.com", sandbox.url)
    # `id` is the reference's placeholder for a response id.
    prelude = f"id = {response.id!r}\n"
    completed = subprocess.run(  # noqa: S603 (the reference's own snippet)
        [sys.executable, "-c", prelude + script + "print(len(campaigns))"],
        env={"P4F_API_KEY": key},
        capture_output=True,
        text=True,
        check=True,
    )
    assert completed.stdout.strip() == "1"
    assert client.get_response(response.id).status is ResponseStatus.APPROVED
