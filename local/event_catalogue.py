"""The event catalogue for EventBridge consumers: JSON Schemas generated from p4f.models.

    python -m local.event_catalogue      # rewrite schemas/ from the models

For each event type it writes `schemas/<source>/<detail-type>.json`, the JSON Schema
(draft 4, the dialect EventBridge's registry takes) of the whole EventBridge event as a
rule's target receives it, for every event on the bridge's bus that the bridge puts there
or reads:

    pay4feedback/   Pay4Feedback's events, from p4f.models (the webhook receiver and the
                    reconciler put them on the bus; the forwarders and the mirror read them)
    p4f-bridge/     the bridge's own: RewardReviewDecided (p4f.reviews), the campaign
                    trigger's CampaignTriggerSucceeded and CampaignTriggerFailed
                    (trigger_queue), the backfill's campaign_snapshot and response_snapshot
                    (p4f.mirror, read by the mirror)
    any-source/     CreateCampaign, the campaign trigger's input (trigger_body.TriggerBody),
                    from any source but those two

and `schemas/registry.yaml`, the nested template that registers them all in the bridge's
schema registry. A test fails when the committed files differ from what the models give,
so the catalogue cannot drift from the code.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from p4f.fanout import EVENT_SOURCE
from p4f.mirror import KIND_MODELS, SNAPSHOT_TYPES
from p4f.models import EVENT_DATA_MODELS, EventType, WebhookEvent
from p4f.reviews import BRIDGE_EVENT_SOURCE, REWARD_REVIEW_DECIDED, RewardReviewDecided

ROOT = Path(__file__).resolve().parent.parent
# The campaign trigger's models are in its function's code, which Lambda runs as top-level
# modules (as the tests import them).
if str(ROOT / "functions" / "campaign_trigger") not in sys.path:
    sys.path.append(str(ROOT / "functions" / "campaign_trigger"))

from trigger_body import TriggerBody  # noqa: E402
from trigger_queue import CREATE_CAMPAIGN, OUTCOME_MODELS  # noqa: E402

SCHEMAS_DIR = ROOT / "schemas"
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

BRIDGE_EVENT_MODELS: dict[str, type[BaseModel]] = {
    REWARD_REVIEW_DECIDED: RewardReviewDecided,
    **OUTCOME_MODELS,
}
"""The detail of each event the bridge itself publishes (source p4f-bridge) but snapshots."""
SNAPSHOT_DATA_MODELS: dict[str, type[BaseModel]] = {
    detail_type: KIND_MODELS[kind] for kind, detail_type in SNAPSHOT_TYPES.items()
}
"""The data of each snapshot the backfill publishes (source p4f-bridge): webhook-shaped."""
ANY_SOURCE = "any-source"
"""Where the schema of CreateCampaign goes: its producers choose its source."""
TRIGGER_SOURCES_REFUSED = [EVENT_SOURCE, BRIDGE_EVENT_SOURCE]
"""The sources the trigger's rule leaves out (template.yaml, CreateCampaignRule)."""


def _schema_of(model: type[BaseModel]) -> dict[str, Any]:
    """`model`'s JSON Schema as it is on the wire, with draft-4 style definitions."""
    schema = model.model_json_schema(mode="serialization", ref_template=_REF)
    schema["definitions"] = schema.pop("$defs", {})
    return schema


def event_schema(event_type: EventType) -> dict[str, Any]:
    """The JSON Schema of an EventBridge event carrying one webhook event type."""
    description = f"A Pay4Feedback {event_type.value} webhook event on the bridge's bus."
    return _webhook_shaped(
        EVENT_SOURCE, event_type.value, EVENT_DATA_MODELS[event_type], description, "Event"
    )


