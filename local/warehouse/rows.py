"""Rows of the mirror made without a bus or a Firehose: what its rules and streams would
write for some events, as files in a folder. For tests and the benchmark.

    write_mirror_files(folder, [eventbridge_event(...), ...])
    MirrorDatabase(folder).query("SELECT * FROM responses_current")

An event becomes a row through the InputTransformer the template gives its kind's rule
(local.warehouse.tables.row_transformer, applied as EventBridge does), and the rows of a
kind become one object as Firehose writes it (local.moto_firehose.object_for).
"""

from __future__ import annotations

import functools
from collections import defaultdict
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from local.input_transformer import TargetInput
from local.moto_firehose import object_for
from local.warehouse.tables import RECONCILED_COLUMN, row_transformer
from local.warehouse.template import OBJECT_FORMAT, RULE_SOURCES, rule_types, s3_prefix
from p4f.mirror import MirrorKind

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path


def kind_of(event: dict[str, Any]) -> MirrorKind | None:
    """The table an EventBridge event lands in, as the mirror's rules route it."""
    for kind in MirrorKind:
        if event.get("source") in RULE_SOURCES and event.get("detail-type") in rule_types(kind):
            return kind
    return None


def row_for(event: dict[str, Any]) -> tuple[MirrorKind, str] | None:
    """The table and the row (JSON text) the mirror makes of an EventBridge event."""
    kind = kind_of(event)
    if kind is None:
        return None
    return kind, _target_input(kind, RECONCILED_COLUMN in event["detail"]).apply(event)


@functools.cache
def _target_input(kind: MirrorKind, reconciled: bool) -> TargetInput:
    transformer = row_transformer(kind, reconciled=reconciled)
    return TargetInput.of({"InputTransformer": transformer})


def write_mirror_files(
    folder: Path, events: Iterable[dict[str, Any]], *, arrived: datetime | None = None
) -> dict[MirrorKind, int]:
    """Write the rows of `events` into `folder` as the streams would (one object per kind,
    under <kind>/dt=<day of `arrived`>/); the number of rows of each kind."""
    rows: dict[MirrorKind, list[bytes]] = defaultdict(list)
    for event in events:
        made = row_for(event)
        if made is not None:
            rows[made[0]].append(made[1].encode())
    when = arrived or datetime.now(UTC)
    for kind, records in rows.items():
        destination = OBJECT_FORMAT | {"Prefix": s3_prefix(kind)}
        key, body = object_for(f"local-{kind.value}", "1", destination, records, when)
        (folder / key).parent.mkdir(parents=True, exist_ok=True)
        (folder / key).write_bytes(body)
    return {kind: len(records) for kind, records in rows.items()}
