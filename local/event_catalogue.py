"""The event catalogue for EventBridge consumers: JSON Schemas generated from p4f.models.

    python -m local.event_catalogue      # rewrite schemas/ from the models

For each event type it writes `schemas/<source>/<detail-type>.json`, the JSON Schema
(draft 4, the dialect EventBridge's registry takes) of the whole EventBridge event as a
rule's target receives it: Pay4Feedback's events (source `pay4feedback`, from p4f.models)
and the bridge's own (source `p4f-bridge`: RewardReviewDecided, from p4f.reviews); and
`schemas/registry.yaml`, the nested template that registers them all in the bridge's schema
registry. A test fails when the committed files differ from
what the models give, so the catalogue cannot drift from the code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from p4f.fanout import EVENT_SOURCE
from p4f.models import EVENT_DATA_MODELS, EventType, WebhookEvent
from p4f.reviews import BRIDGE_EVENT_SOURCE, REWARD_REVIEW_DECIDED, RewardReviewDecided

SCHEMAS_DIR = Path(__file__).resolve().parent.parent / "schemas"
REGISTRY_TEMPLATE = SCHEMAS_DIR / "registry.yaml"
_DRAFT4 = "http://json-schema.org/draft-04/schema#"
_REF = "#/definitions/{model}"

EXAMPLE_RULES: dict[str, dict[str, Any]] = {
    "every approved reward": {"source": [EVENT_SOURCE], "detail-type": ["reward_approved"]},
    "every failed payout": {"source": [EVENT_SOURCE], "detail-type": ["payout_failed"]},
    "low-quality responses (score under 40)": {
        "source": [EVENT_SOURCE],
        "detail-type": ["response_scored"],
        "detail": {"data": {"quality": {"score": [{"numeric": ["<", 40]}]}}},
    },
    "campaigns that went live": {
        "source": [EVENT_SOURCE],
        "detail-type": ["campaign_updated", "campaign_resumed"],
        "detail": {"data": {"status": ["ACTIVE"]}},
    },
}
"""Event patterns README shows; tests route sample events through them in EventBridge."""

BRIDGE_EVENT_MODELS: dict[str, type[BaseModel]] = {REWARD_REVIEW_DECIDED: RewardReviewDecided}
"""The detail of each event the bridge itself publishes (source p4f-bridge)."""


def _schema_of(model: type[BaseModel]) -> dict[str, Any]:
    """`model`'s JSON Schema as it is on the wire, with draft-4 style definitions."""
    schema = model.model_json_schema(mode="serialization", ref_template=_REF)
    schema["definitions"] = schema.pop("$defs", {})
    return schema


def event_schema(event_type: EventType) -> dict[str, Any]:
    """The JSON Schema of an EventBridge event carrying one webhook event type."""
    detail = _schema_of(WebhookEvent)
    resource = _schema_of(EVENT_DATA_MODELS[event_type])
    definitions = detail.pop("definitions") | resource.pop("definitions")
    definitions[resource["title"]] = resource
    detail["properties"]["type"] = {"type": "string", "enum": [event_type.value]}
    detail["properties"]["data"] = {"$ref": _REF.format(model=resource["title"])}
    detail["title"] = f"{resource['title']}Event"
    description = f"A Pay4Feedback {event_type.value} webhook event on the bridge's bus."
    return _envelope(EVENT_SOURCE, event_type.value, description, detail, definitions)


def bridge_event_schema(detail_type: str) -> dict[str, Any]:
    """The JSON Schema of an EventBridge event the bridge publishes (source p4f-bridge)."""
    detail = _schema_of(BRIDGE_EVENT_MODELS[detail_type])
    description = f"The bridge's {detail_type} event on its bus."
    return _envelope(
        BRIDGE_EVENT_SOURCE, detail_type, description, detail, detail.pop("definitions")
    )


