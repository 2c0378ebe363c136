"""Events as they reach the mirror's rules: Pay4Feedback's and the backfill's snapshots."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from local.lambda_events import eventbridge_event
from local.sample_events import catalogue_event
from p4f.fanout import BRIDGE_SOURCE, EVENT_SOURCE
from p4f.mirror import KIND_MODELS, MirrorKind, snapshot_event


def live(
    event_type: str, at: str, *, reconciled_at: str | None = None, **data: Any
) -> dict[str, Any]:
    """A Pay4Feedback event on the bus, sent at `at`, its data the sample's with `data`."""
    body = catalogue_event(event_type, **data) | {"id": f"evt_{uuid.uuid4().hex}", "created_at": at}
    if reconciled_at is not None:
        body["reconciled_at"] = reconciled_at
    return eventbridge_event(body, detail_type=event_type, source=EVENT_SOURCE, event_time=at)


def snapshot(kind: MirrorKind, resource: dict[str, Any], taken_at: str) -> dict[str, Any]:
    """A backfill snapshot of `resource` on the bus, listed at `taken_at`."""
    body = snapshot_event(
        kind,
        KIND_MODELS[kind].model_validate(resource),
        tenant_id="5b3a1f0c-2d4e-4f6a-9b8c-7d6e5f4a3b2c",
        taken_at=datetime.fromisoformat(taken_at),
    )
    return eventbridge_event(
        body, detail_type=body["type"], source=BRIDGE_SOURCE, event_time=taken_at
    )
