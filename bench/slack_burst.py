"""Figure (3), the Slack half: a burst to Slack: seconds until the last of 500 events is visible.

A campaign launch: 250 responses arrive within `spread` seconds, each submitted and then
scored (500 events, `response_submitted` and `response_scored` in turn), sent to the Slack
forwarder's queue as the bus rule would. The queue (moto, in this process) is polled as
template.yaml's event source mapping says (its BatchSize and MaximumConcurrency, each
poller a container of its own, with the function's Timeout and environment: SLACK_CONTAINERS
paces each container, SLACK_DIGEST_ABOVE turns a backlog into digests), and the
forwarder posts with chat.postMessage to the local Slack, which holds the channel to
Slack's pace (about one message a second, short bursts allowed; a 429 with Retry-After
beyond: `local.slack_receiver.ChannelRateLimit`). Real time throughout: nothing is
compressed.

An event is visible once a message that names it (its id, in its own message's footer or
its line in a digest) is posted; the figure is the seconds from the first event's arrival
in the queue to the last one's visibility. `without_digests` runs the same burst with
SLACK_DIGEST_ABOVE at the batch size (one message per event, as before digests): the
"before" figure, which takes over 500 s.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from moto import mock_aws

from bench.report import Row, Target
from chaos.harness import cold_starts, environment
from local.asgi_server import ThreadedAsgiServer
from local.atomic_moto import make_dynamodb_atomic
from local.sample_events import catalogue_event, forwarder_record
from local.slack_receiver import LocalSlack
from local.sqs_poller import SqsPoller, send_bodies
from local.template import Template
from p4f.models import EventType

if TYPE_CHECKING:
    pass

FIGURE = "(3) Slack burst"
CHANNEL = "C0BURST0001"
QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:slack-burst"
TYPES = (EventType.RESPONSE_SUBMITTED, EventType.RESPONSE_SCORED)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Burst:
    events: int = 500
    spread: float = 60.0
    """Seconds over which the events arrive in the queue."""
    without_digests: bool = False
    timeout: float = 900.0
    """Give up when the last event is not visible after this many seconds."""


def slack_burst(burst: Burst) -> list[Row]:
    template = Template.load()
    mapping = template.properties("SlackForwarderEventSource")
    function = template.properties("SlackForwarderFunction")
    variables = function["Environment"]["Variables"]
    digest_above = (
        int(mapping["BatchSize"])
        if burst.without_digests
        else int(template.default("SlackDigestAbove"))
    )
    bodies = _bodies(burst.events)
    slack = LocalSlack(channels=frozenset({CHANNEL}))
    make_dynamodb_atomic()
    with (
        # The function prints its logs and metrics to stdout, as in Lambda: set them aside.
        Path(os.devnull).open("w") as devnull,
        contextlib.redirect_stdout(devnull),
        environment({}),
        mock_aws(),
        ThreadedAsgiServer(slack.app, name="slack") as server,
    ):
        sqs = boto3.client("sqs")
        visibility = template.properties("SlackForwarderQueue")["VisibilityTimeout"]
        queue_url = sqs.create_queue(
            QueueName="slack-burst", Attributes={"VisibilityTimeout": str(visibility)}
        )["QueueUrl"]
        env = _env(slack, server.url, queue_url) | {
            "SLACK_CONTAINERS": str(variables["SLACK_CONTAINERS"]),
            "SLACK_DIGEST_ABOVE": str(digest_above),
        }
        poller = SqsPoller(
            sqs,
            queue_url,
            new_container=cold_starts("slack_forwarder", env),
            function_name="slack-forwarder",
            batch_size=mapping["BatchSize"],
            concurrency=mapping["ScalingConfig"]["MaximumConcurrency"],
            function_timeout=float(function["Timeout"]),
        )
        with poller:
            started = time.monotonic()
            wall_started = time.time()
            sender = threading.Thread(target=_send, args=(sqs, queue_url, bodies, burst.spread))
            sender.start()
            ids = [json.loads(body)["detail"]["id"] for body in bodies]
            seen = _wait_until_visible(slack, ids, started + burst.timeout)
            sender.join()
        visible_after = max(seen.values()) - wall_started if len(seen) == len(ids) else None
    return _rows(
        burst,
        slack,
        seen=seen,
        events=len(ids),
        visible_after=visible_after,
        digest_above=digest_above,
    )


def _bodies(events: int) -> list[str]:
    """The burst's SQS bodies: responses submitted and scored, in turn, ids of their own."""
    bodies = []
    for n in range(events):
        event_type = TYPES[n % len(TYPES)]
        event = catalogue_event(event_type, id=f"resp_burst_{n // 2:04d}") | {
            "id": f"evt_burst_{n:04d}"
        }
        bodies.append(forwarder_record(event, queue_arn=QUEUE_ARN)["body"])
    return bodies


