"""The webhook receiver under every fault at every step, with the sender's redelivery.

For each choice of targets (the bus and the queue; the bus alone; the queue alone), a
clean delivery in a cold container shows the receiver's AWS calls: its steps (with both
targets: the secret's read, the claim (of the event and of its state change: one
transaction), PutEvents, the record of the bus, SendMessage, the completion). Then, for
every step and every fault of `local.aws_faults` (throttle, time-out, answer lost, killed
before the call), and for the 2xx lost on its way back to the sender (killed after the
last call), `events` events are delivered: the first delivery
of each meets the fault (in a cold container when the fault is the secret's), and the
sender delivers it again, with a new signature and the same body, until it gets a 2xx;
between two deliveries more time passes than any claim lasts, as Pay4Feedback's backoff
does. Then the bus (a rule's queue) and the fan-out queue are read, and each event counted.

The only duplicates this can make are the documented windows: a PutEvents or SendMessage
whose answer was lost, or after which the invocation died before the write that records it.
Everything runs in this process on moto (mock_aws, DynamoDB made atomic).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import boto3
from moto import mock_aws

from chaos.accounting import Tally
from chaos.harness import drain, environment, load
from local.atomic_moto import make_dynamodb_atomic
from local.aws_faults import AwsCall, AwsFault, InProcessFaults, InvocationKilled, Planned
from local.lambda_events import LocalLambdaContext, function_url_event
from local.sample_events import catalogue_event
from local.template import Template
from p4f.models import EventType
from p4f.signing import delivery_headers

SECRET = "whsec_chaos_receiver"
BUS = "p4f-chaos-events"
TARGETS = {"both": (True, True), "eventbridge": (True, False), "sqs": (False, True)}
"""FanOutTarget's choices: (publishes to the bus, publishes to the queue)."""
FUNCTION_TIMEOUT = 9.0
MAX_DELIVERIES = 8
"""The sender's attempts in a run; Pay4Feedback's go on for three days."""
_SIDE_EFFECTS = {"PutEvents": "bus", "SendMessage": "queue"}
"""The calls that put the event somewhere, and where."""
_EVENT_TYPES = list(EventType)


@dataclass(frozen=True)
class Step:
    """One AWS call of a clean delivery."""

    number: int
    operation: str
    label: str
    target: str | None
    """The target whose side effect the call is, if it is one."""


@dataclass(frozen=True)
class Scenario:
    targets: str
    step: Step | None
    """None: the 2xx is lost on its way to the sender (killed after the last call)."""
    fault: AwsFault | None

    @property
    def name(self) -> str:
        if self.step is None:
            return f"{self.targets}: 2xx lost on its way back"
        return f"{self.targets}: {self.fault} {self.step.label}"

    def window(self, steps: list[Step]) -> str | None:
        """The target this scenario may duplicate an event on (a documented window)."""
        if self.step is None:
            return None
        if self.fault is AwsFault.ANSWER_LOST:
            return self.step.target
        if self.fault is AwsFault.KILL and self.step.number > 1:
            return steps[self.step.number - 2].target  # died before recording that call
        return None


@dataclass
class MatrixResult:
    tallies: dict[str, Tally]
    """By target name, e.g. "receiver (both) -> bus"."""
    scenarios: int
    deliveries: int
    windowed: list[str] = field(default_factory=list)
    """The scenarios that made a duplicate, each once: "<scenario>: n on <target>"."""


def run_matrix(events: int, *, targets: tuple[str, ...] = tuple(TARGETS)) -> MatrixResult:
    """Every scenario of every choice of `targets`, `events` events each."""
    make_dynamodb_atomic()
    result = MatrixResult({}, 0, 0)
    for choice in targets:
        with _bridge(choice) as bridge:
            steps = bridge.steps()
            scenarios = [Scenario(choice, step, fault) for step in steps for fault in AwsFault]
            scenarios.append(Scenario(choice, None, None))
            for number, scenario in enumerate(scenarios):
                _play(
                    bridge, scenario, steps, events=events, slug=f"{choice}-{number}", result=result
                )
            result.deliveries += bridge.deliveries
    return result


@dataclass
class _Bridge:
    """The receiver in a container of its own, its AWS in moto, and a sender."""

    targets: str
    faults: InProcessFaults
    env: dict[str, str]
    tap_url: str
    queue_url: str | None
    app: ModuleType | None = None
    offset: float = 0.0
    """How far the ledger's clock is ahead: the sender's backoff between deliveries."""
    deliveries: int = 0

    def cold_start(self) -> ModuleType:
        with environment(self.env):
            self.app = load("webhook_receiver")
        self.app.receiver._publisher._ledger._clock = lambda: time.time() + self.offset
        return self.app

    def steps(self) -> list[Step]:
        """The AWS calls of a clean delivery in a cold container."""
        self.cold_start()
        status, calls = self.deliver(_body("evt_chaos_clean", EventType.PING))
        assert status == 200, f"a clean delivery was answered {status}"
        self.read()
        return [_step(call) for call in calls]

    def deliver(self, body: bytes, plan: Planned | None = None) -> tuple[int | None, list[AwsCall]]:
        """One delivery: its status (None if the invocation died) and its AWS calls."""
        event = json.loads(body)
        headers = delivery_headers(body, SECRET, event_id=event["id"], event_type=event["type"])
        request = function_url_event("POST", body, headers)
        assert self.app is not None
        self.deliveries += 1
        with self.faults.invocation(plan) as calls:
            try:
                answer: dict[str, Any] = self.app.lambda_handler(
                    request, LocalLambdaContext("webhook-receiver", FUNCTION_TIMEOUT)
                )
            except InvocationKilled:
                return None, calls
        return int(answer["statusCode"]), calls

    def read(self) -> tuple[Counter[str], Counter[str]]:
        """The event ids the bus and the queue got since the last read."""
        sqs = boto3.client("sqs")
        on_bus = Counter(json.loads(body)["detail"]["id"] for body in drain(sqs, self.tap_url))
        on_queue = Counter(
            json.loads(body)["id"]
            for body in (drain(sqs, self.queue_url) if self.queue_url else [])
        )
        return on_bus, on_queue


