"""The Slack forwarder does not announce a reconciled event whose change is older than
RECONCILED_MAX_AGE_MINUTES: a reconciler's first run must not flood a channel with history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from slack_delivery import SlackForwarder, SlackSecret

from local.sample_events import catalogue_event, forwarder_record
from p4f.dedupe import DeliveryLedger
from p4f.forwarding import Prepared, QueuedEvent, read_record
from p4f.models import EventType

NOW = datetime(2026, 4, 19, 14, 0, tzinfo=UTC)


def never_called(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"nothing is posted: {request.url}")


def forwarder() -> SlackForwarder:
    return SlackForwarder(
        SlackSecret("arn:aws:secretsmanager:us-east-1:123456789012:secret:slack"),
        httpx.Client(transport=httpx.MockTransport(never_called)),
        DeliveryLedger("unused", object()),  # type: ignore[arg-type]  # never used
        reconciled_max_age=timedelta(minutes=60),
        now=lambda: NOW,
    )


def event(changed_minutes_ago: int, *, reconciled: bool) -> QueuedEvent:
    body = catalogue_event(EventType.REWARD_APPROVED)
    body["created_at"] = (NOW - timedelta(minutes=changed_minutes_ago)).isoformat()
    if reconciled:
        body["reconciled_at"] = NOW.isoformat()
    return read_record(SQSRecord(forwarder_record(body, queue_arn="arn:q", message_id="m")))


def test_a_reconciled_event_older_than_the_limit_is_not_announced() -> None:
    slack = forwarder()
    stale = event(61, reconciled=True)
    assert slack.prepare(stale) is None
    assert slack.forward([Prepared(stale, None)], seconds=5) == {}  # done, not failed


def test_recent_reconciled_events_and_webhooks_of_any_age_are_announced() -> None:
    slack = forwarder()
    assert slack.prepare(event(59, reconciled=True)) is not None
    assert slack.prepare(event(600, reconciled=False)) is not None


def test_a_backlog_of_old_reconciled_events_makes_no_digest() -> None:
    slack = forwarder()  # digests above 5 events: these 8 would make one
    backlog = [event(61 + n, reconciled=True) for n in range(8)]
    assert slack.forward([Prepared(queued, slack.prepare(queued)) for queued in backlog], 5) == {}
