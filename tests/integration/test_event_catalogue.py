"""The event catalogue: schemas match the models, what Pay4Feedback sends, and the README's
example rules route what they say in EventBridge."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import jsonschema
import pytest
from moto import mock_aws

from local.event_catalogue import (
    EXAMPLE_RULES,
    SCHEMAS_DIR,
    bus_schema,
    event_schema,
    schema_files,
)
from local.lambda_events import eventbridge_event
from local.sample_events import EVENTS_DIR
from p4f.fanout import BRIDGE_SOURCE, EVENT_SOURCE
from p4f.mirror import KIND_MODELS, SNAPSHOT_TYPES, snapshot_event
from p4f.models import EventType, WebhookEvent
from tests import sandbox_events

README = Path(__file__).resolve().parents[2] / "README.md"
KEY = "p4f_test_catalogue"


def test_the_committed_schemas_are_what_the_models_give() -> None:
    for path, text in schema_files().items():
        assert path.exists(), f"{path} is missing: run python -m local.event_catalogue"
        assert path.read_text() == text, f"{path} is stale: run python -m local.event_catalogue"
    committed = set(SCHEMAS_DIR.glob("*/*.json"))  # pay4feedback/ and p4f-bridge/
    assert committed == {p for p in schema_files() if p.suffix == ".json"}


@pytest.fixture(scope="module")
def every_event_type() -> list[WebhookEvent]:
    """One event of each catalogue type, as the sandbox sends them."""
    return sandbox_events.every_event_type(KEY)


def on_the_bus(event: WebhookEvent) -> dict[str, Any]:
    return eventbridge_event(
        event.model_dump(mode="json"),
        detail_type=event.type,
        source=EVENT_SOURCE,
        event_time=event.model_dump(mode="json")["created_at"],
    )


def test_every_event_the_sandbox_sends_matches_its_schema(
    every_event_type: list[WebhookEvent],
) -> None:
    for event in every_event_type:
        jsonschema.validate(on_the_bus(event), event_schema(EventType(event.type)))


def test_a_schema_refuses_another_types_event(every_event_type: list[WebhookEvent]) -> None:
    payout = next(e for e in every_event_type if e.type == EventType.PAYOUT_COMPLETED)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(on_the_bus(payout), event_schema(EventType.CAMPAIGN_CREATED))


def test_the_backfills_snapshots_match_their_schemas(
    every_event_type: list[WebhookEvent],
) -> None:
    resources = {type(r): r for e in every_event_type if (r := e.resource()) is not None}
    for kind, detail_type in SNAPSHOT_TYPES.items():
        resource = resources[KIND_MODELS[kind]]
        body = snapshot_event(kind, resource, tenant_id="ten_1", taken_at=datetime.now(UTC))
        bus_event = eventbridge_event(
            body, detail_type=detail_type, source=BRIDGE_SOURCE, event_time=body["created_at"]
        )
        jsonschema.validate(bus_event, bus_schema(BRIDGE_SOURCE, detail_type))
        with pytest.raises(jsonschema.ValidationError):  # not a webhook event of Pay4Feedback
            jsonschema.validate(bus_event, event_schema(EventType.CAMPAIGN_CREATED))


def test_a_create_campaign_event_matches_its_schema_from_any_source_but_two() -> None:
    sample = json.loads((EVENTS_DIR / "event_bus" / "create_campaign.json").read_text())
    schema = bus_schema("any-source", "CreateCampaign")
    jsonschema.validate(sample, schema)
    for source in (EVENT_SOURCE, BRIDGE_SOURCE):  # the trigger's rule leaves them out
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(sample | {"source": source}, schema)
    with pytest.raises(jsonschema.ValidationError):  # a field the trigger does not know
        jsonschema.validate(sample | {"detail": sample["detail"] | {"budget": 5}}, schema)


def test_the_example_rules_route_what_they_say(every_event_type: list[WebhookEvent]) -> None:
    with mock_aws():
        events, sqs = boto3.client("events"), boto3.client("sqs")
        events.create_event_bus(Name="bus")
        queues = {}
        for number, (name, pattern) in enumerate(EXAMPLE_RULES.items()):
            url = sqs.create_queue(QueueName=f"rule-{number}")["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"
            ]
            events.put_rule(
                Name=f"rule-{number}", EventBusName="bus", EventPattern=json.dumps(pattern)
            )
            events.put_targets(
                Rule=f"rule-{number}", EventBusName="bus", Targets=[{"Id": "q", "Arn": arn}]
            )
            queues[name] = url
        for event in every_event_type:
            events.put_events(
                Entries=[
                    {
                        "EventBusName": "bus",
                        "Source": EVENT_SOURCE,
                        "DetailType": event.type,
                        "Detail": event.model_dump_json(),
                    }
                ]
            )
        routed = {
            name: sorted(
                json.loads(m["Body"])["detail-type"]
                for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get(
                    "Messages", []
                )
            )
            for name, url in queues.items()
        }
    assert routed == {
        "every approved reward": ["reward_approved"],
        "every failed payout": ["payout_failed"],
        "low-quality responses (score under 40)": ["response_scored"],
        "campaigns that went live": ["campaign_resumed", "campaign_updated"],
    }


def test_the_readme_shows_every_example_rule() -> None:
    readme = README.read_text()
    for pattern in EXAMPLE_RULES.values():
        assert json.dumps(pattern) in readme
