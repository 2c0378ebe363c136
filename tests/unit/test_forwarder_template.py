"""The forwarders' part of template.yaml: what sam validate and cfn-lint cannot know."""

from __future__ import annotations

from typing import Any

import pytest
from segment_delivery import Settings as SegmentSettings
from slack_delivery import Settings as SlackSettings

from local.operate.replay import TEMPORARY_RULE_PREFIX
from local.template import Template
from p4f.models import EventType

TEMPLATE = Template.load()
FORWARDERS = ["Slack", "Segment"]


def ref(name: str) -> dict[str, str]:
    return {"Ref": name}


def get_att(resource: str, attribute: str) -> dict[str, list[str]]:
    return {"Fn::GetAtt": [resource, attribute]}


@pytest.mark.parametrize(
    ("parameter", "left_out"),
    [("SlackEventTypes", {"ping", "campaign_updated"}), ("SegmentEventTypes", {"ping"})],
)
def test_the_default_event_types_are_the_catalogue_but_the_noisy_ones(
    parameter: str, left_out: set[str]
) -> None:
    types = TEMPLATE.default(parameter).split(",")
    assert len(types) == len(set(types)) <= 10  # one SQS batch holds one of each
    assert set(types) == set(EventType) - left_out


@pytest.mark.parametrize(("name", "count"), [("Slack", 11), ("Segment", 10)])
def test_every_forwarder_resource_exists_only_when_it_is_switched_on(name: str, count: int) -> None:
    resources = {lid: r for lid, r in TEMPLATE.body["Resources"].items() if lid.startswith(name)}
    assert len(resources) == count  # with its Errors and Throttles alarms; Slack has a ledger too
    assert {r["Condition"] for r in resources.values()} == {f"{name}ForwarderEnabled"}
    assert TEMPLATE.body["Conditions"][f"{name}ForwarderEnabled"] == {
        "Fn::Equals": [ref(f"Enable{name}Forwarder"), "true"]
    }
    assert TEMPLATE.body["Parameters"][f"Enable{name}Forwarder"]["Default"] == "false"


@pytest.mark.parametrize("name", FORWARDERS)
def test_switching_one_on_without_its_secret_or_with_the_bus_off_is_refused(name: str) -> None:
    [rule] = [
        r
        for r in TEMPLATE.body["Rules"].values()
        if r["RuleCondition"]["Fn::Equals"][0] == ref(f"Enable{name}Forwarder")
    ]
    asserted = [a["Assert"] for a in rule["Assertions"]]
    assert {"Fn::Not": [{"Fn::Equals": [ref(f"{name}SecretArn"), ""]}]} in asserted
    assert {"Fn::Not": [{"Fn::Equals": [ref("FanOutTarget"), "sqs"]}]} in asserted


@pytest.mark.parametrize("name", FORWARDERS)
def test_the_bus_rule_sends_its_event_types_to_the_queue_and_failures_to_the_dlq(
    name: str,
) -> None:
    rule = TEMPLATE.properties(f"{name}ForwarderRule")
    assert rule["EventBusName"] == ref("EventBus")
    assert rule["EventPattern"] == {
        "source": ["pay4feedback"],
        "detail-type": ref(f"{name}EventTypes"),
    }
    [target] = rule["Targets"]
    assert target["Arn"] == get_att(f"{name}ForwarderQueue", "Arn")
    assert "InputPath" not in target  # the record body is the whole EventBridge event
    assert target["DeadLetterConfig"]["Arn"] == get_att(f"{name}ForwarderDeadLetterQueue", "Arn")
    [statement] = TEMPLATE.properties(f"{name}ForwarderQueuePolicy")["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    # The rule, and the rules `p4f-bridge replay --types` makes on the bus for a replay.
    replay_rules = (
        "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:rule/${EventBus}/"
        f"{TEMPORARY_RULE_PREFIX}*"
    )
    assert statement["Condition"] == {
        "ArnLike": {
            "aws:SourceArn": [get_att(f"{name}ForwarderRule", "Arn"), {"Fn::Sub": replay_rules}]
        }
    }


def batching_window_parameter(name: str) -> int:
    """The longest batching window a Parameter allows the forwarder (0 if it is fixed)."""
    window = TEMPLATE.properties(f"{name}ForwarderEventSource")["MaximumBatchingWindowInSeconds"]
    if isinstance(window, dict):
        return int(TEMPLATE.body["Parameters"][window["Ref"]]["MaxValue"])
    return 0


@pytest.mark.parametrize("name", FORWARDERS)
def test_the_queue_outlasts_six_function_timeouts_and_hands_over_to_its_dlq(name: str) -> None:
    queue = TEMPLATE.properties(f"{name}ForwarderQueue")
    dlq = TEMPLATE.properties(f"{name}ForwarderDeadLetterQueue")
    function = TEMPLATE.properties(f"{name}ForwarderFunction")
    # A record is in flight while its batch gathers: a window the user sets is added.
    assert queue["VisibilityTimeout"] == 6 * function["Timeout"] + batching_window_parameter(name)
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": get_att(f"{name}ForwarderDeadLetterQueue", "Arn"),
        "maxReceiveCount": 5,
    }
    assert queue["SqsManagedSseEnabled"] is dlq["SqsManagedSseEnabled"] is True
    assert dlq["MessageRetentionPeriod"] == 14 * 24 * 3600


