"""The warehouse mirror's backfill: every campaign and response the API lists, put on the
bridge's bus as snapshots, which the mirror's rules turn into rows like any other event.

    backfill = Backfill(client, events, bus_name)
    done = backfill.run(progress=print)      # Backfilled(campaigns=.., responses=.., ...)

It pages through the API with background priority (the tenant budget's background share:
it yields to interactive callers), every page in API v1.1, the newest 500 of each in v1.0,
and publishes ten snapshots a PutEvents call as it goes. A snapshot of a state the mirror
already has adds nothing to its current-state views, so running it again is harmless.
Payouts cannot be backfilled: the API has no list of them.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from p4f.budget import Priority
from p4f.errors import Pay4FeedbackError
from p4f.fanout import BRIDGE_SOURCE, MAX_EVENT_BYTES
from p4f.mirror import SNAPSHOT_TYPES, MirrorKind, snapshot_event

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from contextlib import AbstractContextManager

    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_events.type_defs import PutEventsRequestEntryTypeDef

    from p4f.models import Campaign, Me, Response

    type Listed = Campaign | Response

logger = logging.getLogger(__name__)

_ENTRIES_PER_CALL = 10
"""The most one PutEvents call takes."""
_PUT_ATTEMPTS = 3


class Listings(Protocol):
    """What the backfill asks of the API (p4f.client.Pay4FeedbackClient)."""

    def me(self) -> Me: ...

    def iter_campaigns(self) -> Iterator[Campaign]: ...

    def iter_responses(self) -> Iterator[Response]: ...

    def priority(self, priority: Priority) -> AbstractContextManager[None]: ...


class BackfillError(RuntimeError):
    """The bus did not take snapshots, after retries: nothing more is sent."""


@dataclass(frozen=True)
class Backfilled:
    """How far a backfill got."""

    published: dict[MirrorKind, int] = field(default_factory=dict)
    """Snapshots the bus took, by kind."""
    refused: dict[str, str] = field(default_factory=dict)
    """Resources whose snapshot the bus refused for good (too large, ...), with the reason."""
    stopped: str | None = None
    """Why it stopped before the end (the deadline, the API), or None: it listed everything."""

    @property
    def complete(self) -> bool:
        return self.stopped is None and not self.refused

    def describe(self) -> str:
        counts = ", ".join(f"{self.published.get(kind, 0)} {kind}" for kind in SNAPSHOT_TYPES)
        text = f"snapshots of {counts} published"
        if self.refused:
            text += f"; {len(self.refused)} refused by the bus"
        if self.stopped:
            text += f"; stopped early: {self.stopped}"
        return text


class Backfill:
    """Snapshots of what the API lists, onto the bus."""

    def __init__(
        self,
        api: Listings,
        events: EventBridgeClient,
        bus_name: str,
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._api = api
        self._events = events
        self._bus = bus_name
        self._now = now
        self._sleep = sleep

    def run(self, progress: Callable[[Backfilled], None] = lambda _: None) -> Backfilled:
        """List every campaign, then every response, publishing as it goes.

        An API error or the client's deadline stops it (`Backfilled.stopped` says which),
        once what was listed is published; a bus that keeps refusing raises BackfillError.
        """
        done = Backfilled()
        listings: list[tuple[MirrorKind, Callable[[], Iterator[Listed]]]] = [
            (MirrorKind.CAMPAIGNS, self._api.iter_campaigns),
            (MirrorKind.RESPONSES, self._api.iter_responses),
        ]
        with self._api.priority(Priority.BACKGROUND):
            try:
                tenant = self._api.me().tenant_id
            except Pay4FeedbackError as exc:
                return replace(done, stopped=_why(exc))
            for kind, listing in listings:
                done = self._snapshot(kind, listing, tenant, done, progress)
                if done.stopped:
                    break
        return done

    def _snapshot(
        self,
        kind: MirrorKind,
        listing: Callable[[], Iterator[Listed]],
        tenant: str,
        done: Backfilled,
        progress: Callable[[Backfilled], None],
    ) -> Backfilled:
        batch: list[Listed] = []
        stopped = None
        try:
            for resource in listing():
                batch.append(resource)
                if len(batch) == _ENTRIES_PER_CALL:
                    done = self._publish(kind, batch, tenant, done)
                    progress(done)
                    batch = []
        except Pay4FeedbackError as exc:
            logger.warning("the backfill stopped early", extra={"reason": str(exc)})
            stopped = _why(exc)
        if batch:
            done = self._publish(kind, batch, tenant, done)
            progress(done)
        return replace(done, stopped=stopped)

    def _publish(
        self, kind: MirrorKind, resources: list[Listed], tenant: str, done: Backfilled
    ) -> Backfilled:
        taken_at = self._now()
        pending: dict[str, PutEventsRequestEntryTypeDef] = {}
        refused: dict[str, str] = {}
        for resource in resources:
            entry = _entry(
                self._bus, snapshot_event(kind, resource, tenant_id=tenant, taken_at=taken_at)
            )
            if _size(entry) > MAX_EVENT_BYTES:
                refused[resource.id] = f"larger than the {MAX_EVENT_BYTES:,} bytes of an event"
            else:
                pending[resource.id] = entry
        for batch in _calls(pending):
            refused |= self._put(batch)
        published = dict(done.published)
        published[kind] = published.get(kind, 0) + len(resources) - len(refused)
        return replace(done, published=published, refused=done.refused | refused)

    def _put(self, pending: dict[str, PutEventsRequestEntryTypeDef]) -> dict[str, str]:
        """Put one call's entries, retrying those a retry can fix; the ones refused for good."""
        pending = dict(pending)
        refused: dict[str, str] = {}
        for attempt in range(1, _PUT_ATTEMPTS + 1):
            ids = list(pending)
            try:
                answer = self._events.put_events(Entries=[pending[i] for i in ids])
            except (ClientError, BotoCoreError) as exc:
                if attempt == _PUT_ATTEMPTS:
                    raise BackfillError(f"the bus did not take snapshots: {exc}") from exc
                self._sleep(attempt)
                continue
            for resource_id, result in zip(ids, answer["Entries"], strict=True):
                code = result.get("ErrorCode")
                if not code:
                    del pending[resource_id]
                elif code not in _TEMPORARY:
                    refused[resource_id] = f"{code}: {result.get('ErrorMessage', '')}"
                    del pending[resource_id]
            if not pending:
                break
            self._sleep(attempt)
        if pending:
            raise BackfillError(f"the bus kept refusing {len(pending)} snapshots (throttled)")
        return refused


