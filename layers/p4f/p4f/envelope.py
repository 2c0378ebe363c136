"""The envelope around every Pay4Feedback answer, and around the bridge's own answers.

    {"success": true,  "data": {...},   "timestamp": "2026-04-19T14:22:51Z"}
    {"success": false, "error": "...",  "timestamp": "2026-04-19T14:22:51Z"}

The client reads it, and the bridge's HTTP endpoints (and the local sandbox) write it, so
that a caller of the bridge sees the same shape as a caller of the API. Plain typing only:
the webhook receiver uses this module and keeps pydantic out of its cold start.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal, NotRequired, TypedDict


class SuccessEnvelope(TypedDict):
    success: Literal[True]
    data: Any
    timestamp: NotRequired[str]
    next: NotRequired[str | None]
    """API v1.1, on a list that has more pages: the cursor of the next (`?cursor=`)."""


class ErrorEnvelope(TypedDict):
    success: Literal[False]
    error: str
    # The reference's own 429 example carries no timestamp.
    timestamp: NotRequired[str]


def utc_timestamp(now: datetime | None = None) -> str:
    """The API's timestamp format: UTC, whole seconds, `Z` suffix."""
    return (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def success(data: Any) -> SuccessEnvelope:
    """A success envelope around `data`."""
    return {"success": True, "data": data, "timestamp": utc_timestamp()}


def failure(message: str) -> ErrorEnvelope:
    """An error envelope carrying a message for the caller."""
    return {"success": False, "error": message, "timestamp": utc_timestamp()}
