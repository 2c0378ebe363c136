"""template.yaml as a whole: what cfn-lint and sam validate cannot know."""

from __future__ import annotations

import json

from local.template import Template


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
