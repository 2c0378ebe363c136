"""Pay4FeedbackClient against the sandbox in both API versions: v1.1's cursors, filters and
idempotency keys, and what the same calls give against v1.0."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from local.sandbox import SandboxAdmin, SandboxServer, running_sandbox
from p4f.client import Pay4FeedbackClient, RetryPolicy
from p4f.models import Campaign, CampaignStatus, EventType, ResponseStatus
from p4f.ratelimit import SlidingWindowLimiter
from tests.integration.test_client import REWARD, launched_campaign

KEYS = [f"p4f_test_client_v11_{n:03d}" for n in range(20)]
FAST_RETRIES = RetryPolicy(base_delay=0.01)
_unused = iter(KEYS)


@pytest.fixture(scope="module", params=["1.0", "1.1"])
def sandbox(request: pytest.FixtureRequest) -> Iterator[SandboxServer]:
    with running_sandbox(KEYS, api_version=request.param, page_size=100) as server:
        yield server


@pytest.fixture
def key() -> str:
    return next(_unused)


def unpaced(
    sandbox: SandboxServer,
    key: str,
    *,
    timeout: float = 5,
    retry: RetryPolicy | None = None,
    transport: httpx.BaseTransport | None = None,
) -> Pay4FeedbackClient:
    """A client that does not pace itself: the sandbox's own limit is lifted for these tests."""
    SandboxAdmin(sandbox.url, key).set_rate_limit(100_000, 60)
    return Pay4FeedbackClient(
        sandbox.url,
        api_key=key,
        budget=SlidingWindowLimiter(100_000, 1),
        timeout=timeout,
        retry=retry,
        transport=transport,
    )


def version(sandbox: SandboxServer) -> str:
    return sandbox.settings.api_version


def adopt_none(_: Campaign) -> bool:
    """An `accept` that claims no campaign the lookup finds: the client posts again."""
    return False


class Recording(httpx.HTTPTransport):
    """The client's transport, keeping every request it sends."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        return super().handle_request(request)


def test_iter_campaigns_lists_1200_campaigns_whole_in_v1_1(
    sandbox: SandboxServer, key: str
) -> None:
    with unpaced(sandbox, key) as api:
        made = [api.create_campaign(name=f"c{n}", reward=REWARD).id for n in range(1200)]
        listed = [campaign.id for campaign in api.iter_campaigns()]
        first_page = api.list_campaigns()
    expected = made[::-1] if version(sandbox) == "1.1" else made[::-1][:500]
    assert listed == expected  # newest first, each once
    assert len(first_page) == (100 if version(sandbox) == "1.1" else 500)


def test_iter_campaigns_asks_for_one_page_at_a_time(sandbox: SandboxServer, key: str) -> None:
    with unpaced(sandbox, key) as api:
        for n in range(250):
            api.create_campaign(name=f"c{n}", reward=REWARD)
        requests = SandboxAdmin(sandbox.url, key).stats().requests
        pages = api.iter_campaigns()
        next(pages)
        assert SandboxAdmin(sandbox.url, key).stats().requests == requests + 1
        assert sum(1 for _ in pages) == 249
        pages_asked = SandboxAdmin(sandbox.url, key).stats().requests - requests
    assert pages_asked == (3 if version(sandbox) == "1.1" else 1)


def test_iter_responses_filters_in_both_versions(sandbox: SandboxServer, key: str) -> None:
    admin = SandboxAdmin(sandbox.url, key)
    with unpaced(sandbox, key) as api:
        first, second = launched_campaign(api), launched_campaign(api)
        of_first = [admin.submit_response(first).id for _ in range(3)]
        of_second = [admin.submit_response(second).id for _ in range(2)]
        api.approve_response(of_first[1])
        since = datetime.now(UTC).replace(microsecond=0)
        newest = admin.submit_response(second).id

        assert [r.id for r in api.iter_responses(campaign_id=first)] == of_first[::-1]
        pending_second = api.iter_responses(campaign_id=second, status=ResponseStatus.PENDING)
        assert [r.id for r in pending_second] == [newest, *of_second[::-1]]
        assert [r.id for r in api.iter_responses(status="APPROVED")] == [of_first[1]]
        assert newest in {r.id for r in api.iter_responses(since=since)}
    with pytest.raises(ValueError, match="timezone-aware"):
        next(api.iter_responses(since=datetime(2026, 1, 1)))


def test_every_post_carries_an_idempotency_key_kept_across_its_retries(
    sandbox: SandboxServer, key: str
) -> None:
    """Lost answers (the sandbox does the work, then answers after the client gave up): each
    POST is sent again with its own key, and v1.1 answers the repeat from that key."""
    admin = SandboxAdmin(sandbox.url, key)
    recording = Recording()
    with unpaced(sandbox, key, timeout=1.0, retry=FAST_RETRIES, transport=recording) as api:
        admin.arm_fault(method="POST", path="/api/v1/campaigns", delay=3.0)
        campaign = api.create_campaign(name="Lost answers", reward=REWARD, accept=adopt_none)
        api.update_campaign(campaign.id, status=CampaignStatus.ACTIVE)
        admin.arm_fault(method="POST", path=f"/api/v1/campaigns/{campaign.id}/pause", delay=3.0)
        assert api.pause_campaign(campaign.id).status is CampaignStatus.PAUSED
        listed = [c.id for c in api.list_campaigns()]
    keys: dict[str, list[str | None]] = {}
    for request in recording.sent:
        if request.method == "POST":
            keys.setdefault(request.url.path, []).append(request.headers.get("Idempotency-Key"))
    assert keys.keys() == {"/api/v1/campaigns", f"/api/v1/campaigns/{campaign.id}/pause"}
    for sends in keys.values():
        assert len(sends) == 2  # the lost one and its repeat
        assert sends[0] is not None
        assert sends[1] == sends[0]
    assert len({sends[0] for sends in keys.values()}) == 2  # one key per call
    if version(sandbox) == "1.1":
        assert listed == [campaign.id]  # the repeat was answered from the key


def test_a_lost_post_answer_makes_one_campaign_thanks_to_the_key_in_v1_1(
    sandbox: SandboxServer, key: str
) -> None:
    """The lookup that v1.0 needs cannot always tell whose campaign it found (two triggers
    with the same fields): told to adopt none, the client posts again, with the same key."""
    admin = SandboxAdmin(sandbox.url, key)
    admin.arm_fault(method="POST", path="/api/v1/campaigns", delay=3.0)
    with unpaced(sandbox, key, timeout=1.0, retry=FAST_RETRIES) as api:
        campaign = api.create_campaign(name="Lost answer", reward=REWARD, accept=adopt_none)
    created = [e for e in admin.events() if e.type == EventType.CAMPAIGN_CREATED]
    if version(sandbox) == "1.1":
        assert [str(e.data["id"]) for e in created] == [campaign.id]
    else:
        assert len(created) == 2  # why v1.0 callers need the lookup, and accept


def test_one_key_makes_one_campaign_across_calls_in_v1_1(sandbox: SandboxServer, key: str) -> None:
    with unpaced(sandbox, key) as api:
        first = api.create_campaign(name="Keyed", reward=REWARD, idempotency_key="order-42")
        again = api.create_campaign(name="Keyed", reward=REWARD, idempotency_key="order-42")
        launched = api.update_campaign(first.id, status=CampaignStatus.ACTIVE)
    assert launched.status is CampaignStatus.ACTIVE
    if version(sandbox) == "1.1":
        assert again.id == first.id
    else:
        assert again.id != first.id  # v1.0 ignores the header
