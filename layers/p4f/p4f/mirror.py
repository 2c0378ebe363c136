"""The warehouse mirror's rows: which resources it keeps, which events fill each table, and
the snapshot events the backfill publishes.

One table per kind of resource (campaigns, responses, payouts). Every catalogue event whose
`data` is that resource becomes one row of its table; so does a snapshot: an event the
bridge itself puts on its bus (source `p4f-bridge`) carrying a resource as the API lists
it, shaped like a webhook event so that the same rules and the same transformation turn
it into a row. Payouts have no list endpoint in the API, so they have no snapshots.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from enum import StrEnum
from typing import Any

from p4f.models import EVENT_DATA_MODELS, ApiModel, Campaign, Payout, Response

SNAPSHOT_PREFIX = "snap_"


class MirrorKind(StrEnum):
    """A table of the mirror, named after the resources it holds."""

    CAMPAIGNS = "campaigns"
    RESPONSES = "responses"
    PAYOUTS = "payouts"


KIND_MODELS: dict[MirrorKind, type[ApiModel]] = {
    MirrorKind.CAMPAIGNS: Campaign,
    MirrorKind.RESPONSES: Response,
    MirrorKind.PAYOUTS: Payout,
}
"""The resource each table holds: its columns are the model's fields."""

SNAPSHOT_TYPES: dict[MirrorKind, str] = {
    MirrorKind.CAMPAIGNS: "campaign_snapshot",
    MirrorKind.RESPONSES: "response_snapshot",
}
"""The event type (and detail-type) of a snapshot, by kind; payouts cannot be listed."""


def event_types(kind: MirrorKind) -> list[str]:
    """The catalogue event types whose rows land in `kind`'s table, in catalogue order."""
    model = KIND_MODELS[kind]
    return [event_type.value for event_type, data in EVENT_DATA_MODELS.items() if data is model]


def snapshot_event(
    kind: MirrorKind, resource: ApiModel, *, tenant_id: str, taken_at: datetime
) -> dict[str, Any]:
    """A snapshot of `resource` as an event body, `taken_at` being when the API listed it.

    Its id is derived from the resource as listed: the same state snapshotted twice has the
    same id, so a second backfill adds nothing the current-state views would count twice.
    """
    data = resource.model_dump(mode="json")
    digest = hashlib.sha256(
        json.dumps([kind.value, data], sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()
    return {
        "id": f"{SNAPSHOT_PREFIX}{digest[:32]}",
        "type": SNAPSHOT_TYPES[kind],
        "created_at": taken_at.isoformat().replace("+00:00", "Z"),
        "tenant_id": tenant_id,
        "api_version": "v1",
        "data": data,
    }
