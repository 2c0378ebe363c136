"""The sandbox's HTTP face: the 14 endpoints of the REST API reference under /api/v1, and
admin endpoints under /_sandbox that simulate what the API alone cannot do.

In API v1.1 (`SandboxSettings.api_version`) lists page with cursors and filter /responses
(`local.sandbox.pages`), and POSTs honour `Idempotency-Key` (`local.sandbox.idempotency`).

Handlers are thin: they take the path id and body, call the caller's `Tenant`, and wrap the
result in the API's envelope. Every refusal is an exception, and `_error_answer` is the one
place that turns exceptions into HTTP answers.
"""

from __future__ import annotations

import asyncio
import http.client
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

from pydantic import BaseModel, JsonValue
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from local.sandbox.bodies import (
    API_PREFIX,
    CampaignBody,
    CampaignPatch,
    FaultBody,
    PayoutBody,
    RateLimitBody,
    RejectionBody,
    RevokeKeyBody,
    ScoreBody,
    SubmissionBody,
    WebhookBody,
    parse_body,
)
from local.sandbox.errors import (
    AuthenticationError,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    RateLimitedError,
    SandboxError,
    UnprocessableError,
)
from local.sandbox.idempotency import HEADER as IDEMPOTENCY_HEADER
from local.sandbox.idempotency import fingerprint
from local.sandbox.pages import ListQuery, Page, ResponseFilters
from local.sandbox.settings import SandboxSettings
from local.sandbox.store import KEY_PREFIX_LENGTH, Caller, Store, Tenant
from local.sandbox.webhooks import WebhookDispatcher
from p4f.envelope import failure, success
from p4f.models import Campaign
from p4f.models import Response as ApiResponse

ADMIN_PREFIX = "/_sandbox"
MAX_BODY_BYTES = 1_000_000

_STATUS_BY_ERROR: dict[type[SandboxError], int] = {
    InvalidRequestError: 400,
    AuthenticationError: 401,
    NotFoundError: 404,
    ConflictError: 409,
    UnprocessableError: 422,
}


def create_app(settings: SandboxSettings) -> Starlette:
    """A sandbox with one tenant per API key of `settings`."""
    dispatcher = WebhookDispatcher(
        retry_base=settings.webhook_retry_base,
        retry_for=settings.webhook_retry_for,
        timeout=settings.webhook_timeout,
    )
    store = Store(
        settings.api_keys,
        rate_limit=settings.rate_limit,
        rate_window=settings.rate_window,
        publisher=dispatcher,
    )

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        async with dispatcher:
            yield

    return Starlette(
        routes=_Sandbox(store, dispatcher, settings).routes(),
        exception_handlers={
            SandboxError: _error_answer,
            HTTPException: _error_answer,
            Exception: _error_answer,
        },
        lifespan=lifespan,
        max_body_size=MAX_BODY_BYTES,
    )


@dataclass(frozen=True)
class _Call:
    """One authenticated request, with what its handler needs to answer it."""

    request: Request
    caller: Caller
    store: Store
    dispatcher: WebhookDispatcher
    settings: SandboxSettings

    @property
    def tenant(self) -> Tenant:
        return self.caller.tenant

    def list_query(self) -> ListQuery:
        return ListQuery.parse(
            self.request.query_params,
            api_version=self.settings.api_version,
            page_size=self.settings.page_size,
        )

    def response_filters(self) -> ResponseFilters:
        return ResponseFilters.parse(
            self.request.query_params, api_version=self.settings.api_version
        )

    @property
    def path_id(self) -> str:
        try:
            return str(uuid.UUID(self.request.path_params["id"]))
        except ValueError:
            raise InvalidRequestError("id: must be a UUID") from None

    async def body[M: BaseModel](self, model: type[M]) -> M:
        return parse_body(model, await self.request.body())


type _Handler = Callable[[_Call], Awaitable[Response]]


