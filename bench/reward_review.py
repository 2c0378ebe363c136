"""Figure (9): the reward reviewer's automatic decisions a minute, sustained under the API budget.

`responses` scored responses, three in four in the template policy's approve band and one in
four in its reject band, wait in the review queue (moto_server) as the bus rule leaves them
after a launch, and are polled as template.yaml's RewardReviewMapping says (its BatchSize,
MaximumConcurrency containers, the function's Timeout): each container is
functions/reward_reviewer/app.py imported afresh, with RewardReviewMode `on`, daily caps
that do not bind, and the API budget at the template's defaults (ApiRequestsPerMinute,
ApiInteractiveReservePercent: the reviewer is a background caller) in one ApiBudgetTable in
moto_server (atomic), against the sandbox at Pay4Feedback's 60 per window. The window, a
minute, is compressed to `window` seconds for the budget and the sandbox alike; every rate
is given per real minute.

Counted: the decisions applied (RewardReviewDecided on the bus, `outcome: applied`), their
pace after the first window (the budget's burst spent) from the events' `decided_at`; the
API calls per decision and the 429s, as the sandbox counted them; the responses whose status
the sandbox changed more than once.
"""

from __future__ import annotations

import contextlib
import os
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from bench.report import Row, Target
from chaos.harness import cold_starts, environment
from local.moto_server import MotoServer
from local.reward_review import (
    TEMPLATE,
    bus_events,
    create_review_resources,
    decisions_per_response,
    scored_record,
)
from local.sandbox import SandboxAdmin, running_sandbox
from local.sqs_poller import SqsPoller, send_bodies
from p4f.client import Pay4FeedbackClient

if TYPE_CHECKING:
    from p4f.client import MoneyFields
    from p4f.models import Response

FIGURE = "(9) reward review"
API_KEY = "p4f_test_bench_review"
SANDBOX_LIMIT = 60
REJECT_EVERY = 4
"""One response in four is scored into the reject band, the others into the approve band."""
APPROVE_SCORE, REJECT_SCORE = 95, 10
"""Verdicts high and low: the template policy approves the one and rejects the other."""
REWARD: MoneyFields = {"amount": "5.00", "currency": "USD"}


@dataclass(frozen=True)
class ReviewRun:
    responses: int
    window: int
    decided_at: list[float]
    """When each applied decision was made (epoch seconds, sorted)."""
    decisions: Counter[str]
    """Applied decisions by kind (approve, reject)."""
    api_calls: int
    """The tenant's requests the sandbox answered while the reviewer ran."""
    rate_limited: int
    changes: Counter[str]
    """How many times the sandbox changed each response's status."""

    def per_minute(self, *, after_first_window: bool) -> float:
        """Decisions per real minute, from the first decision (or from one window later)."""
        times = self.decided_at
        if after_first_window and times:
            times = [at for at in times if at >= times[0] + self.window]
        if len(times) < 2:
            return 0.0
        return (len(times) - 1) / (times[-1] - times[0]) * self.window

    @property
    def double_decisions(self) -> int:
        return sum(count > 1 for count in self.changes.values())


