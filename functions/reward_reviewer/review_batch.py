"""The reward reviewer's SQS batches: records from its two queues, one answer for SQS.

    review queue     EventBridge events from the bus rule: response_scored, and
                     response_submitted with its quality set (p4f.forwarding.read_record)
    decision queue   SlackDecision messages from review_actions (a reviewer's click)

Each record is read, handed to the reviewer, and then:

    done       deleted (reported nothing)
    deferred   sent to its own queue again with DelaySeconds = the pause asked for
               (p4f.deferral: a rate limit is not a failure and never counts toward the DLQ)
    failed     a batch item failure: SQS delivers it again after the visibility timeout,
               and after maxReceiveCount moves it to the dead-letter queue (alarmed)
    poison     a record that is neither: failed alone, never its batch

A record is not started with less than MIN_SECONDS_PER_RECORD left: it is deferred.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from pydantic import ValidationError
from reviewer import Fate, Reviewed

from p4f.deferral import Deferred
from p4f.forwarding import PoisonRecordError, read_record
from p4f.models import EventType, Response
from p4f.reviews import SlackDecision

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from reviewer import RewardReviewer

    from p4f.deferral import Deferral

logger = Logger(child=True)

MIN_SECONDS_PER_RECORD = 5.0
REVIEWED_TYPES = frozenset({EventType.RESPONSE_SCORED, EventType.RESPONSE_SUBMITTED})


def read(record: Mapping[str, Any]) -> Response | SlackDecision:
    """What a record asks for; PoisonRecordError, saying why, if it is neither kind."""
    body = str(record.get("body", ""))
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and parsed.get("kind") == "slack_decision":
        try:
            return SlackDecision.model_validate(parsed)
        except ValidationError:
            raise PoisonRecordError("the record is not a SlackDecision of review_actions") from None
    queued = read_record(SQSRecord(dict(record)))
    if queued.event.type not in REVIEWED_TYPES or not isinstance(queued.resource, Response):
        raise PoisonRecordError(
            f"a {str(queued.event.type)[:64]!r} event: only response_scored and "
            "response_submitted are reviewed (see the rule's event pattern)"
        )
    return queued.resource


@dataclass(frozen=True)
class RecordReviewed:
    message_id: str
    reviewed: Reviewed
    ids: Mapping[str, str]
    """What the record is about, for logs: response id, and the reviewer for a click."""


@dataclass(frozen=True)
class Batch:
    records: list[RecordReviewed]
    failed: frozenset[str]

    def answer(self) -> dict[str, Any]:
        return {"batchItemFailures": [{"itemIdentifier": m} for m in sorted(self.failed)]}


class ReviewBatch:
    def __init__(self, reviewer: RewardReviewer, deferrals: Mapping[str, Deferral]) -> None:
        """`deferrals`: a Deferral for each queue, by the queue's name."""
        self._reviewer = reviewer
        self._deferrals = deferrals

    def consume(
        self, records: Sequence[Mapping[str, Any]], seconds_left: Callable[[], float]
    ) -> Batch:
        done: list[RecordReviewed] = []
        deferred: dict[str, list[Deferred]] = defaultdict(list)
        failed: set[str] = set()
        for record in records:
            one = self._one(record, seconds_left)
            done.append(one)
            if one.reviewed.fate is Fate.FAILED:
                failed.add(one.message_id)
            elif one.reviewed.fate is Fate.DEFERRED:
                queue = str(record.get("eventSourceARN", "")).rsplit(":", 1)[-1]
                deferred[queue].append(Deferred.of(record, one.reviewed.retry_after))
        for queue, entries in deferred.items():
            deferral = self._deferrals.get(queue)
            if deferral is None:  # not one of ours: let SQS deliver it again
                failed |= {entry.message_id for entry in entries}
                continue
            failed |= deferral.defer(entries)
        return Batch(done, frozenset(failed))

    def _one(self, record: Mapping[str, Any], seconds_left: Callable[[], float]) -> RecordReviewed:
        message_id = str(record.get("messageId", ""))
        try:
            asked = read(record)
        except PoisonRecordError as exc:
            return RecordReviewed(message_id, Reviewed(Fate.FAILED, f"poison: {exc}"), {})
        if isinstance(asked, SlackDecision):
            ids = {"response_id": asked.response_id, "slack_user": asked.user_id}
        else:
            ids = {"response_id": asked.id, "campaign_id": asked.campaign_id}
        seconds = seconds_left()
        if seconds < MIN_SECONDS_PER_RECORD:
            late = Reviewed(Fate.DEFERRED, "too little time left in this invocation", retry_after=1)
            return RecordReviewed(message_id, late, ids)
        if isinstance(asked, SlackDecision):
            return RecordReviewed(message_id, self._reviewer.decide(asked, seconds), ids)
        return RecordReviewed(message_id, self._reviewer.review(asked, seconds), ids)
