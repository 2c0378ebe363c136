"""The forwarders under the faults of their services, with poison records among the events.

For Slack and for Segment: the forwarder's queue in moto with the template's redrive
policy (its maxReceiveCount, then the dead-letter queue), polled as Lambda's event source
mapping does it (local.sqs_poller: the template's batch size and concurrency, each poller
a container of its own); the service is the local stand-in (local.slack_receiver,
local.segment_receiver), answering a share of the requests with a fault drawn at random:
a 429 the invocation can wait out, a 429 it cannot (the record is deferred), a 500, a
hang (no answer before the time-out) and a slow answer (taken, but the answer lost).
Among the events: poison records (not JSON, not from the bridge's bus, JSON nested 5,000
levels deep, an id longer than a DynamoDB key), events the queue holds twice (EventBridge
delivers at least once), and an answer with a lone surrogate (delivered, with U+FFFD).

Time is compressed: the queues' visibility timeout is 3 s and the function's 2.5 s (as
deployed, the first outlasts the second), Slack's pacing 20 ms. Each poison record is
received maxReceiveCount times, one visibility timeout apart, before it reaches the DLQ.
"""

from __future__ import annotations

import json
import random
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
from moto import mock_aws

from chaos.accounting import Tally
from chaos.harness import drain, environment, load
from local.asgi_server import ThreadedAsgiServer
from local.atomic_moto import make_dynamodb_atomic
from local.lambda_events import LocalLambdaContext
from local.recording import Fault, FaultKind, RecordingReceiver
from local.sample_events import catalogue_event, forwarder_record
from local.segment_receiver import LocalSegment
from local.slack_receiver import LocalSlack
from local.sqs_poller import SqsPoller, send_bodies
from local.template import Template
from p4f.deferral import DEFERRED_SINCE
from p4f.models import EventType
from p4f.retries import RetryPolicy

VISIBILITY_TIMEOUT = 3
FUNCTION_TIMEOUT = 2.5
BATCHING_WINDOW = 0.2
"""A forwarder's batching window, compressed as its timeouts are (Segment's is 20 s)."""
HANG_SECONDS = 0.4
"""How long the local service holds a hung or slow answer: past the forwarders' time-outs."""
FAULTS = (
    Fault(FaultKind.SERVER_ERROR),
    Fault(FaultKind.HANG),
    Fault(FaultKind.SLOW),
    Fault(FaultKind.RATE_LIMITED, retry_after=1),
    Fault(FaultKind.RATE_LIMITED, retry_after=3),
)
QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:chaos-forwarder"
_CHAOS_ID = re.compile(r"evt_chaos_[a-z_]+_\d{3}")
"""An event id of these runs, as a Slack message shows it."""


@dataclass(frozen=True)
class Forwarder:
    """One forwarder as the template deploys it."""

    name: str
    function: str
    event_types: str
    """The template Parameter whose default lists the types its rule lets through."""
    opening: tuple[Fault | None, ...]
    """The answers of its first requests: every fault once."""
    fault_rate: float
    """The share of the later requests that meet a fault."""


SLACK = Forwarder(
    "Slack",
    "slack_forwarder",
    "SlackEventTypes",
    opening=tuple(answer for fault in FAULTS for answer in (fault, None)),
    fault_rate=0.25,
)
SEGMENT = Forwarder(
    "Segment",
    "segment_forwarder",
    "SegmentEventTypes",
    # A request carries a whole batch: one fault after the other, then no more, so that no
    # healthy record fails maxReceiveCount times in a row (which would rightly be the DLQ).
    opening=FAULTS,
    fault_rate=0.0,
)