def _send(sqs: Any, queue_url: str, bodies: list[str], spread: float) -> None:
    """The bodies into the queue, ten at a time, evenly over `spread` seconds."""
    chunks = [bodies[start : start + 10] for start in range(0, len(bodies), 10)]
    began = time.monotonic()
    for number, chunk in enumerate(chunks):
        time.sleep(max(0.0, began + spread * number / len(chunks) - time.monotonic()))
        send_bodies(sqs, queue_url, chunk)


def _wait_until_visible(slack: LocalSlack, ids: list[str], deadline: float) -> dict[str, float]:
    """When each event was first visible in Slack (wall-clock time), once all are or at
    the deadline."""
    seen: dict[str, float] = {}
    while len(seen) < len(ids) and time.monotonic() < deadline:
        time.sleep(0.5)
        for message in slack.board():
            text = json.dumps(message.blocks)
            for event_id in ids:
                if event_id not in seen and event_id in text:
                    seen[event_id] = message.posted_at
    return seen


def _env(slack: LocalSlack, url: str, queue_url: str) -> dict[str, str]:
    secret = json.dumps({"bot_token": slack.bot_token, "channel": CHANNEL})
    arn = boto3.client("secretsmanager").create_secret(Name="burst/slack", SecretString=secret)[
        "ARN"
    ]
    boto3.client("dynamodb").create_table(
        **Template.load().table_definition("SlackLedgerTable", "burst-slack-ledger")
    )
    return {
        "SLACK_SECRET_ARN": arn,
        "SLACK_LEDGER_TABLE": "burst-slack-ledger",
        "SLACK_QUEUE_URL": queue_url,
        "SLACK_API_URL": url + "/api",
    }


def _rows(
    burst: Burst,
    slack: LocalSlack,
    *,
    seen: dict[str, float],
    events: int,
    visible_after: float | None,
    digest_above: int,
) -> list[Row]:
    posted = slack.board()
    statuses = [request.status for request in slack.requests]
    label = (
        "slack_forwarder, one message per event"
        if burst.without_digests
        else f"slack_forwarder, digests above {digest_above} events a batch"
    )
    span = posted[-1].posted_at - posted[0].posted_at if len(posted) > 1 else 0.0
    details = {
        "events": events,
        "visible": len(seen),
        "spread_seconds": burst.spread,
        "messages": len(posted),
        "answered_429": statuses.count(429),
        "messages_per_second": (len(posted) - 1) / span if span else None,
        "digest_above": digest_above,
    }
    logger.info("Slack burst: %s", details)
    measure = f"seconds until the last of {events} events (over {burst.spread:g} s) is visible"
    if visible_after is None:
        measure += f": {len(seen)} visible after {burst.timeout:g} s"
    return [
        Row(
            FIGURE,
            label,
            measure,
            burst.timeout if visible_after is None else visible_after,
            "s",
            target=Target(120),
            details=details,
        ),
        Row(FIGURE, label, "Slack messages posted", len(posted), "", details=details),
        Row(FIGURE, label, "429 answers from Slack", statuses.count(429), ""),
    ]