@dataclass(frozen=True)
class _Sandbox:
    """The routes, bound to the sandbox's store and webhook dispatcher."""

    store: Store
    dispatcher: WebhookDispatcher
    settings: SandboxSettings

    def routes(self) -> list[BaseRoute]:
        api, admin = self._api_route, self._admin_route
        return [
            Mount(
                API_PREFIX,
                routes=[
                    api("/me", GET=me),
                    api("/campaigns", GET=list_campaigns, POST=create_campaign),
                    api("/campaigns/{id}", GET=get_campaign, PATCH=update_campaign),
                    api("/campaigns/{id}/pause", POST=pause_campaign),
                    api("/campaigns/{id}/resume", POST=resume_campaign),
                    api("/responses", GET=list_responses),
                    api("/responses/{id}", GET=get_response),
                    api("/responses/{id}/approve", POST=approve_response),
                    api("/responses/{id}/reject", POST=reject_response),
                    api("/webhooks", GET=list_webhooks, POST=create_webhook),
                    api("/webhooks/{id}", DELETE=delete_webhook),
                ],
            ),
            Mount(
                ADMIN_PREFIX,
                routes=[
                    admin("/campaigns/{id}/responses", POST=submit_response),
                    admin("/responses/{id}/score", POST=score_response),
                    admin("/responses/{id}/payout", POST=pay_out),
                    admin("/faults", POST=arm_fault, DELETE=clear_faults),
                    admin("/keys", POST=issue_key),
                    admin("/keys/revoke", POST=revoke_key),
                    admin("/rate-limit", PUT=set_rate_limit),
                    admin("/events", GET=list_events),
                    admin("/deliveries", GET=list_deliveries),
                    admin("/deliveries/release", POST=release_dropped),
                    admin("/stats", GET=get_stats),
                ],
            ),
        ]

    def _api_route(self, path: str, **handlers: _Handler) -> Route:
        """An /api/v1 route (one handler per method): authenticated, rate limited, and
        subject to armed faults."""

        async def endpoint(request: Request) -> Response:
            call = self._call(request)
            call.tenant.count_request()
            handler = _handler_for(request, handlers)
            fault = call.tenant.take_fault(request.method, request.url.path)
            if fault is None:
                return await self._answer(call, handler)
            if fault.delay is None:
                return _fault_answer(fault)
            try:
                return await self._answer(call, handler)
            finally:
                # The work is done; only the answer is late (the client may have given up).
                await asyncio.sleep(fault.delay)

        return Route(path, endpoint, methods=list(handlers))

    async def _answer(self, call: _Call, handler: _Handler) -> Response:
        """The handler's answer; in v1.1 a POST's under its Idempotency-Key."""
        key = call.request.headers.get(IDEMPOTENCY_HEADER)
        if self.settings.api_version == "1.0" or call.request.method != "POST" or key is None:
            return await handler(call)
        request = fingerprint("POST", call.request.url.path, await call.request.body())
        keys = call.tenant.idempotency_keys
        replayed = keys.begin(key, request)
        if replayed is not None:
            return replayed
        try:
            answer = await handler(call)
        except SandboxError as exc:
            answer = _error_answer(call.request, exc)
        except BaseException:
            keys.abandon(key)
            raise
        keys.finish(key, answer)
        return answer

    def _admin_route(self, path: str, **handlers: _Handler) -> Route:
        """A /_sandbox route: authenticated with a tenant's key, never limited or faulted."""

        async def endpoint(request: Request) -> Response:
            return await _handler_for(request, handlers)(self._call(request))

        return Route(path, endpoint, methods=list(handlers))

    def _call(self, request: Request) -> _Call:
        caller = self.store.authenticate(_presented_key(request))
        return _Call(request, caller, self.store, self.dispatcher, self.settings)


def _handler_for(request: Request, handlers: dict[str, _Handler]) -> _Handler:
    # Starlette answers HEAD wherever GET is allowed.
    return handlers["GET" if request.method == "HEAD" else request.method]


def _presented_key(request: Request) -> str | None:
    """The key of `Authorization: Bearer <key>`, else of `X-API-Key: <key>`."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.headers.get("x-api-key", "").strip() or None


def _ok(
    data: BaseModel | Sequence[BaseModel] | dict[str, JsonValue], status: int = 200
) -> JSONResponse:
    payload: JsonValue
    if isinstance(data, BaseModel):
        payload = data.model_dump(mode="json")
    elif isinstance(data, dict):
        payload = data
    else:
        payload = [item.model_dump(mode="json") for item in data]
    return JSONResponse(success(payload), status_code=status)


def _page(page: Page[Campaign] | Page[ApiResponse]) -> JSONResponse:
    """A list's answer: its rows, and `next` while more pages remain (v1.1)."""
    envelope = success([row.model_dump(mode="json") for row in page.rows])
    if page.next is not None:
        envelope["next"] = page.next
    return JSONResponse(envelope)


