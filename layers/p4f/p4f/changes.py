"""The identity of a state change: (resource id, event type, the resource's time field for it).

The one owner of what makes two events "the same change", whichever path brought them: the
webhook receiver claims the identity of each event it is delivered, the reconciler that of
each change it finds in the API, both in the idempotency table (p4f.dedupe), so that the
second to come is a duplicate.

    campaign_created                              data.created_at
    campaign_updated, campaign_paused, _resumed   data.updated_at   (repeatable: each change
                                                                     has a time of its own)
    response_submitted, response_scored           data.submitted_at (each happens once)
    reward_approved, reward_rejected              data.reviewed_at

Pings and payouts have none: no list endpoint shows them, so nothing but a webhook brings
them. Kept free of pydantic: the webhook receiver's cold start pays only for what it uses.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

CHANGE_TIME_FIELDS: dict[str, str] = {
    "campaign_created": "created_at",
    "campaign_updated": "updated_at",
    "campaign_paused": "updated_at",
    "campaign_resumed": "updated_at",
    "response_submitted": "submitted_at",
    "response_scored": "submitted_at",
    "reward_approved": "reviewed_at",
    "reward_rejected": "reviewed_at",
}
"""Which of the resource's own fields dates each event type the reconciler can find."""
CHANGE_KEY_PREFIX = "change#"
"""The idempotency table's items of change identities (its other items are event ids)."""
RECONCILED_ID_PREFIX = "evt_reconciled_"


@dataclass(frozen=True)
class Change:
    """One state change of a campaign or response."""

    resource_id: str
    event_type: str
    at: datetime
    """The resource's time field for this event type (kept in UTC)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "at", self.at.astimezone(UTC))

    @property
    def identity(self) -> str:
        return f"{self.resource_id}|{self.event_type}|{self.at.isoformat(timespec='microseconds')}"

    @property
    def key(self) -> str:
        """The idempotency table's key of this change (a digest: resource ids may be long)."""
        return CHANGE_KEY_PREFIX + _digest(self.identity)

    @property
    def event_id(self) -> str:
        """The id of the event the reconciler publishes for it: the same change found twice
        gives the same id."""
        return RECONCILED_ID_PREFIX + _digest(self.identity)[:32]


def change_of(event_type: str, data: Any) -> Change | None:
    """The change an event of `event_type` with resource `data` is about; None when the type
    has no time field or `data` lacks the resource's id or time."""
    field = CHANGE_TIME_FIELDS.get(event_type)
    if field is None or not isinstance(data, dict):
        return None
    resource_id, at = data.get("id"), utc_time(data.get(field))
    if not isinstance(resource_id, str) or not resource_id or at is None:
        return None
    return Change(resource_id, event_type, at)


def utc_time(value: Any) -> datetime | None:
    """An ISO 8601 time as an aware UTC datetime (a naive one is read as UTC); None when
    `value` is not such a time, or its UTC is outside years 1-9999."""
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value)
        return (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
