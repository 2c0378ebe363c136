"""The mirror's files queried with DuckDB: the same tables, views and SQL as in Athena.

    with MirrorDatabase(Path("mirror")) as mirror:     # <kind>/dt=YYYY-MM-DD/*.gz inside
        mirror.query("SELECT * FROM responses_current")

The folder holds what Firehose writes to the bucket (`sync_from_s3` copies it from there,
moto's or a real one). Each table is read with the columns the Glue table declares, the
partition column `dt` from the folder names, as Athena reads them; the views are the
files of warehouse/views. The Athena function the SQL uses that DuckDB lacks is defined
as Athena has it; DuckDB runs in UTC, as Athena does.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import duckdb

from local.warehouse.sql import views
from local.warehouse.tables import PARTITION_COLUMN, table_columns
from p4f.mirror import MirrorKind

if TYPE_CHECKING:
    from types import TracebackType

_ATHENA_FUNCTIONS = (
    # Athena's from_iso8601_timestamp: ISO 8601 text (any offset) to a timestamp with zone.
    "CREATE MACRO from_iso8601_timestamp(text) AS CAST(text AS TIMESTAMPTZ)",
)


class MirrorQueryError(ValueError):
    """DuckDB could not run a query (its message says why)."""


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def sync_from_s3(s3: Any, bucket: str, into: Path) -> int:
    """Copy the mirror's objects of `bucket` not yet in `into`; the number copied.

    Firehose writes each object once and never changes it, so a key already here is done.
    """
    kinds = {kind.value for kind in MirrorKind}
    copied = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            key = item["Key"]
            if key.split("/", 1)[0] not in kinds or (into / key).exists():
                continue
            (into / key).parent.mkdir(parents=True, exist_ok=True)
            partial = into / f"{key}.part"
            s3.download_file(bucket, key, str(partial))
            partial.rename(into / key)
            copied += 1
    return copied


class MirrorDatabase:
    """An in-memory DuckDB database over the mirror's files in `root`."""

    def __init__(self, root: Path) -> None:
        self._db = duckdb.connect(":memory:")
        self._db.execute("SET TimeZone = 'UTC'")
        for statement in _ATHENA_FUNCTIONS:
            self._db.execute(statement)
        for kind in MirrorKind:
            self._load(kind, root / kind.value)
        for view in views():
            self._db.execute(f"CREATE VIEW {_quoted(view.name)} AS {view.sql}")

    def _load(self, kind: MirrorKind, folder: Path) -> None:
        columns = {column.name: column.type.duckdb() for column in table_columns(kind)}
        if not any(folder.glob(f"{PARTITION_COLUMN}=*/*.gz")):
            definitions = [f"{_quoted(name)} {type_}" for name, type_ in columns.items()]
            definitions.append(f"{PARTITION_COLUMN} VARCHAR")
            self._db.execute(f"CREATE TABLE {kind.value} ({', '.join(definitions)})")
            return
        self._db.execute(
            f"CREATE TABLE {kind.value} AS SELECT * FROM read_json(?, columns = ?, "  # noqa: S608 (a MirrorKind)
            "format = 'newline_delimited', compression = 'gzip', hive_partitioning = true, "
            f"hive_types = {{'{PARTITION_COLUMN}': 'VARCHAR'}})",
            [str(folder / f"{PARTITION_COLUMN}=*" / "*.gz"), columns],
        )

    def query(self, sql: str) -> list[dict[str, Any]]:
        """The rows `sql` gives, each a dict by column name."""
        try:
            cursor = self._db.execute(sql)
        except duckdb.Error as exc:
            raise MirrorQueryError(str(exc)) from exc
        if cursor.description is None:
            return []
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
