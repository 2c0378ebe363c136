"""Why the sandbox refuses a request; `app.py` turns each into its one HTTP answer.

SandboxError
├── InvalidRequestError   400  the body or an id is invalid; the message names the field
├── AuthenticationError   401  the API key is missing, invalid or revoked
├── NotFoundError         404  no such resource in the caller's tenant
├── ConflictError         409  the resource's state forbids the action
├── UnprocessableError    422  an Idempotency-Key reused for another request (v1.1)
└── RateLimitedError      429  the tenant used up its requests for the window
"""

from __future__ import annotations


class SandboxError(Exception):
    """A request the sandbox refuses, with a message for the caller."""


class InvalidRequestError(SandboxError):
    """The request body or a path id is invalid."""


class AuthenticationError(SandboxError):
    """The API key is missing, unknown or revoked."""


class NotFoundError(SandboxError):
    """The resource is not in the caller's tenant (other tenants' ids included)."""


class ConflictError(SandboxError):
    """The resource's current state does not allow the action."""


class UnprocessableError(SandboxError):
    """The request is well formed but contradicts an earlier one (a reused idempotency key)."""


class RateLimitedError(SandboxError):
    """The tenant made its allowed number of requests in the current window."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"rate limited; retry in {retry_after}s")
        self.retry_after = retry_after
