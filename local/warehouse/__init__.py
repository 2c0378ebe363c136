"""The warehouse mirror on this machine: what the local stack's Firehose wrote to moto's S3,
queried with DuckDB through the same tables and views as Athena's.

    rows = query(stack, "SELECT * FROM responses_current")   # a started LocalStack
    p4f-bridge query "SELECT ..."                             # the same, from another shell

Tables `campaigns`, `responses`, `payouts` (one row per event, local.warehouse.tables),
views `campaigns_current`, `responses_current`, `payouts_current` (warehouse/views).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from local.stack import RunningStack

LOCATION_FILE = "warehouse.json"
"""In a running local stack's log folder: where its mirror is, for `p4f-bridge query`."""
BUCKET_OUTPUT = "WarehouseBucketName"


class WarehouseNotEnabledError(RuntimeError):
    """The stack has no warehouse mirror."""


@dataclass(frozen=True)
class LocalMirror:
    """A local stack's mirror: its bucket in moto, and the folder its files are read from."""

    aws_url: str
    bucket: str
    files: Path

    @classmethod
    def of(cls, outputs: Mapping[str, Any], aws_url: str, log_dir: Path) -> LocalMirror:
        """The mirror of a local deployment (its outputs), its files kept in `log_dir`."""
        bucket = outputs.get(BUCKET_OUTPUT)
        if bucket is None:
            raise WarehouseNotEnabledError(
                "the stack has no warehouse mirror: start it with EnableWarehouseMirror=true"
            )
        return cls(aws_url, str(bucket), log_dir / "warehouse")

    def write(self, log_dir: Path) -> Path:
        """Note where the mirror is, for other processes (`read`); the files an earlier
        stack's mirror left in the folder go (its moto, and so its bucket, are gone)."""
        shutil.rmtree(self.files, ignore_errors=True)
        path = log_dir / LOCATION_FILE
        path.write_text(json.dumps({"aws_url": self.aws_url, "bucket": self.bucket}))
        return path

    @classmethod
    def read(cls, log_dir: Path) -> LocalMirror:
        """The mirror of the local stack running with `log_dir`."""
        path = log_dir / LOCATION_FILE
        if not path.exists():
            raise WarehouseNotEnabledError(
                f"no local stack with a warehouse mirror is running with logs in {log_dir}: "
                "start one with `p4f-bridge local up` (or `p4f-bridge demo --keep-running`)"
            )
        noted = json.loads(path.read_text())
        return cls(noted["aws_url"], noted["bucket"], log_dir / "warehouse")

    def query(self, sql: str) -> list[dict[str, Any]]:
        """`sql` run in DuckDB over every file the mirror has now."""
        from local.moto_server import moto_client
        from local.warehouse.engine import MirrorDatabase, sync_from_s3

        sync_from_s3(moto_client(self.aws_url, "s3"), self.bucket, self.files)
        with MirrorDatabase(self.files) as database:
            return database.query(sql)


def query(stack: RunningStack, sql: str) -> list[dict[str, Any]]:
    """`sql` run in DuckDB over the stack's mirror, once every event on its bus so far has
    gone through Firehose (what `p4f-bridge query` prints)."""
    mirror = LocalMirror.of(stack.deployment.outputs, stack.aws.url, stack.log_dir)
    if stack.firehose is not None:
        stack.firehose.wait_until_idle()
    return mirror.query(sql)


def format_table(rows: list[dict[str, Any]]) -> list[str]:
    """Rows as aligned text lines: a header, a rule, then one line per row."""
    if not rows:
        return ["(no rows)"]
    names = list(rows[0])
    cells = [[_cell(row[name]) for name in names] for row in rows]
    widths = [max(len(name), *(len(line[i]) for line in cells)) for i, name in enumerate(names)]
    numeric = [all(_is_number(row[name]) for row in rows) for name in names]

    def line(values: list[str]) -> str:
        return "  ".join(
            value.rjust(width) if right else value.ljust(width)
            for value, width, right in zip(values, widths, numeric, strict=True)
        ).rstrip()

    return [line(names), line(["-" * width for width in widths]), *map(line, cells)]


def _is_number(value: Any) -> bool:
    return value is None or (
        isinstance(value, int | float | Decimal) and not isinstance(value, bool)
    )


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, default=str, ensure_ascii=False)
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(value)
