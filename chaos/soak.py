"""The whole bridge on the local stack, with faults throughout: the soak.

The local stack runs every function in a process of its own (local.stack), with their AWS
calls through local.aws_faults.FaultProxy (a share of them throttled, timed out or with
their answer lost), the local Slack and Segment answering a share of their requests with
a 429 or a 500 (Slack also a hang past the client's time-out or a slow answer: taken,
then too late), the Pay4Feedback sandbox as the sender (signed webhooks, retried with
backoff until a 2xx), and the queues' visibility timeout at 8 s so that failed records
come back within the run. `rounds` campaigns live their lives through the API; with
`poison`, records that are not events go into the forwarders' queues too. When every
event has arrived where it should (or a timeout passed) and the queues are idle, each
target is read and counted.
"""

from __future__ import annotations

import json
import random
import re
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from chaos.accounting import Tally
from chaos.harness import drain
from local.aws_faults import AwsFault
from local.recording import Fault, FaultKind, RecordingReceiver
from local.stack import LocalStack, RunningStack
from local.template import Template
from p4f.client import Pay4FeedbackClient
from p4f.models import PayoutStatus, WebhookEvent

VISIBILITY_TIMEOUT = 8
ARRIVAL_TIMEOUT_SECONDS = 240.0
SETTLE_SECONDS = 3.0
"""How long to keep reading once everything arrived and the queues are idle: duplicates show."""
_QUICK_FAULTS = (Fault(FaultKind.RATE_LIMITED, retry_after=1), Fault(FaultKind.SERVER_ERROR))
SERVICE_FAULTS = {
    "slack": (*_QUICK_FAULTS, Fault(FaultKind.HANG), Fault(FaultKind.SLOW)),
    # Segment's time-out is 10 s: its hangs cost a soak too much (chaos.forwarders has them).
    "segment": _QUICK_FAULTS,
}
SLACK_HANG_SECONDS = 6.0
"""Past the Slack forwarder's request time-out (5 s): a hang or a slow answer is lost."""
_EVENT_ID = re.compile(r"evt_[0-9a-f]{32}")


@dataclass(frozen=True)
class _Sender:
    """What Pay4Feedback (the sandbox) saw of its deliveries, by event id."""

    acknowledged: set[str]
    """Answered 2xx."""
    unanswered: set[str]
    """Not answered in time, or answered 502 (the function URL's): the invocation may have
    stored the event and died (in Lambda) or gone on (here) before recording it: window 1."""


@dataclass
class _Seen:
    """What arrived so far, by event id."""

    on_bus: Counter[str] = field(default_factory=Counter)
    on_queue: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class SoakResult:
    tallies: list[Tally]
    """One per target: the bus, the fan-out queue, Slack, Segment."""
    faults: Counter[str]
    """The faults met, by kind and where: "throttle PutEvents", "Slack: 429"."""
    seconds: float


def run_soak(
    rounds: int, *, fault_rate: float = 0.05, poison: bool = False, seed: int = 5
) -> SoakResult:
    """The soak: `rounds` campaign lives on a local stack with faults throughout."""
    started = time.monotonic()
    rng = random.Random(seed)
    with (
        tempfile.TemporaryDirectory(prefix="p4f-soak-") as log_dir,
        LocalStack(
            log_dir=Path(log_dir),
            webhook_retry_base=0.3,
            aws_fault_rate=fault_rate,
            aws_fault_seed=seed,
            visibility_timeout=VISIBILITY_TIMEOUT,
        ) as stack,
    ):
        stack.slack.hang_seconds = SLACK_HANG_SECONDS
        for name, service in (("slack", stack.slack), ("segment", stack.segment)):
            service.schedule(
                [
                    rng.choice(SERVICE_FAULTS[name]) if rng.random() < fault_rate * 2 else None
                    for _ in range(rounds * 60)
                ]
            )
        assert stack.aws_faults is not None
        stack.aws_faults.armed = True
        labels = _poison(stack) if poison else {}
        for number in range(rounds):
            _campaign_life(stack, number)
        admin = stack.admin()
        events = admin.events()
        seen = _watch(stack, events, len(labels))
        attempts = admin.deliveries()
        admin.close()
        sender = _Sender(
            acknowledged={a.event_id for a in attempts if a.status_code and a.status_code < 300},
            unanswered={a.event_id for a in attempts if a.status_code in {None, 502}},
        )
        faults = Counter(f"{f.fault} {f.operation}" for f in stack.aws_faults.applied)
        for name, service in (("Slack", stack.slack), ("Segment", stack.segment)):
            faults.update(f"{name}: {r.fault}" for r in service.requests if r.fault)
        tallies = _tallies(stack, events, seen, labels, sender)
        return SoakResult(tallies, faults, time.monotonic() - started)


