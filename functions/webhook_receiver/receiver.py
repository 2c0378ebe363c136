"""The webhook receiver's logic: verify, parse, dedupe, publish, answer.

Plain Python with its collaborators passed in; `app.py` builds them from the environment.
Every answer carries the API's envelope. A 2xx means every configured target accepted
the event (or accepted it on an earlier delivery); anything else makes Pay4Feedback retry.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger

from p4f import settings as env_readers
from p4f.fanout import MAX_EVENT_BYTES, InvalidEventError, ReceivedEvent, UnpublishableEventError
from p4f.function_url import error_answer, success_answer
from p4f.publish_once import OncePublisher, Publication
from p4f.retries import Deadline
from p4f.secrets import SecretError
from p4f.signing import (
    DEFAULT_TOLERANCE_SECONDS,
    SIGNATURE_HEADER,
    SignatureMismatchError,
    SignatureVerificationError,
    verify,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from p4f.dedupe import DeliveryLedger
    from p4f.fanout import FanOut
    from p4f.function_url import HttpRequest
    from p4f.secrets import SigningSecrets

logger = Logger(child=True)

# A rotated signing secret is looked up again at most this often, however many forged
# deliveries arrive.
_SECRET_RECHECK_SECONDS = 60.0
_ANSWER_MARGIN_SECONDS = 3.0
"""Time kept for the last ledger write (one AWS call, retried by botocore) and the answer."""


@dataclass(frozen=True)
class Settings:
    webhook_secret_arn: str
    idempotency_table: str
    event_bus_name: str | None
    fanout_queue_url: str | None
    signature_tolerance_seconds: int

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        found = cls(
            webhook_secret_arn=env_readers.required(env, "WEBHOOK_SECRET_ARN"),
            idempotency_table=env_readers.required(env, "IDEMPOTENCY_TABLE"),
            event_bus_name=env_readers.optional(env, "EVENT_BUS_NAME"),
            fanout_queue_url=env_readers.optional(env, "FANOUT_QUEUE_URL"),
            signature_tolerance_seconds=env_readers.integer(
                env, "SIGNATURE_TOLERANCE_SECONDS", DEFAULT_TOLERANCE_SECONDS, minimum=1
            ),
        )
        if not (found.event_bus_name or found.fanout_queue_url):
            raise env_readers.ConfigurationError(
                "set EVENT_BUS_NAME, FANOUT_QUEUE_URL or both: events need somewhere to go"
            )
        return found


class Outcome(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"
    BUSY = "busy"
    FAILED = "failed"


@dataclass(frozen=True)
class Reception:
    """What became of one delivery, and the function URL answer that says so."""

    outcome: Outcome
    answer: dict[str, Any]
    event_id: str | None = None
    event_type: str | None = None
    reason: str | None = None
    bad_signature: bool = False
    """Refused because its signature did not verify (a broken secret rotation looks so)."""


def rejection(status: int, reason: str, headers: Mapping[str, str] | None = None) -> Reception:
    """A delivery refused with a 4xx: nothing is forwarded."""
    return Reception(Outcome.REJECTED, error_answer(status, reason, headers), reason=reason)


class WebhookReceiver:
    def __init__(
        self,
        *,
        secrets: SigningSecrets,
        ledger: DeliveryLedger,
        fanout: FanOut,
        tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
    ) -> None:
        self._secrets = secrets
        self._fanout = fanout
        self._publisher = OncePublisher(ledger, fanout)
        self._tolerance = tolerance_seconds

    def receive(self, request: HttpRequest, hold_seconds: float) -> Reception:
        """Handle one delivery; `hold_seconds` is how long this invocation may still run."""
        refusal = self._refusal(request)
        if refusal is not None:
            return refusal
        try:
            event = ReceivedEvent.parse(request.body)
            self._fanout.check(event)
        except InvalidEventError as exc:
            return rejection(400, str(exc))
        except UnpublishableEventError as exc:
            return rejection(exc.status, f"the event can never be published: {exc}")
        return self._publish_once(event, hold_seconds)

    def _refusal(self, request: HttpRequest) -> Reception | None:
        """Why the request is refused before its body is read (None: it is Pay4Feedback's)."""
        if request.method != "POST":
            return rejection(405, "only POST is accepted", {"Allow": "POST"})
        if len(request.body) > MAX_EVENT_BYTES:
            return rejection(413, f"the body is larger than {MAX_EVENT_BYTES} bytes")
        try:
            self._verify(request)
        except SignatureVerificationError as exc:
            return replace(rejection(401, f"invalid signature: {exc}"), bad_signature=True)
        except SecretError as exc:
            logger.exception("the signing secret cannot be read")
            reply = error_answer(500, "the receiver cannot check signatures now; retry later")
            return Reception(Outcome.FAILED, reply, reason=str(exc))
        return None

    def _verify(self, request: HttpRequest) -> None:
        """Raise a SignatureVerificationError unless a configured secret signed the body."""
        header = request.header(SIGNATURE_HEADER)
        try:
            verify(request.body, header, self._secrets.get(), self._tolerance)
        except SignatureMismatchError:
            # The secret may have been rotated since it was cached.
            fresh = self._secrets.refresh(unless_younger_than=_SECRET_RECHECK_SECONDS)
            verify(request.body, header, fresh, self._tolerance)

    def _publish_once(self, event: ReceivedEvent, hold_seconds: float) -> Reception:
        def answer(outcome: Outcome, reply: dict[str, Any], reason: str | None = None) -> Reception:
            return Reception(outcome, reply, event.id, event.type, reason)

        deadline = Deadline(hold_seconds - _ANSWER_MARGIN_SECONDS)
        published = self._publisher.publish(event, hold_seconds, deadline)
        if published.outcome is Publication.FAILED:
            reply = error_answer(503, f"{published.reason}; retry later")
            return answer(Outcome.FAILED, reply, published.detail)
        if published.outcome is Publication.BUSY:
            reply = error_answer(409, f"{published.reason}; retry later")
            return answer(Outcome.BUSY, reply, published.reason)
        # A 2xx: every configured target has the event, from this delivery or an earlier
        # one (or has the state change it is about, from the reconciler).
        duplicate = published.outcome is Publication.DUPLICATE
        reply = success_answer(200, {"event_id": event.id, "duplicate": duplicate})
        return answer(Outcome.DUPLICATE if duplicate else Outcome.ACCEPTED, reply)
