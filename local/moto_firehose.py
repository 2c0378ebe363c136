"""moto's Firehose writing S3 objects the way Firehose does, for what the bridge relies on.

moto joins a batch's records as they are, uncompressed, under `Prefix` taken literally plus
`YYYY/MM/DD/HH/`. Firehose itself, for an extended S3 destination:

- evaluates the prefix's `!{timestamp:<Java date pattern>}` expressions (UTC, the time
  the records arrive), and adds `yyyy/MM/dd/HH/` only to a prefix without one;
- runs the `AppendDelimiterToRecord` processor, which ends each record with a newline;
- compresses the object with `CompressionFormat: GZIP`, naming it `... .gz`;
- names the object `<stream>-<version>-<yyyy-MM-dd-HH-mm-ss>-<random>`.

    make_firehose_faithful()     # in this process (mock_aws); local.atomic_moto calls it too
"""

from __future__ import annotations

import functools
import gzip
import re
import uuid
from datetime import UTC, datetime
from typing import Any

from moto.firehose.models import FirehoseBackend
from moto.s3.models import s3_backends

_PATCHED = "_p4f_faithful"
_TIMESTAMP = re.compile(r"!\{timestamp:([^}]*)\}")
_JAVA_PATTERN = {"yyyy": "%Y", "MM": "%m", "dd": "%d", "HH": "%H", "mm": "%M", "ss": "%S"}
_JAVA_TOKEN = re.compile("|".join(_JAVA_PATTERN))


def evaluate_prefix(prefix: str, arrived: datetime) -> str:
    """An S3 prefix with its timestamp expressions evaluated, as Firehose does."""
    if not _TIMESTAMP.search(prefix):
        prefix += "!{timestamp:yyyy/MM/dd/HH/}"

    def timestamp(match: re.Match[str]) -> str:
        pattern = _JAVA_TOKEN.sub(lambda token: _JAVA_PATTERN[token.group(0)], match.group(1))
        return arrived.strftime(pattern)

    return _TIMESTAMP.sub(timestamp, prefix)


def _delimited(destination: dict[str, Any]) -> bool:
    processing = destination.get("ProcessingConfiguration") or {}
    return str(processing.get("Enabled", "false")).lower() == "true" and any(
        processor.get("Type") == "AppendDelimiterToRecord"
        for processor in processing.get("Processors", [])
    )


def object_for(
    stream: str, version: str, destination: dict[str, Any], records: list[bytes], arrived: datetime
) -> tuple[str, bytes]:
    """The key and body of the S3 object Firehose writes for `records` at `arrived`."""
    data = b"".join(record + b"\n" if _delimited(destination) else record for record in records)
    name = f"{stream}-{version}-{arrived:%Y-%m-%d-%H-%M-%S}-{uuid.uuid4()}"
    if destination.get("CompressionFormat") == "GZIP":
        data, name = gzip.compress(data), f"{name}.gz"
    return evaluate_prefix(destination.get("Prefix", ""), arrived) + name, data


def make_firehose_faithful() -> None:
    """Make moto's Firehose write S3 objects as Firehose does (idempotent)."""
    if getattr(FirehoseBackend.put_s3_records, _PATCHED, False):
        return

    @functools.wraps(FirehoseBackend.put_s3_records)
    def put_s3_records(
        self: FirehoseBackend,
        delivery_stream_name: str,
        version_id: str,
        s3_destination: dict[str, Any],
        records: list[dict[str, bytes]],
    ) -> list[dict[str, str]]:
        key, body = object_for(
            delivery_stream_name,
            version_id,
            s3_destination,
            [record["Data"] for record in records],
            datetime.now(UTC),
        )
        bucket = s3_destination["BucketARN"].split(":")[-1]
        s3_backends[self.account_id][self.partition].put_object(bucket, key, body)
        return [{"RecordId": str(uuid.uuid4())} for _ in records]

    setattr(put_s3_records, _PATCHED, True)
    FirehoseBackend.put_s3_records = put_s3_records  # type: ignore[method-assign]