def _campaign_life(stack: RunningStack, number: int) -> None:
    """A campaign's life through the API: some 15 events."""
    admin = stack.admin()
    with Pay4FeedbackClient(stack.urls.sandbox, api_key=stack.api_key) as api:
        campaign = api.create_campaign(
            name=f"Soak {number}", reward={"amount": "2.50", "currency": "EUR"}
        )
        api.update_campaign(campaign.id, status="ACTIVE")
        responses = [
            admin.submit_response(campaign.id, respondent={"id": f"resp_soak_{number}_{n}"})
            for n in range(3)
        ]
        for response, score in zip(responses, (88, 61, 12), strict=True):
            admin.score(response.id, score)
        api.approve_response(responses[0].id)
        api.approve_response(responses[1].id)
        api.reject_response(responses[2].id, reason="Off topic")
        admin.pay_out(responses[0].id, PayoutStatus.COMPLETED)
        admin.pay_out(responses[1].id, PayoutStatus.FAILED, "The card was declined")
        api.pause_campaign(campaign.id)
        api.resume_campaign(campaign.id)
    admin.close()


def _poison(stack: RunningStack) -> dict[str, str]:
    """Records that are not events, in each forwarder's queue; their labels by body."""
    sqs = stack.aws.client("sqs")
    labels: dict[str, str] = {}
    for name in ("Slack", "Segment"):
        queue_url = stack.deployment.outputs[f"{name}ForwarderQueueUrl"]
        for label, body in {
            f"poison ({name}): not JSON": f"not json {{ {name}",
            f"poison ({name}): not from the bus": json.dumps(
                {"source": "aws.s3", "detail": {"n": name}}
            ),
            f"poison ({name}): nested 5,000 levels": json.dumps(
                {"source": "pay4feedback", "detail": {"n": name, "data": "deep"}}
            ).replace('"deep"', "[" * 5_000 + "]" * 5_000),
        }.items():
            labels[body] = label
            sqs.send_message(QueueUrl=queue_url, MessageBody=body)
    return labels


def _expected(events: list[WebhookEvent], parameter: str) -> set[str]:
    types = set(Template.load().default(parameter).split(","))
    return {event.id for event in events if event.type in types}


def _watch(stack: RunningStack, events: list[WebhookEvent], poison: int) -> _Seen:
    """Read the bus and the queue until every event arrived everywhere it should, the
    forwarders' queues are idle and the DLQs hold the poison, then a moment longer."""
    seen = _Seen()
    sqs = stack.aws.client("sqs")
    everything = {event.id for event in events}
    for_slack = _expected(events, "SlackEventTypes")
    for_segment = _expected(events, "SegmentEventTypes")
    settled_at: float | None = None
    deadline = time.monotonic() + ARRIVAL_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        seen.on_bus.update(_pay4feedback_ids(drain(sqs, stack.consumer_queue_url)))
        seen.on_queue.update(
            json.loads(body)["id"]
            for body in drain(sqs, stack.deployment.outputs["FanOutQueueUrl"])
        )
        done = (
            everything <= set(seen.on_bus)
            and everything <= set(seen.on_queue)
            and for_slack <= set(_slack_arrivals(stack.slack)[0])
            and for_segment <= set(_segment_arrivals(stack.segment)[0])
            and _idle(stack, poison)
        )
        if not done:
            settled_at = None
        elif settled_at is None:
            settled_at = time.monotonic()
        elif time.monotonic() - settled_at > SETTLE_SECONDS:
            break
        time.sleep(0.5)
    return seen


