"""End to end over real HTTP: the sandbox's signed webhooks -> the receiver behind a local
function URL -> EventBridge and SQS in moto_server -> a consumer of a rule on the bus."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
import httpx
import pytest

from local.asgi_server import ThreadedAsgiServer
from local.function_url_server import function_url_app
from local.moto_server import MotoServer
from local.sandbox import SandboxAdmin, running_sandbox
from local.template import Template
from p4f.client import Pay4FeedbackClient
from p4f.models import EventType, PayoutStatus
from p4f.signing import delivery_headers
from tests.conftest import LoadFunction

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_sqs import SQSClient

API_KEY = "p4f_test_webhook_flow"
SIGNING_SECRET = "whsec_flow_test_secret"
BUS = "p4f-bridge-events"


@pytest.fixture(scope="module")
def aws() -> Iterator[MotoServer]:
    with MotoServer() as server:
        yield server


@dataclass
class Stack:
    events: EventBridgeClient
    sqs: SQSClient
    consumer_url: str
    fanout_url: str
    receiver_url: str

    def consume(self, queue_url: str, expected: int, timeout: float = 15) -> list[dict[str, Any]]:
        """Messages from a queue until `expected` came, then a moment more for extras."""
        got: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            batch = self.sqs.receive_message(
                QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
            ).get("Messages", [])
            for message in batch:
                got.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            if len(got) >= expected and not batch:
                break
            if not batch:
                time.sleep(0.1)
        return got

    def route_bus_to_consumer(self) -> None:
        arn = self.sqs.get_queue_attributes(
            QueueUrl=self.consumer_url, AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        self.events.put_rule(
            Name="consumer", EventBusName=BUS, EventPattern=json.dumps({"source": ["pay4feedback"]})
        )
        self.events.put_targets(
            Rule="consumer", EventBusName=BUS, Targets=[{"Id": "consumer", "Arn": arn}]
        )


@pytest.fixture
def stack(
    aws: MotoServer, monkeypatch: pytest.MonkeyPatch, load_function: LoadFunction
) -> Iterator[Stack]:
    aws.reset()
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws.url)
    secret_arn = boto3.client("secretsmanager").create_secret(
        Name="p4f/webhook-signing", SecretString=SIGNING_SECRET
    )["ARN"]
    boto3.client("dynamodb").create_table(
        **Template.load().table_definition("IdempotencyTable", "idempotency")
    )
    events, sqs = boto3.client("events"), boto3.client("sqs")
    events.create_event_bus(Name=BUS)
    consumer_url = sqs.create_queue(QueueName="consumer")["QueueUrl"]
    fanout_url = sqs.create_queue(QueueName="fan-out")["QueueUrl"]
    app = load_function(
        "webhook_receiver",
        {
            "WEBHOOK_SECRET_ARN": secret_arn,
            "IDEMPOTENCY_TABLE": "idempotency",
            "EVENT_BUS_NAME": BUS,
            "FANOUT_QUEUE_URL": fanout_url,
        },
    )
    gateway = function_url_app(app.lambda_handler, function_name="receiver", timeout_seconds=9)
    with ThreadedAsgiServer(gateway, name="webhook receiver") as receiver:
        built = Stack(events, sqs, consumer_url, fanout_url, receiver.url)
        built.route_bus_to_consumer()
        yield built


def play_a_campaign(sandbox_url: str) -> None:
    admin = SandboxAdmin(sandbox_url, API_KEY)
    with Pay4FeedbackClient(sandbox_url, api_key=API_KEY) as client:
        campaign = client.create_campaign(name="Flow", reward={"amount": "5.00", "currency": "USD"})
        client.update_campaign(campaign.id, status="ACTIVE")
        response = admin.submit_response(campaign.id)
        client.approve_response(response.id)
        admin.pay_out(response.id, PayoutStatus.COMPLETED)
    admin.close()


def subscribe(sandbox_url: str, receiver_url: str) -> None:
    with Pay4FeedbackClient(sandbox_url, api_key=API_KEY) as client:
        client.create_webhook(receiver_url, list(EventType), SIGNING_SECRET)


def test_every_event_reaches_the_bus_consumer_and_the_queue_exactly_once(stack: Stack) -> None:
    with running_sandbox([API_KEY]) as sandbox:
        subscribe(sandbox.url, stack.receiver_url)
        play_a_campaign(sandbox.url)
        emitted = SandboxAdmin(sandbox.url, API_KEY).events()
        on_bus = stack.consume(stack.consumer_url, expected=len(emitted))
        on_queue = stack.consume(stack.fanout_url, expected=len(emitted))

    assert [e.type for e in reversed(emitted)] == [
        "ping",
        "campaign_created",
        "campaign_updated",
        "response_submitted",
        "reward_approved",
        "payout_completed",
    ]
    assert sorted(e["detail"]["id"] for e in on_bus) == sorted(e.id for e in emitted)
    assert {e["detail-type"] for e in on_bus} == {e.type for e in emitted}
    assert sorted(e["id"] for e in on_queue) == sorted(e.id for e in emitted)


def test_a_delivery_that_fails_is_retried_by_the_sender_and_lands_once(stack: Stack) -> None:
    stack.events.delete_event_bus(Name=BUS)  # the bus is gone: the receiver answers 503
    with running_sandbox([API_KEY], webhook_retry_base=0.3) as sandbox:
        subscribe(sandbox.url, stack.receiver_url)
        admin = SandboxAdmin(sandbox.url, API_KEY)
        deadline = time.monotonic() + 10
        while not any(a.status_code == 503 for a in admin.deliveries()):
            assert time.monotonic() < deadline, "the receiver never refused the delivery"
            time.sleep(0.05)
        stack.events.create_event_bus(Name=BUS)
        stack.route_bus_to_consumer()
        on_bus = stack.consume(stack.consumer_url, expected=1)
        # The sandbox records an attempt once the receiver's answer is back,
        # which can be just after the event reaches the bus.
        deadline = time.monotonic() + 10
        attempts = admin.deliveries()
        while not any(a.status_code == 200 for a in attempts):
            assert time.monotonic() < deadline, "the sender never recorded the accepted retry"
            time.sleep(0.05)
            attempts = admin.deliveries()
        admin.close()

    [ping] = on_bus
    assert ping["detail-type"] == "ping"
    assert {a.status_code for a in attempts} >= {503, 200}
    assert {a.event_id for a in attempts} == {ping["detail"]["id"]}  # the same event retried
    assert len(stack.consume(stack.fanout_url, expected=1)) == 1


def test_a_signed_body_that_is_not_utf8_gets_the_receivers_400_over_http(stack: Stack) -> None:
    body = b'{"id": "evt_bad", "type": "ping", "note": "\xff\xfe"}'
    headers = delivery_headers(body, SIGNING_SECRET, event_id="evt_bad", event_type="ping")
    answer = httpx.post(stack.receiver_url, content=body, headers=headers, timeout=10)
    assert answer.status_code == 400
    assert answer.json()["error"] == "the body is not JSON"
