"""template.yaml deployed into moto creates what `sam deploy` would, as the template says."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from local.cloudformation import Deployment, LocalDeployer, LocalDeployError
from local.template import Template

ROOT = Path(__file__).resolve().parents[2]
API_KEY_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:p4f/api-key-AbCdEf"
RECEIVER_URL = "http://127.0.0.1:45678/"
TRIGGER_URL = "http://127.0.0.1:45679/"


@pytest.fixture
def session() -> Iterator[boto3.Session]:
    with mock_aws():
        yield boto3.Session(region_name="us-east-1")


def deploy(session: boto3.Session, **parameters: str) -> Deployment:
    return LocalDeployer(
        Template.load(),
        session.client,
        stack_name="p4f-local",
        parameters={"ApiKeySecretArn": API_KEY_ARN, **parameters},
        function_urls={
            "WebhookReceiverFunction": RECEIVER_URL,
            "CampaignTriggerFunction": TRIGGER_URL,
        },
        root=ROOT,
    ).deploy()


def test_the_receivers_resources_exist_and_its_environment_points_at_them(
    session: boto3.Session,
) -> None:
    deployment = deploy(session)
    receiver = deployment.functions["WebhookReceiverFunction"]
    env = receiver.environment
    assert receiver.url == RECEIVER_URL
    assert receiver.code_dir == ROOT / "functions" / "webhook_receiver"
    assert receiver.timeout_seconds == 9
    assert env["POWERTOOLS_SERVICE_NAME"] == "p4f-bridge"  # from Globals
    assert env["EVENT_BUS_NAME"] == deployment.outputs["EventBusName"] == "p4f-local-events"
    assert env["FANOUT_QUEUE_URL"] == deployment.outputs["FanOutQueueUrl"]
    table = session.client("dynamodb").describe_table(TableName=env["IDEMPOTENCY_TABLE"])["Table"]
    assert table["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    ttl = session.client("dynamodb").describe_time_to_live(TableName=env["IDEMPOTENCY_TABLE"])
    assert ttl["TimeToLiveDescription"]["AttributeName"] == "expires_at"
    secret = session.client("secretsmanager").get_secret_value(SecretId=env["WEBHOOK_SECRET_ARN"])
    assert len(secret["SecretString"]) == 48
    assert secret["SecretString"].isalnum()  # ExcludePunctuation
    session.client("events").describe_event_bus(Name=env["EVENT_BUS_NAME"])


def test_the_fan_out_queue_has_its_dead_letter_queue(session: boto3.Session) -> None:
    deployment = deploy(session)
    attributes = session.client("sqs").get_queue_attributes(
        QueueUrl=deployment.outputs["FanOutQueueUrl"], AttributeNames=["All"]
    )["Attributes"]
    redrive = json.loads(attributes["RedrivePolicy"])
    assert redrive["maxReceiveCount"] == 5
    assert redrive["deadLetterTargetArn"].endswith("FanOutDeadLetterQueue")


def test_conditions_leave_out_what_the_parameters_switch_off(session: boto3.Session) -> None:
    deployment = deploy(session, FanOutTarget="eventbridge")
    assert "FanOutQueueUrl" not in deployment.outputs
    assert deployment.functions["WebhookReceiverFunction"].environment["FANOUT_QUEUE_URL"] == ""
    queues = session.client("sqs").list_queues().get("QueueUrls", [])
    assert not [url for url in queues if "FanOut" in url]


def test_a_fifo_queue_gets_its_suffix(session: boto3.Session) -> None:
    deployment = deploy(session, FanOutQueueType="fifo")
    assert deployment.outputs["FanOutQueueUrl"].endswith(".fifo")


def test_the_custom_resource_is_described_for_its_function(session: boto3.Session) -> None:
    deployment = deploy(session, WebhookEvents="reward_approved,payout_failed")
    [subscription] = deployment.custom_resources
    assert subscription.function_logical_id == "SubscriptionManagerFunction"
    assert subscription.properties["WebhookUrl"] == RECEIVER_URL
    assert subscription.properties["Events"] == ["reward_approved", "payout_failed"]
    manager = deployment.functions["SubscriptionManagerFunction"]
    assert manager.environment["P4F_API_KEY_SECRET_ARN"] == API_KEY_ARN


def test_a_parameter_without_default_must_be_given(session: boto3.Session) -> None:
    with pytest.raises(LocalDeployError, match="ApiKeySecretArn has no default"):
        LocalDeployer(
            Template.load(),
            session.client,
            stack_name="x",
            parameters={},
            function_urls={},
            root=ROOT,
        ).deploy()


def test_an_unknown_parameter_is_refused(session: boto3.Session) -> None:
    with pytest.raises(LocalDeployError, match="no parameter"):
        deploy(session, NoSuchParameter="1")


def test_the_campaign_trigger_is_wired_to_its_queue_table_and_secrets(
    session: boto3.Session,
) -> None:
    deployment = deploy(session, TriggerQueueConcurrency="3", ApiRequestsPerMinute="40")
    trigger = deployment.functions["CampaignTriggerFunction"]
    env = trigger.environment
    assert trigger.url == TRIGGER_URL
    assert deployment.outputs["CampaignTriggerUrl"] == TRIGGER_URL + "triggers/campaigns"
    assert env["P4F_API_KEY_SECRET_ARN"] == API_KEY_ARN
    assert env["TRIGGER_QUEUE_URL"] == trigger.sqs_sources[0].queue_url
    assert (env["API_REQUESTS_PER_MINUTE"], env["API_INTERACTIVE_RESERVE_PERCENT"]) == ("40", "25")
    budget = session.client("dynamodb").describe_table(TableName=env["API_BUDGET_TABLE"])["Table"]
    assert budget["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    [source] = trigger.sqs_sources
    assert (source.batch_size, source.maximum_concurrency) == (5, 3)
    assert source.report_batch_item_failures
    token = session.client("secretsmanager").get_secret_value(
        SecretId=env["TRIGGER_TOKEN_SECRET_ARN"]
    )["SecretString"]
    assert len(token) == 48
    table = session.client("dynamodb").describe_table(TableName=env["TRIGGER_TABLE"])["Table"]
    assert table["KeySchema"] == [{"AttributeName": "key", "KeyType": "HASH"}]