_TEMPORARY = frozenset({"ThrottlingException", "InternalFailure", "InternalException"})
"""PutEvents entry errors a retry can fix; any other refuses the entry for good."""


def _entry(bus: str, body: dict[str, Any]) -> PutEventsRequestEntryTypeDef:
    return {
        "EventBusName": bus,
        "Source": BRIDGE_SOURCE,
        "DetailType": body["type"],
        "Detail": json.dumps(body, separators=(",", ":")),
    }


def _size(entry: PutEventsRequestEntryTypeDef) -> int:
    """An entry's size as EventBridge counts it (source, detail-type and detail)."""
    return sum(len(entry[key].encode()) for key in ("Source", "DetailType", "Detail"))


def _calls(
    entries: dict[str, PutEventsRequestEntryTypeDef],
) -> Iterator[dict[str, PutEventsRequestEntryTypeDef]]:
    """The entries in PutEvents calls: ten at most, and no more bytes than one event may have."""
    call: dict[str, PutEventsRequestEntryTypeDef] = {}
    for resource_id, entry in entries.items():
        size = sum(map(_size, call.values()))
        if call and (len(call) == _ENTRIES_PER_CALL or size + _size(entry) > MAX_EVENT_BYTES):
            yield call
            call = {}
        call[resource_id] = entry
    if call:
        yield call


def _why(exc: Pay4FeedbackError) -> str:
    return f"{type(exc).__name__}: {exc}"
