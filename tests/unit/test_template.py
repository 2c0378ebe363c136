"""template.yaml as a whole: what cfn-lint and sam validate cannot know."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from local.template import Template
from p4f.models import EventType


def test_every_function_logs_to_a_group_the_template_makes_first() -> None:
    template = Template.load().body["Resources"]
    functions = {
        logical_id: resource
        for logical_id, resource in template.items()
        if resource["Type"] == "AWS::Serverless::Function"
    }
    for logical_id, function in functions.items():
        group = function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        assert template[group]["Type"] == "AWS::Logs::LogGroup", logical_id
        # Not named after the function: the group must not wait for the function to exist.
        assert logical_id not in json.dumps(template[group]["Properties"]["LogGroupName"])


def test_each_reconciler_metric_that_means_trouble_has_an_alarm_that_notifies() -> None:
    template = Template.load()
    watched = {
        "ReconcilerMayHaveMissedAlarm": "ReconcilerMayHaveMissed",
        "WebhookSubscriptionMissingAlarm": "WebhookSubscriptionMissing",
        "ReconcilerIncompleteAlarm": "ReconcilerIncomplete",
    }
    for logical_id, metric in watched.items():
        assert template.resource(logical_id)["Condition"] == "ReconcilerScheduled"
        alarm = template.properties(logical_id)
        assert (alarm["Namespace"], alarm["MetricName"]) == ("P4fBridge", metric)
        assert alarm["Dimensions"] == [{"Name": "service", "Value": "p4f-bridge"}]
        assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)
        assert alarm["AlarmActions"] == {
            "Fn::If": ["AlarmsNotify", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]
        }


ROOT = Path(__file__).resolve().parents[2]
MIRROR = Template.load(ROOT / "warehouse" / "mirror.yaml")
SAM_PYTHON = ROOT / ".tools" / "sam" / "bin" / "python"
"""aws-sam-translator's interpreter (`make` installs it before the tests run)."""
NOTIFY = {"Fn::If": ["AlarmsNotify", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]}
STATEFUL_TYPES = {
    "AWS::DynamoDB::Table",
    "AWS::Events::Archive",
    "AWS::S3::Bucket",
    "AWS::SecretsManager::Secret",
    "AWS::SQS::Queue",
}
PHYSICAL_NAMES = ("TableName", "QueueName", "Name", "BucketName", "ArchiveName")


def resources_of(template: Template, kind: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource
        for logical_id, resource in template.body["Resources"].items()
        if resource["Type"] == kind
    }


def test_every_function_has_an_errors_and_a_throttles_alarm_under_its_condition() -> None:
    template = Template.load()
    alarms = resources_of(template, "AWS::CloudWatch::Alarm").values()
    watched = {
        (alarm["Properties"].get("MetricName"), json.dumps(alarm["Properties"].get("Dimensions"))):
            alarm.get("Condition")
        for alarm in alarms
        if alarm["Properties"].get("Namespace") == "AWS/Lambda"
    }  # fmt: skip
    functions = resources_of(template, "AWS::Serverless::Function")
    assert len(functions) == 9
    for logical_id, function in functions.items():
        dimensions = json.dumps([{"Name": "FunctionName", "Value": {"Ref": logical_id}}])
        for metric in ("Errors", "Throttles"):
            assert (metric, dimensions) in watched, f"{logical_id} has no {metric} alarm"
            assert watched[metric, dimensions] == function.get("Condition"), logical_id


@pytest.mark.parametrize("template", [Template.load(), MIRROR], ids=["template", "mirror"])
def test_every_alarm_notifies_the_alarm_topic_when_it_goes_off_and_when_it_is_ok(
    template: Template,
) -> None:
    alarms = resources_of(template, "AWS::CloudWatch::Alarm")
    assert alarms
    for logical_id, alarm in alarms.items():
        properties = alarm["Properties"]
        assert properties["AlarmActions"] == properties["OKActions"] == NOTIFY, logical_id
        # CloudFormation names it <stack>-<LogicalId>-<suffix>: `p4f-bridge status` finds it so.
        assert "AlarmName" not in properties, logical_id


