"""Pay4FeedbackClient: the whole /api/v1 surface of the REST API reference over httpx.

What it does for its caller, so that handlers stay thin:

* reads the answer envelope and raises one exception per failure class (`p4f.errors`);
* takes a slot of a request budget before each request: in the bridge's functions the
  tenant-wide `p4f.budget.TenantBudget` all of them share, elsewhere a limiter of this
  process (`p4f.ratelimit`); never waits past the caller's deadline (`with
  client.deadline(s):`, e.g. a Lambda's remaining time), raising `BudgetExhaustedError`
  instead; callers nobody waits for say so (`with client.priority(Priority.BACKGROUND):`);
* on a 429 from Pay4Feedback waits `Retry-After`, holding back the whole budget as long,
  but never past the deadline: then it raises `RateLimitError` so the caller can defer;
* retries 5xx answers and lost connections with exponential backoff and jitter;
* never repeats a POST blindly: every POST carries an `Idempotency-Key` (API v1.1 answers a
  repeat with the first answer), the caller's own key where it has one; and for v1.0
  servers, which ignore the header, after a lost answer to a create it looks the resource
  up with GET first, and after a lost answer to a state change a 409 (or a 404 for a
  delete) whose fresh GET shows the requested state counts as success;
* resolves a 409 to approve or reject by reading the response: someone else reviewed it
  (`ResponseAlreadyReviewedError` carries the response as it is now);
* follows API v1.1's cursors (`next`, `?cursor=`) in `iter_campaigns` and `iter_responses`,
  one budget slot a page; against v1.0 they yield the newest 500 rows;
* on a 401 re-reads a rotated key from its key provider once before giving up.

The API key is sent only in the `Authorization: Bearer` header (or `X-API-Key`, for proxies
that strip Authorization); it is never logged, never in a repr and never in an error message.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol, TypedDict, Unpack
from urllib.parse import quote

import httpx
from pydantic import BaseModel, JsonValue, TypeAdapter, ValidationError

from p4f import __version__
from p4f.budget import BudgetExhaustedError, Priority, RequestBudget
from p4f.envelope import ErrorEnvelope, SuccessEnvelope
from p4f.errors import (
    ApiConnectionError,
    AuthenticationError,
    ConflictError,
    NotFoundError,
    Pay4FeedbackError,
    RateLimitError,
    ResponseAlreadyReviewedError,
    ServerError,
    error_for_status,
)
from p4f.json_text import encode_json
from p4f.models import (
    Campaign,
    CampaignStatus,
    EventType,
    Me,
    Money,
    NewCampaign,
    NewQuestion,
    Response,
    ResponseStatus,
    WebhookSubscription,
)
from p4f.ratelimit import SlidingWindowLimiter
from p4f.retries import RetryPolicy as RetryPolicy  # noqa: PLC0414 (re-exported: Pay4FeedbackClient(retry=...))
from p4f.retries import retry_after

DEFAULT_BASE_URL = "https://app.pay4feedback.com"
DEFAULT_TIMEOUT_SECONDS = 10.0
# How far the server's clock may lag ours when a created resource is looked up by time.
_CLOCK_SKEW = timedelta(minutes=5)

logger = logging.getLogger(__name__)


class ApiKeyProvider(Protocol):
    """Where the client gets its API key, e.g. `p4f.secrets.ApiKeySecret`."""

    def get_api_key(self) -> str:
        """The current key (may be cached)."""
        ...

    def refresh_api_key(self) -> str:
        """The key read afresh from its source (after a 401: it may have been rotated)."""
        ...


class MoneyFields(TypedDict):
    amount: str
    currency: str


class QuestionFields(TypedDict):
    type: str
    prompt: str


class CampaignChanges(TypedDict, total=False):
    """The fields `PATCH /api/v1/campaigns/{id}` accepts; only those given are sent."""

    name: str
    description: str | None
    reward: Money | MoneyFields
    max_responses: int | None
    questions: Sequence[NewQuestion | QuestionFields]
    status: CampaignStatus | str


_CAMPAIGN_CHANGES = TypeAdapter(CampaignChanges)

_deadline: ContextVar[float | None] = ContextVar("p4f_client_deadline", default=None)
_priority: ContextVar[Priority] = ContextVar("p4f_client_priority", default=Priority.INTERACTIVE)

IDEMPOTENCY_HEADER = "Idempotency-Key"
_JSON_CONTENT_TYPE = "application/json; charset=utf-8"
MAX_IDEMPOTENCY_KEY_LENGTH = 255


class Pay4FeedbackClient:
    """A client of the Pay4Feedback REST API, one method per endpoint of the reference."""

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        api_key: str | None = None,
        key_provider: ApiKeyProvider | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT_SECONDS,
        transport: httpx.BaseTransport | None = None,
        *,
        budget: RequestBudget | None = None,
        retry: RetryPolicy | None = None,
        auth_header: Literal["authorization", "x-api-key"] = "authorization",
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if (api_key is None) == (key_provider is None):
            raise ValueError("give the client either api_key or key_provider, not both")
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._key_provider = key_provider
        self._timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        self._http = httpx.Client(
            base_url=f"{self.base_url}/api/v1",
            timeout=self._timeout,
            transport=transport,
            headers={"User-Agent": f"p4f-bridge/{__version__}", "Accept": "application/json"},
        )
        self._budget = budget or SlidingWindowLimiter(clock=clock, sleep=sleep)
        self._retry = retry or RetryPolicy()
        self._auth_header = auth_header
        self._clock = clock
        self._sleep = sleep

    def __repr__(self) -> str:
        return f"Pay4FeedbackClient(base_url={self.base_url!r})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Pay4FeedbackClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextmanager
    def deadline(self, seconds: float) -> Iterator[None]:
        """Finish every call made inside the block within `seconds` from now.

        In a Lambda handler: `with client.deadline(context.get_remaining_time_in_millis()
        / 1000 - margin):`. Waits that would pass it are not started: a 429 raises
        `RateLimitError` instead, so the caller can defer the work.
        """
        until = self._clock() + seconds
        outer = _deadline.get()
        token = _deadline.set(until if outer is None else min(outer, until))
        try:
            yield
        finally:
            _deadline.reset(token)

    @contextmanager
    def priority(self, priority: Priority) -> Iterator[None]:
        """Make every call inside the block with `priority` (INTERACTIVE outside any block).

        BACKGROUND: nobody waits for these calls (a queue, a schedule); they yield the
        budget to interactive ones and never queue for a slot.
        """
        token = _priority.set(priority)
        try:
            yield
        finally:
            _priority.reset(token)

    # --- identity -------------------------------------------------------------------

    def me(self) -> Me:
        """`GET /api/v1/me`: the tenant this key is scoped to."""
        return self._call("GET", "/me", parse=_data(Me.model_validate))

    # --- campaigns ------------------------------------------------------------------

    def list_campaigns(self) -> list[Campaign]:
        """`GET /api/v1/campaigns`: the first page, newest first (v1.0: up to 500 campaigns)."""
        return self._call("GET", "/campaigns", parse=_data(_list_of(Campaign)))

    def iter_campaigns(self) -> Iterator[Campaign]:
        """Every campaign, newest first, page after page (v1.1 cursors; v1.0: the newest 500).

        Lazy: a page is asked for when the previous one is used up, one budget slot each.
        """
        return self._pages("/campaigns", Campaign, {})

    def get_campaign(self, campaign_id: str) -> Campaign:
        return self._call(
            "GET", _path("campaigns", campaign_id), parse=_data(Campaign.model_validate)
        )

    def create_campaign(
        self,
        *,
        name: str,
        reward: Money | MoneyFields,
        description: str | None = None,
        max_responses: int | None = None,
        questions: Sequence[NewQuestion | QuestionFields] = (),
        accept: Callable[[Campaign], bool] | None = None,
        idempotency_key: str | None = None,
    ) -> Campaign:
        """`POST /api/v1/campaigns`: a new campaign, in DRAFT.

        One call makes at most one campaign: its repeats carry one `Idempotency-Key` (API
        v1.1), and if an answer is lost the campaign is looked up (`find_created_campaign`,
        with `accept`) before the POST is repeated (v1.0). Give the caller's own key as
        `idempotency_key` to make one campaign across calls, even across processes.
        """
        draft = NewCampaign.model_validate(
            {
                "name": name,
                "description": description,
                "reward": reward,
                "max_responses": max_responses,
                "questions": list(questions),
            }
        )
        started = datetime.now(UTC)
        return self._call(
            "POST",
            "/campaigns",
            draft.model_dump(mode="json"),
            parse=_data(Campaign.model_validate),
            find_existing=lambda: self.find_created_campaign(draft, since=started, accept=accept),
            idempotency_key=idempotency_key,
        )

    def update_campaign(self, campaign_id: str, **changes: Unpack[CampaignChanges]) -> Campaign:
        """`PATCH /api/v1/campaigns/{id}`; `status="ACTIVE"` launches a DRAFT campaign."""
        body = _CAMPAIGN_CHANGES.dump_python(
            _CAMPAIGN_CHANGES.validate_python(changes), mode="json"
        )
        wanted = changes.get("status")
        return self._call(
            "PATCH",
            _path("campaigns", campaign_id),
            body,
            parse=_data(Campaign.model_validate),
            confirm=self._confirm_campaign(campaign_id, wanted) if wanted else None,
        )

    def pause_campaign(self, campaign_id: str, *, idempotency_key: str | None = None) -> Campaign:
        """`POST /api/v1/campaigns/{id}/pause`: only from ACTIVE."""
        return self._call(
            "POST",
            _path("campaigns", campaign_id, "pause"),
            parse=_data(Campaign.model_validate),
            confirm=self._confirm_campaign(campaign_id, CampaignStatus.PAUSED),
            idempotency_key=idempotency_key,
        )

    def resume_campaign(self, campaign_id: str, *, idempotency_key: str | None = None) -> Campaign:
        """`POST /api/v1/campaigns/{id}/resume`: only from PAUSED."""
        return self._call(
            "POST",
            _path("campaigns", campaign_id, "resume"),
            parse=_data(Campaign.model_validate),
            confirm=self._confirm_campaign(campaign_id, CampaignStatus.ACTIVE),
            idempotency_key=idempotency_key,
        )

    # --- responses ------------------------------------------------------------------

    def list_responses(self) -> list[Response]:
        """`GET /api/v1/responses`: the first page, newest first (v1.0: up to 500 responses)."""
        return self._call("GET", "/responses", parse=_data(_list_of(Response)))

    def iter_responses(
        self,
        *,
        campaign_id: str | None = None,
        status: ResponseStatus | str | None = None,
        since: datetime | None = None,
    ) -> Iterator[Response]:
        """Every response, newest first, page after page, of one campaign, in one status, or
        submitted at or after `since` if asked (v1.1 cursors and filters; v1.0: the newest
        500, which ignores the filters, so they are applied here as well).

        Lazy: a page is asked for when the previous one is used up, one budget slot each.
        """
        if since is not None and since.tzinfo is None:
            raise ValueError("since must be timezone-aware, e.g. datetime.now(UTC)")
        params = {
            "campaign_id": campaign_id,
            "status": str(status) if status is not None else None,
            "since": since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if since else None,
        }
        for response in self._pages("/responses", Response, params):
            if (
                (campaign_id is None or response.campaign_id == campaign_id)
                and (status is None or response.status == status)
                and (since is None or response.submitted_at >= since)
            ):
                yield response

    def get_response(self, response_id: str) -> Response:
        return self._call(
            "GET", _path("responses", response_id), parse=_data(Response.model_validate)
        )

    def approve_response(self, response_id: str, *, idempotency_key: str | None = None) -> Response:
        """`POST /api/v1/responses/{id}/approve`: only while PENDING (else
        `ResponseAlreadyReviewedError`, with the response as it is now)."""
        return self._review(response_id, ResponseStatus.APPROVED, None, idempotency_key)

    def reject_response(
        self,
        response_id: str,
        reason: str | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> Response:
        """`POST /api/v1/responses/{id}/reject`, with an optional reason; only while PENDING
        (else `ResponseAlreadyReviewedError`, with the response as it is now)."""
        body = {"reason": reason} if reason is not None else None
        return self._review(response_id, ResponseStatus.REJECTED, body, idempotency_key)

    def _review(
        self,
        response_id: str,
        status: ResponseStatus,
        body: Mapping[str, Any] | None,
        idempotency_key: str | None,
    ) -> Response:
        """Approve or reject. A 409 (the response is no longer PENDING) is resolved by reading
        the response: `ResponseAlreadyReviewedError` carries it as it is now, unless this
        call's own send, whose answer was lost, is what put it in `status` (then success)."""
        action = "approve" if status is ResponseStatus.APPROVED else "reject"

        def confirm(exc: Pay4FeedbackError) -> Response:
            if not isinstance(exc, ConflictError):
                raise exc
            response = self.get_response(response_id)
            if response.status != status:
                raise ResponseAlreadyReviewedError(exc.message, response=response) from exc
            return response

        try:
            return self._call(
                "POST",
                _path("responses", response_id, action),
                body,
                parse=_data(Response.model_validate),
                confirm=confirm,
                idempotency_key=idempotency_key,
            )
        except ResponseAlreadyReviewedError:
            raise
        except ConflictError as exc:  # the first send already found it reviewed
            response = self.get_response(response_id)
            raise ResponseAlreadyReviewedError(exc.message, response=response) from exc

    # --- webhooks -------------------------------------------------------------------

    def list_webhooks(self) -> list[WebhookSubscription]:
        return self._call("GET", "/webhooks", parse=_data(_list_of(WebhookSubscription)))

    def create_webhook(
        self,
        url: str,
        events: Sequence[EventType | str],
        secret: str,
        *,
        idempotency_key: str | None = None,
    ) -> WebhookSubscription:
        """`POST /api/v1/webhooks`: deliveries of `events` to `url`, signed with `secret`."""
        started = datetime.now(UTC)
        return self._call(
            "POST",
            "/webhooks",
            {"url": url, "events": [str(e) for e in events], "secret": secret},
            parse=_data(WebhookSubscription.model_validate),
            find_existing=lambda: self._find_created_webhook(url, events, since=started),
            idempotency_key=idempotency_key,
        )

    def delete_webhook(self, webhook_id: str) -> None:
        """`DELETE /api/v1/webhooks/{id}`; a 404 after a lost answer counts as deleted."""

        def already_deleted(exc: Pay4FeedbackError) -> None:
            if not isinstance(exc, NotFoundError):
                raise exc

        self._call(
            "DELETE", _path("webhooks", webhook_id), parse=lambda _: None, confirm=already_deleted
        )

    # --- pages ------------------------------------------------------------------------

    def _pages[M: BaseModel](
        self, path: str, model: type[M], filters: Mapping[str, str | None]
    ) -> Iterator[M]:
        """The rows of a list endpoint, following `next` until a page has none."""
        params = {name: value for name, value in filters.items() if value is not None}
        seen: set[str] = set()
        while True:
            page = self._call("GET", path, params=params, parse=_page_of(model))
            yield from page.rows
            if page.next is None:
                return
            if page.next in seen:
                raise Pay4FeedbackError(
                    f"GET {path} gave the cursor {page.next!r} twice: the pages would never end"
                )
            seen.add(page.next)
            params = params | {"cursor": page.next}

    # --- reconciliation after a lost answer -------------------------------------------

    def find_created_campaign(
        self,
        draft: NewCampaign,
        *,
        since: datetime,
        accept: Callable[[Campaign], bool] | None = None,
    ) -> Campaign | None:
        """The campaign a POST of `draft` sent at or after `since` made, or None.

        What `create_campaign` asks after a lost answer, public for callers whose POST may
        have been lost in an earlier process (a crashed Lambda invocation): the newest
        campaigns (`GET /api/v1/campaigns`) with the same fields, created since `since`
        (less a clock skew allowance), are candidates, newest first. Without `accept` the
        first is the answer; with it, the first it accepts. A caller that creates several
        campaigns with the same fields uses `accept` to claim a candidate for itself, so
        that two lost POSTs never adopt the same campaign.
        """
        wanted = _campaign_fields(draft)
        for campaign in self.iter_campaigns():  # newest first
            if campaign.created_at < since - _CLOCK_SKEW:
                return None
            if _campaign_fields(campaign) == wanted and (accept is None or accept(campaign)):
                logger.info("found the campaign a lost POST created", extra={"id": campaign.id})
                return campaign
        return None

    def _find_created_webhook(
        self, url: str, events: Sequence[EventType | str], *, since: datetime
    ) -> WebhookSubscription | None:
        for webhook in self.list_webhooks():
            if webhook.created_at < since - _CLOCK_SKEW:
                return None
            if webhook.url == url and set(webhook.events) == {str(e) for e in events}:
                return webhook
        return None

    def _confirm_campaign(
        self, campaign_id: str, status: CampaignStatus | str
    ) -> Callable[[Pay4FeedbackError], Campaign]:
        def confirm(exc: Pay4FeedbackError) -> Campaign:
            campaign = self.get_campaign(campaign_id)
            if not isinstance(exc, ConflictError) or campaign.status != status:
                raise exc
            return campaign

        return confirm

    # --- the request machinery ----------------------------------------------------

    def _call[T](
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        *,
        parse: Callable[[SuccessEnvelope], T],
        params: Mapping[str, str] | None = None,
        find_existing: Callable[[], T | None] | None = None,
        confirm: Callable[[Pay4FeedbackError], T] | None = None,
        idempotency_key: str | None = None,
    ) -> T:
        """Send one API call with the retry rules of the module docstring.

        `find_existing` (creates): after a lost answer, the resource the lost request may
        have made, or None; it is asked before the request is sent again.
        `confirm` (state changes): after a lost answer, turns the 409/404 of the repeated
        request into success when a fresh GET shows the requested state, else re-raises.
        `idempotency_key` (POSTs): the caller's key; else every send of this call carries
        one made for it.
        """
        request = _Request(method, path, body, dict(params or {}))
        if method == "POST":
            request.headers[IDEMPOTENCY_HEADER] = _idempotency_key(idempotency_key)
        failures = rate_limit_waits = 0
        key_refreshed = answer_lost = False
        while True:
            key = self._current_key()
            try:
                return parse(self._send_once(request, key))
            except AuthenticationError:
                if key_refreshed or not self._refreshed_key_differs(key):
                    raise
                key_refreshed = True
            except RateLimitError as exc:
                rate_limit_waits += 1
                # The bridge's own budget waited as long as the deadline allows already.
                exhausted = isinstance(exc, BudgetExhaustedError)
                if exhausted or rate_limit_waits > self._retry.max_rate_limit_waits:
                    raise
                self._budget.block_for(exc.retry_after)
                self._wait(exc.retry_after, exc, f"{method} {path} rate limited")
            except (ConflictError, NotFoundError) as exc:
                if not (answer_lost and confirm):
                    raise
                return confirm(exc)
            except (ServerError, ApiConnectionError) as exc:
                lost = isinstance(exc, ServerError) or exc.request_sent
                answer_lost = answer_lost or lost
                if lost and find_existing is not None:
                    found = find_existing()
                    if found is not None:
                        return found
                failures += 1
                if failures >= self._retry.max_attempts:
                    raise
                self._wait(self._retry.backoff(failures), exc, f"{method} {path} failed")

    def _send_once(self, request: _Request, key: str) -> SuccessEnvelope:
        deadline = _deadline.get()
        # Checked before the budget too: a request that will not be sent takes no slot.
        max_wait = None if deadline is None else self._time_left(request, deadline)
        slot = self._budget.acquire(max_wait, _priority.get())
        try:
            return self._send_within(request, key, deadline)
        finally:
            slot.answered()

    def _time_left(self, request: _Request, deadline: float) -> float:
        remaining = deadline - self._clock()
        if remaining <= 0:
            raise ApiConnectionError(
                f"{request.method} {request.path} was not sent: the caller's deadline has passed",
                request_sent=False,
            )
        return remaining

    def _send_within(self, request: _Request, key: str, deadline: float | None) -> SuccessEnvelope:
        method, path = request.method, request.path
        timeout = self._timeout
        if deadline is not None:
            remaining = self._time_left(request, deadline)
            timeout = httpx.Timeout(
                connect=_at_most(self._timeout.connect, remaining),
                read=_at_most(self._timeout.read, remaining),
                write=_at_most(self._timeout.write, remaining),
                pool=_at_most(self._timeout.pool, remaining),
            )
        headers = self._auth_headers(key) | request.headers
        content = None
        if request.body is not None:
            # Not httpx's json=, which raises on a lone surrogate (half an emoji, as a no-code
            # tool that cuts text sends): encode_json replaces it, as the forwarders do.
            content = encode_json(request.body)
            headers["Content-Type"] = _JSON_CONTENT_TYPE
        started = self._clock()
        try:
            answer = self._http.request(
                method,
                path,
                content=content,
                params=request.params,
                headers=headers,
                timeout=timeout,
            )
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise ApiConnectionError(
                f"could not connect to {self.base_url} ({type(exc).__name__})",
                request_sent=False,
            ) from exc
        except httpx.TransportError as exc:
            raise ApiConnectionError(
                f"{method} {path} got no answer from {self.base_url} ({type(exc).__name__})",
                request_sent=True,
            ) from exc
        logger.debug(
            "Pay4Feedback call",
            extra={
                "method": method,
                "path": path,
                "status": answer.status_code,
                "ms": round((self._clock() - started) * 1000),
            },
        )
        return _read_answer(method, path, answer)

    def _auth_headers(self, key: str) -> dict[str, str]:
        if self._auth_header == "x-api-key":
            return {"X-API-Key": key}
        return {"Authorization": f"Bearer {key}"}

    def _current_key(self) -> str:
        if self._key_provider is not None:
            return self._key_provider.get_api_key()
        assert self._api_key is not None  # noqa: S101 (the constructor guarantees it)
        return self._api_key

    def _refreshed_key_differs(self, refused_key: str) -> bool:
        """Re-read the key after a 401; True if it is not the refused one (worth a retry)."""
        if self._key_provider is None:
            return False
        return self._key_provider.refresh_api_key() != refused_key

    def _wait(self, seconds: float, exc: Pay4FeedbackError, why: str) -> None:
        """Sleep before a retry, or raise `exc` if the sleep would pass the deadline."""
        deadline = _deadline.get()
        if deadline is not None and self._clock() + seconds > deadline:
            raise exc
        logger.warning("%s (%s); retrying in %.1fs", why, type(exc).__name__, seconds)
        self._sleep(seconds)


