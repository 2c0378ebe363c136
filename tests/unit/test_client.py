"""Edge cases of Pay4FeedbackClient, with the API answered by httpx.MockTransport.

The main path runs against the sandbox over real HTTP in tests/integration/test_client.py.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest

from p4f.budget import BudgetExhaustedError, Priority
from p4f.client import Pay4FeedbackClient, RetryPolicy
from p4f.errors import (
    ApiConnectionError,
    AuthenticationError,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    Pay4FeedbackError,
    RateLimitError,
    ResponseAlreadyReviewedError,
    ServerError,
)
from p4f.models import Campaign, CampaignStatus, NewCampaign, ResponseStatus
from p4f.ratelimit import SlidingWindowLimiter
from tests.conftest import FakeTime

API_KEY = "p4f_test_unit_secret_key_0123456789"
CAMPAIGN_ID = "7b0c5a36-4a55-4cf5-9b0e-0a0b8c5c1d11"
RESPONSE_ID = "3f9d2e1c-6b8a-4d7e-9f0a-1b2c3d4e5f60"


def envelope(data: object, status: int = 200) -> httpx.Response:
    return httpx.Response(
        status, json={"success": True, "data": data, "timestamp": "2026-04-19T14:22:51Z"}
    )


def error(status: int, message: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(
        status,
        headers=headers,
        json={"success": False, "error": message, "timestamp": "2026-04-19T14:22:51Z"},
    )


def campaign(status: str = "DRAFT", **fields: object) -> dict[str, object]:
    return {
        "id": CAMPAIGN_ID,
        "name": "Onboarding survey",
        "description": None,
        "status": status,
        "reward": {"amount": "5.00", "currency": "USD"},
        "max_responses": 100,
        "questions": [{"id": "q1", "type": "text", "prompt": "What did you like?"}],
        "created_at": "2026-11-26T10:00:00Z",
        "updated_at": "2026-11-26T10:00:00Z",
    } | fields


def response(status: str = "PENDING") -> dict[str, object]:
    return {
        "id": RESPONSE_ID,
        "campaign_id": CAMPAIGN_ID,
        "status": status,
        "respondent": {"id": "resp_1", "email": "ana@example.com"},
        "answers": [{"question_id": "q1", "prompt": "What did you like?", "value": "Speed"}],
        "quality": None,
        "reward": {"amount": "5.00", "currency": "USD"},
        "rejection_reason": None,
        "submitted_at": "2026-11-26T10:00:00Z",
        "reviewed_at": None,
    }


DRAFT = NewCampaign.model_validate(
    {k: v for k, v in campaign().items() if k in NewCampaign.model_fields}
    | {"questions": [{"type": "text", "prompt": "What did you like?"}]}
)
"""The body that made `campaign()`."""

Handler = Callable[[httpx.Request], httpx.Response]


class Api:
    """Answers requests from a script of handlers, one per request, and records them."""

    def __init__(self, *script: Handler | httpx.Response) -> None:
        self.script = list(script)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = self.script.pop(0)
        return step(request) if callable(step) else step

    def calls(self) -> list[str]:
        return [f"{r.method} {r.url.path}" for r in self.requests]


def make_client(
    api: Api, fake: FakeTime, *, key_provider: object | None = None, **kwargs: object
) -> Pay4FeedbackClient:
    return Pay4FeedbackClient(
        base_url="https://p4f.test",
        api_key=None if key_provider else API_KEY,
        key_provider=key_provider,  # type: ignore[arg-type]
        transport=httpx.MockTransport(api),
        clock=fake.clock,
        sleep=fake.sleep,
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.fixture
def fake() -> FakeTime:
    return FakeTime()


def raise_(exc: Exception) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    return handler


def test_reads_the_success_envelope_into_models(fake: FakeTime) -> None:
    api = Api(envelope(campaign(reward={"amount": "12.50", "currency": "EUR"}, extra="kept")))
    result = make_client(api, fake).get_campaign(CAMPAIGN_ID)
    assert result.reward.amount == Decimal("12.50")
    assert result.status is CampaignStatus.DRAFT
    assert result.model_extra == {"extra": "kept"}
    assert api.calls() == [f"GET /api/v1/campaigns/{CAMPAIGN_ID}"]
    assert api.requests[0].headers["authorization"] == f"Bearer {API_KEY}"


def test_unknown_enum_values_are_kept_as_strings(fake: FakeTime) -> None:
    api = Api(envelope(campaign(status="ARCHIVED")))
    assert make_client(api, fake).get_campaign(CAMPAIGN_ID).status == "ARCHIVED"


@pytest.mark.parametrize(
    ("status", "exception"),
    [
        (400, InvalidRequestError),
        (401, AuthenticationError),
        (404, NotFoundError),
        (409, ConflictError),
        (418, Pay4FeedbackError),
    ],
)
def test_each_error_status_raises_its_exception(
    fake: FakeTime, status: int, exception: type[Pay4FeedbackError]
) -> None:
    api = Api(error(status, "name: is required"))
    with pytest.raises(exception) as raised:
        make_client(api, fake).get_campaign(CAMPAIGN_ID)
    assert type(raised.value) is exception
    assert raised.value.status == status
    assert raised.value.message == "name: is required"
    assert raised.value.timestamp is not None
    assert raised.value.timestamp.isoformat() == "2026-04-19T14:22:51+00:00"
    assert str(raised.value).startswith(f"name: is required (HTTP {status}, server time")


def test_a_proxy_html_502_gives_a_clear_server_error(fake: FakeTime) -> None:
    page = httpx.Response(
        502,
        headers={"content-type": "text/html"},
        text="<html><body><h1>502 Bad Gateway</h1></body></html>",
    )
    api = Api(page, page, page, page)
    with pytest.raises(ServerError) as raised:
        make_client(api, fake).list_campaigns()
    message = str(raised.value)
    assert "502 Bad Gateway" in message
    assert "text/html" in message
    assert "proxy" in message
    assert len(api.requests) == 4  # GET is safe: retried up to max_attempts


def test_get_is_retried_with_growing_backoff_on_5xx_and_lost_connections(fake: FakeTime) -> None:
    api = Api(
        error(500, "boom"),
        raise_(httpx.ConnectError("refused")),
        raise_(httpx.ReadTimeout("slow")),
        envelope([campaign()]),
    )
    client = make_client(api, fake, retry=RetryPolicy(max_attempts=4, base_delay=1, max_delay=8))
    assert [c.id for c in client.list_campaigns()] == [CAMPAIGN_ID]
    assert len(fake.sleeps) == 3
    for attempt, slept in enumerate(fake.sleeps, start=1):
        ceiling = min(8, 2 ** (attempt - 1))
        assert ceiling / 2 <= slept <= ceiling


def test_retries_stop_at_max_attempts(fake: FakeTime) -> None:
    api = Api(*[error(503, "unavailable")] * 3)
    with pytest.raises(ServerError):
        make_client(api, fake, retry=RetryPolicy(max_attempts=3)).me()
    assert len(api.requests) == 3


def test_a_connection_error_says_the_request_was_not_sent(fake: FakeTime) -> None:
    api = Api(*[raise_(httpx.ConnectError("refused"))] * 4)
    with pytest.raises(ApiConnectionError) as raised:
        make_client(api, fake).me()
    assert raised.value.request_sent is False
    assert "could not connect to https://p4f.test" in str(raised.value)


def test_429_waits_retry_after_then_succeeds(fake: FakeTime) -> None:
    me = {"tenant_id": "t", "tenant_name": "Acme", "key_prefix": "p4f_test_uni"}
    api = Api(error(429, "Rate limit exceeded. Retry in 12s.", {"Retry-After": "12"}), envelope(me))
    assert make_client(api, fake).me().tenant_name == "Acme"
    assert fake.sleeps == [12.0]


def test_429_the_deadline_cannot_wait_out_raises_rate_limit_error(fake: FakeTime) -> None:
    body = {"success": False, "error": "Rate limit exceeded. Retry in 12s."}  # the reference's
    api = Api(httpx.Response(429, headers={"Retry-After": "12"}, json=body))
    client = make_client(api, fake)
    with client.deadline(5.0), pytest.raises(RateLimitError) as raised:
        client.me()
    assert raised.value.retry_after == 12.0
    assert raised.value.timestamp is None
    assert fake.sleeps == []


def test_backoff_that_would_pass_the_deadline_is_not_started(fake: FakeTime) -> None:
    api = Api(error(500, "boom"))
    client = make_client(api, fake, retry=RetryPolicy(base_delay=4))
    with client.deadline(1.0), pytest.raises(ServerError):
        client.me()
    assert len(api.requests) == 1
    assert fake.sleeps == []


def test_no_request_is_sent_once_the_deadline_has_passed(fake: FakeTime) -> None:
    api = Api()
    client = make_client(api, fake)
    with client.deadline(-1.0), pytest.raises(ApiConnectionError, match="deadline has passed"):
        client.me()
    assert api.requests == []


def test_the_client_side_limiter_paces_a_burst(fake: FakeTime) -> None:
    me = {"tenant_id": "t", "tenant_name": "Acme", "key_prefix": "p4f_test_uni"}
    api = Api(*[envelope(me)] * 7)
    limiter = SlidingWindowLimiter(5, 10.0, clock=fake.clock, sleep=fake.sleep)
    client = make_client(api, fake, budget=limiter)
    for _ in range(7):
        client.me()
    assert len(api.requests) == 7
    assert fake.now - 1000.0 >= 10.0  # the sixth request waited for the window to move on


def test_the_limiter_raises_when_the_next_slot_is_past_the_deadline(fake: FakeTime) -> None:
    limiter = SlidingWindowLimiter(2, 60.0, clock=fake.clock, sleep=fake.sleep)
    limiter.acquire()
    limiter.acquire()
    with pytest.raises(BudgetExhaustedError, match="this process's own limit") as raised:
        limiter.acquire(max_wait=30)
    assert raised.value.retry_after == 60
    assert raised.value.status is None  # not an answer of Pay4Feedback's
    assert fake.sleeps == []


def test_a_call_the_budget_cannot_fit_before_the_deadline_is_never_sent(fake: FakeTime) -> None:
    limiter = SlidingWindowLimiter(1, 60.0, clock=fake.clock, sleep=fake.sleep)
    api = Api(envelope({"tenant_id": "t", "tenant_name": "Acme", "key_prefix": "p4f_test_uni"}))
    client = make_client(api, fake, budget=limiter)
    client.me()
    with client.deadline(10), pytest.raises(BudgetExhaustedError):
        client.me()
    assert len(api.requests) == 1
    assert fake.sleeps == []  # refused at once: waiting could not have helped


def test_a_lost_create_is_found_with_get_and_never_posted_twice(fake: FakeTime) -> None:
    created = campaign(created_at="2099-01-01T00:00:00Z")
    api = Api(raise_(httpx.ReadTimeout("lost")), envelope([created]))
    result = make_client(api, fake).create_campaign(
        name="Onboarding survey",
        reward={"amount": "5.00", "currency": "USD"},
        max_responses=100,
        questions=[{"type": "text", "prompt": "What did you like?"}],
    )
    assert result.id == CAMPAIGN_ID
    assert api.calls() == ["POST /api/v1/campaigns", "GET /api/v1/campaigns"]
    assert json.loads(api.requests[0].content) == {
        "name": "Onboarding survey",
        "description": None,
        "reward": {"amount": "5.00", "currency": "USD"},
        "max_responses": 100,
        "questions": [{"type": "text", "prompt": "What did you like?"}],
    }


def test_a_lone_surrogate_is_sent_as_the_replacement_character_in_utf8_json(
    fake: FakeTime,
) -> None:
    # Half an emoji, as a no-code tool that cuts text sends it: httpx's json= would raise.
    api = Api(envelope(campaign(name="Love it \ufffd")))
    make_client(api, fake).create_campaign(
        name="Love it \ud83d", reward={"amount": "5.00", "currency": "USD"}
    )
    sent = api.requests[0]
    assert sent.headers["Content-Type"] == "application/json; charset=utf-8"
    assert json.loads(sent.content.decode("utf-8"))["name"] == "Love it \ufffd"


def test_a_lost_create_that_made_nothing_is_posted_again(fake: FakeTime) -> None:
    older = campaign(created_at="2000-01-01T00:00:00Z")  # same fields, but long before the call
    api = Api(error(500, "boom"), envelope([older]), envelope(campaign(), status=201))
    result = make_client(api, fake).create_campaign(
        name="Onboarding survey", reward={"amount": "5.00", "currency": "USD"}
    )
    assert result.id == CAMPAIGN_ID
    assert api.calls() == [
        "POST /api/v1/campaigns",
        "GET /api/v1/campaigns",
        "POST /api/v1/campaigns",
    ]


def test_find_created_campaign_asks_accept_about_each_match_newest_first(fake: FakeTime) -> None:
    newest = campaign(id="c3", created_at="2026-11-26T10:02:00Z")
    other_fields = campaign(id="c2", name="Another survey", created_at="2026-11-26T10:01:00Z")
    older = campaign(id="c1", created_at="2026-11-26T10:00:00Z")
    api = Api(envelope([newest, other_fields, older]))
    asked: list[str] = []

    def accept(candidate: Campaign) -> bool:
        asked.append(candidate.id)
        return candidate.id == "c1"  # c3 belongs to someone else

    since = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
    found = make_client(api, fake).find_created_campaign(DRAFT, since=since, accept=accept)
    assert found is not None
    assert found.id == "c1"
    assert asked == ["c3", "c1"]  # the campaign with other fields is never offered


def test_find_created_campaign_stops_at_campaigns_older_than_since(fake: FakeTime) -> None:
    older = campaign(created_at="2026-11-26T09:00:00Z")  # an hour before: not the lost POST's
    api = Api(envelope([older]))
    since = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
    assert make_client(api, fake).find_created_campaign(DRAFT, since=since) is None


def test_a_lost_create_does_not_adopt_a_campaign_accept_refuses(fake: FakeTime) -> None:
    someone_elses = campaign(id="theirs", created_at="2099-01-01T00:00:00Z")
    api = Api(
        raise_(httpx.ReadTimeout("lost")), envelope([someone_elses]), envelope(campaign(), 201)
    )
    result = make_client(api, fake).create_campaign(
        name="Onboarding survey",
        reward={"amount": "5.00", "currency": "USD"},
        max_responses=100,
        questions=[{"type": "text", "prompt": "What did you like?"}],
        accept=lambda candidate: candidate.id != "theirs",
    )
    assert result.id == CAMPAIGN_ID
    assert api.calls() == [
        "POST /api/v1/campaigns",
        "GET /api/v1/campaigns",
        "POST /api/v1/campaigns",
    ]


def test_a_create_refused_before_sending_is_posted_again_without_a_lookup(fake: FakeTime) -> None:
    api = Api(raise_(httpx.ConnectError("refused")), envelope(campaign(), status=201))
    make_client(api, fake).create_campaign(name="x", reward={"amount": "1", "currency": "USD"})
    assert api.calls() == ["POST /api/v1/campaigns", "POST /api/v1/campaigns"]


def test_approve_after_a_lost_answer_counts_409_with_approved_state_as_success(
    fake: FakeTime,
) -> None:
    api = Api(
        raise_(httpx.ReadTimeout("lost")),
        error(409, "Response is already APPROVED"),
        envelope(response("APPROVED")),
    )
    result = make_client(api, fake).approve_response(RESPONSE_ID)
    assert result.status is ResponseStatus.APPROVED
    path = f"/api/v1/responses/{RESPONSE_ID}"
    assert api.calls() == [f"POST {path}/approve", f"POST {path}/approve", f"GET {path}"]


def test_approve_after_a_lost_answer_still_fails_if_someone_rejected_it(fake: FakeTime) -> None:
    api = Api(
        error(502, "bad gateway"), error(409, "already reviewed"), envelope(response("REJECTED"))
    )
    with pytest.raises(ConflictError):
        make_client(api, fake).approve_response(RESPONSE_ID)


def test_a_first_409_to_approve_is_resolved_by_reading_the_response(fake: FakeTime) -> None:
    api = Api(error(409, "Response is already REJECTED"), envelope(response("REJECTED")))
    with pytest.raises(ResponseAlreadyReviewedError) as raised:
        make_client(api, fake).approve_response(RESPONSE_ID)
    assert isinstance(raised.value, ConflictError)  # callers of ConflictError still catch it
    assert raised.value.response.status == "REJECTED"
    assert [r.method for r in api.requests] == ["POST", "GET"]


def test_a_first_409_to_reject_an_approved_response_says_so(fake: FakeTime) -> None:
    api = Api(error(409, "Response is already APPROVED"), envelope(response("APPROVED")))
    with pytest.raises(ResponseAlreadyReviewedError) as raised:
        make_client(api, fake).reject_response(RESPONSE_ID, reason="late")
    assert raised.value.response.status == "APPROVED"


def test_pause_after_a_lost_answer_is_confirmed_by_get(fake: FakeTime) -> None:
    api = Api(error(500, "boom"), error(409, "not ACTIVE"), envelope(campaign("PAUSED")))
    assert make_client(api, fake).pause_campaign(CAMPAIGN_ID).status is CampaignStatus.PAUSED


def test_delete_after_a_lost_answer_counts_404_as_done(fake: FakeTime) -> None:
    api = Api(raise_(httpx.ReadTimeout("lost")), error(404, "Webhook not found"))
    make_client(api, fake).delete_webhook(CAMPAIGN_ID)
    assert len(api.requests) == 2


def test_reject_sends_the_reason(fake: FakeTime) -> None:
    api = Api(envelope(response("REJECTED")))
    make_client(api, fake).reject_response(RESPONSE_ID, reason="Off topic")
    assert json.loads(api.requests[0].content) == {"reason": "Off topic"}


def test_update_sends_only_the_given_fields(fake: FakeTime) -> None:
    api = Api(envelope(campaign("ACTIVE")))
    make_client(api, fake).update_campaign(
        CAMPAIGN_ID, status=CampaignStatus.ACTIVE, description=None
    )
    assert json.loads(api.requests[0].content) == {"status": "ACTIVE", "description": None}


def test_ids_are_escaped_so_they_cannot_reach_another_endpoint(fake: FakeTime) -> None:
    api = Api(error(400, "id: must be a UUID"))
    with pytest.raises(InvalidRequestError):
        make_client(api, fake).get_response("../../me")
    assert api.requests[0].url.raw_path == b"/api/v1/responses/..%2F..%2Fme"


class RotatingKey:
    """A key provider whose source holds `fresh` while the cache still has `stale`."""

    def __init__(self, stale: str, fresh: str) -> None:
        self.current, self.fresh, self.refreshes = stale, fresh, 0

    def get_api_key(self) -> str:
        return self.current

    def refresh_api_key(self) -> str:
        self.refreshes += 1
        self.current = self.fresh
        return self.current


def test_a_401_rereads_a_rotated_key_once_and_retries(fake: FakeTime) -> None:
    me = {"tenant_id": "t", "tenant_name": "Acme", "key_prefix": "p4f_test_new"}
    api = Api(error(401, "API key has been revoked"), envelope(me))
    keys = RotatingKey("p4f_old", "p4f_new")
    assert make_client(api, fake, key_provider=keys).me().key_prefix == "p4f_test_new"
    assert [r.headers["authorization"] for r in api.requests] == [
        "Bearer p4f_old",
        "Bearer p4f_new",
    ]


def test_a_401_with_an_unchanged_key_is_raised_without_retrying(fake: FakeTime) -> None:
    api = Api(error(401, "Invalid API key"))
    keys = RotatingKey("p4f_same", "p4f_same")
    with pytest.raises(AuthenticationError, match="Settings -> API Keys"):
        make_client(api, fake, key_provider=keys).me()
    assert keys.refreshes == 1
    assert len(api.requests) == 1


def test_the_key_never_shows_in_reprs_errors_or_logs(
    fake: FakeTime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    api = Api(error(500, "boom"), raise_(httpx.ReadTimeout("lost")), error(401, "Invalid API key"))
    client = make_client(api, fake)
    with pytest.raises(AuthenticationError) as raised:
        client.me()
    assert caplog.records  # the retries were logged
    for text in (repr(client), str(raised.value), repr(raised.value), caplog.text):
        assert API_KEY not in text


def test_the_client_needs_exactly_one_key_source() -> None:
    with pytest.raises(ValueError, match="either api_key or key_provider"):
        Pay4FeedbackClient()


class ExpiringCache:
    """A key provider whose cache expires between the request and the refresh."""

    def __init__(self) -> None:
        self.gets = 0

    def get_api_key(self) -> str:
        self.gets += 1
        return "p4f_old" if self.gets == 1 else "p4f_new"

    def refresh_api_key(self) -> str:
        return "p4f_new"


def test_a_401_is_retried_when_the_cache_expired_between_the_request_and_the_refresh(
    fake: FakeTime,
) -> None:
    me = {"tenant_id": "t", "tenant_name": "Acme", "key_prefix": "p4f_new"}
    api = Api(error(401, "API key has been revoked"), envelope(me))
    assert make_client(api, fake, key_provider=ExpiringCache()).me().key_prefix == "p4f_new"
    assert [r.headers["authorization"] for r in api.requests] == [
        "Bearer p4f_old",
        "Bearer p4f_new",
    ]


# --- API v1.1: cursors, idempotency keys; priorities ----------------------------------------


def paged(rows: list[object], cursor: str | None) -> httpx.Response:
    body: dict[str, object] = {"success": True, "data": rows, "timestamp": "2026-04-19T14:22:51Z"}
    if cursor is not None:
        body["next"] = cursor
    return httpx.Response(200, json=body)


def test_iter_campaigns_follows_next_one_page_at_a_time(fake: FakeTime) -> None:
    first, second = campaign(id="c1"), campaign(id="c2")
    api = Api(paged([first], "page-2"), paged([second], None))
    pages = make_client(api, fake).iter_campaigns()
    assert next(pages).id == "c1"
    assert len(api.requests) == 1  # lazy: the second page is asked for when it is needed
    assert [c.id for c in pages] == ["c2"]
    assert [r.url.params.get("cursor") for r in api.requests] == [None, "page-2"]


def test_a_cursor_given_twice_ends_the_pages_with_an_error(fake: FakeTime) -> None:
    api = Api(paged([campaign(id="c1")], "same"), paged([campaign(id="c2")], "same"))
    with pytest.raises(Pay4FeedbackError, match="cursor 'same' twice"):
        list(make_client(api, fake).iter_campaigns())


def test_iter_responses_sends_the_filters_and_applies_them_too(fake: FakeTime) -> None:
    wanted = response()
    other = response() | {"id": "r2", "campaign_id": "another-campaign"}
    api = Api(paged([wanted, other], None))  # a v1.0 server ignores the filters
    since = datetime(2026, 11, 1, tzinfo=UTC)
    found = list(
        make_client(api, fake).iter_responses(
            campaign_id=CAMPAIGN_ID, status=ResponseStatus.PENDING, since=since
        )
    )
    assert [r.id for r in found] == [RESPONSE_ID]
    assert dict(api.requests[0].url.params) == {
        "campaign_id": CAMPAIGN_ID,
        "status": "PENDING",
        "since": "2026-11-01T00:00:00Z",
    }


def test_every_post_has_an_idempotency_key_the_same_on_each_retry(fake: FakeTime) -> None:
    api = Api(error(502, "bad gateway"), envelope([]), envelope(campaign()))
    make_client(api, fake).create_campaign(name="Onboarding survey", reward=DRAFT.reward)
    posts = [r for r in api.requests if r.method == "POST"]
    keys = {r.headers["idempotency-key"] for r in posts}
    assert len(posts) == 2
    assert len(keys) == 1
    assert next(iter(keys)).startswith("p4f-bridge-")
    assert "idempotency-key" not in api.requests[1].headers  # the GET looking for it


def test_a_callers_own_key_is_sent_as_the_idempotency_key(fake: FakeTime) -> None:
    api = Api(envelope(response("APPROVED")))
    make_client(api, fake).approve_response(RESPONSE_ID, idempotency_key="review:r1:approve")
    assert api.requests[0].headers["idempotency-key"] == "review:r1:approve"


def test_two_calls_without_a_key_get_two_keys(fake: FakeTime) -> None:
    api = Api(envelope(campaign("PAUSED")), envelope(campaign("ACTIVE")))
    client = make_client(api, fake)
    client.pause_campaign(CAMPAIGN_ID)
    client.resume_campaign(CAMPAIGN_ID)
    first, second = (r.headers["idempotency-key"] for r in api.requests)
    assert first != second


@pytest.mark.parametrize("key", ["", "x" * 256, "line\nbreak"])
def test_an_idempotency_key_the_api_could_not_take_is_refused_before_sending(
    fake: FakeTime, key: str
) -> None:
    api = Api()
    with pytest.raises(ValueError, match="idempotency key"):
        make_client(api, fake).approve_response(RESPONSE_ID, idempotency_key=key)
    assert api.requests == []


class RecordingBudget:
    """A budget that lets everything through and notes how it was asked."""

    def __init__(self) -> None:
        self.asked: list[tuple[float | None, Priority]] = []
        self.blocked: list[float] = []

    def acquire(self, max_wait: float | None, priority: Priority) -> RecordingBudget:
        self.asked.append((max_wait, priority))
        return self

    def answered(self) -> None:
        pass

    def block_for(self, seconds: float) -> None:
        self.blocked.append(seconds)


def test_calls_ask_the_budget_with_their_priority_and_time_left(fake: FakeTime) -> None:
    me = {"tenant_id": "t", "tenant_name": "Acme", "key_prefix": "p4f_test_uni"}
    budget = RecordingBudget()
    api = Api(envelope(me), envelope(me), envelope(me))
    client = make_client(api, fake, budget=budget)
    client.me()
    with client.deadline(20), client.priority(Priority.BACKGROUND):
        client.me()
    with client.deadline(5):
        client.me()
    assert budget.asked == [
        (None, Priority.INTERACTIVE),
        (20.0, Priority.BACKGROUND),
        (5.0, Priority.INTERACTIVE),
    ]


def test_pay4feedbacks_429_holds_the_whole_budget_back(fake: FakeTime) -> None:
    me = {"tenant_id": "t", "tenant_name": "Acme", "key_prefix": "p4f_test_uni"}
    budget = RecordingBudget()
    api = Api(error(429, "Rate limit exceeded. Retry in 7s.", {"Retry-After": "7"}), envelope(me))
    make_client(api, fake, budget=budget).me()
    assert budget.blocked == [7.0]
