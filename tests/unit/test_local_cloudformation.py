"""template.yaml deployed into moto creates what `sam deploy` would, as the template says."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
            "ReviewActionsFunction": "http://127.0.0.1:9/",
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


SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:p4f/{}-AbCdEf"
EVERY_PART = {
    "EnableSlackForwarder": "true",
    "SlackSecretArn": SECRET_ARN.format("slack"),
    "EnableSegmentForwarder": "true",
    "SegmentSecretArn": SECRET_ARN.format("segment"),
    "EnableWarehouseMirror": "true",
}


def metric_lines(widget: dict[str, Any]) -> list[tuple[str, str, dict[str, str]]]:
    """A metric widget's lines as (namespace, metric, dimensions); a line that is an
    expression (SEARCH) as ("", expression, {})."""
    lines: list[tuple[str, str, dict[str, str]]] = []
    for line in widget["properties"]["metrics"]:
        options = line[-1] if isinstance(line[-1], dict) else {}
        fields = line[:-1] if options else line
        if not fields:
            lines.append(("", options["expression"], {}))
            continue
        namespace, metric, *pairs = fields
        assert all(isinstance(field, str) and field for field in fields), line
        lines.append((namespace, metric, dict(zip(pairs[::2], pairs[1::2], strict=True))))
    return lines


@pytest.mark.parametrize("parts", [EVERY_PART, {"FanOutTarget": "eventbridge"}], ids=["on", "off"])
def test_the_dashboard_is_json_whose_every_metric_parses_with_parts_on_or_off(
    session: boto3.Session, parts: dict[str, str]
) -> None:
    deployment = deploy(session, **parts)
    assert deployment.outputs["DashboardUrl"].endswith("#dashboards:name=p4f-local")
    body = session.client("cloudwatch").get_dashboard(DashboardName="p4f-local")["DashboardBody"]
    lines = [line for widget in json.loads(body)["widgets"] for line in metric_lines(widget)]
    for namespace, _, dimensions in lines:
        if namespace == "P4fBridge":  # what Powertools adds: a widget without it shows nothing
            assert dimensions == {"service": "p4f-bridge"}
    searches = [metric for namespace, metric, _ in lines if not namespace]
    assert all("{P4fBridge,function_name,priority,service}" in s for s in searches)
    durations = {d["FunctionName"] for _, metric, d in lines if metric == "Duration"}
    queues = {d["QueueName"] for _, metric, d in lines if metric.startswith("ApproximateNumber")}
    functions = {function.name for function in deployment.functions.values()}
    assert durations == functions
    expected_queues = {url.rsplit("/", 1)[1] for name, url in deployment.outputs.items()
                       if name.endswith("DeadLetterQueueUrl")}  # fmt: skip
    assert queues == expected_queues


def test_every_alarm_of_the_template_is_in_moto_named_after_the_stack(
    session: boto3.Session,
) -> None:
    deploy(session, **EVERY_PART, AlarmTopicArn="arn:aws:sns:us-east-1:123456789012:alarms")
    alarms = {
        alarm["AlarmName"]: alarm
        for alarm in session.client("cloudwatch").describe_alarms()["MetricAlarms"]
    }
    expected = {
        f"p4f-local-{logical_id}"
        for logical_id, resource in Template.load().body["Resources"].items()
        if resource["Type"] == "AWS::CloudWatch::Alarm"
    } | {"p4f-local-WarehouseMirror-DeadLetterAlarm"}
    assert set(alarms) == expected
    for alarm in alarms.values():
        assert (
            alarm["AlarmActions"]
            == alarm["OKActions"]
            == ["arn:aws:sns:us-east-1:123456789012:alarms"]
        )
    signature = alarms["p4f-local-WebhookSignatureRejectedAlarm"]
    [watched] = [query for query in signature["Metrics"] if query["ReturnData"]]
    assert "FILL(signature, 0) >= 3" in watched["Expression"]
    errors = alarms["p4f-local-SlackForwarderErrorsAlarm"]
    assert errors["Dimensions"] == [
        {"Name": "FunctionName", "Value": "p4f-local-SlackForwarderFunction"}
    ]


@pytest.mark.parametrize(
    ("parameter", "value", "refused", "told"),
    [
        ("SlackEventTypes", "reward_approved,reward_aproved", "reward_aproved is not allowed",
         "reward_approved, reward_rejected"),
        ("FanOutTarget", "kafka", "kafka is not allowed", "allowed: eventbridge, sqs, both"),
        ("ApiRequestsPerMinute", "6001", "6001 is not allowed", "a number from 2 to 6000"),
        ("SignatureToleranceSeconds", "soon", "soon is not allowed", "a number from 30 to 3600"),
        ("PermissionsBoundaryArn", "boundary", "boundary is not allowed",
         "empty, or the ARN of an IAM managed policy"),
    ],
)  # fmt: skip
def test_a_parameter_value_cloudformation_would_refuse_is_refused_with_what_it_may_be(
    session: boto3.Session, parameter: str, value: str, refused: str, told: str
) -> None:
    with pytest.raises(LocalDeployError, match=f"parameter {parameter}: {refused}") as raised:
        deploy(session, **{parameter: value})
    assert told in str(raised.value)
    assert not session.client("sqs").list_queues().get("QueueUrls")  # nothing was created


def test_a_lists_members_are_trimmed_as_cloudformation_trims_them(session: boto3.Session) -> None:
    deployment = deploy(session, SlackEventTypes="payout_failed, payout_completed")

    assert deployment.parameters["SlackEventTypes"] == "payout_failed,payout_completed"
