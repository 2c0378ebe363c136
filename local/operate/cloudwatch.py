"""What the operating commands read from CloudWatch metrics."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

QUEUE_AGE_SINCE = timedelta(minutes=5)
"""SQS publishes its metrics every minute: the newest of these minutes is the age now."""
_MOST_QUERIES = 500
"""GetMetricData's most queries a call."""


def metric_values(
    cloudwatch: Any,
    metrics: Sequence[dict[str, Any]],
    start: datetime,
    end: datetime,
    *,
    stat: str,
    period: int,
) -> list[list[float]]:
    """Each metric's values of `stat` per `period` from `start` to `end`, newest first."""
    found: dict[str, list[float]] = defaultdict(list)
    for first in range(0, len(metrics), _MOST_QUERIES):
        queries = [
            {
                "Id": f"m{first + n}",
                "MetricStat": {
                    "Metric": {key: metric[key] for key in ("Namespace", "MetricName")}
                    | {"Dimensions": metric.get("Dimensions", [])},
                    "Period": period,
                    "Stat": stat,
                },
            }
            for n, metric in enumerate(metrics[first : first + _MOST_QUERIES])
        ]
        for page in cloudwatch.get_paginator("get_metric_data").paginate(
            MetricDataQueries=queries,
            StartTime=start,
            EndTime=end + timedelta(minutes=1),
            ScanBy="TimestampDescending",
        ):
            for result in page["MetricDataResults"]:
                found[result["Id"]] += [float(v) for v in result.get("Values", [])]
    return [found[f"m{n}"] for n in range(len(metrics))]


def oldest_ages(cloudwatch: Any, queue_names: Sequence[str], now: datetime) -> dict[str, float]:
    """The newest ApproximateAgeOfOldestMessage (Maximum, seconds) of each queue that has one
    (moto has none)."""
    metrics = [
        {
            "Namespace": "AWS/SQS",
            "MetricName": "ApproximateAgeOfOldestMessage",
            "Dimensions": [{"Name": "QueueName", "Value": name}],
        }
        for name in queue_names
    ]
    values = metric_values(
        cloudwatch, metrics, now - QUEUE_AGE_SINCE, now, stat="Maximum", period=60
    )
    return {name: found[0] for name, found in zip(queue_names, values, strict=True) if found}


def distinct(metrics: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each metric once (moto_server's ListMetrics names a metric once per datum)."""
    seen: dict[tuple[str, str, frozenset[tuple[str, str]]], dict[str, Any]] = {}
    for metric in metrics:
        dimensions = frozenset((d["Name"], d["Value"]) for d in metric.get("Dimensions", []))
        seen.setdefault((metric["Namespace"], metric["MetricName"], dimensions), metric)
    return list(seen.values())
