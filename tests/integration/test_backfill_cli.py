"""`p4f-bridge backfill --stack NAME`: what a deployed stack's mirror needs is read from the
stack (CloudFormation, in a moto_server), and every snapshot goes on its bus."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from local.cli import main
from local.moto_server import MotoServer
from local.sandbox import SandboxServer, running_sandbox
from local.template import Template
from p4f.client import Pay4FeedbackClient

KEY = "p4f_test_backfill_cli"


def a_deployed_bridge(aws: MotoServer, sandbox: SandboxServer, *, mirror: str) -> None:
    """A stack with what the backfill reads of the bridge's: its Parameters, its budget
    table (as template.yaml declares it) and its bus."""
    key = aws.client("secretsmanager").create_secret(Name="p4f/api-key", SecretString=KEY)["ARN"]
    template: dict[str, Any] = {
        "Parameters": {
            name: {"Type": "String"}
            for name in (
                "ApiKeySecretArn",
                "Pay4FeedbackBaseUrl",
                "EnableWarehouseMirror",
                "ApiRequestsPerMinute",
                "ApiInteractiveReservePercent",
            )
        },
        "Resources": {
            "ApiBudgetTable": Template.load().resource("ApiBudgetTable"),
            "EventBus": {"Type": "AWS::Events::EventBus", "Properties": {"Name": "bridge-events"}},
        },
        "Outputs": {"EventBusName": {"Value": "bridge-events"}},
    }
    parameters = {
        "ApiKeySecretArn": key,
        "Pay4FeedbackBaseUrl": sandbox.url,
        "EnableWarehouseMirror": mirror,
        "ApiRequestsPerMinute": "600",
        "ApiInteractiveReservePercent": "25",
    }
    aws.client("cloudformation").create_stack(
        StackName="p4f-bridge",
        TemplateBody=yaml.safe_dump(template),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
    )


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[MotoServer]:
    with MotoServer() as server:
        monkeypatch.setenv("AWS_ENDPOINT_URL", server.url)
        yield server


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    with running_sandbox([KEY], api_version="1.1", page_size=2, rate_limit=6000) as server:
        with Pay4FeedbackClient(server.url, api_key=KEY) as api:
            for n in range(3):
                api.create_campaign(name=f"C{n}", reward={"amount": "1.00", "currency": "USD"})
        yield server


def test_it_reads_the_stack_and_puts_every_snapshot_on_its_bus(
    aws: MotoServer, sandbox: SandboxServer, capsys: pytest.CaptureFixture[str]
) -> None:
    a_deployed_bridge(aws, sandbox, mirror="true")
    sqs, events = aws.client("sqs"), aws.client("events")
    url = sqs.create_queue(QueueName="snapshots")["QueueUrl"]
    events.put_rule(
        Name="snapshots", EventBusName="bridge-events", EventPattern='{"source": ["p4f-bridge"]}'
    )
    events.put_targets(
        Rule="snapshots",
        EventBusName="bridge-events",
        Targets=[{"Id": "q", "Arn": "arn:aws:sqs:us-east-1:123456789012:snapshots"}],
    )
    assert main(["backfill", "--stack", "p4f-bridge", "--region", "us-east-1"]) == 0
    shown = capsys.readouterr().out
    assert "Backfilling the warehouse mirror of p4f-bridge:" in shown
    assert "3 campaigns, 0 responses" in shown
    received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert (
        sorted(json.loads(m["Body"])["detail-type"] for m in received) == ["campaign_snapshot"] * 3
    )


def test_a_stack_without_the_mirror_is_refused_with_what_to_do(
    aws: MotoServer, sandbox: SandboxServer, capsys: pytest.CaptureFixture[str]
) -> None:
    a_deployed_bridge(aws, sandbox, mirror="false")
    assert main(["backfill", "--stack", "p4f-bridge", "--region", "us-east-1"]) == 2
    assert "EnableWarehouseMirror=true" in capsys.readouterr().err


def test_a_stack_that_is_not_there_is_named(
    aws: MotoServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["backfill", "--stack", "nowhere", "--region", "us-east-1"]) == 2
    assert "nowhere" in capsys.readouterr().err
