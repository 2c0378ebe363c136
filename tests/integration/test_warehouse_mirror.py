"""The warehouse mirror as template.yaml deploys it (in moto): every campaign, response and
payout event the sandbox sends lands in its table, with the columns the models give."""

from __future__ import annotations

import base64
import json
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local.warehouse.tables import table_columns
from p4f.mirror import KIND_MODELS, MirrorKind, event_types
from p4f.models import EventType, WebhookEvent
from tests import sandbox_events
from tests.integration.conftest import Mirror
from tests.unit.test_local_cloudformation import deploy

KEY = "p4f_test_mirror"


@pytest.fixture(scope="module")
def every_event_type() -> list[WebhookEvent]:
    """One event of each catalogue type, as the sandbox sends them; text to escape in them."""
    return sandbox_events.every_event_type(
        KEY, campaign_name='The "big" one', rejection_reason="Spam, and \\ a backslash"
    )


def test_each_event_type_lands_in_its_table_with_the_models_columns(
    mirror: Mirror, every_event_type: list[WebhookEvent]
) -> None:
    mirror.publish(*(event.model_dump(mode="json") for event in every_event_type))
    with mirror.database() as database:
        for kind in MirrorKind:
            rows = {row["event_id"]: row for row in database.query(f"SELECT * FROM {kind}")}
            sent = [e for e in every_event_type if e.type in event_types(kind)]
            assert set(rows) == {e.id for e in sent}, kind
            for event in sent:
                row = rows[event.id]
                assert list(row) == [c.name for c in table_columns(kind)] + ["dt"]
                assert row["event_type"] == event.type
                assert row["event_time"] == event.model_dump(mode="json")["created_at"]
                assert row["tenant_id"] == event.tenant_id
                assert row["reconciled_at"] is None
                resource = KIND_MODELS[kind].model_validate(event.data).model_dump(mode="json")
                for field, value in resource.items():
                    assert _plain(row[field]) == _plain(value), (kind, field)


def _plain(value: Any) -> Any:
    """A row's value as JSON gives it (scores are doubles in the table)."""
    return json.loads(json.dumps(value), parse_int=float)


def test_ping_lands_nowhere(mirror: Mirror, every_event_type: list[WebhookEvent]) -> None:
    ping = next(e for e in every_event_type if e.type == EventType.PING)
    mirror.publish(ping.model_dump(mode="json"))
    with mirror.database() as database:
        for kind in MirrorKind:
            assert database.query(f"SELECT count(*) AS n FROM {kind}") == [{"n": 0}]


def test_an_event_the_reconciler_published_keeps_its_marker(
    mirror: Mirror, every_event_type: list[WebhookEvent]
) -> None:
    approved = next(e for e in every_event_type if e.type == EventType.REWARD_APPROVED)
    body = approved.model_dump(mode="json") | {"reconciled_at": "2026-04-19T15:00:00Z"}
    mirror.publish(body)
    with mirror.database() as database:
        [row] = database.query("SELECT event_id, reconciled_at, status FROM responses")
    assert row == {
        "event_id": approved.id,
        "reconciled_at": "2026-04-19T15:00:00Z",
        "status": "APPROVED",
    }


def test_an_event_that_cannot_become_a_row_waits_in_the_dead_letter_queue_alone(
    mirror: Mirror, every_event_type: list[WebhookEvent]
) -> None:
    scored = next(e for e in every_event_type if e.type == EventType.RESPONSE_SCORED)
    broken = scored.model_dump(mode="json")
    broken["id"] = "evt_without_quality"
    del broken["data"]["quality"]  # a path the transformer reads, missing
    mirror.publish(broken, scored.model_dump(mode="json"))
    with mirror.database() as database:
        assert database.query("SELECT event_id FROM responses") == [{"event_id": scored.id}]
    sqs = mirror.session.client("sqs")
    [dead] = sqs.receive_message(QueueUrl=mirror.deployment.outputs["WarehouseDeadLetterQueueUrl"])[
        "Messages"
    ]
    assert json.loads(dead["Body"])["detail"]["id"] == "evt_without_quality"


def test_the_glue_catalogue_in_moto_is_the_models(mirror: Mirror) -> None:
    glue = mirror.session.client("glue")
    database = mirror.deployment.outputs["WarehouseDatabaseName"]
    tables = {t["Name"]: t for t in glue.get_tables(DatabaseName=database)["TableList"]}
    for kind in MirrorKind:
        columns = tables[kind.value]["StorageDescriptor"]["Columns"]
        assert [(c["Name"], c["Type"]) for c in columns] == [
            (c.name, c.type.glue()) for c in table_columns(kind)
        ]
        view = tables[f"{kind.value}_current"]
        encoded = view["ViewOriginalText"].removeprefix("/* Presto View: ").removesuffix(" */")
        definition = json.loads(base64.b64decode(encoded))
        assert definition["schema"] == database == "p4f_bridge"
        assert f"FROM {kind.value}" in definition["originalSql"]
    athena = mirror.session.client("athena")
    workgroup = mirror.deployment.outputs["WarehouseWorkGroup"]
    ids = athena.list_named_queries(WorkGroup=workgroup)["NamedQueryIds"]
    assert len(ids) == 4


def test_without_the_parameter_there_is_no_mirror() -> None:
    with mock_aws():
        session = boto3.Session(region_name="us-east-1")
        deployment = deploy(session)
        assert deployment.firehose_targets == []
        assert not [name for name in deployment.outputs if name.startswith("Warehouse")]
        assert session.client("s3").list_buckets()["Buckets"] == []
        assert session.client("firehose").list_delivery_streams()["DeliveryStreamNames"] == []