@pytest.mark.parametrize("name", FORWARDERS)
def test_an_alarm_goes_off_on_the_first_message_in_the_dlq(name: str) -> None:
    alarm = TEMPLATE.properties(f"{name}ForwarderDeadLetterAlarm")
    assert alarm["Namespace"] == "AWS/SQS"
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert alarm["Dimensions"] == [
        {"Name": "QueueName", "Value": get_att(f"{name}ForwarderDeadLetterQueue", "QueueName")}
    ]
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)
    assert alarm["AlarmActions"] == {
        "Fn::If": ["AlarmsNotify", [ref("AlarmTopicArn")], ref("AWS::NoValue")]
    }


@pytest.mark.parametrize(
    ("name", "batch_size", "concurrency"),
    [("Slack", 10, 2), ("Segment", ref("SegmentBatchSize"), None)],
)
def test_the_function_gets_its_batches_and_reports_partial_failures(
    name: str, batch_size: object, concurrency: int | None
) -> None:
    mapping = TEMPLATE.properties(f"{name}ForwarderEventSource")
    assert mapping["FunctionName"] == ref(f"{name}ForwarderFunction")
    assert mapping["EventSourceArn"] == get_att(f"{name}ForwarderQueue", "Arn")
    assert mapping["BatchSize"] == batch_size
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping.get("ScalingConfig", {}).get("MaximumConcurrency") == concurrency


def test_segments_batch_and_window_parameters_stay_within_lambdas_limits() -> None:
    parameters = TEMPLATE.body["Parameters"]
    size, window = parameters["SegmentBatchSize"], parameters["SegmentBatchWindowSeconds"]
    assert (size["Type"], window["Type"]) == ("Number", "Number")
    assert 1 <= size["MinValue"] <= size["Default"] <= size["MaxValue"] <= 10_000
    # Batches over 10 need a window of at least 1 s; Lambda's longest is 300 s.
    assert 1 <= window["MinValue"] <= window["Default"] <= window["MaxValue"] <= 300
    mapping = TEMPLATE.properties("SegmentForwarderEventSource")
    assert mapping["MaximumBatchingWindowInSeconds"] == ref("SegmentBatchWindowSeconds")


@pytest.mark.parametrize("name", FORWARDERS)
def test_the_function_may_read_its_secret_and_poll_and_refill_its_queue_and_nothing_else(
    name: str,
) -> None:
    function = TEMPLATE.properties(f"{name}ForwarderFunction")
    queue = {"QueueName": get_att(f"{name}ForwarderQueue", "QueueName")}
    ledger = [
        {
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:GetItem"],
                    "Resource": get_att("SlackLedgerTable", "Arn"),
                }
            ]
        }
    ]
    assert function["Policies"] == [
        {"AWSSecretsManagerGetSecretValuePolicy": {"SecretArn": ref(f"{name}SecretArn")}},
        *(ledger if name == "Slack" else []),
        {"SQSPollerPolicy": queue},
        {"SQSSendMessagePolicy": queue},  # deferred records, and only to its own queue
    ]
    assert "Events" not in function  # a SAM SQS event would add a policy on every queue
    # It logs to its own group, made before it (so nothing it logs can make the group first).
    assert function["LoggingConfig"] == {"LogGroup": ref(f"{name}ForwarderLogGroup")}


