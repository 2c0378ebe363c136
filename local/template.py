"""template.yaml, read as data, so that local resources are made from what `sam deploy` makes.

CloudFormation's short tags (`!Ref X`, `!GetAtt A.B`, `!If [...]`) become their long forms
(`{"Ref": "X"}`, `{"Fn::GetAtt": ["A", "B"]}`, `{"Fn::If": [...]}`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

TEMPLATE_PATH = Path(__file__).resolve().parent.parent / "template.yaml"


class _CloudFormationLoader(yaml.SafeLoader):
    """A safe YAML loader that knows CloudFormation's short-form tags."""


def _construct_tag(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if tag_suffix in {"Ref", "Condition"}:  # the two without "Fn::" in their long form
        return {tag_suffix: value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{tag_suffix}": value}


_CloudFormationLoader.add_multi_constructor("!", _construct_tag)


@dataclass(frozen=True)
class Template:
    body: dict[str, Any]

    @classmethod
    def load(cls, path: Path = TEMPLATE_PATH) -> Template:
        return cls(yaml.load(path.read_text(), Loader=_CloudFormationLoader))  # noqa: S506 (a safe loader)

    def resource(self, logical_id: str) -> dict[str, Any]:
        resource: dict[str, Any] = self.body["Resources"][logical_id]
        return resource

    def default(self, parameter: str) -> str:
        """A Parameter's default value, as written (a CommaDelimitedList's is one string)."""
        return str(self.body["Parameters"][parameter]["Default"])

    def properties(self, logical_id: str) -> dict[str, Any]:
        properties: dict[str, Any] = self.resource(logical_id).get("Properties", {})
        return properties

    def url_functions(self) -> list[str]:
        """The logical ids of the functions with a function URL."""
        return [
            logical_id
            for logical_id, resource in self.body["Resources"].items()
            if "FunctionUrlConfig" in resource.get("Properties", {})
        ]

    def table_definition(self, logical_id: str, table_name: str) -> dict[str, Any]:
        """CreateTable arguments for a DynamoDB table of the template, under `table_name`."""
        properties = self.properties(logical_id)
        return {
            "TableName": table_name,
            "AttributeDefinitions": properties["AttributeDefinitions"],
            "KeySchema": properties["KeySchema"],
            "BillingMode": properties.get("BillingMode", "PROVISIONED"),
        }

    def table_ttl_attribute(self, logical_id: str) -> str | None:
        ttl = self.properties(logical_id).get("TimeToLiveSpecification", {})
        return str(ttl["AttributeName"]) if ttl.get("Enabled") else None