def _failure(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(failure(message), status_code=status, headers=headers)


def _error_answer(request: Request, exc: Exception) -> Response:
    """The HTTP answer to a request that raised `exc`."""
    if isinstance(exc, RateLimitedError):
        # Verbatim the reference's 429, which carries no timestamp.
        return JSONResponse(
            {"success": False, "error": f"Rate limit exceeded. Retry in {exc.retry_after}s."},
            status_code=429,
            headers={"Retry-After": str(exc.retry_after)},
        )
    if isinstance(exc, SandboxError):
        return _failure(_STATUS_BY_ERROR[type(exc)], str(exc))
    if isinstance(exc, HTTPException):
        # Unknown route (404), wrong method (405, with Allow), body too large (413).
        message = f"{exc.detail}: {request.method} {request.url.path}"
        return _failure(exc.status_code, message, dict(exc.headers or {}))
    return _failure(500, "Internal sandbox error; the sandbox's log has the details")


def _fault_answer(fault: FaultBody) -> Response:
    """The answer of an armed fault, given without touching anything."""
    phrase = http.client.responses.get(fault.status, "Error")
    if fault.html:
        title = f"{fault.status} {phrase}"
        return HTMLResponse(
            f"<html><head><title>{title}</title></head><body><center><h1>{title}</h1>"
            "</center><hr><center>nginx</center></body></html>",
            status_code=fault.status,
        )
    return _failure(fault.status, f"{phrase} (a fault injected by the sandbox)")


# --- /api/v1 ----------------------------------------------------------------------------


async def me(call: _Call) -> Response:
    return _ok(call.caller.me())


async def list_campaigns(call: _Call) -> Response:
    return _page(call.tenant.list_campaigns(call.list_query()))


async def create_campaign(call: _Call) -> Response:
    return _ok(call.tenant.create_campaign(await call.body(CampaignBody)), 201)


async def get_campaign(call: _Call) -> Response:
    return _ok(call.tenant.get_campaign(call.path_id))


async def update_campaign(call: _Call) -> Response:
    campaign_id = call.path_id
    return _ok(call.tenant.update_campaign(campaign_id, await call.body(CampaignPatch)))


async def pause_campaign(call: _Call) -> Response:
    return _ok(call.tenant.pause_campaign(call.path_id))


async def resume_campaign(call: _Call) -> Response:
    return _ok(call.tenant.resume_campaign(call.path_id))


async def list_responses(call: _Call) -> Response:
    return _page(call.tenant.list_responses(call.list_query(), call.response_filters()))


async def get_response(call: _Call) -> Response:
    return _ok(call.tenant.get_response(call.path_id))


async def approve_response(call: _Call) -> Response:
    return _ok(call.tenant.approve_response(call.path_id))


async def reject_response(call: _Call) -> Response:
    response_id = call.path_id
    reason = (await call.body(RejectionBody)).reason
    return _ok(call.tenant.reject_response(response_id, reason))


async def list_webhooks(call: _Call) -> Response:
    return _ok(call.tenant.list_webhooks())


async def create_webhook(call: _Call) -> Response:
    return _ok(call.tenant.create_webhook(await call.body(WebhookBody)), 201)


async def delete_webhook(call: _Call) -> Response:
    webhook_id = call.path_id
    call.tenant.delete_webhook(webhook_id)
    return _ok({"id": webhook_id, "deleted": True})


# --- /_sandbox --------------------------------------------------------------------------


async def submit_response(call: _Call) -> Response:
    campaign_id = call.path_id
    return _ok(call.tenant.submit_response(campaign_id, await call.body(SubmissionBody)), 201)


async def score_response(call: _Call) -> Response:
    response_id = call.path_id
    return _ok(call.tenant.score_response(response_id, await call.body(ScoreBody)))


async def pay_out(call: _Call) -> Response:
    response_id = call.path_id
    return _ok(call.tenant.pay_out(response_id, await call.body(PayoutBody)), 201)


async def arm_fault(call: _Call) -> Response:
    fault = await call.body(FaultBody)
    call.tenant.arm_fault(fault)
    return _ok(fault, 201)


async def clear_faults(call: _Call) -> Response:
    return _ok({"cleared": call.tenant.clear_faults()})


async def issue_key(call: _Call) -> Response:
    return _ok({"api_key": call.store.issue_key(call.tenant)}, 201)


async def revoke_key(call: _Call) -> Response:
    api_key = (await call.body(RevokeKeyBody)).api_key
    call.store.revoke_key(call.tenant, api_key)
    return _ok({"key_prefix": api_key[:KEY_PREFIX_LENGTH], "revoked": True})


async def set_rate_limit(call: _Call) -> Response:
    limit = await call.body(RateLimitBody)
    call.tenant.set_rate_limit(limit.limit, limit.window)
    return _ok(limit)


async def release_dropped(call: _Call) -> Response:
    return _ok({"released": call.dispatcher.release_dropped(call.tenant.id)})


async def list_events(call: _Call) -> Response:
    return _ok(call.dispatcher.events(call.tenant.id))


async def list_deliveries(call: _Call) -> Response:
    return _ok(call.dispatcher.attempts(call.tenant.id))


async def get_stats(call: _Call) -> Response:
    stats = call.tenant.stats
    return _ok({"requests": stats.requests, "rate_limited": stats.rate_limited})