def environment(name: str) -> dict[str, Any]:
    variables: dict[str, Any] = TEMPLATE.properties(f"{name}ForwarderFunction")["Environment"][
        "Variables"
    ]
    return variables


def test_the_functions_environment_is_what_their_settings_read() -> None:
    slack = environment("Slack")
    assert slack == {
        "SLACK_SECRET_ARN": ref("SlackSecretArn"),
        "SLACK_LEDGER_TABLE": ref("SlackLedgerTable"),
        "SLACK_QUEUE_URL": ref("SlackForwarderQueue"),
        "SLACK_CONTAINERS": "2",
        "SLACK_DIGEST_ABOVE": ref("SlackDigestAbove"),
        "RECONCILED_MAX_AGE_MINUTES": ref("SlackReconciledMaxAgeMinutes"),
    }
    SlackSettings.from_env(dict.fromkeys(slack, "2"))
    segment = environment("Segment")
    assert set(segment) == {
        "SEGMENT_SECRET_ARN",
        "SEGMENT_QUEUE_URL",
        "SEGMENT_ENDPOINT",
        "SEGMENT_SEND_PERSONAL_DATA",
    }
    assert segment["SEGMENT_QUEUE_URL"] == ref("SegmentForwarderQueue")
    assert segment["SEGMENT_SEND_PERSONAL_DATA"] == ref("SegmentSendPersonalData")
    assert TEMPLATE.body["Parameters"]["SegmentSendPersonalData"]["Default"] == "false"
    SegmentSettings.from_env(dict.fromkeys(segment, "true"))


def test_the_eu_region_sends_to_segments_eu_endpoint() -> None:
    assert environment("Segment")["SEGMENT_ENDPOINT"] == {
        "Fn::If": ["SegmentInEu", "https://events.eu1.segmentapis.com", "https://api.segment.io"]
    }
    assert TEMPLATE.body["Conditions"]["SegmentInEu"] == {
        "Fn::Equals": [ref("SegmentRegion"), "eu"]
    }
    assert TEMPLATE.body["Parameters"]["SegmentRegion"]["AllowedValues"] == ["us", "eu"]


def test_slack_digests_a_backlog_by_default_and_the_batch_size_turns_digests_off() -> None:
    parameter = TEMPLATE.body["Parameters"]["SlackDigestAbove"]
    batch_size = TEMPLATE.properties("SlackForwarderEventSource")["BatchSize"]
    assert 0 < parameter["Default"] < batch_size
    assert parameter["MaxValue"] == batch_size  # no batch is bigger: one message per event
    settings = SlackSettings.from_env(
        {
            "SLACK_SECRET_ARN": "arn",
            "SLACK_LEDGER_TABLE": "t",
            "SLACK_QUEUE_URL": "q",
            "SLACK_DIGEST_ABOVE": str(parameter["Default"]),
        }
    )
    assert settings.digest_above == parameter["Default"]


def test_slack_paces_each_container_by_how_many_the_queue_runs_at_once() -> None:
    mapping = TEMPLATE.properties("SlackForwarderEventSource")
    containers = environment("Slack")["SLACK_CONTAINERS"]
    assert int(containers) == mapping["ScalingConfig"]["MaximumConcurrency"]
    settings = SlackSettings.from_env(
        {
            "SLACK_SECRET_ARN": "arn",
            "SLACK_LEDGER_TABLE": "t",
            "SLACK_QUEUE_URL": "q",
            "SLACK_CONTAINERS": containers,
        }
    )
    assert settings.containers == 2


def test_the_slack_ledger_is_keyed_by_event_id_and_expires() -> None:
    table = TEMPLATE.properties("SlackLedgerTable")
    assert table["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["SSESpecification"] == {"SSEEnabled": True}
