"""Figure (8): the reconciler after a dropped stretch of 200 responses, on the local stack.

Every webhook is dropped (the sandbox's drop_deliveries fault) while campaigns are launched
and 200 responses are submitted, most scored, half reviewed, the last campaign paused; then
one reconciler run, the dropped webhooks released late, and a second run
(local.reconciling.dropped_stretch). Counted on the bus's consumer queue, per change
identity: the changes recovered of those the API still shows, the duplicates, and the API
calls of each run (the report's, from the budget).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench.report import Row, Target
from local.reconciling import dropped_stretch
from local.stack import LocalStack

FIGURE = "(8) reconciler"
PARAMETERS = {
    "EnableSlackForwarder": "false",
    "EnableSegmentForwarder": "false",
    "EnableWarehouseMirror": "false",
    "ApiRequestsPerMinute": "6000",
}
"""The reconciler alone; the budget out of the way (the sandbox's limit is raised to match)."""


def reconciler_run(campaigns: int = 5, responses_each: int = 40) -> list[Row]:
    with (
        tempfile.TemporaryDirectory(prefix="p4f-bench-reconciler-") as log_dir,
        LocalStack(log_dir=Path(log_dir), parameters=PARAMETERS, webhook_retry_base=0.2) as stack,
    ):
        stack.admin().set_rate_limit(6_000, 60)
        result = dropped_stretch(
            stack,
            campaigns=campaigns,
            responses_each=responses_each,
            say=lambda _: None,
            requests_per_minute=6_000,
        )
    resources = campaigns + campaigns * responses_each
    subject = f"{resources} resources, every webhook dropped"
    return [
        Row(
            FIGURE,
            subject,
            "changes recovered / changes the API still shows",
            result.recovered,
            "changes",
            reference=result.recoverable,
            target=Target(1.0, at_most=False, on_ratio=True, text="all of them"),
            details={"dropped": result.dropped, "late_published": result.late_published},
        ),
        Row(
            FIGURE,
            subject,
            "changes on the bus more than once (after the late webhooks and a second run)",
            result.duplicates,
            "changes",
            target=Target(0, text="none"),
        ),
        Row(FIGURE, subject, "API calls, first run", result.first_run["api_calls"], "calls"),
        Row(FIGURE, subject, "API calls, second run", result.second_run["api_calls"], "calls"),
        Row(FIGURE, subject, "first run's time (local stack)", result.run_seconds, "s"),
    ]
