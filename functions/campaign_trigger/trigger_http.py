"""The trigger's HTTP entry: `POST /triggers/campaigns` on its function URL, for no-code tools.

    POST /triggers/campaigns
    Authorization: Bearer <the token in the trigger token secret>
    Content-Type: application/json, application/x-www-form-urlencoded or multipart/form-data
    Idempotency-Key: <optional: repeats with it get the same campaign>

    201  {"success": true, "data": <the campaign>, ...}   (a repeat: Idempotent-Replayed: true)
    400  a field of the body is invalid or unknown (the message names it, and how to send it)
    401  no token, or not the token (WWW-Authenticate says which)
    404 / 405 / 413   another path / another method / a body over 256 KB

    GET /triggers/campaigns (with the token): what the trigger accepts, as JSON.
    409  a request with the same key is being processed (Retry-After)
    422  the key was used before with a different body
    429  Pay4Feedback's rate limit, or the bridge's own API budget, is used up (Retry-After;
         the message says which)
    5xx  Pay4Feedback or AWS failed: retry with the same key

Every answer carries the API's own envelope.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from trigger import Outcome, TriggerRequest, TriggerResult, failure, refused
from trigger_body import FIELD_HELP, MAX_KEY_LENGTH, InvalidTriggerError, TriggerBody

from p4f.function_url import error_answer, success_answer
from p4f.secrets import SecretError

if TYPE_CHECKING:
    from collections.abc import Callable

    from trigger import CampaignTrigger

    from p4f.function_url import HttpRequest
    from p4f.secrets import TriggerToken

PATH = "/triggers/campaigns"
MAX_BODY_BYTES = 256 * 1024
"""Far above any campaign (EventBridge's own limit for the same body is 256 KB)."""
IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
_CHALLENGE = 'Bearer realm="p4f-bridge"'


@dataclass(frozen=True)
class Reception:
    """What became of one request, and the function URL answer that says so."""

    result: TriggerResult
    answer: dict[str, Any]


def rejection(status: int, error: str, headers: dict[str, str] | None = None) -> Reception:
    """A request refused before it reached the trigger's logic."""
    return Reception(refused(status, error), error_answer(status, error, headers))


class TriggerEndpoint:
    def __init__(self, trigger: CampaignTrigger, token: TriggerToken) -> None:
        self._trigger = trigger
        self._token = token

    def receive(self, request: HttpRequest, seconds_left: Callable[[], float]) -> Reception:
        """Handle one request; `seconds_left()` says how long this invocation may still run
        (read after the token check, which may have waited for Secrets Manager)."""
        accepted = self._accept(request)
        if isinstance(accepted, Reception):
            return accepted
        result = self._trigger.trigger(accepted, seconds_left())
        return Reception(result, _answer(result))

    def _accept(self, request: HttpRequest) -> TriggerRequest | Reception:
        """The trigger the request asks for, or the refusal that answers it."""
        refusal = _misrouted(request) or self._authenticate(request)
        if refusal is not None:
            return refusal
        if request.method == "GET":
            return Reception(_described(), success_answer(200, DESCRIPTION))
        if len(request.body) > MAX_BODY_BYTES:
            return rejection(413, f"the body is larger than {MAX_BODY_BYTES} bytes")
        try:
            body = TriggerBody.from_http(request.header("content-type"), request.body)
        except InvalidTriggerError as exc:
            return rejection(400, str(exc))
        header = request.header(IDEMPOTENCY_HEADER)
        key = header.strip() if header is not None else None
        if key is not None and not 0 < len(key) <= MAX_KEY_LENGTH:
            return rejection(400, f"{IDEMPOTENCY_HEADER}: must be 1 to {MAX_KEY_LENGTH} characters")
        return TriggerRequest(body, body.idempotency_key(header=key))

    def _authenticate(self, request: HttpRequest) -> Reception | None:
        scheme, _, token = (request.header("authorization") or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return rejection(
                401,
                "missing Authorization: Bearer <token> header (the token is in the trigger "
                "token secret: see the README, 'The campaign trigger')",
                {"WWW-Authenticate": _CHALLENGE},
            )
        try:
            matches = self._token.matches(token.strip())
        except SecretError as exc:
            # Why is logged (the result's error), not told: the caller is not authenticated.
            return Reception(
                failure(exc),
                error_answer(500, "the trigger cannot check tokens now; tell its operator"),
            )
        if not matches:
            return rejection(
                401,
                "the bearer token is not the trigger's token; copy it again from the trigger "
                "token secret (it changes when the secret is rotated)",
                {"WWW-Authenticate": f'{_CHALLENGE}, error="invalid_token"'},
            )
        return None


DESCRIPTION = {
    "create": f"POST {PATH}",
    "headers": {
        "Authorization": "Bearer <the trigger's token>",
        IDEMPOTENCY_HEADER: "optional: one value per campaign; repeats get the same campaign",
    },
    "content_types": [
        "application/json",
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ],
    "fields": FIELD_HELP,
    "flattened_keys": {
        "reward__amount": "Zapier with Unflatten off; questions__0__prompt for a list",
        "reward.amount": "n8n's fields below; questions.0.prompt for a list",
        "reward[amount]": "Make's forms; questions[0][prompt] for a list",
    },
    "empty_fields": 'an optional field sent as "" is left out',
}
"""What `GET /triggers/campaigns` answers: the request a no-code tool should send."""


def _described() -> TriggerResult:
    return TriggerResult(Outcome.DESCRIBED, 200)


def _misrouted(request: HttpRequest) -> Reception | None:
    if request.path.rstrip("/") != PATH:
        return rejection(404, f"no such endpoint: {request.path}; POST to {PATH}")
    if request.method not in {"GET", "POST"}:
        message = f"only POST (and GET, which describes it) is accepted on {PATH}"
        return rejection(405, message, {"Allow": "GET, POST"})
    return None


def _answer(result: TriggerResult) -> dict[str, Any]:
    if result.campaign is not None:
        replayed = {REPLAYED_HEADER: "true"} if result.outcome is Outcome.REPLAYED else None
        return success_answer(result.status, result.campaign.model_dump(mode="json"), replayed)
    headers = {"Retry-After": str(result.retry_after)} if result.retry_after else None
    return error_answer(result.status, result.error or result.outcome, headers)
