"""warehouse/mirror.yaml: generated from the models and the SQL files, and what it must say."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

import local.warehouse.tables
from local.template import Template
from local.warehouse.sql import named_queries, views
from local.warehouse.tables import EVENT_COLUMNS, PARTITION_COLUMN, table_columns
from local.warehouse.template import MIRROR_TEMPLATE, mirror_template, mirror_template_text
from p4f.mirror import KIND_MODELS, SNAPSHOT_TYPES, MirrorKind, event_types
from p4f.models import Money, Respondent, Response

MIRROR = Template.load(MIRROR_TEMPLATE)


def resources_of(kind: str) -> dict[str, Any]:
    return {k: v for k, v in MIRROR.body["Resources"].items() if v["Type"] == kind}


def test_the_committed_template_is_what_the_models_and_the_sql_give() -> None:
    assert MIRROR_TEMPLATE.read_text() == mirror_template_text(), (
        "warehouse/mirror.yaml is stale: run python -m local.warehouse.template"
    )


def test_a_field_added_to_a_model_makes_the_committed_template_stale(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class ResponseWithChannel(Response):
        channel: str | None = None

    monkeypatch.setitem(KIND_MODELS, MirrorKind.RESPONSES, ResponseWithChannel)
    assert "channel" in [c.name for c in table_columns(MirrorKind.RESPONSES)]
    assert mirror_template_text() != MIRROR_TEMPLATE.read_text()


@pytest.mark.parametrize("kind", list(MirrorKind))
def test_each_glue_table_has_a_column_per_event_field_and_per_model_field(
    kind: MirrorKind,
) -> None:
    [table] = [
        t["Properties"]["TableInput"]
        for t in resources_of("AWS::Glue::Table").values()
        if t["Properties"]["TableInput"]["Name"] == kind.value
    ]
    names = [column["Name"] for column in table["StorageDescriptor"]["Columns"]]
    assert names == [*EVENT_COLUMNS, *KIND_MODELS[kind].model_fields]
    assert [k["Name"] for k in table["PartitionKeys"]] == [PARTITION_COLUMN]
    assert table["Parameters"]["projection.enabled"] == "true"
    assert table["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"] == (
        "org.openx.data.jsonserde.JsonSerDe"
    )


def test_column_types_follow_the_models() -> None:
    types = {c.name: c.type.glue() for c in table_columns(MirrorKind.RESPONSES)}
    assert types["reward"] == "struct<amount:string,currency:string>"  # money: decimal text
    assert types["respondent"] == "struct<id:string,email:string>"
    assert types["quality"] == "struct<score:double,verdict:string,breakdown:map<string,double>>"
    assert types["answers"] == "array<struct<question_id:string,prompt:string,value:string>>"
    assert types["submitted_at"] == types["reconciled_at"] == "string"  # ISO 8601 as sent
    campaigns = {c.name: c.type.glue() for c in table_columns(MirrorKind.CAMPAIGNS)}
    assert campaigns["max_responses"] == "bigint"
    assert list(Money.model_fields) == ["amount", "currency"]
    assert list(Respondent.model_fields) == ["id", "email"]


def test_a_model_field_that_would_clash_with_an_event_column_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class PayoutWithEventId(KIND_MODELS[MirrorKind.PAYOUTS]):  # type: ignore[misc,valid-type]
        event_id: str = ""

    monkeypatch.setitem(KIND_MODELS, MirrorKind.PAYOUTS, PayoutWithEventId)
    with pytest.raises(ValueError, match="event_id"):
        local.warehouse.tables.table_columns(MirrorKind.PAYOUTS)


@pytest.mark.parametrize("kind", list(MirrorKind))
def test_the_rules_of_a_kind_take_its_events_and_fill_every_column(kind: MirrorKind) -> None:
    rules = {
        logical_id: rule["Properties"]
        for logical_id, rule in resources_of("AWS::Events::Rule").items()
        if logical_id.startswith(kind.value.title())
    }
    assert len(rules) == 2
    wanted = event_types(kind) + ([SNAPSHOT_TYPES[kind]] if kind in SNAPSHOT_TYPES else [])
    reconciled = set()
    for properties in rules.values():
        pattern = properties["EventPattern"]
        assert pattern["detail-type"] == wanted
        reconciled.add(pattern["detail"]["reconciled_at"][0]["exists"])
        [target] = properties["Targets"]
        template = json.loads(
            re.sub(r"<[a-z_]+>", "null", target["InputTransformer"]["InputTemplate"])
        )
        assert list(template) == [c.name for c in table_columns(kind)]
        paths = target["InputTransformer"]["InputPathsMap"]
        for column in table_columns(kind):
            assert paths.get(column.name, column.path) == column.path
        assert "DeadLetterConfig" in target
    assert reconciled == {True, False}  # every event goes through exactly one of the two


def test_only_the_reconciled_rule_reads_reconciled_at() -> None:
    for logical_id, rule in resources_of("AWS::Events::Rule").items():
        [target] = rule["Properties"]["Targets"]
        template = target["InputTransformer"]["InputTemplate"]
        if "Reconciled" in logical_id:
            assert '"reconciled_at":<reconciled_at>' in template
        else:
            assert '"reconciled_at":null' in template
            assert "reconciled_at" not in target["InputTransformer"]["InputPathsMap"]


def test_each_stream_writes_gzipped_newline_delimited_rows_by_day() -> None:
    for logical_id, stream in resources_of("AWS::KinesisFirehose::DeliveryStream").items():
        destination = stream["Properties"]["ExtendedS3DestinationConfiguration"]
        kind = logical_id.removesuffix("DeliveryStream").lower()
        assert destination["Prefix"] == f"{kind}/dt=!{{timestamp:yyyy-MM-dd}}/"
        assert destination["CompressionFormat"] == "GZIP"
        assert destination["ProcessingConfiguration"]["Processors"] == [
            {"Type": "AppendDelimiterToRecord"}
        ]
        assert "!{firehose:error-output-type}" in destination["ErrorOutputPrefix"]


def test_buckets_are_kept_encrypted_private_and_tls_only() -> None:
    buckets = resources_of("AWS::S3::Bucket")
    assert set(buckets) == {"MirrorBucket", "QueryResultsBucket"}
    policies = {
        p["Properties"]["Bucket"]["Ref"]: p for p in resources_of("AWS::S3::BucketPolicy").values()
    }
    for logical_id, bucket in buckets.items():
        assert bucket["DeletionPolicy"] == bucket["UpdateReplacePolicy"] == "Retain"
        properties = bucket["Properties"]
        assert properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert all(properties["PublicAccessBlockConfiguration"].values())
        [statement] = policies[logical_id]["Properties"]["PolicyDocument"]["Statement"]
        assert statement["Effect"] == "Deny"
        assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_the_workgroup_encrypts_results_and_caps_bytes_scanned() -> None:
    [workgroup] = resources_of("AWS::Athena::WorkGroup").values()
    configuration = workgroup["Properties"]["WorkGroupConfiguration"]
    assert configuration["BytesScannedCutoffPerQuery"] == {"Ref": "MaxBytesScannedPerQuery"}
    assert configuration["EnforceWorkGroupConfiguration"] is True
    assert configuration["ResultConfiguration"]["EncryptionConfiguration"] == {
        "EncryptionOption": "SSE_S3"
    }


def test_each_named_query_is_its_sql_file() -> None:
    queries = {
        q["Properties"]["Name"]: q["Properties"]
        for q in resources_of("AWS::Athena::NamedQuery").values()
    }
    assert set(queries) == {query.name for query in named_queries()}
    for query in named_queries():
        assert queries[query.name]["QueryString"] == query.sql
        assert queries[query.name]["Description"] == query.description


def test_each_view_is_its_sql_file_in_the_form_athena_writes() -> None:
    stored = {
        t["Properties"]["TableInput"]["Name"]: t["Properties"]["TableInput"]
        for t in resources_of("AWS::Glue::Table").values()
        if t["Properties"]["TableInput"]["TableType"] == "VIRTUAL_VIEW"
    }
    assert set(stored) == {view.name for view in views()}
    for view in views():
        table = stored[view.name]
        assert table["Parameters"] == {"presto_view": "true", "comment": "Presto View"}
        prefix, encoded, suffix = table["ViewOriginalText"]["Fn::Join"][1]
        assert (prefix, suffix) == ("/* Presto View: ", " */")
        definition = json.loads(encoded["Fn::Base64"]["Fn::Sub"])
        assert definition["originalSql"] == view.sql
        assert definition["schema"] == "${DatabaseName}"
        kind = MirrorKind(view.name.removesuffix("_current"))
        assert [c["name"] for c in definition["columns"]] == [c.name for c in table_columns(kind)]
        assert [c["Name"] for c in table["StorageDescriptor"]["Columns"]] == [
            c.name for c in table_columns(kind)
        ]


def test_the_bridge_template_nests_the_mirror_behind_its_parameter() -> None:
    bridge = Template.load()
    nested = bridge.resource("WarehouseMirror")
    assert nested["Condition"] == "WarehouseMirrorEnabled"
    assert nested["Properties"]["Location"] == "warehouse/mirror.yaml"
    assert bridge.default("EnableWarehouseMirror") == "false"
    given = set(nested["Properties"]["Parameters"])
    declared = mirror_template()["Parameters"]
    assert given == set(declared)


def test_the_first_backfill_waits_for_the_mirror_and_its_parameter() -> None:
    bridge = Template.load()
    backfill = bridge.resource("WarehouseBackfill")
    assert backfill["DependsOn"] == "WarehouseMirror"  # its snapshots need the rules there
    assert backfill["Condition"] == "WarehouseBackfillEnabled"
    assert bridge.body["Conditions"]["WarehouseBackfillEnabled"] == {
        "Fn::And": [
            {"Condition": "WarehouseMirrorEnabled"},
            {"Fn::Equals": [{"Ref": "WarehouseBackfillOnCreate"}, "true"]},
        ]
    }
    function = bridge.resource("WarehouseBackfillFunction")
    assert function["Condition"] == "WarehouseBackfillEnabled"
    assert function["Properties"]["Environment"]["Variables"]["EVENT_BUS_NAME"] == {
        "Ref": "EventBus"
    }
