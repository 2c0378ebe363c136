"""Figure (7): the warehouse mirror, through the local path and in DuckDB.

(a) rows/s through the local path: template.yaml deployed into a moto_server with the
    mirror on, as the local stack does it, and the Firehose relay (local.firehose_relay) in
    this process; `events` events of responses and payouts put on the bus in PutEvents
    calls of 10, at most `IN_FLIGHT` not yet handed to Firehose (moto's SQS reads every
    queued message on each receive, so an unbounded backlog would time moto, not the hop),
    timed from the first call until the relay is idle (every row written to S3 by moto's
    Firehose); the rows are then counted in S3 with DuckDB (all must be there).
(b) DuckDB over `responses` synthetic responses: each submitted and scored, 80 % decided
    (60 % approved, 20 % rejected), over 200 campaigns, with a payout per approved response
    (one in ten failed); rows as the template's rules make them, in files of 20,000 rows as
    Firehose would write them (local.warehouse.rows). "load" is building the database from
    the files (what each `p4f-bridge query` does first); each query (README's examples,
    then the named queries) is timed `runs` times, its rows brought back to Python as
    `p4f-bridge query` does, and the median shown; the views it reads are computed by each
    run, as Athena computes them. Target: each query under 1 s.
"""

from __future__ import annotations

import json
import logging
import random
import re
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.report import Row, Target, median, spread
from local.cloudformation import LocalDeployer
from local.firehose_relay import FirehoseRelay
from local.lambda_events import ACCOUNT, REGION, eventbridge_event
from local.moto_server import MotoServer
from local.sample_events import catalogue_event
from local.template import Template
from local.warehouse.engine import MirrorDatabase, sync_from_s3
from local.warehouse.rows import write_mirror_files
from local.warehouse.sql import named_queries
from p4f.fanout import EVENT_SOURCE
from p4f.mirror import MirrorKind

FIGURE = "(7) warehouse"
ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
QUERY_TARGET = Target(1000, text="< 1 s")
_CAMPAIGNS = 200
_FILE_ROWS = 20_000
_PUT_EVENTS_BATCH = 10
IN_FLIGHT = 50

logger = logging.getLogger(__name__)


def readme_queries() -> dict[str, str]:
    """README's example queries of its Warehouse section, by their opening comment."""
    section = README.read_text().split("\n## Warehouse\n", 1)[1].split("\n## ", 1)[0]
    return {
        sql.splitlines()[0].removeprefix("--").strip(): sql
        for sql in re.findall(r"```sql\n(.*?)```", section, flags=re.DOTALL)
    }