def _envelope(
    source: str,
    detail_type: str,
    description: str,
    detail: dict[str, Any],
    definitions: dict[str, Any],
) -> dict[str, Any]:
    """The schema of the whole EventBridge event around `detail`."""
    envelope = {
        "$schema": _DRAFT4,
        "title": f"{source} {detail_type}",
        "description": description,
        "type": "object",
        "required": ["id", "detail-type", "source", "time", "detail"],
        "properties": {
            "version": {"type": "string"},
            "id": {"type": "string"},
            "detail-type": {"type": "string", "enum": [detail_type]},
            "source": {"type": "string", "enum": [source]},
            "account": {"type": "string"},
            "time": {"type": "string", "format": "date-time"},
            "region": {"type": "string"},
            "resources": {"type": "array", "items": {"type": "string"}},
            "detail": {"$ref": _REF.format(model=detail["title"])},
        },
    }
    envelope["definitions"] = _reachable(envelope, definitions | {detail["title"]: detail})
    return envelope


def _reachable(schema: dict[str, Any], definitions: dict[str, Any]) -> dict[str, Any]:
    """The definitions `schema` refers to, directly or through each other."""
    kept: dict[str, Any] = {}
    pending = [schema]
    while pending:
        for name in _refs(pending.pop()):
            if name not in kept:
                kept[name] = definitions[name]
                pending.append(definitions[name])
    return dict(sorted(kept.items()))


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"].rsplit("/", 1)[1]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for item in node for ref in _refs(item)]
    return []


def schema_files() -> dict[Path, str]:
    """Every file of schemas/, by path, as it should read."""
    files = {
        SCHEMAS_DIR / EVENT_SOURCE / f"{t.value}.json": json.dumps(event_schema(t), indent=2) + "\n"
        for t in EventType
    }
    files |= {
        SCHEMAS_DIR / BRIDGE_EVENT_SOURCE / f"{name}.json": json.dumps(
            bridge_event_schema(name), indent=2
        )
        + "\n"
        for name in BRIDGE_EVENT_MODELS
    }
    files[REGISTRY_TEMPLATE] = _registry_template()
    return files


def _all_schemas() -> list[tuple[str, str, str, dict[str, Any]]]:
    """(logical id, source, detail-type, schema) of every event of the catalogue."""
    pay4feedback = [
        (
            "".join(part.title() for part in t.value.split("_")) + "Schema",
            EVENT_SOURCE,
            t.value,
            event_schema(t),
        )
        for t in EventType
    ]
    bridge = [
        (f"{name}Schema", BRIDGE_EVENT_SOURCE, name, bridge_event_schema(name))
        for name in BRIDGE_EVENT_MODELS
    ]
    return pay4feedback + bridge


def _registry_template() -> str:
    lines = [
        "# Generated by `python -m local.event_catalogue` from p4f.models: do not edit.",
        'AWSTemplateFormatVersion: "2010-09-09"',
        "Description: The p4f-bridge event catalogue, one JSON Schema per event type.",
        "Parameters:",
        "  RegistryName:",
        "    Type: String",
        "Resources:",
        "  Registry:",
        "    Type: AWS::EventSchemas::Registry",
        "    Properties:",
        "      RegistryName: !Ref RegistryName",
        "      Description: Events the p4f-bridge publishes on its bus",
    ]
    for logical_id, source, detail_type, schema in _all_schemas():
        content = json.dumps(schema, separators=(",", ":"))
        lines += [
            f"  {logical_id}:",
            "    Type: AWS::EventSchemas::Schema",
            "    Properties:",
            "      RegistryName: !GetAtt Registry.RegistryName",
            f"      SchemaName: {source}@{detail_type}",
            "      Type: JSONSchemaDraft4",
            f"      Description: {source} {detail_type}",
            f"      Content: {json.dumps(content)}",
        ]
    lines += [
        "Outputs:",
        "  RegistryName:",
        "    Value: !GetAtt Registry.RegistryName",
    ]
    return "\n".join(lines) + "\n"


def write() -> list[Path]:
    written = []
    for path, text in schema_files().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write():
        print(path)
