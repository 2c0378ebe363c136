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