def snapshot_schema(detail_type: str) -> dict[str, Any]:
    """The JSON Schema of a snapshot the backfill publishes (p4f.mirror.snapshot_event)."""
    description = (
        f"The bridge's {detail_type}: a resource as the API listed it, in a webhook event's "
        "shape, put on the bus by the warehouse mirror's backfill."
    )
    return _webhook_shaped(
        BRIDGE_EVENT_SOURCE,
        detail_type,
        SNAPSHOT_DATA_MODELS[detail_type],
        description,
        "Snapshot",
    )


def _webhook_shaped(
    source: str, detail_type: str, data: type[BaseModel], description: str, suffix: str
) -> dict[str, Any]:
    """An EventBridge event whose detail is a webhook event body of type `detail_type`."""
    detail = _schema_of(WebhookEvent)
    resource = _schema_of(data)
    definitions = detail.pop("definitions") | resource.pop("definitions")
    definitions[resource["title"]] = resource
    detail["properties"]["type"] = {"type": "string", "enum": [detail_type]}
    detail["properties"]["data"] = {"$ref": _REF.format(model=resource["title"])}
    detail["title"] = f"{resource['title']}{suffix}"
    return _envelope(source, detail_type, description, detail, definitions)


def create_campaign_schema() -> dict[str, Any]:
    """The JSON Schema of a CreateCampaign event: the trigger's body, from any producer."""
    detail = TriggerBody.model_json_schema(mode="validation", ref_template=_REF)
    definitions = detail.pop("$defs", {})
    description = (
        "A campaign to create: put it on the bridge's bus with detail-type CreateCampaign "
        f"and a source of your own (not {' or '.join(TRIGGER_SOURCES_REFUSED)}); the "
        "outcome is a CampaignTriggerSucceeded or CampaignTriggerFailed event. The shape "
        "shown is the canonical one; the no-code shorthands the trigger also takes are in "
        "README, Campaign trigger."
    )
    source = {"type": "string", "not": {"enum": TRIGGER_SOURCES_REFUSED}}
    return _envelope(
        ANY_SOURCE, CREATE_CAMPAIGN, description, detail, definitions, source_schema=source
    )


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
    *,
    source_schema: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The schema of the whole EventBridge event around `detail` (from `source`, unless
    `source_schema` says which sources)."""
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
            "source": source_schema or {"type": "string", "enum": [source]},
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
        SCHEMAS_DIR / source / f"{detail_type}.json": json.dumps(schema, indent=2) + "\n"
        for _, source, detail_type, schema in _all_schemas()
    }
    files[REGISTRY_TEMPLATE] = _registry_template()
    return files


def bus_schema(source: str, detail_type: str) -> dict[str, Any]:
    """The catalogue's schema of an event on the bus (`source` any-source for CreateCampaign)."""
    for _, of_source, of_type, schema in _all_schemas():
        if (of_source, of_type) == (source, detail_type):
            return schema
    raise KeyError(f"no schema for {source} {detail_type} in the catalogue")


def _all_schemas() -> list[tuple[str, str, str, dict[str, Any]]]:
    """(logical id, source, detail-type, schema) of every event of the catalogue."""
    pay4feedback = [
        (_logical_id(t.value), EVENT_SOURCE, t.value, event_schema(t)) for t in EventType
    ]
    bridge = [
        (_logical_id(name), BRIDGE_EVENT_SOURCE, name, bridge_event_schema(name))
        for name in BRIDGE_EVENT_MODELS
    ]
    snapshots = [
        (_logical_id(name), BRIDGE_EVENT_SOURCE, name, snapshot_schema(name))
        for name in SNAPSHOT_DATA_MODELS
    ]
    trigger_input = [
        (_logical_id(CREATE_CAMPAIGN), ANY_SOURCE, CREATE_CAMPAIGN, create_campaign_schema())
    ]
    return pay4feedback + bridge + snapshots + trigger_input


def _logical_id(detail_type: str) -> str:
    """reward_approved -> RewardApprovedSchema; RewardReviewDecided stays as it is."""
    return "".join(part[:1].upper() + part[1:] for part in detail_type.split("_")) + "Schema"


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
        "      Description: Events the p4f-bridge publishes on its bus, and those it reads",
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
