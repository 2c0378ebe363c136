"""Exactly one decision per response, and caps that hold, with real processes (each a Lambda
container) racing through one review table in moto_server (atomic, as DynamoDB is) against
the sandbox: 0 double decisions."""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from local.asgi_server import ThreadedAsgiServer
from local.moto_server import MotoServer
from local.reward_review import create_review_resources, decisions_per_response, scored_record
from local.sandbox import SandboxAdmin, SandboxServer, running_sandbox
from local.slack_receiver import LocalSlack
from p4f.client import Pay4FeedbackClient
from p4f.reviews import Decision
from tests.integration.review_worker import run_containers
from tests.reward_review import REVIEWER, click_record

KEY = "p4f_test_review_races"


@pytest.fixture
def world() -> Iterator[tuple[MotoServer, SandboxServer, LocalSlack]]:
    # The races post twenty review messages at once: decisions are tested, not Slack's pace.
    slack = LocalSlack(rate_limit=None)
    with (
        MotoServer() as aws,
        running_sandbox([KEY], api_version="1.1", rate_limit=100_000) as sandbox,
        ThreadedAsgiServer(slack.app, name="slack") as slack_server,
    ):
        slack.base_url = slack_server.url
        yield aws, sandbox, slack


def setup(
    world: tuple[MotoServer, SandboxServer, LocalSlack], **options: object
) -> tuple[dict[str, str], SandboxAdmin, str]:
    aws, sandbox, slack = world
    review = create_review_resources(
        aws.client,
        api_key=KEY,
        base_url=sandbox.url,
        slack_bot={"bot_token": slack.bot_token, "channel": min(slack.channels)},
        slack_api_url=f"{slack.base_url}/api",
        **options,  # type: ignore[arg-type]
    )
    environment = (
        {
            "PATH": os.environ.get("PATH", ""),
            # What template.yaml's Globals give every function.
            "POWERTOOLS_SERVICE_NAME": "p4f-bridge",
            "POWERTOOLS_METRICS_NAMESPACE": "P4fBridge",
            "POWERTOOLS_TRACE_DISABLED": "true",
        }
        | aws.environment()
        | review.environment
    )
    with Pay4FeedbackClient(sandbox.url, api_key=KEY) as api:
        campaign = api.create_campaign(name="Race", reward={"amount": "5.00", "currency": "USD"})
        api.update_campaign(campaign.id, status="ACTIVE")
    return environment, SandboxAdmin(sandbox.url, KEY), campaign.id


@pytest.mark.timeout(180)
def test_twenty_approvals_racing_against_a_cap_of_ten_give_exactly_ten(
    world: tuple[MotoServer, SandboxServer, LocalSlack],
) -> None:
    aws, _, slack = world
    environment, admin, campaign_id = setup(world, count_cap=10, amount_caps="USD=1000")
    responses = [admin.score(admin.submit_response(campaign_id).id, 95) for _ in range(20)]
    answers = run_containers([[scored_record(r)] for r in responses], environment)
    assert all(a == {"batchItemFailures": []} for a in answers)
    changed = decisions_per_response(admin)
    assert len(changed) == 10  # exactly the cap
    assert max(changed.values()) == 1  # 0 double decisions
    held = {r.id for r in responses} - set(changed)
    assert len(held) == 10
    posted = [m for m in slack.board() for rid in held if rid in json.dumps(m.blocks)]
    assert len(posted) == 10  # each held response waits for a person, once
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    caps = aws.client("dynamodb").get_item(
        TableName=environment["REVIEW_TABLE"], Key={"id": {"S": f"caps:{day}"}}
    )["Item"]
    assert (Decimal(caps["approvals"]["N"]), Decimal(caps["amount_USD"]["N"])) == (
        Decimal(10),
        Decimal(50),
    )


@pytest.mark.timeout(180)
def test_double_clicks_a_redelivery_and_a_reject_racing_make_one_decision_each(
    world: tuple[MotoServer, SandboxServer, LocalSlack],
) -> None:
    _, _, slack = world
    environment, admin, campaign_id = setup(world)
    responses = [admin.score(admin.submit_response(campaign_id).id, 60) for _ in range(6)]
    [sent] = run_containers([[scored_record(r) for r in responses]], environment)
    assert sent == {"batchItemFailures": []}
    messages = {
        r.id: next(m for m in slack.board() if r.id in json.dumps(m.blocks)) for r in responses
    }

    def contenders(user: str, decision: Decision) -> list[dict[str, object]]:
        return [
            click_record(r.id, decision, slack.response_url_for(messages[r.id].ts, user), user)
            for r in responses
        ]

    batches = [
        contenders(REVIEWER, Decision.APPROVE),
        contenders(REVIEWER, Decision.APPROVE),  # the double click
        contenders("U0456", Decision.REJECT),  # another reviewer, another choice
        [scored_record(r) for r in responses],  # the scored events, delivered again
    ]
    rng = random.Random(14)  # noqa: S311 (a fixed order of shuffled batches)
    for batch in batches:
        rng.shuffle(batch)
    answers = run_containers(batches, environment)
    assert all(a == {"batchItemFailures": []} for a in answers)
    changed = decisions_per_response(admin)
    assert set(changed) == {r.id for r in responses}
    assert set(changed.values()) == {1}  # 0 double decisions
    # Each message shows the one outcome; whoever came second was told so, alone.
    for response in responses:
        [board] = [m for m in slack.board() if m.ts == messages[response.id].ts]
        assert board.updated_at is not None
        told = [text for _, text in board.ephemeral]
        assert told  # a click that came second, or while the first was being applied
        assert all("decided first" in t or "is deciding this response" in t for t in told)
