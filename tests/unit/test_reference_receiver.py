"""The benchmark's yardstick (bench/reference_receiver.py) verifies and publishes for real."""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from moto import mock_aws

from local.lambda_events import LocalLambdaContext, function_url_event
from p4f.signing import delivery_headers

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

SECRET = "whsec_reference_secret"
BUS = "p4f-bridge-events"


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[ModuleType, SQSClient, str]]:
    """The reference, loaded as a cold start does, and a queue that gets what the bus gets."""
    with mock_aws():
        events, sqs = boto3.client("events"), boto3.client("sqs")
        events.create_event_bus(Name=BUS)
        tap_url = sqs.create_queue(QueueName="tap")["QueueUrl"]
        tap_arn = sqs.get_queue_attributes(QueueUrl=tap_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        events.put_rule(
            Name="all", EventBusName=BUS, EventPattern=json.dumps({"source": ["pay4feedback"]})
        )
        events.put_targets(Rule="all", EventBusName=BUS, Targets=[{"Id": "tap", "Arn": tap_arn}])
        monkeypatch.setenv("WEBHOOK_SECRET", SECRET)
        monkeypatch.setenv("EVENT_BUS_NAME", BUS)
        sys.modules.pop("bench.reference_receiver", None)
        yield importlib.import_module("bench.reference_receiver"), sqs, tap_url
        sys.modules.pop("bench.reference_receiver", None)


def deliver(module: ModuleType, secret: str) -> dict[str, Any]:
    body = json.dumps({"id": "evt_ref_1", "type": "reward_approved", "data": {}}).encode()
    headers = delivery_headers(body, secret, event_id="evt_ref_1", event_type="reward_approved")
    answer: dict[str, Any] = module.lambda_handler(
        function_url_event("POST", body, headers), LocalLambdaContext("reference", 9)
    )
    return answer


def test_a_delivery_signed_as_pay4feedback_signs_lands_on_the_bus(
    published: tuple[ModuleType, SQSClient, str],
) -> None:
    module, sqs, tap_url = published
    assert deliver(module, SECRET)["statusCode"] == 200
    [message] = sqs.receive_message(QueueUrl=tap_url, MaxNumberOfMessages=10)["Messages"]
    on_bus = json.loads(message["Body"])
    assert (on_bus["source"], on_bus["detail-type"]) == ("pay4feedback", "reward_approved")
    assert on_bus["detail"]["id"] == "evt_ref_1"


def test_a_forged_delivery_is_refused_and_not_published(
    published: tuple[ModuleType, SQSClient, str],
) -> None:
    module, sqs, tap_url = published
    assert deliver(module, "whsec_not_the_secret")["statusCode"] == 401
    assert "Messages" not in sqs.receive_message(QueueUrl=tap_url)