@dataclass
class _Run:
    """What a run sent, and what the forwarder said of each record."""

    tally: Tally
    labels: dict[str, str] = field(default_factory=dict)
    """Record bodies that are not events, by body: the name they are counted under."""
    deferred: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def event_of(self, body: str) -> str:
        if body in self.labels:
            return self.labels[body]
        return str(json.loads(body)["detail"]["id"])

    def watched(self, handler: Callable[..., Any]) -> Callable[..., Any]:
        """`handler`, noting the events of the records it reports done (acknowledged)."""

        def handle(event: dict[str, Any], context: LocalLambdaContext) -> Any:
            attributes = [record.get("messageAttributes") or {} for record in event["Records"]]
            answer = handler(event, context)
            failed = {item["itemIdentifier"] for item in answer.get("batchItemFailures", [])}
            with self.lock:
                self.deferred += sum(DEFERRED_SINCE in names for names in attributes)
                self.tally.acknowledged |= {
                    self.event_of(record["body"])
                    for record in event["Records"]
                    if record["messageId"] not in failed
                }
            return answer

        return handle


@dataclass(frozen=True)
class ForwarderResult:
    tally: Tally
    faults: Counter[str]
    """The faults the service answered with, and how often."""
    deferred: int
    """Deferred copies of records that came back from the queue."""


def run_forwarder(forwarder: Forwarder, events: int, *, seed: int = 12) -> ForwarderResult:
    """`events` events (and the poison records, and the repeats) through `forwarder`."""
    make_dynamodb_atomic()
    rng = random.Random(seed)
    run = _Run(Tally(f"{forwarder.name} forwarder"))
    service: RecordingReceiver = (
        LocalSlack(hang_seconds=HANG_SECONDS, rate_limit=None)  # its time is compressed
        if forwarder is SLACK
        else LocalSegment(hang_seconds=HANG_SECONDS)
    )
    service.schedule(forwarder.opening)
    service.schedule(
        [
            rng.choice(FAULTS) if rng.random() < forwarder.fault_rate else None
            for _ in range(events * 3)
        ]
    )
    bodies = _bodies(forwarder, events, rng, run)
    with _deployed(forwarder, service, run) as (sqs, queue_url, dlq_url, poller):
        send_bodies(sqs, queue_url, bodies)
        poller.wait_until_idle(timeout=120)
        run.tally.in_dlq = {run.event_of(body) for body in drain(sqs, dlq_url)}
    run.tally.arrivals, windowed = _arrivals(forwarder, service)
    run.tally.windowed = windowed
    met = Counter(str(request.fault) for request in service.requests if request.fault)
    return ForwarderResult(run.tally, met, run.deferred)


def _bodies(forwarder: Forwarder, events: int, rng: random.Random, run: _Run) -> list[str]:
    """The queue's records: the events (some twice), one with a lone surrogate, and poison."""
    types = Template.load().default(forwarder.event_types).split(",")
    bodies = []
    for n in range(events):
        event = catalogue_event(types[n % len(types)]) | {
            "id": f"evt_chaos_{forwarder.function}_{n:03d}"
        }
        if n == 0:  # half an emoji in an answer (a new list: the samples' are shared)
            answers = [{"question_id": "q_1", "prompt": "Thoughts?", "value": "Love it \ud83d"}]
            event = catalogue_event(EventType.RESPONSE_SUBMITTED, answers=answers) | {
                "id": event["id"]
            }
        body = forwarder_record(event, queue_arn=QUEUE_ARN)["body"]
        run.tally.sent.add(event["id"])
        bodies.append(body)
        if rng.random() < 0.15:
            bodies.append(body)  # EventBridge delivered it twice
    valid = json.loads(bodies[0])
    poison = {
        "poison: not JSON": "not json {",
        "poison: not from the bridge's bus": json.dumps(valid | {"source": "aws.s3"}),
        "poison: nested 5,000 levels": json.dumps(valid).replace(
            '"Love it \\ud83d"', "[" * 5_000 + "]" * 5_000
        ),
        "poison: id over 2,048 bytes": json.dumps(
            valid | {"detail": valid["detail"] | {"id": "evt_" + "x" * 2_100}}
        ),
    }
    for label, body in poison.items():
        run.labels[body] = label
        run.tally.sent.add(label)
        run.tally.poison.add(label)
        bodies.append(body)
    rng.shuffle(bodies)
    return bodies