def _idle(stack: RunningStack, poison: int) -> bool:
    """The forwarders' queues hold nothing (visible, in flight, delayed), their DLQs the poison."""
    sqs = stack.aws.client("sqs")
    waiting = 0
    for name in ("SlackForwarderQueueUrl", "SegmentForwarderQueueUrl"):
        counts = sqs.get_queue_attributes(
            QueueUrl=stack.deployment.outputs[name],
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
        waiting += sum(int(count) for count in counts.values())
    dead = sum(
        int(
            sqs.get_queue_attributes(
                QueueUrl=stack.deployment.outputs[name],
                AttributeNames=["ApproximateNumberOfMessages"],
            )["Attributes"]["ApproximateNumberOfMessages"]
        )
        for name in ("SlackForwarderDeadLetterQueueUrl", "SegmentForwarderDeadLetterQueueUrl")
    )
    return waiting == 0 and dead >= poison


def _tallies(
    stack: RunningStack,
    events: list[WebhookEvent],
    seen: _Seen,
    labels: dict[str, str],
    sender: _Sender,
) -> list[Tally]:
    everything = {event.id for event in events}
    assert stack.aws_faults is not None
    lost_answers = [
        (f.operation, f.body) for f in stack.aws_faults.applied if f.fault is AwsFault.ANSWER_LOST
    ] + [(late.operation, late.body) for late in stack.aws_faults.late]
    acknowledged, unanswered = sender.acknowledged & everything, sender.unanswered
    bus = Tally("soak: bus", set(everything), acknowledged, seen.on_bus)
    bus.windowed = unanswered | {
        i for op, body in lost_answers if op == "PutEvents" for i in _ids(body)
    }
    queue = Tally("soak: fan-out queue", set(everything), acknowledged, seen.on_queue)
    queue.windowed = unanswered | {
        i for op, body in lost_answers if op == "SendMessage" for i in _ids(body)
    }
    queue.in_dlq = set(_pay4feedback_ids_of_bodies(_peek(stack, "FanOutDeadLetterQueueUrl")))
    tallies = [bus, queue]
    for name, service, parameter, arrivals in (
        ("Slack", stack.slack, "SlackEventTypes", _slack_arrivals),
        ("Segment", stack.segment, "SegmentEventTypes", _segment_arrivals),
    ):
        counted, windowed = arrivals(service)
        tally = Tally(
            f"soak: {name}", _expected(events, parameter), arrivals=counted, windowed=windowed
        )
        dead = _peek(stack, f"{name}ForwarderDeadLetterQueueUrl")
        tally.in_dlq = {labels.get(body) or _event_id(body) for body in dead}
        tally.poison = {label for label in labels.values() if f"({name})" in label}
        tally.sent |= tally.poison
        tally.acknowledged = tally.sent - tally.in_dlq  # its queue drained, not to the DLQ
        tallies.append(tally)
    return tallies


def _slack_arrivals(slack: RecordingReceiver) -> tuple[Counter[str], set[str]]:
    """Each event's messages in Slack, and the events a slow answer may have posted twice."""
    counted: Counter[str] = Counter()
    windowed: set[str] = set()
    for request in slack.requests:
        if request.accepted:
            ids = set(_ids(request.body))
            counted.update(ids)
            if request.fault is FaultKind.SLOW:
                windowed |= ids
    return counted, windowed


def _segment_arrivals(segment: RecordingReceiver) -> tuple[Counter[str], set[str]]:
    """Each event's track calls Segment took; Segment drops a messageId it has, so every
    repeat is explained."""
    counted = Counter(
        call["messageId"]
        for request in segment.requests
        if request.accepted
        for call in request.json()["batch"]
        if call["type"] == "track"
    )
    return counted, set(counted)


def _ids(body: bytes) -> list[str]:
    return _EVENT_ID.findall(body.decode("utf-8", "replace"))


def _event_id(body: str) -> str:
    found = _EVENT_ID.findall(body)
    return found[0] if found else body[:40]


def _pay4feedback_ids(bodies: list[str]) -> list[str]:
    return [
        event["detail"]["id"]
        for event in map(json.loads, bodies)
        if event["source"] == "pay4feedback"
    ]


def _pay4feedback_ids_of_bodies(bodies: list[str]) -> list[str]:
    return [json.loads(body)["id"] for body in bodies]


def _peek(stack: RunningStack, output: str) -> list[str]:
    return drain(stack.aws.client("sqs"), stack.deployment.outputs[output])
