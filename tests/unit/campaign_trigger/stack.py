"""The campaign trigger as deployed, for its tests: the function, its AWS resources in moto
(built from template.yaml), and a tenant of the Pay4Feedback sandbox, reached over real HTTP.

    def test_...(load_function, sandbox):              # (fixtures of conftest.py)
        with mock_aws(), trigger_stack(load_function, sandbox, **env) as stack:
            stack.post({...})
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

import boto3

from local.lambda_events import LocalLambdaContext, function_url_event
from local.sandbox import SandboxAdmin, SandboxServer
from local.sqs_poller import SqsPoller
from local.template import Template
from p4f.client import Pay4FeedbackClient
from p4f.models import Campaign, EventType
from p4f.ratelimit import SlidingWindowLimiter
from tests.conftest import LoadFunction, api_budget

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_sqs import SQSClient

TOKEN = "trigger_test_token_5f0c9a7e2b1d4c3a8e6f9b0a1c2d3e4f"
KEYS = [f"p4f_test_trigger_{n:03d}" for n in range(60)]
BUS = "p4f-bridge-events"
PATH = "/triggers/campaigns"
FUNCTION_TIMEOUT = 25
MAX_RECEIVES = Template.load().properties("CreateCampaignQueue")["RedrivePolicy"]["maxReceiveCount"]


def trigger_body(name: str = "Checkout feedback", **fields: Any) -> dict[str, Any]:
    return {
        "name": name,
        "description": "Why people leave the cart",
        "reward": {"amount": "5.00", "currency": "USD"},
        "max_responses": 100,
        "questions": [{"type": "text", "prompt": "What almost stopped you from buying?"}],
    } | fields


_used_keys: dict[str, Iterator[str]] = {}


def _unused_key(sandbox: SandboxServer) -> str:
    """A tenant of `sandbox` that no other test has touched."""
    return next(_used_keys.setdefault(sandbox.url, iter(KEYS)))


@dataclass(frozen=True)
class Burst:
    seconds: float
    batches: int


@dataclass
class Stack:
    """The trigger as deployed: its function, its AWS resources, and a tenant of the sandbox."""

    app: ModuleType
    sandbox: SandboxServer
    api_key: str
    admin: SandboxAdmin
    sqs: SQSClient
    events: EventBridgeClient
    queue_url: str
    dlq_url: str
    tap_url: str
    restart: Callable[[], ModuleType]

    def cold_start(self) -> None:
        """The next invocations run in a new container (a fresh client and rate limiter)."""
        self.app = self.restart()

    # --- the two entries ---

    def invoke(self, event: dict[str, Any], timeout: float = FUNCTION_TIMEOUT) -> dict[str, Any]:
        """What the function answers `event` (a function URL request or an SQS batch)."""
        answer: dict[str, Any] = self.app.lambda_handler(
            event, LocalLambdaContext("campaign-trigger", timeout_seconds=timeout)
        )
        return answer

    def post(
        self,
        body: dict[str, Any] | bytes,
        *,
        token: str | None = TOKEN,
        headers: dict[str, str] | None = None,
        method: str = "POST",
        path: str = PATH,
        timeout: float = FUNCTION_TIMEOUT,
    ) -> dict[str, Any]:
        """What the function URL answers an HTTP request."""
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        sent = {"Content-Type": "application/json", **(headers or {})}
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        return self.invoke(function_url_event(method, raw, sent, path=path), timeout)

    def put_event(self, detail: dict[str, Any], *, source: str = "crm.example") -> str:
        """Put a CreateCampaign event on the bus; its id."""
        answer = self.events.put_events(
            Entries=[
                {
                    "EventBusName": BUS,
                    "Source": source,
                    "DetailType": "CreateCampaign",
                    "Detail": json.dumps(detail),
                }
            ]
        )
        assert answer["FailedEntryCount"] == 0
        return answer["Entries"][0]["EventId"]

    def poller(self, *, containers: bool = False, **options: Any) -> SqsPoller:
        """The event source mapping of template.yaml, on this machine. With `containers`,
        each concurrent invocation runs in a container of its own (its own client and rate
        limiter, as in Lambda); else all share `app` (so that tests can reach into it)."""
        mapping = Template.load().properties("CreateCampaignMapping")
        defaults: dict[str, Any] = {
            "function_name": "campaign-trigger",
            "batch_size": mapping["BatchSize"],
            "concurrency": 2,
            "function_timeout": FUNCTION_TIMEOUT,
            "wait_seconds": 0,
        }
        if containers:
            defaults["new_container"] = lambda: self.restart().lambda_handler
        else:
            defaults["handler"] = self.app.lambda_handler
        return SqsPoller(self.sqs, self.queue_url, **defaults | options)

    def burst(self, names: list[str], *, timeout: float) -> Burst:
        """One CreateCampaign event per name (external_id = name), handled by concurrent
        containers of their own until the queue is empty."""
        for start in range(0, len(names), 10):
            answer = self.events.put_events(
                Entries=[
                    {
                        "EventBusName": BUS,
                        "Source": "crm.example",
                        "DetailType": "CreateCampaign",
                        "Detail": json.dumps(trigger_body(name, external_id=name)),
                    }
                    for name in names[start : start + 10]
                ]
            )
            assert answer["FailedEntryCount"] == 0
        started = time.monotonic()
        with self.poller(containers=True) as poller:
            poller.wait_until_idle(timeout=timeout)
        return Burst(time.monotonic() - started, len(poller.invocations))

    # --- what came of it ---

    def api(self) -> Pay4FeedbackClient:
        """Another client of the tenant, as the customer's own scripts (no pacing of its own)."""
        return Pay4FeedbackClient(
            self.sandbox.url, api_key=self.api_key, budget=SlidingWindowLimiter(1000, 1)
        )

    def campaigns(self) -> list[Campaign]:
        """The tenant's campaigns in the sandbox, newest first (one of the tenant's requests)."""
        with self.api() as client:
            return client.list_campaigns()

    def created_events(self) -> list[str]:
        """Ids of the campaigns the sandbox announced as created (one per POST that made one)."""
        return [
            str(event.data["id"])
            for event in self.admin.events()
            if event.type == EventType.CAMPAIGN_CREATED
        ]

    def outcomes(self) -> list[dict[str, Any]]:
        """The outcome events put on the bus since the last call (a rule -> a tap queue)."""
        return [json.loads(m["Body"]) for m in self._drain(self.tap_url)]

    def dead_letters(self) -> list[dict[str, Any]]:
        return [json.loads(m["Body"]) for m in self._drain(self.dlq_url)]

    def _drain(self, queue_url: str) -> list[Any]:
        messages: list[Any] = []
        while batch := self.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get(
            "Messages", []
        ):
            messages.extend(batch)
            for message in batch:
                self.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        return messages


