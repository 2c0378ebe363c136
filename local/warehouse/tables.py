"""The mirror's tables, generated from the pydantic models: one owner of the shapes.

Each row of a table is one event: the event's id, type, time and tenant, the reconciled
marker, and the fields of its resource flattened one level (`data.status` is the column
`status`; nested objects stay objects: `reward.amount`). Column types come from the
models' JSON Schemas as they serialise (the catalogue the schema registry publishes):
money is a decimal string, times are ISO 8601 strings exactly as sent.

The same columns give the Glue tables, the views' declared columns, DuckDB's reading of
the files, and the InputTransformer of each rule that writes a table (`row_transformer`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from p4f.mirror import KIND_MODELS, MirrorKind
from p4f.models import WebhookEvent

PARTITION_COLUMN = "dt"
"""The day (UTC, yyyy-MM-dd) Firehose wrote the row, from its S3 prefix."""

EVENT_COLUMNS: dict[str, str] = {
    "event_id": "id",
    "event_type": "type",
    "event_time": "created_at",
    "tenant_id": "tenant_id",
    "reconciled_at": "reconciled_at",
}
"""The event's own columns, each from a field of the webhook body (p4f.models.WebhookEvent)."""
RECONCILED_COLUMN = "reconciled_at"
"""Absent from the events webhooks bring; set on those the reconciler publishes."""

_EVENT_COMMENTS = {
    "event_id": "the event's id (evt_...; snap_... for a backfill snapshot)",
    "event_type": "the event type, e.g. reward_approved (a snapshot: campaign_snapshot, ...)",
    "event_time": "when the event happened (ISO 8601 text)",
    "tenant_id": "the Pay4Feedback tenant",
    "reconciled_at": "set when the bridge's reconciler, not a webhook, brought the event",
}


@dataclass(frozen=True)
class ColumnType:
    """A column's type, written in each engine's words."""

    kind: str
    """string | bigint | double | boolean | struct | array | map"""
    fields: tuple[tuple[str, ColumnType], ...] = ()
    item: ColumnType | None = None

    def glue(self) -> str:
        """The Hive type Glue and Athena's DDL use."""
        if self.kind == "struct":
            return "struct<" + ",".join(f"{n}:{t.glue()}" for n, t in self.fields) + ">"
        if self.kind == "array":
            return f"array<{self._item().glue()}>"
        if self.kind == "map":
            return f"map<string,{self._item().glue()}>"
        return self.kind

    def presto(self) -> str:
        """The Trino type a view declares for its columns."""
        if self.kind == "struct":
            return "row(" + ",".join(f"{n} {t.presto()}" for n, t in self.fields) + ")"
        if self.kind == "array":
            return f"array({self._item().presto()})"
        if self.kind == "map":
            return f"map(varchar,{self._item().presto()})"
        return "varchar" if self.kind == "string" else self.kind

    def duckdb(self) -> str:
        if self.kind == "struct":
            return "STRUCT(" + ", ".join(f'"{n}" {t.duckdb()}' for n, t in self.fields) + ")"
        if self.kind == "array":
            return f"{self._item().duckdb()}[]"
        if self.kind == "map":
            return f"MAP(VARCHAR, {self._item().duckdb()})"
        return {"string": "VARCHAR", "bigint": "BIGINT", "double": "DOUBLE"}.get(
            self.kind, self.kind.upper()
        )

    def _item(self) -> ColumnType:
        if self.item is None:
            raise ValueError(f"a {self.kind} type needs an item type")
        return self.item


STRING = ColumnType("string")


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType
    path: str
    """Where its value is in the EventBridge event (a JSON path)."""
    comment: str = ""


def table_columns(kind: MirrorKind) -> list[Column]:
    """The columns of `kind`'s table (without the partition column), in row order."""
    event_schema = WebhookEvent.model_json_schema(mode="serialization")
    columns = [
        Column(
            name,
            _column_type(event_schema["properties"][field], event_schema.get("$defs", {})),
            f"$.detail.{field}",
            _EVENT_COMMENTS[name],
        )
        for name, field in EVENT_COLUMNS.items()
    ]
    schema = KIND_MODELS[kind].model_json_schema(mode="serialization")
    definitions = schema.get("$defs", {})
    for field, spec in schema["properties"].items():
        if field in EVENT_COLUMNS:
            raise ValueError(f"{kind}: the field {field!r} would clash with an event column")
        columns.append(
            Column(
                field,
                _column_type(spec, definitions),
                f"$.detail.data.{field}",
                spec.get("description", ""),
            )
        )
    return columns


def _column_type(spec: dict[str, Any], definitions: dict[str, Any]) -> ColumnType:
    """The column type of a JSON Schema (pydantic's, in serialization mode)."""
    if "$ref" in spec:
        return _column_type(definitions[spec["$ref"].rsplit("/", 1)[1]], definitions)
    if "anyOf" in spec:
        options = {
            _column_type(option, definitions)
            for option in spec["anyOf"]
            if option.get("type") != "null"
        }
        if options == {ColumnType("bigint"), ColumnType("double")}:
            return ColumnType("double")  # a 0-100 score: whole or not
        return options.pop() if len(options) == 1 else STRING
    kind = spec.get("type")
    if kind == "object":
        return _object_type(spec, definitions)
    if kind == "array":
        return ColumnType("array", item=_column_type(spec.get("items", {}), definitions))
    scalar = {"integer": "bigint", "number": "double", "boolean": "boolean"}
    # Strings, and values of any JSON type (an answer's value): text, as JSON gives it.
    return ColumnType(scalar.get(str(kind), "string"))


def _object_type(spec: dict[str, Any], definitions: dict[str, Any]) -> ColumnType:
    """A model is a struct of its fields; a dict of str to T a map; anything else text."""
    if spec.get("properties"):
        return ColumnType(
            "struct",
            fields=tuple(
                (name, _column_type(field, definitions))
                for name, field in spec["properties"].items()
            ),
        )
    if isinstance(spec.get("additionalProperties"), dict):
        return ColumnType("map", item=_column_type(spec["additionalProperties"], definitions))
    return STRING


def row_transformer(kind: MirrorKind, *, reconciled: bool) -> dict[str, Any]:
    """The InputTransformer of a rule target that turns an event into a row of `kind`.

    Every placeholder stands alone as a JSON value, so EventBridge writes each value as
    JSON (strings quoted and escaped, objects and arrays whole, null as null). Only paths
    every event has are read: `reconciled_at` is absent from webhook events, so those go
    through a rule whose template writes null for it (`reconciled=False`).
    """
    paths: dict[str, str] = {}
    values: list[str] = []
    for column in table_columns(kind):
        if column.name == RECONCILED_COLUMN and not reconciled:
            values.append(f'"{column.name}":null')
            continue
        paths[column.name] = column.path
        values.append(f'"{column.name}":<{column.name}>')
    return {"InputPathsMap": paths, "InputTemplate": "{" + ",".join(values) + "}"}