def _at(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class _Events:
    """Pay4Feedback events on the bus, made from the catalogue's samples (fast: no parsing)."""

    def __init__(self, seed: int = 16) -> None:
        self._random = random.Random(seed)  # noqa: S311 (synthetic data, not secrets)
        self._samples = {t: catalogue_event(t) for t in _TYPES}

    def event(self, event_type: str, at: str, **data: Any) -> dict[str, Any]:
        sample = self._samples[event_type]
        body = sample | {
            "id": f"evt_{self._random.getrandbits(128):032x}",
            "created_at": at,
            "data": sample["data"] | data,
        }
        return eventbridge_event(body, detail_type=event_type, source=EVENT_SOURCE, event_time=at)

    def responses(self, count: int) -> list[dict[str, Any]]:
        """`count` responses' events (see the module's docstring), with their campaigns'."""
        start = datetime(2026, 1, 1, tzinfo=UTC)
        made = [
            self.event("campaign_created", _at(start), id=f"campaign-{c}", name=f"Campaign {c}")
            for c in range(_CAMPAIGNS)
        ]
        for n in range(count):
            submitted = _at(start + timedelta(seconds=30 * n))
            reviewed = _at(start + timedelta(seconds=30 * n + 3600))
            score = self._random.randint(0, 100)
            quality: dict[str, Any] = {
                "score": score,
                "verdict": "high" if score > 70 else "low",
                "breakdown": {},
            }
            response = {"id": f"response-{n}", "campaign_id": f"campaign-{n % _CAMPAIGNS}"}
            pending = response | {
                "status": "PENDING",
                "reviewed_at": None,
                "submitted_at": submitted,
            }
            made.append(self.event("response_submitted", submitted, **pending, quality=None))
            made.append(self.event("response_scored", submitted, **pending, quality=quality))
            decision = self._random.random()
            if decision < 0.8:
                status = "APPROVED" if decision < 0.6 else "REJECTED"
                decided = pending | {"status": status, "reviewed_at": reviewed, "quality": quality}
                made.append(self.event(f"reward_{status.lower()}", reviewed, **decided))
            if decision < 0.6:
                failed = self._random.random() < 0.1
                made.append(
                    self.event(
                        "payout_failed" if failed else "payout_completed",
                        reviewed,
                        id=f"payout-{n}",
                        response_id=response["id"],
                        campaign_id=response["campaign_id"],
                    )
                )
        return made


_TYPES = (
    "campaign_created",
    "response_submitted",
    "response_scored",
    "reward_approved",
    "reward_rejected",
    "payout_completed",
    "payout_failed",
)


def local_path(events: int) -> list[Row]:
    """(a): rows/s from PutEvents to S3 objects, through moto_server and the relay."""
    sent = _Events().responses(events)[_CAMPAIGNS:][:events]
    with MotoServer() as aws:
        template = Template.load()
        deployment = LocalDeployer(
            template,
            aws.client,
            stack_name="p4f-bench",
            parameters={
                "ApiKeySecretArn": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:bench-AbCdEf",
                "EnableWarehouseMirror": "true",
            },
            # No function runs here: their URLs only have to exist.
            function_urls=dict.fromkeys(template.url_functions(), "http://127.0.0.1:9/"),
            root=ROOT,
        ).deploy()
        bus, bus_events = deployment.outputs["EventBusName"], aws.client("events")
        targets = deployment.firehose_targets
        with FirehoseRelay(aws.client("sqs"), aws.client("firehose"), targets) as relay:
            started = time.perf_counter()
            for first in range(0, len(sent), _PUT_EVENTS_BATCH):
                while first - relay.delivered > IN_FLIGHT:
                    time.sleep(0.005)
                bus_events.put_events(
                    Entries=[
                        {
                            "EventBusName": bus,
                            "Source": event["source"],
                            "DetailType": event["detail-type"],
                            "Detail": json.dumps(event["detail"]),
                        }
                        for event in sent[first : first + _PUT_EVENTS_BATCH]
                    ]
                )
            relay.wait_until_idle(timeout=600)
            seconds = time.perf_counter() - started
        rows = _count_rows(aws, deployment.outputs["WarehouseBucketName"])
    if rows != len(sent):
        raise AssertionError(f"{len(sent)} events put on the bus, {rows} rows in S3")
    logger.info("local path: %d rows in %.1fs", rows, seconds)
    return [
        Row(
            FIGURE,
            "local path (moto_server, relay, moto's Firehose)",
            f"rows/s, PutEvents to S3 objects ({rows:,} events)",
            rows / seconds,
            "/s",
            details={"rows": rows, "seconds": seconds},
        )
    ]


def _count_rows(aws: MotoServer, bucket: str) -> int:
    """The rows the mirror's bucket holds, every kind."""
    with tempfile.TemporaryDirectory(prefix="p4f-bench-mirror-") as folder:
        sync_from_s3(aws.client("s3"), bucket, Path(folder))
        with MirrorDatabase(Path(folder)) as database:
            counted = database.query(
                " UNION ALL ".join(f"SELECT count(*) AS n FROM {kind}" for kind in MirrorKind)  # noqa: S608 (table names)
            )
    return sum(int(row["n"]) for row in counted)


def duckdb_queries(responses: int, runs: int, workdir: Path) -> list[Row]:
    """(b): load and query times over `responses` synthetic responses."""
    folder = workdir / "mirror"
    events = _Events().responses(responses)
    started = time.perf_counter()
    for first in range(0, len(events), _FILE_ROWS):
        write_mirror_files(folder, events[first : first + _FILE_ROWS])
    logger.info("%d rows written in %.1fs", len(events), time.perf_counter() - started)
    subject = f"DuckDB, {responses:,} responses ({len(events):,} rows)"
    loads = []
    for _ in range(runs):
        started = time.perf_counter()
        MirrorDatabase(folder).close()
        loads.append(time.perf_counter() - started)
    rows = [
        Row(
            FIGURE,
            subject,
            "load: read every file",
            median(loads) * 1000,
            "ms",
            details=spread(loads),
        )
    ]
    queries = {**readme_queries(), **{q.name: q.sql for q in named_queries()}}
    with MirrorDatabase(folder) as database:
        for name, sql in queries.items():
            times, answered = [], 0
            for _ in range(runs):
                started = time.perf_counter()
                answered = len(database.query(sql))
                times.append(time.perf_counter() - started)
            rows.append(
                Row(
                    FIGURE,
                    subject,
                    f"query: {name} ({answered:,} rows)",
                    median(times) * 1000,
                    "ms",
                    target=QUERY_TARGET,
                    details=spread(times),
                )
            )
    return rows
