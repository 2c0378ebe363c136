"""What a sandbox is started with: its tenants' keys, API version, rate limit and webhook
retry policy."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from local.sandbox.pages import LIST_LIMIT, ApiVersion

THREE_DAYS = 3 * 24 * 3600.0
"""How long Pay4Feedback keeps retrying a webhook delivery (contract/webhooks.md)."""

type ApiKey = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class SandboxSettings(BaseModel):
    """The sandbox's configuration; each API key is a tenant of its own."""

    model_config = ConfigDict(frozen=True)

    # Kept out of repr so that logging the settings never shows a key.
    api_keys: tuple[ApiKey, ...] = Field(min_length=1, repr=False)
    api_version: ApiVersion = "1.0"
    """1.0 as the reference is today; 1.1 as its changelog plans it: cursor pagination,
    Idempotency-Key on POSTs, filters on /responses (`local.sandbox.pages`, `.idempotency`)."""
    page_size: int = Field(default=100, ge=1, le=LIST_LIMIT)
    """Rows a page of a v1.1 list holds."""
    rate_limit: int = Field(default=60, ge=1)
    """Requests a tenant may make in `rate_window` seconds (the reference: 60 a minute)."""
    rate_window: float = Field(default=60.0, gt=0)
    webhook_retry_base: float = Field(default=1.0, gt=0)
    """Seconds before the first retry of a failed delivery; doubled after each failure."""
    webhook_retry_for: float = Field(default=THREE_DAYS, ge=0)
    """Seconds after an event during which its failed deliveries are retried."""
    webhook_timeout: float = Field(default=10.0, gt=0)
    """Seconds a delivery waits for the receiver's answer (the contract: 10)."""

    @field_validator("api_keys")
    @classmethod
    def _distinct(cls, keys: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(keys)) != len(keys):
            raise ValueError("each API key must be given once (one key per tenant)")
        return keys