_SUCCESS_ENVELOPE = TypeAdapter(SuccessEnvelope)
_ERROR_ENVELOPE = TypeAdapter(ErrorEnvelope)


def _read_answer(method: str, path: str, answer: httpx.Response) -> SuccessEnvelope:
    try:
        payload = answer.json()
    except ValueError:
        payload = None
    if answer.is_success:
        try:
            return _SUCCESS_ENVELOPE.validate_python(payload)
        except ValidationError:
            raise Pay4FeedbackError(
                f"{method} {path} answered {answer.status_code} without a success envelope",
                status=answer.status_code,
            ) from None
    try:
        error = _ERROR_ENVELOPE.validate_python(payload)
    except ValidationError:
        message, timestamp = _describe_foreign_answer(answer), None
    else:
        message, timestamp = error["error"], _parse_timestamp(error.get("timestamp"))
    if answer.status_code == 429:
        raise RateLimitError(message, retry_after=retry_after(answer), timestamp=timestamp)
    raise error_for_status(answer.status_code)(
        message, status=answer.status_code, timestamp=timestamp
    )


def _parse_timestamp(value: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if value else None
    except ValueError:
        return None


def _describe_foreign_answer(answer: httpx.Response) -> str:
    """A message for an error answer that is not the API's envelope (a proxy's HTML 502)."""
    kind = answer.headers.get("content-type", "no content type").split(";")[0]
    text = " ".join(answer.text.split())[:120]
    return (
        f"{answer.status_code} {answer.reason_phrase} from {answer.request.url.host} with a "
        f"{kind} body instead of the API's JSON envelope"
        + (f": {text!r}" if text else "")
        + " (probably a proxy or load balancer in front of the API)"
    )


def _at_most(configured: float | None, remaining: float) -> float:
    return remaining if configured is None else min(configured, remaining)


def _path(*segments: str) -> str:
    """An API path with every id escaped, so an id can never reach another endpoint."""
    return "/" + "/".join(quote(segment, safe="") for segment in segments)


@dataclass(frozen=True)
class _Request:
    """One API call as it is sent, each time it is."""

    method: str
    path: str
    body: Mapping[str, Any] | None
    params: dict[str, str]
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Page[M]:
    rows: list[M]
    next: str | None
    """The cursor of the next page; None on the last (and always in API v1.0)."""


def _idempotency_key(given: str | None) -> str:
    """The caller's key as the header carries it, or a new one for this call."""
    key = given if given is not None else f"p4f-bridge-{uuid.uuid4()}"
    if not 0 < len(key) <= MAX_IDEMPOTENCY_KEY_LENGTH or not key.isprintable():
        raise ValueError(
            f"an idempotency key must be 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} printable characters"
        )
    return key


def _data[T](parse: Callable[[JsonValue], T]) -> Callable[[SuccessEnvelope], T]:
    """A parser of the envelope's `data`."""
    return lambda envelope: parse(envelope["data"])


def _page_of[M: BaseModel](model: type[M]) -> Callable[[SuccessEnvelope], _Page[M]]:
    rows = _list_of(model)

    def parse(envelope: SuccessEnvelope) -> _Page[M]:
        cursor = envelope.get("next")
        return _Page(rows(envelope["data"]), str(cursor) if cursor else None)

    return parse


def _list_of[M: BaseModel](model: type[M]) -> Callable[[JsonValue], list[M]]:
    def parse(data: JsonValue) -> list[M]:
        if not isinstance(data, list):
            raise Pay4FeedbackError(f"expected a list of {model.__name__}, got {type(data)}")
        return [model.model_validate(item) for item in data]

    return parse


def _campaign_fields(campaign: NewCampaign | Campaign) -> tuple[object, ...]:
    return (
        campaign.name,
        campaign.description,
        campaign.reward.amount,
        campaign.reward.currency,
        campaign.max_responses,
        [(q.type, q.prompt) for q in campaign.questions],
    )
