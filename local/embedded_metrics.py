"""What Lambda does with the embedded metric format (EMF), for the local stack.

In AWS, every line a function prints that is an EMF object (JSON with `_aws.CloudWatchMetrics`,
as Powertools Metrics and single_metric print them) becomes CloudWatch metric data. Locally
the function hosts' output goes to log files; the local stack offers each line to an
`EmbeddedMetricPublisher` too, which puts the metrics into moto's CloudWatch:

    with EmbeddedMetricPublisher(moto.client("cloudwatch")) as metrics:
        metrics.offer(line)      # any line: not EMF is ignored; never blocks, never raises

    parse(line)                  # the MetricDatum list of one EMF line ([] for anything else)

The publisher batches what it is offered on a thread of its own: copying a function's log
never waits for CloudWatch, and a CloudWatch that does not answer costs metrics, not logs.
"""

from __future__ import annotations

import json
import queue
import sys
import threading
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

if TYPE_CHECKING:
    from types import TracebackType

_MARK = '"_aws"'
"""A cheap test before any JSON is parsed: every EMF object has it."""
_MOST_PER_CALL = 500
"""Metric data per PutMetricData call (CloudWatch takes up to 1000)."""
_MOST_VALUES = 150
"""Values per metric datum (CloudWatch's limit)."""
_MOST_QUEUED = 10_000
_FLUSH_SECONDS = 0.5


@dataclass(frozen=True)
class MetricDatum:
    """One metric of one EMF line, with one of the line's dimension sets."""

    namespace: str
    name: str
    dimensions: tuple[tuple[str, str], ...]
    unit: str
    values: tuple[float, ...]
    timestamp: datetime
    storage_resolution: int = 60

    def put_metric_data(self) -> list[dict[str, Any]]:
        """This datum as PutMetricData's MetricData entries (at most 150 values each)."""
        return [
            {
                "MetricName": self.name,
                "Dimensions": [{"Name": name, "Value": value} for name, value in self.dimensions],
                "Unit": self.unit,
                "Values": list(self.values[start : start + _MOST_VALUES]),
                "Timestamp": self.timestamp,
                "StorageResolution": self.storage_resolution,
            }
            for start in range(0, len(self.values), _MOST_VALUES)
        ]


def parse(line: str) -> list[MetricDatum]:
    """The metric data of an EMF line, or [] for any other line (or an EMF line gone wrong)."""
    if _MARK not in line:
        return []
    start = line.find("{")
    try:
        root = json.loads(line[start:])
        metadata = root["_aws"]
        timestamp = datetime.fromtimestamp(int(metadata["Timestamp"]) / 1000, UTC)
        return [
            datum
            for directive in metadata["CloudWatchMetrics"]
            for datum in _directive(root, directive, timestamp)
        ]
    except (ValueError, KeyError, TypeError, AttributeError, OverflowError):
        return []


def _directive(
    root: dict[str, Any], directive: dict[str, Any], timestamp: datetime
) -> list[MetricDatum]:
    dimension_sets = directive.get("Dimensions") or [[]]
    found = []
    for metric in directive["Metrics"]:
        raw = root[metric["Name"]]
        values = tuple(float(v) for v in (raw if isinstance(raw, list) else [raw]))
        if not values:
            continue
        for keys in dimension_sets:
            found.append(
                MetricDatum(
                    namespace=str(directive["Namespace"]),
                    name=str(metric["Name"]),
                    dimensions=tuple((str(key), str(root[key])) for key in keys),
                    unit=str(metric.get("Unit") or "None"),
                    values=values,
                    timestamp=timestamp,
                    storage_resolution=int(metric.get("StorageResolution", 60)),
                )
            )
    return found


class MetricSink(Protocol):
    """Where a function's output lines go for their metrics."""

    def offer(self, line: str) -> None:
        """Take a line of output; never blocks, never raises."""
        ...


class EmbeddedMetricPublisher:
    """Puts the metrics of the EMF lines it is offered into CloudWatch, in batches, on its own
    thread. `published`, `failed` (CloudWatch did not take them) and `dropped` (more queued
    than it keeps) count metric data and lines."""

    def __init__(
        self,
        cloudwatch: Any,
        *,
        flush_seconds: float = _FLUSH_SECONDS,
        most_queued: int = _MOST_QUEUED,
    ) -> None:
        self._cloudwatch = cloudwatch
        self._flush_seconds = flush_seconds
        self._lines: queue.Queue[str | None] = queue.Queue(maxsize=most_queued)
        self._thread = threading.Thread(target=self._run, name="emf-publisher", daemon=True)
        self._closed = False
        self._pending = 0
        """Lines offered and not yet published (or failed)."""
        self._settled = threading.Condition()
        self.published = 0
        self.failed = 0
        self.dropped = 0
        self._complained = False

    def __enter__(self) -> EmbeddedMetricPublisher:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def offer(self, line: str) -> None:
        if self._closed or _MARK not in line:
            return
        with self._settled:
            try:
                self._lines.put_nowait(line)
            except queue.Full:
                self.dropped += 1
            else:
                self._pending += 1

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every line offered so far is published (or failed); False on time-out."""
        with self._settled:
            return self._settled.wait_for(lambda: self._pending == 0, timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Publish what is queued (for at most `timeout` seconds) and stop."""
        if self._closed:
            return
        self._closed = True
        if not self._thread.is_alive():
            return
        try:
            self._lines.put(None, timeout=timeout)
        except queue.Full:
            return
        self._thread.join(timeout)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            try:
                first = self._lines.get(timeout=self._flush_seconds)
            except queue.Empty:
                continue
            batch = [first]
            while len(batch) < _MOST_PER_CALL:
                try:
                    batch.append(self._lines.get_nowait())
                except queue.Empty:
                    break
            stopping = None in batch
            lines = [line for line in batch if line is not None]
            self._publish(lines)
            with self._settled:
                self._pending -= len(lines)
                self._settled.notify_all()

    def _publish(self, lines: list[str]) -> None:
        by_namespace: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for line in lines:
            for datum in parse(line):
                by_namespace[datum.namespace] += datum.put_metric_data()
        for namespace, data in by_namespace.items():
            for start in range(0, len(data), _MOST_PER_CALL):
                chunk = data[start : start + _MOST_PER_CALL]
                try:
                    self._cloudwatch.put_metric_data(Namespace=namespace, MetricData=chunk)
                except (BotoCoreError, ClientError) as exc:
                    self.failed += len(chunk)
                    if not self._complained:  # once: a stopped moto would say it per batch
                        self._complained = True
                        print(f"embedded metrics not published: {exc}", file=sys.stderr)
                else:
                    self.published += len(chunk)