def strings_in(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [text for value in node.values() for text in strings_in(value)]
    if isinstance(node, list):
        return [text for item in node for text in strings_in(item)]
    return [node] if isinstance(node, str) else []


def metrics_named(template: Template, namespace: str) -> set[str]:
    """The metrics of `namespace` the alarms watch and the dashboard draws."""
    names = set()
    for alarm in resources_of(template, "AWS::CloudWatch::Alarm").values():
        properties = alarm["Properties"]
        queries = [
            q["MetricStat"]["Metric"] for q in properties.get("Metrics", []) if "MetricStat" in q
        ]
        names |= {
            m["MetricName"] for m in [properties, *queries] if m.get("Namespace") == namespace
        }
    [dashboard] = resources_of(template, "AWS::CloudWatch::Dashboard").values()
    body = "\n".join(strings_in(dashboard["Properties"]["DashboardBody"]))
    names |= set(re.findall(rf'\["{namespace}", "(\w+)"', body))  # a metric's line
    names |= set(re.findall(rf'{{{namespace},[^}}]*}} MetricName=\\"(\w+)', body))  # SEARCH
    return names


def test_every_bridge_metric_the_alarms_and_the_dashboard_name_is_one_the_code_emits() -> None:
    code = "\n".join(
        path.read_text()
        for folder in (ROOT / "functions", ROOT / "layers" / "p4f" / "p4f")
        for path in folder.rglob("*.py")
    )
    named = metrics_named(Template.load(), "P4fBridge")
    assert {"WebhookSignatureRejected", "EventsForwarded", "ApiBudgetWaited"} <= named
    assert not {name for name in named if f'"{name}"' not in code}, "no code emits these"


@pytest.mark.parametrize("template", [Template.load(), MIRROR], ids=["template", "mirror"])
def test_every_stateful_resource_says_what_becomes_of_it_on_delete_and_on_replacement(
    template: Template,
) -> None:
    for logical_id, resource in template.body["Resources"].items():
        if resource["Type"] not in STATEFUL_TYPES:
            continue
        assert {"DeletionPolicy", "UpdateReplacePolicy"} <= resource.keys(), logical_id
        if "Retain" in resource["DeletionPolicy"]:
            # A resource left behind with a fixed name would collide with the next deploy of
            # the same stack name.
            named = set(PHYSICAL_NAMES) & resource.get("Properties", {}).keys()
            assert not named, f"{logical_id} is retained under a fixed {named}"


def test_the_money_decisions_and_the_trigger_ledger_outlive_the_stack() -> None:
    template = Template.load()
    for logical_id in ("ReviewTable", "TriggerTable"):
        resource = template.resource(logical_id)
        assert resource["DeletionPolicy"] == "RetainExceptOnCreate"
        assert resource["UpdateReplacePolicy"] == "Retain"


def test_the_event_type_parameters_allow_exactly_the_catalogue() -> None:
    parameters = Template.load().body["Parameters"]
    lists = [name for name, spec in parameters.items() if spec["Type"] == "CommaDelimitedList"]
    assert sorted(lists) == ["SegmentEventTypes", "SlackEventTypes", "WebhookEvents"]
    for name in lists:
        assert parameters[name]["AllowedValues"] == [str(t) for t in EventType], name
        for event_type in EventType:
            assert event_type in parameters[name]["ConstraintDescription"], name


def test_every_role_gets_the_permissions_boundary_when_one_is_given() -> None:
    # The template as CloudFormation gets it (SAM makes the functions' roles), every part on.
    command = [str(SAM_PYTHON), str(ROOT / "scripts" / "translate-template"), "--every-feature"]
    translated = subprocess.run(  # noqa: S603 (our own script, the SAM tool environment)
        command, cwd=ROOT, env=os.environ | {"AWS_DEFAULT_REGION": "us-east-1"},
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    boundary = {
        "Fn::If": [
            "HasPermissionsBoundary",
            {"Ref": "PermissionsBoundaryArn"},
            {"Ref": "AWS::NoValue"},
        ]
    }
    for template in (Template(json.loads(translated)), MIRROR):
        roles = resources_of(template, "AWS::IAM::Role")
        assert roles
        for logical_id, role in roles.items():
            assert role["Properties"].get("PermissionsBoundary") == boundary, logical_id
        assert template.body["Conditions"]["HasPermissionsBoundary"] == {
            "Fn::Not": [{"Fn::Equals": [{"Ref": "PermissionsBoundaryArn"}, ""]}]
        }
    mirror = Template.load().properties("WarehouseMirror")["Parameters"]
    assert mirror["PermissionsBoundaryArn"] == {"Ref": "PermissionsBoundaryArn"}
