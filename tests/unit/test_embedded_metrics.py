"""local.embedded_metrics: Powertools' EMF lines, as Lambda reads them, into CloudWatch."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import EndpointConnectionError
from moto import mock_aws

from local.embedded_metrics import EmbeddedMetricPublisher, MetricDatum, parse
from p4f.budget import BudgetMetrics, Priority

SERVICE = (("service", "p4f-bridge"),)


@pytest.fixture(autouse=True)
def powertools_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "p4f-bridge")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "P4fBridge")


def printed(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return capsys.readouterr().out.splitlines()


def receiver_lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    """What the webhook receiver prints for two accepted deliveries and a rejected one."""
    metrics = Metrics()
    metrics.add_metric(name="WebhookAccepted", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="WebhookAccepted", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="WebhookRejected", unit=MetricUnit.Count, value=1)
    metrics.flush_metrics()
    return printed(capsys)


def test_a_functions_metrics_with_the_service_dimension(
    capsys: pytest.CaptureFixture[str],
) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    [line] = receiver_lines(capsys)
    data = parse(line)
    assert sorted((d.name, d.values) for d in data) == [
        ("WebhookAccepted", (1.0, 1.0)),
        ("WebhookRejected", (1.0,)),
    ]
    for datum in data:
        assert (datum.namespace, datum.dimensions, datum.unit) == ("P4fBridge", SERVICE, "Count")
        assert before <= datum.timestamp <= datetime.now(UTC)


def test_the_api_budgets_single_metrics_with_their_dimensions(
    capsys: pytest.CaptureFixture[str],
) -> None:
    BudgetMetrics("p4f-local-CampaignTriggerFunction").used(0.25, Priority.INTERACTIVE)
    lines = printed(capsys)
    data = [datum for line in lines for datum in parse(line)]
    assert {(d.name, d.unit, d.values) for d in data} == {
        ("ApiBudgetUsed", "Count", (1.0,)),
        ("ApiBudgetWaited", "Seconds", (0.25,)),
    }
    assert {dict(d.dimensions)["priority"] for d in data} == {"interactive"}
    assert {dict(d.dimensions)["function_name"] for d in data} == {
        "p4f-local-CampaignTriggerFunction"
    }


def test_one_datum_per_dimension_set() -> None:
    line = json.dumps(
        {
            "_aws": {
                "Timestamp": 1_700_000_000_000,
                "CloudWatchMetrics": [
                    {
                        "Namespace": "N",
                        "Dimensions": [["a"], ["a", "b"]],
                        "Metrics": [{"Name": "M", "Unit": "Seconds", "StorageResolution": 1}],
                    }
                ],
            },
            "a": "1",
            "b": "2",
            "M": 0.5,
        }
    )
    at = datetime.fromtimestamp(1.7e9, UTC)
    assert parse(line) == [
        MetricDatum("N", "M", (("a", "1"),), "Seconds", (0.5,), at, 1),
        MetricDatum("N", "M", (("a", "1"), ("b", "2")), "Seconds", (0.5,), at, 1),
    ]


@pytest.mark.parametrize(
    "line",
    [
        "READY",
        "",
        "RESULT {}",
        '{"_aws": 1}',
        # no value for the metric
        '{"_aws": {"Timestamp": 1, "CloudWatchMetrics": '
        '[{"Namespace": "N", "Metrics": [{"Name": "M"}]}]}}',
        '{"_aws": {"Timestamp": "soon", "CloudWatchMetrics": []}}',
        # no value for the dimension
        '{"_aws": {"Timestamp": 1, "CloudWatchMetrics": '
        '[{"Namespace": "N", "Dimensions": [["x"]], "Metrics": [{"Name": "M"}]}]}, "M": 1}',
        '{"message": "_aws", "level": "INFO"',
    ],
)
def test_anything_else_is_no_metric(line: str) -> None:
    assert parse(line) == []


def test_a_log_line_is_no_metric(capsys: pytest.CaptureFixture[str]) -> None:
    # A service of its own: a Logger of a service another test made writes where that one did.
    logger = Logger(service=f"p4f-bridge-{uuid.uuid4().hex}")
    logger.info("delivery handled", extra={"outcome": "accepted"})
    [line] = printed(capsys)
    assert parse(line) == []


def test_the_publisher_puts_them_into_cloudwatch(capsys: pytest.CaptureFixture[str]) -> None:
    lines = [*receiver_lines(capsys), "READY", "not json {", *receiver_lines(capsys)]
    with mock_aws():
        cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
        with EmbeddedMetricPublisher(cloudwatch) as publisher:
            for line in lines:
                publisher.offer(line)
            assert publisher.flush()
        now = datetime.now(UTC)
        answer = cloudwatch.get_metric_statistics(
            Namespace="P4fBridge",
            MetricName="WebhookAccepted",
            Dimensions=[{"Name": "service", "Value": "p4f-bridge"}],
            StartTime=now - timedelta(minutes=5),
            EndTime=now + timedelta(minutes=1),
            Period=300,
            Statistics=["Sum"],
        )
    assert sum(point["Sum"] for point in answer["Datapoints"]) == 4
    assert (publisher.published, publisher.failed, publisher.dropped) == (4, 0, 0)


class _Unreachable:
    def __init__(self) -> None:
        self.calls = 0

    def put_metric_data(self, **_: Any) -> None:
        self.calls += 1
        raise EndpointConnectionError(endpoint_url="http://127.0.0.1:1")


def test_a_cloudwatch_that_does_not_answer_costs_metrics_not_lines(
    capsys: pytest.CaptureFixture[str],
) -> None:
    lines = receiver_lines(capsys)
    cloudwatch = _Unreachable()
    with EmbeddedMetricPublisher(cloudwatch) as publisher:
        for line in lines * 3:
            publisher.offer(line)
        assert publisher.flush()
    assert (publisher.failed, publisher.published) == (6, 0)
    assert capsys.readouterr().err.count("embedded metrics not published") == 1


def test_offering_never_waits(capsys: pytest.CaptureFixture[str]) -> None:
    [line] = receiver_lines(capsys)
    publisher = EmbeddedMetricPublisher(_Unreachable(), most_queued=2)  # never started
    started = time.monotonic()
    for _ in range(100):
        publisher.offer(line)
    assert time.monotonic() - started < 0.5
    assert publisher.dropped == 98
    publisher.close(timeout=0.1)
    publisher.offer(line)  # after close: ignored