def review_run(responses: int, window: int) -> ReviewRun:
    """`responses` scored responses through the reviewer's containers; what became of them."""
    mapping = TEMPLATE.properties("RewardReviewMapping")
    timeout = float(TEMPLATE.properties("RewardReviewerFunction")["Timeout"])
    with (
        MotoServer() as aws,
        running_sandbox(
            [API_KEY], api_version="1.1", rate_limit=SANDBOX_LIMIT, rate_window=window
        ) as sandbox,
    ):
        review = create_review_resources(
            aws.client,
            api_key=API_KEY,
            base_url=sandbox.url,
            slack_bot=None,  # both bands are decided automatically: nothing is posted
            slack_api_url="http://127.0.0.1:9/api",
            mode="on",
            count_cap=responses,
            amount_caps=f"USD={responses * 5}",
            budget_per_minute=int(TEMPLATE.default("ApiRequestsPerMinute")),
        )
        env = (
            aws.environment()
            | review.environment
            | {
                "API_INTERACTIVE_RESERVE_PERCENT": TEMPLATE.default("ApiInteractiveReservePercent"),
                "API_BUDGET_WINDOW_SECONDS": str(window),
            }
        )
        admin = SandboxAdmin(sandbox.url, API_KEY)
        bodies = [scored_record(r)["body"] for r in _scored(sandbox.url, admin, responses)]
        sqs = aws.client("sqs")
        queue_url = env["REVIEW_QUEUE_URL"]
        send_bodies(sqs, queue_url, bodies)
        before = admin.stats()
        poller = SqsPoller(
            sqs,
            queue_url,
            new_container=cold_starts("reward_reviewer", env),
            function_name="reward-reviewer",
            batch_size=int(mapping["BatchSize"]),
            concurrency=int(mapping["ScalingConfig"]["MaximumConcurrency"]),
            function_timeout=timeout,
        )
        # The function reads its environment as it runs too (Powertools' metrics), and
        # prints its logs and metrics to stdout, as in Lambda: set them aside.
        with (
            environment(env),
            Path(os.devnull).open("w") as devnull,
            contextlib.redirect_stdout(devnull),
            poller,
        ):
            # The background pace is about 38 decisions a window: time for 30, and two more.
            poller.wait_until_idle(timeout=timeout + (responses / 30 + 2) * window)
        after = admin.stats()
        applied = [
            event
            for event in bus_events(aws.client, review.consumer_queue_url)
            if event["outcome"] == "applied"
        ]
        return ReviewRun(
            responses=responses,
            window=window,
            decided_at=sorted(_epoch(event["decided_at"]) for event in applied),
            decisions=Counter(str(event["decision"]) for event in applied),
            api_calls=after.requests - before.requests,
            rate_limited=after.rate_limited,
            changes=decisions_per_response(admin),
        )


def _scored(base_url: str, admin: SandboxAdmin, responses: int) -> list[Response]:
    with Pay4FeedbackClient(base_url, api_key=API_KEY) as api:
        campaign = api.create_campaign(name="Review bench", reward=REWARD)
        api.update_campaign(campaign.id, status="ACTIVE")
    return [
        admin.score(
            admin.submit_response(campaign.id).id,
            REJECT_SCORE if n % REJECT_EVERY == REJECT_EVERY - 1 else APPROVE_SCORE,
        )
        for n in range(responses)
    ]


def _epoch(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp).timestamp()


def reward_review(*, responses: int, window: int) -> list[Row]:
    """The figure: `responses` scored responses decided at the budget's background pace."""
    run = review_run(responses, window)
    decided = len(run.decided_at)
    subject = (
        f"{responses} responses ({run.decisions['approve']} approved, "
        f"{run.decisions['reject']} rejected), budget "
        f"{TEMPLATE.default('ApiRequestsPerMinute')} of {SANDBOX_LIMIT} per {window} s"
    )
    details = {
        "responses": responses,
        "window_seconds": window,
        "decisions": dict(run.decisions),
        "api_calls": run.api_calls,
        "responses_decided": len(run.changes),
    }
    return [
        Row(
            FIGURE,
            subject,
            "decisions applied / responses queued",
            decided,
            "decisions",
            reference=responses,
            target=Target(1.0, at_most=False, on_ratio=True, text="all of them"),
            details=details,
        ),
        Row(
            FIGURE,
            subject,
            "decisions a minute, sustained (after the first window)",
            run.per_minute(after_first_window=True),
            "/min",
        ),
        Row(
            FIGURE,
            subject,
            "decisions a minute, first decision to last",
            run.per_minute(after_first_window=False),
            "/min",
        ),
        Row(
            FIGURE,
            subject,
            "API calls per decision",
            run.api_calls / max(1, decided),
            "",
            target=Target(1, text="1 (the approve or reject)"),
        ),
        Row(
            FIGURE, subject, "429s answered by the sandbox", run.rate_limited, "", target=Target(0)
        ),
        Row(
            FIGURE,
            subject,
            "responses decided more than once",
            run.double_decisions,
            "",
            target=Target(0),
        ),
    ]