def _arn(sqs: SQSClient, url: str) -> str:
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]


@contextmanager
def trigger_stack(
    load_function: LoadFunction,
    sandbox: SandboxServer,
    *,
    api_key: str | None = None,
    visibility_timeout: int = 30,
    token: str = TOKEN,
    **env: str,
) -> Iterator[Stack]:
    """The trigger and its resources, in the moto of the caller's `mock_aws()`."""
    template = Template.load()
    tenant = api_key or _unused_key(sandbox)
    secrets = boto3.client("secretsmanager", region_name="us-east-1")
    token_arn = secrets.create_secret(Name="p4f/trigger-token", SecretString=token)["ARN"]
    api_key_arn = secrets.create_secret(
        Name="p4f/api-key", SecretString=json.dumps({"api_key": tenant})
    )["ARN"]
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    dynamodb.create_table(**template.table_definition("TriggerTable", "trigger"))
    budget = api_budget(dynamodb)
    sqs = boto3.client("sqs", region_name="us-east-1")
    dlq_url = sqs.create_queue(QueueName="create-campaign-dlq")["QueueUrl"]
    redrive = {"deadLetterTargetArn": _arn(sqs, dlq_url), "maxReceiveCount": MAX_RECEIVES}
    queue_url = sqs.create_queue(
        QueueName="create-campaign",
        Attributes={
            # Longer than an invocation may run, as deployed (150 s there); tests that wait
            # for SQS to retry a record shorten it.
            "VisibilityTimeout": str(visibility_timeout),
            "RedrivePolicy": json.dumps(redrive),
        },
    )["QueueUrl"]
    tap_url = sqs.create_queue(QueueName="outcome-tap")["QueueUrl"]
    events = boto3.client("events", region_name="us-east-1")
    events.create_event_bus(Name=BUS)
    rule = template.properties("CreateCampaignRule")
    events.put_rule(
        Name="create-campaign", EventBusName=BUS, EventPattern=json.dumps(rule["EventPattern"])
    )
    events.put_targets(
        Rule="create-campaign",
        EventBusName=BUS,
        Targets=[{"Id": "queue", "Arn": _arn(sqs, queue_url)}],
    )
    events.put_rule(
        Name="outcomes", EventBusName=BUS, EventPattern=json.dumps({"source": ["p4f-bridge"]})
    )
    events.put_targets(
        Rule="outcomes", EventBusName=BUS, Targets=[{"Id": "tap", "Arn": _arn(sqs, tap_url)}]
    )
    settings = (
        {
            "TRIGGER_TOKEN_SECRET_ARN": token_arn,
            "P4F_API_KEY_SECRET_ARN": api_key_arn,
            "P4F_BASE_URL": sandbox.url,
            "TRIGGER_TABLE": "trigger",
            "EVENT_BUS_NAME": BUS,
            "TRIGGER_QUEUE_URL": queue_url,
        }
        | budget
        | env
    )

    def restart() -> ModuleType:
        return load_function("campaign_trigger", settings)

    admin = SandboxAdmin(sandbox.url, tenant)
    try:
        yield Stack(
            restart(), sandbox, tenant, admin, sqs, events, queue_url, dlq_url, tap_url, restart
        )
    finally:
        admin.close()


def data(answer: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(answer["body"])
    assert body["success"] is True, body
    assert body["timestamp"].endswith("Z")
    payload: dict[str, Any] = body["data"]
    return payload


def error(answer: dict[str, Any]) -> str:
    body: dict[str, Any] = json.loads(answer["body"])
    assert body["success"] is False
    assert body["timestamp"].endswith("Z")
    message: str = body["error"]
    return message


def create_directly(stack: Stack, body: dict[str, Any]) -> Campaign:
    with stack.api() as client:
        return client.create_campaign(
            name=body["name"],
            description=body["description"],
            reward=body["reward"],
            max_responses=body["max_responses"],
            questions=body["questions"],
        )
