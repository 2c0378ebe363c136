"""A typed client of the sandbox's /_sandbox admin endpoints, for tests, demos and the
local stack: what a respondent, the AI scorer and the payment provider would do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
from pydantic import BaseModel

from local.sandbox.webhooks import DeliveryAttempt
from p4f.models import Payout, PayoutStatus, Response, WebhookEvent

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence


class SandboxAdminError(RuntimeError):
    """The sandbox refused an admin request."""


class SandboxStats(BaseModel):
    """`GET /_sandbox/stats`: one tenant's /api/v1 requests since the sandbox started."""

    requests: int
    """Every request answered (authenticated as the tenant), 429s included."""
    rate_limited: int
    """Of those, the ones answered 429."""


class SandboxAdmin:
    """Admin calls of one tenant of a sandbox (authenticated with that tenant's key)."""

    def __init__(self, base_url: str, api_key: str, *, timeout: float = 10.0) -> None:
        self._http = httpx.Client(
            base_url=f"{base_url.rstrip('/')}/_sandbox",
            headers={"X-API-Key": api_key},
            timeout=timeout,
        )

    def __repr__(self) -> str:
        return f"SandboxAdmin(base_url={str(self._http.base_url)!r})"

    def close(self) -> None:
        self._http.close()

    def submit_response(
        self,
        campaign_id: str,
        *,
        respondent: Mapping[str, str] | None = None,
        answers: Sequence[Mapping[str, Any]] | None = None,
    ) -> Response:
        """A respondent submits feedback to an ACTIVE campaign."""
        body: dict[str, Any] = {}
        if respondent is not None:
            body["respondent"] = dict(respondent)
        if answers is not None:
            body["answers"] = [dict(answer) for answer in answers]
        return Response.model_validate(
            self._call("POST", f"/campaigns/{campaign_id}/responses", body)
        )

    def score(self, response_id: str, score: int) -> Response:
        """The AI scores a response (the verdict and breakdown are derived from the score)."""
        return Response.model_validate(
            self._call("POST", f"/responses/{response_id}/score", {"score": score})
        )

    def pay_out(
        self, response_id: str, status: PayoutStatus, failure_reason: str | None = None
    ) -> Payout:
        """The payment provider pays (or fails to pay) an approved reward."""
        body: dict[str, Any] = {"status": status}
        if failure_reason is not None:
            body["failure_reason"] = failure_reason
        return Payout.model_validate(self._call("POST", f"/responses/{response_id}/payout", body))

    def arm_fault(self, **fault: Any) -> None:
        """The next matching /api/v1 requests fail or answer late: see FaultBody.

        `arm_fault(drop_deliveries=True)`: until `clear_faults()`, webhooks are neither
        delivered nor retried (their events stay in `events()`), as in an outage of the
        receiver longer than the sender's retries; `release_dropped()` delivers them late.
        """
        self._call("POST", "/faults", fault)

    def clear_faults(self) -> None:
        self._call("DELETE", "/faults")

    def release_dropped(self) -> int:
        """Deliver now the webhooks dropped while a drop_deliveries fault was armed; how
        many deliveries there were."""
        released: int = self._call("POST", "/deliveries/release")["released"]
        return released

    def issue_key(self) -> str:
        """A new API key for this tenant (for key rotation)."""
        api_key: str = self._call("POST", "/keys")["api_key"]
        return api_key

    def revoke_key(self, api_key: str) -> None:
        self._call("POST", "/keys/revoke", {"api_key": api_key})

    def set_rate_limit(self, limit: int, window: float) -> None:
        self._call("PUT", "/rate-limit", {"limit": limit, "window": window})

    def events(self) -> list[WebhookEvent]:
        """Every event emitted for this tenant, newest first."""
        return [WebhookEvent.model_validate(e) for e in self._call("GET", "/events")]

    def stats(self) -> SandboxStats:
        """How many /api/v1 requests of this tenant the sandbox answered, and how many of
        those answers were 429s."""
        return SandboxStats.model_validate(self._call("GET", "/stats"))

    def deliveries(self) -> list[DeliveryAttempt]:
        """Every webhook delivery attempt for this tenant, newest first."""
        return [DeliveryAttempt.model_validate(a) for a in self._call("GET", "/deliveries")]

    def _call(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        answer = self._http.request(method, path, json=body)
        payload = answer.json()
        if not answer.is_success:
            raise SandboxAdminError(
                f"{method} /_sandbox{path}: {payload.get('error', answer.text)}"
            )
        return payload["data"]