def _play(
    bridge: _Bridge,
    scenario: Scenario,
    steps: list[Step],
    *,
    events: int,
    slug: str,
    result: MatrixResult,
) -> None:
    """The scenario's events, each faulted once and delivered until the sender has a 2xx."""
    bus, queue = TARGETS[scenario.targets]
    names = {
        "bus": f"receiver ({scenario.targets}) -> bus",
        "queue": f"receiver ({scenario.targets}) -> queue",
    }
    tallies = {name: Tally(names[name]) for name, used in (("bus", bus), ("queue", queue)) if used}
    secret_step = scenario.step is not None and scenario.step.label == "secret"
    for n in range(events):
        event_id = f"evt_chaos_{slug}_{n:03d}"
        body = _body(event_id, _EVENT_TYPES[n % len(_EVENT_TYPES)])
        for tally in tallies.values():
            tally.sent.add(event_id)
        if secret_step or bridge.app is None:
            bridge.cold_start()
        plan = None
        if scenario.step is not None and scenario.fault is not None:
            # A warm container read the secret before: its calls start one step later.
            plan = Planned(scenario.step.number - (0 if secret_step else 1), scenario.fault)
        if _deliver_until_acknowledged(bridge, body, plan, reply_lost=scenario.step is None):
            for tally in tallies.values():
                tally.acknowledged.add(event_id)
    on_bus, on_queue = bridge.read()
    window = scenario.window(steps)
    for name, arrivals in (("bus", on_bus), ("queue", on_queue)):
        if name not in tallies:
            continue
        tally = tallies[name]
        tally.arrivals = arrivals
        if window == name:
            tally.windowed = set(tally.sent)
        doubled = len(tally.duplicated)
        if doubled:
            result.windowed.append(f"{scenario.name}: {doubled} of {events} twice on the {name}")
        result.tallies.setdefault(tally.target, Tally(tally.target)).merge(tally)
    result.scenarios += 1


def _deliver_until_acknowledged(
    bridge: _Bridge, body: bytes, plan: Planned | None, *, reply_lost: bool
) -> bool:
    """Deliver as Pay4Feedback does, until a 2xx reaches it; whether one did."""
    for attempt in range(MAX_DELIVERIES):
        if attempt:
            bridge.offset += FUNCTION_TIMEOUT + 1  # the backoff outlasts any claim
        status, _ = bridge.deliver(body, plan if attempt == 0 else None)
        if status is not None and 200 <= status < 300 and not (reply_lost and attempt == 0):
            return True
    return False


def _body(event_id: str, event_type: EventType) -> bytes:
    return json.dumps(catalogue_event(event_type) | {"id": event_id}).encode()


def _step(call: AwsCall) -> Step:
    operation = call.operation.rsplit(".", 1)[1]
    label = {"GetSecretValue": "secret", "TransactWriteItems": "claim"}.get(operation, operation)
    if operation == "UpdateItem":
        body = call.body.decode()
        label = (
            "claim" if "IN_PROGRESS" in body else "complete" if "COMPLETED" in body else "record"
        )
    return Step(call.step, call.operation, label, _SIDE_EFFECTS.get(operation))


@contextmanager
def _bridge(targets: str) -> Iterator[_Bridge]:
    bus, queue = TARGETS[targets]
    with environment({}), mock_aws(), InProcessFaults() as faults:
        secret_arn = boto3.client("secretsmanager").create_secret(
            Name="p4f/chaos-signing", SecretString=SECRET
        )["ARN"]
        boto3.client("dynamodb").create_table(
            **Template.load().table_definition("IdempotencyTable", "chaos-idempotency")
        )
        sqs, events = boto3.client("sqs"), boto3.client("events")
        tap_url = sqs.create_queue(QueueName="bus-tap")["QueueUrl"]
        tap_arn = sqs.get_queue_attributes(QueueUrl=tap_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        events.create_event_bus(Name=BUS)
        events.put_rule(
            Name="tap", EventBusName=BUS, EventPattern=json.dumps({"source": ["pay4feedback"]})
        )
        events.put_targets(Rule="tap", EventBusName=BUS, Targets=[{"Id": "tap", "Arn": tap_arn}])
        queue_url = sqs.create_queue(QueueName="fan-out")["QueueUrl"] if queue else None
        env = {
            "WEBHOOK_SECRET_ARN": secret_arn,
            "IDEMPOTENCY_TABLE": "chaos-idempotency",
            "EVENT_BUS_NAME": BUS if bus else "",
            "FANOUT_QUEUE_URL": queue_url or "",
        }
        yield _Bridge(targets, faults, env, tap_url, queue_url)
