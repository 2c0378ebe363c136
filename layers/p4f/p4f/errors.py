"""Exceptions raised by the Pay4Feedback client.

    Pay4FeedbackError               any failure of a call to the API (status, message, timestamp)
    ├── InvalidRequestError         400: the body or an id is invalid; the message names the field
    ├── AuthenticationError         401: the API key is missing, invalid or revoked
    ├── NotFoundError               404: no such resource in this tenant (other tenants' ids too)
    ├── ConflictError               409: the resource's state forbids the action
    │   └── ResponseAlreadyReviewedError   approve/reject of a response no longer PENDING
    ├── RateLimitError              429: over 60 requests/minute; `retry_after` says when to retry
    ├── ServerError                 5xx: Pay4Feedback (or a proxy in front of it) failed
    └── ApiConnectionError          no answer: connection refused, reset or timed out

Each message ends with what to do about it, taken from the reference's
"Errors you'll actually see" table. No message ever contains the API key.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from p4f.models import Response


class Pay4FeedbackError(Exception):
    """A call to the Pay4Feedback API failed."""

    hint = "See https://app.pay4feedback.com/swagger-ui/index.html for the API contract."

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        timestamp: datetime | None = None,
    ) -> None:
        self.message = message
        self.status = status
        self.timestamp = timestamp
        super().__init__(message)

    def __str__(self) -> str:
        where = [f"HTTP {self.status}"] if self.status is not None else []
        if self.timestamp is not None:
            where.append(f"server time {self.timestamp.isoformat()}")
        suffix = f" ({', '.join(where)})" if where else ""
        return f"{self.message}{suffix}. {self.hint}"


class InvalidRequestError(Pay4FeedbackError):
    """400: the request body or an id is invalid."""

    hint = "Check the field named in the message."


class AuthenticationError(Pay4FeedbackError):
    """401: the API key is missing, invalid or revoked."""

    hint = (
        "Check the API key (Settings -> API Keys in the dashboard); a revoked key must be "
        "replaced by a new one in its secret."
    )


class NotFoundError(Pay4FeedbackError):
    """404: the resource does not exist in this key's tenant."""

    hint = "Verify the id: ids of other tenants answer 404 too."


class ConflictError(Pay4FeedbackError):
    """409: the resource's current state does not allow the action."""

    hint = "Fetch the resource's current state before acting on it."


class ResponseAlreadyReviewedError(ConflictError):
    """409 to approve or reject: the response was reviewed already; `response` is it now."""

    hint = "Someone (or something) else decided this reward: `response.status` says what."

    def __init__(self, message: str, *, response: Response) -> None:
        super().__init__(message, status=409)
        self.response = response


class RateLimitError(Pay4FeedbackError):
    """429: the tenant's 60 requests/minute are used up."""

    hint = "Retry after the number of seconds in retry_after."

    def __init__(
        self,
        message: str,
        *,
        retry_after: float,
        status: int | None = 429,
        timestamp: datetime | None = None,
    ) -> None:
        super().__init__(message, status=status, timestamp=timestamp)
        self.retry_after = retry_after


class ServerError(Pay4FeedbackError):
    """5xx: Pay4Feedback, or a proxy in front of it, failed."""

    hint = (
        "Retry with exponential backoff; if it persists, email support@pay4feedback.com "
        "with the server time."
    )


class ApiConnectionError(Pay4FeedbackError):
    """The API could not be reached, or did not answer in time."""

    hint = "Check the base URL and the network path to it, then retry."

    def __init__(self, message: str, *, request_sent: bool) -> None:
        super().__init__(message)
        # True when the request may have reached the API before the answer was lost: a
        # POST may then have taken effect, and must be checked before it is repeated.
        self.request_sent = request_sent


def error_for_status(status: int) -> type[Pay4FeedbackError]:
    """The exception class for an HTTP error status."""
    if status >= 500:
        return ServerError
    return _BY_STATUS.get(status, Pay4FeedbackError)


_BY_STATUS: dict[int, type[Pay4FeedbackError]] = {
    400: InvalidRequestError,
    401: AuthenticationError,
    404: NotFoundError,
    409: ConflictError,
}
