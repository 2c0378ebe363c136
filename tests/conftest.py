"""Fixtures for every test: AWS credentials that reach nothing real (moto, with DynamoDB made
atomic), handler loading, a fake clock, Secrets Manager in moto, and sample events as a
forwarder's queue holds them."""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any

import boto3
import moto  # noqa: F401 (moto must be imported before any boto3 client is built)
import pytest
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from moto import mock_aws

from local.atomic_moto import make_dynamodb_atomic
from local.lambda_events import sqs_record
from local.moto_events import make_event_paths_cached
from local.moto_firehose import make_firehose_faithful
from local.sample_events import catalogue_event, forwarder_record
from local.template import Template
from p4f.forwarding import QueuedEvent, read_record
from p4f.models import EventType

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_secretsmanager import SecretsManagerClient

# DynamoDB's conditional writes are atomic in AWS: in moto too, for every test.
make_dynamodb_atomic()
# Firehose's S3 objects as Firehose writes them (prefix expressions, delimiter, GZIP).
make_firehose_faithful()
# EventBridge's JSON paths parsed once, not for every event delivered.
make_event_paths_cached()

AWS_REGION = "us-east-1"
FORWARDER_QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:forwarder"

LoadFunction = Callable[[str, Mapping[str, str]], ModuleType]
API_BUDGET_TABLE = "api-budget"


def api_budget(dynamodb: DynamoDBClient, **variables: str) -> dict[str, str]:
    """The API budget's table (template.yaml's ApiBudgetTable) in the caller's moto, and the
    environment that points a function at it, with `variables` (e.g. API_REQUESTS_PER_MINUTE)."""
    dynamodb.create_table(**Template.load().table_definition("ApiBudgetTable", API_BUDGET_TABLE))
    return {"API_BUDGET_TABLE": API_BUDGET_TABLE} | variables


@dataclass
class FakeTime:
    """A clock that only moves when the code under test sleeps."""

    now: float = 1000.0
    sleeps: list[float] = field(default_factory=list)

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture(autouse=True)
def _aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and a region, and no endpoint from the developer's shell."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", AWS_REGION)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


@pytest.fixture
def load_function(monkeypatch: pytest.MonkeyPatch) -> Iterator[LoadFunction]:
    """Import `functions/<name>/app.py` afresh under an environment, as a cold start does."""
    loaded: list[str] = []

    def load(name: str, env: Mapping[str, str]) -> ModuleType:
        monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "p4f-bridge")
        monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "P4fBridge")
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        module_name = f"functions.{name}.app"
        sys.modules.pop(module_name, None)
        loaded.append(module_name)
        return importlib.import_module(module_name)

    yield load
    for module_name in loaded:
        sys.modules.pop(module_name, None)


def queued_record(
    event_type: EventType | str, message_id: str | None = None, **data: Any
) -> dict[str, Any]:
    """The SQS record a forwarder's queue holds for a sample event (see catalogue_event)."""
    body = catalogue_event(event_type, **data)
    return forwarder_record(body, queue_arn=FORWARDER_QUEUE_ARN, message_id=message_id)


def own_record(
    event_type: EventType | str,
    message_id: str,
    *,
    queue_arn: str = FORWARDER_QUEUE_ARN,
    **data: Any,
) -> dict[str, Any]:
    """`queued_record`, with an event id of its own (its type's sample id + the message id)."""
    body = catalogue_event(event_type, **data)
    body["id"] = f"{body['id']}-{message_id}"
    return forwarder_record(body, queue_arn=queue_arn, message_id=message_id)


LONE_SURROGATE_ANSWERS = [{"question_id": "q_1", "prompt": "Thoughts?", "value": "Love it \ud83d"}]
"""Answers with half an emoji: valid JSON, published as received (README)."""


def between_two_events(middle: dict[str, Any]) -> list[dict[str, Any]]:
    """A batch of three records: two healthy events around `middle`."""
    return [
        own_record(EventType.REWARD_APPROVED, "m-0", queue_arn=middle["eventSourceARN"]),
        middle,
        own_record(EventType.PAYOUT_COMPLETED, "m-2", queue_arn=middle["eventSourceARN"]),
    ]


def nested_record(queue_arn: str = FORWARDER_QUEUE_ARN) -> dict[str, Any]:
    """A record whose event's answer is 5,000 arrays deep: poison (message id m-deep)."""
    body = own_record(EventType.RESPONSE_SUBMITTED, "m-1", queue_arn=queue_arn)["body"]
    deep = json.dumps(json.loads(body)).replace('"q_1"', "[" * 5_000 + "]" * 5_000, 1)
    return sqs_record(deep, queue_arn=queue_arn, message_id="m-deep")


def queued_event(event_type: EventType | str, **data: Any) -> QueuedEvent:
    """A sample event as a forwarder reads it from its queue."""
    return read_record(SQSRecord(queued_record(event_type, **data)))


@pytest.fixture
def secretsmanager() -> Iterator[SecretsManagerClient]:
    """Secrets Manager in moto."""
    with mock_aws():
        yield boto3.client("secretsmanager", region_name=AWS_REGION)