def _arrivals(forwarder: Forwarder, service: RecordingReceiver) -> tuple[Counter[str], set[str]]:
    """Each event's arrivals at the service, and the events an answer lost there explains
    twice (Segment drops a messageId it has: every repeat there is explained)."""
    arrivals: Counter[str] = Counter()
    windowed: set[str] = set()
    for request in service.requests:
        if not request.accepted:
            continue
        if forwarder is SLACK:
            got = set(_CHAOS_ID.findall(json.dumps(request.json())))
        else:
            got = {call["messageId"] for call in request.json()["batch"] if call["type"] == "track"}
            windowed |= got
        arrivals.update(got)
        if request.fault is FaultKind.SLOW:
            windowed |= got
    return arrivals, windowed


@contextmanager
def _deployed(
    forwarder: Forwarder, service: RecordingReceiver, run: _Run
) -> Iterator[tuple[Any, str, str, SqsPoller]]:
    """The forwarder's queue, DLQ, secret and ledger in moto, and its event source mapping."""
    template = Template.load()
    mapping = template.properties(f"{forwarder.name}ForwarderEventSource")
    redrive = template.properties(f"{forwarder.name}ForwarderQueue")["RedrivePolicy"]
    with (
        environment({}),
        mock_aws(),
        ThreadedAsgiServer(service.app, name=forwarder.name) as server,
    ):
        sqs = boto3.client("sqs")
        dlq_url = sqs.create_queue(QueueName="chaos-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        queue_url = sqs.create_queue(
            QueueName="chaos-forwarder",
            Attributes={
                "VisibilityTimeout": str(VISIBILITY_TIMEOUT),
                "RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": redrive["maxReceiveCount"]}
                ),
            },
        )["QueueUrl"]
        env = _environment(service, server.url, queue_url)

        def container() -> Callable[..., Any]:
            with environment(env):
                app = load(forwarder.function)
            if forwarder is SLACK:
                app.forwarder._timing = type(app.forwarder._timing)(
                    request_timeout=0.25,
                    send_interval=0.02,
                    retry=RetryPolicy(
                        max_attempts=3, max_rate_limit_waits=2, base_delay=0.05, max_delay=0.2
                    ),
                )
            else:
                app.forwarder._timeout = 0.25
            return run.watched(app.lambda_handler)

        poller = SqsPoller(
            sqs,
            queue_url,
            new_container=container,
            function_name=forwarder.function,
            batch_size=int(template.as_deployed(mapping["BatchSize"])),
            concurrency=mapping.get("ScalingConfig", {}).get("MaximumConcurrency", 2),
            function_timeout=FUNCTION_TIMEOUT,
            wait_seconds=0,
            batching_window=BATCHING_WINDOW if mapping.get("MaximumBatchingWindowInSeconds") else 0,
        )
        with poller:
            yield sqs, queue_url, dlq_url, poller


def _environment(service: RecordingReceiver, url: str, queue_url: str) -> dict[str, str]:
    secrets = boto3.client("secretsmanager")
    if isinstance(service, LocalSlack):
        value = json.dumps({"webhook_url": url + service.webhook_path})
        arn = secrets.create_secret(Name="chaos/slack", SecretString=value)["ARN"]
        boto3.client("dynamodb").create_table(
            **Template.load().table_definition("SlackLedgerTable", "chaos-slack-ledger")
        )
        return {
            "SLACK_SECRET_ARN": arn,
            "SLACK_LEDGER_TABLE": "chaos-slack-ledger",
            "SLACK_QUEUE_URL": queue_url,
        }
    assert isinstance(service, LocalSegment)
    arn = secrets.create_secret(Name="chaos/segment", SecretString=service.write_key)["ARN"]
    return {
        "SEGMENT_SECRET_ARN": arn,
        "SEGMENT_QUEUE_URL": queue_url,
        "SEGMENT_ENDPOINT": url,
        "SEGMENT_SEND_PERSONAL_DATA": "true",
    }
