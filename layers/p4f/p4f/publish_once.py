"""Publish an event once, whoever brings it: claim (p4f.dedupe), publish (p4f.fanout), record.

The one path onto the bridge's targets of Pay4Feedback events: the webhook receiver takes it
for each delivery, the reconciler for each change it found missing. The claim covers the
event's id and the state change it is about, so an event the other path brought first is a
duplicate and is not published again.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import partial
from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from p4f.dedupe import ClaimOutcome
from p4f.fanout import FanOutError

if TYPE_CHECKING:
    from p4f.dedupe import DeliveryLedger
    from p4f.fanout import FanOut, ReceivedEvent
    from p4f.retries import Deadline

logger = Logger(child=True)


class Publication(StrEnum):
    PUBLISHED = "published"
    DUPLICATE = "duplicate"
    """The event, or its state change, was published before."""
    BUSY = "busy"
    """Another invocation is publishing it now."""
    FAILED = "failed"
    """The ledger or a target did not answer: try again later."""


@dataclass(frozen=True)
class Published:
    outcome: Publication
    reason: str | None = None
    """Why it was not published, without AWS's own message (account, ARNs): fit for a sender."""
    detail: str | None = None
    """AWS's own message, for the log."""


class OncePublisher:
    def __init__(self, ledger: DeliveryLedger, fanout: FanOut) -> None:
        self._ledger = ledger
        self._fanout = fanout

    def publish(self, event: ReceivedEvent, hold_seconds: float, deadline: Deadline) -> Published:
        """Publish `event` unless it (or its change) was; `hold_seconds`: how long the claim
        may be held (the invocation's remaining time); `deadline`: the last writes' time."""
        try:
            claim = self._ledger.claim(event.id, hold_seconds, event.change)
        except (ClientError, BotoCoreError) as exc:
            reason = f"the idempotency table did not answer ({type(exc).__name__})"
            return Published(Publication.FAILED, reason, str(exc))
        if claim.outcome is ClaimOutcome.DUPLICATE:
            return Published(Publication.DUPLICATE)
        if claim.outcome is ClaimOutcome.BUSY:
            return Published(Publication.BUSY, "another delivery of this event is being processed")
        try:
            done = self._fanout.publish(
                event, skip=claim.done, before_next=partial(self._record, event.id, deadline)
            )
        except FanOutError as exc:
            self._release(event, exc.accepted | claim.done)
            return Published(Publication.FAILED, f"{exc.target} did not take the event", str(exc))
        try:
            self._ledger.complete(event.id, done, deadline)
        except (ClientError, BotoCoreError):
            # Published but not marked: still published. A delivery of the event once the
            # claim has lapsed (a second subscription, a lost answer) would publish to the
            # last target again.
            logger.exception("could not mark the event published in the idempotency table")
        return Published(Publication.PUBLISHED)

    def _record(self, event_id: str, deadline: Deadline, target: str) -> None:
        try:
            self._ledger.record_done(event_id, target, deadline)
        except (ClientError, BotoCoreError):
            # Only a crash before the next target answers would make this matter.
            logger.exception("could not record the target that took the event")

    def _release(self, event: ReceivedEvent, done: frozenset[str]) -> None:
        try:
            self._ledger.release(event.id, done, event.change)
        except (ClientError, BotoCoreError):
            # The claim lapses at the end of this invocation; the retry then publishes to
            # every target again, so a target that took it now may see it twice.
            logger.exception("could not release the claim", extra={"accepted_by": sorted(done)})
