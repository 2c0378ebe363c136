"""The envelope around every Pay4Feedback answer, and around the bridge's own answers.

    {"success": true,  "data": {...},   "timestamp": "2026-04-19T14:22:51Z"}
    {"success": false, "error": "...",  "timestamp": "2026-04-19T14:22:51Z"}

The client reads it, and the bridge's HTTP endpoints (and the local sandbox) write it, so
that a caller of the bridge sees the same shape as a caller of the API.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, JsonValue


class SuccessEnvelope(BaseModel):
    model_config = ConfigDict(extra="allow")

    success: Literal[True]
    data: JsonValue
    timestamp: datetime | None = None


class ErrorEnvelope(BaseModel):
    model_config = ConfigDict(extra="allow")

    success: Literal[False]
    error: str
    # The reference's own 429 example carries no timestamp, so it is optional here.
    timestamp: datetime | None = None


def utc_timestamp(now: datetime | None = None) -> str:
    """The API's timestamp format: UTC, whole seconds, `Z` suffix."""
    return (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def success(data: JsonValue) -> dict[str, JsonValue]:
    """A success envelope around `data`."""
    return {"success": True, "data": data, "timestamp": utc_timestamp()}


def failure(message: str) -> dict[str, JsonValue]:
    """An error envelope carrying a message for the caller."""
    return {"success": False, "error": message, "timestamp": utc_timestamp()}
