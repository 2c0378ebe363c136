"""Figure (3): the forwarders against local receivers: HTTP requests per 1,000 events, events/s.

Each forwarder runs in one Lambda-like process (`bench.lambda_env`, warm mode without
canned answers) for each of its `Throughput.batch_sizes`: Secrets Manager in moto_server,
Slack or Segment as the local receivers of `local/` over HTTP on 127.0.0.1, which check
every request against the real service's limits. A first batch warms the container
(untimed), then batches of `Throughput.events` events follow. Requests are counted at the
receiver, over every batch (all of one size); events/s is the timed events over the time
the handler spent on them.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from bench.handlers import check, variants_of
from bench.lambda_env import launch
from bench.report import Row
from bench.subjects import bench_services

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from bench.handlers import Variant
    from bench.subjects import BenchServices, Subject, Throughput

FIGURE = "(3) forwarders"

logger = logging.getLogger(__name__)


def forwarder_throughput(subjects: Sequence[Subject], layer: Path, workdir: Path) -> list[Row]:
    forwarders = [subject for subject in subjects if subject.throughput is not None]
    rows: list[Row] = []
    with bench_services() as stack:
        variants = variants_of(
            forwarders, stack.fixture, layer, workdir, without_bytecode_too=False
        )
        for variant in variants:
            throughput = variant.subject.throughput
            assert throughput is not None
            for size in throughput.batch_sizes:
                rows += _run(variant, throughput, size, stack, workdir)
    return rows


def _run(
    variant: Variant, throughput: Throughput, size: int, stack: BenchServices, workdir: Path
) -> list[Row]:
    """One run of a forwarder with SQS batches of `size`: its rows."""
    receiver = stack.receivers[throughput.receiver]
    sent_before = len(receiver.requests)
    numbers = range(1 + max(1, throughput.events // size))
    # The first is the one its cold start handles, then the timed ones.
    batches = [throughput.batch(number, stack.fixture, size) for number in numbers]
    run = launch(variant.launch, batches, workdir / "runs", mode="warm")
    check(variant, run, numbers, stack.fixture)
    requests = len(receiver.requests) - sent_before
    events = sum(len(batch["Records"]) for batch in batches)
    timed_events = sum(len(batch["Records"]) for batch in batches[1:])
    logger.info(
        "%s: %d requests for %d events (batches of %d)", variant.label, requests, events, size
    )
    details = {
        "batches": len(batches),
        "events": events,
        "requests": requests,
        "timed_events": timed_events,
        "timed_seconds": sum(run.durations),
    }
    is_default = size == throughput.batch_sizes[-1]
    return [
        Row(
            FIGURE,
            variant.label,
            f"HTTP requests per 1,000 events (SQS batches of {size:,})",
            requests / events * 1000,
            "",
            target=variant.subject.targets.requests_per_1000_events if is_default else None,
            details=details,
        ),
        Row(
            FIGURE,
            variant.label,
            f"events/s, warm (SQS batches of {size:,})",
            timed_events / sum(run.durations),
            "/s",
        ),
    ]
