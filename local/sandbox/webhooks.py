"""Webhook events and their signed delivery, retried as contract/webhooks.md says.

Each event is recorded for `GET /_sandbox/events` and POSTed to each recipient by an
asyncio task of its own on the server's loop, so an API answer never waits for a receiver
and one slow receiver never holds up another. An attempt is delivered when the receiver
answers 2xx within the time-out; otherwise it is retried after `retry_base` seconds,
doubling each time (at most an hour apart), until `retry_for` seconds after the event.
Every attempt sends the same event id and body bytes with a new timestamp and signature
(`p4f.signing.delivery_headers`).
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Self

import httpx
from pydantic import BaseModel, JsonValue

from local.sandbox.store import Subscription, utc_now
from p4f.models import EventType, WebhookEvent
from p4f.signing import delivery_headers

MAX_RETRY_PAUSE = 3600.0
"""The longest wait between two attempts, however many failed."""
LOG_SIZE = 1000
"""Events and attempts kept per tenant for the admin endpoints (the oldest are dropped)."""


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    GIVEN_UP = "given_up"
    """Still failing when the retry period ran out."""
    CANCELLED = "cancelled"
    """The subscription was deleted before the event was delivered."""


@dataclass
class _Delivery:
    """One event on its way to one subscription."""

    event: WebhookEvent
    body: bytes
    subscription: Subscription
    give_up_at: float
    """time.monotonic() after which no attempt is started."""
    dropping: Callable[[], bool]
    """Whether the tenant's deliveries are held back now (a drop_deliveries fault)."""
    status: DeliveryStatus = DeliveryStatus.PENDING


class DeliveryAttempt(BaseModel):
    """One POST of an event to a subscription, as `GET /_sandbox/deliveries` lists it."""

    event_id: str
    event_type: str
    webhook_id: str
    url: str
    attempt: int
    status_code: int | None
    """The receiver's HTTP status, or None when it gave no answer (see `error`)."""
    error: str | None
    """Why there was no answer: the exception's name, e.g. ConnectError or TimeoutError."""
    started_at: datetime
    finished_at: datetime
    delivery_status: DeliveryStatus
    """Where the delivery of this event to this subscription stands now."""


@dataclass(frozen=True)
class _Attempt:
    delivery: _Delivery
    number: int
    status_code: int | None
    error: str | None
    started_at: datetime
    finished_at: datetime

    def report(self) -> DeliveryAttempt:
        subscription = self.delivery.subscription.resource
        return DeliveryAttempt(
            event_id=self.delivery.event.id,
            event_type=str(self.delivery.event.type),
            webhook_id=subscription.id,
            url=subscription.url,
            attempt=self.number,
            status_code=self.status_code,
            error=self.error,
            started_at=self.started_at,
            finished_at=self.finished_at,
            delivery_status=self.delivery.status,
        )


@dataclass
class _TenantLog:
    events: deque[WebhookEvent] = field(default_factory=lambda: deque(maxlen=LOG_SIZE))
    attempts: deque[_Attempt] = field(default_factory=lambda: deque(maxlen=LOG_SIZE))
    dropped: list[_Delivery] = field(default_factory=list)
    """Deliveries held back by a drop_deliveries fault, oldest first, until released."""


class WebhookDispatcher:
    """Creates events and delivers them; `async with` it for as long as the server runs.

    Leaving the block cancels the deliveries still pending.
    """

    def __init__(self, *, retry_base: float, retry_for: float, timeout: float) -> None:
        self._retry_base = retry_base
        self._retry_for = retry_for
        self._timeout = timeout
        # httpx's time-out bounds each phase; asyncio.timeout in _attempt bounds the total.
        # trust_env=False: a proxy configured for the machine must not carry local deliveries.
        self._http = httpx.AsyncClient(timeout=timeout, trust_env=False)
        self._tasks: set[asyncio.Task[None]] = set()
        self._logs: defaultdict[str, _TenantLog] = defaultdict(_TenantLog)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._http.aclose()

    def publish(
        self,
        tenant_id: str,
        event_type: EventType,
        data: dict[str, JsonValue],
        recipients: Sequence[Subscription],
        *,
        dropping: Callable[[], bool],
    ) -> None:
        """Record a new event and start its delivery to each recipient. Whenever `dropping()`
        says so, before an attempt, the delivery is held back, unattempted, until
        `release_dropped`."""
        event = WebhookEvent(
            id=f"evt_{uuid.uuid4().hex}",
            type=event_type,
            created_at=utc_now(),
            tenant_id=tenant_id,
            data=data,
        )
        self._logs[tenant_id].events.append(event)
        body = event.model_dump_json().encode()
        give_up_at = time.monotonic() + self._retry_for
        for subscription in recipients:
            delivery = _Delivery(event, body, subscription, give_up_at, dropping)
            if dropping():  # held back at once: release_dropped() counts it from now on
                self._logs[tenant_id].dropped.append(delivery)
            else:
                self._start(delivery)

    def release_dropped(self, tenant_id: str) -> int:
        """Deliver the tenant's dropped deliveries now, oldest first, retried as usual from
        now on (held back again while drops are still armed); how many there were."""
        dropped = self._logs[tenant_id].dropped
        released = len(dropped)
        for delivery in dropped:
            delivery.give_up_at = time.monotonic() + self._retry_for
            self._start(delivery)
        dropped.clear()
        return released

    def _start(self, delivery: _Delivery) -> None:
        task = asyncio.create_task(self._deliver(delivery))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def events(self, tenant_id: str) -> list[WebhookEvent]:
        """The tenant's events, newest first."""
        return list(reversed(self._logs[tenant_id].events))

    def attempts(self, tenant_id: str) -> list[DeliveryAttempt]:
        """The tenant's delivery attempts, newest first."""
        return [attempt.report() for attempt in reversed(self._logs[tenant_id].attempts)]

    async def _deliver(self, delivery: _Delivery) -> None:
        pause = self._retry_base
        for number in itertools.count(1):
            if delivery.subscription.deleted:
                delivery.status = DeliveryStatus.CANCELLED
                return
            if delivery.dropping():
                # Also a delivery in its retries: an armed drop stops every attempt.
                self._logs[delivery.event.tenant_id].dropped.append(delivery)
                return
            if await self._attempt(delivery, number):
                delivery.status = DeliveryStatus.DELIVERED
                return
            if time.monotonic() + pause > delivery.give_up_at:
                delivery.status = DeliveryStatus.GIVEN_UP
                return
            await asyncio.sleep(pause)
            pause = min(pause * 2, MAX_RETRY_PAUSE)

    async def _attempt(self, delivery: _Delivery, number: int) -> bool:
        """POST the event once; True when the receiver answered 2xx in time."""
        event = delivery.event
        headers = delivery_headers(
            delivery.body,
            delivery.subscription.secret,
            event_id=event.id,
            event_type=str(event.type),
        )
        status_code: int | None = None
        error: str | None = None
        started_at = datetime.now(UTC)
        try:
            async with asyncio.timeout(self._timeout):
                answer = await self._http.post(
                    delivery.subscription.resource.url, content=delivery.body, headers=headers
                )
            status_code = answer.status_code
        except (httpx.HTTPError, TimeoutError) as exc:
            error = type(exc).__name__
        self._logs[event.tenant_id].attempts.append(
            _Attempt(delivery, number, status_code, error, started_at, datetime.now(UTC))
        )
        return status_code is not None and 200 <= status_code < 300
