"""The reward reviewer in process (AWS in moto) against the sandbox over HTTP (API v1.1) and
the local Slack: what the policy decides, caps, dry-run, an invalid policy, clicks, double
clicks, 409s, and what its logs never hold."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws
from slack_sdk.models.blocks import Block

from local.asgi_server import ThreadedAsgiServer
from local.lambda_events import LocalLambdaContext, sqs_event
from local.reward_review import ReviewAws, bus_events, create_review_resources, scored_record
from local.sandbox import SandboxAdmin, SandboxServer, running_sandbox
from local.slack_receiver import LocalSlack
from p4f.client import Pay4FeedbackClient
from p4f.models import Response
from p4f.reviews import Decision
from tests.conftest import LoadFunction
from tests.reward_review import REVIEWER, click_record

KEY = "p4f_test_reviewer_key_1"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    with running_sandbox([KEY], api_version="1.1", rate_limit=100_000) as server:
        yield server


@pytest.fixture
def slack() -> Iterator[LocalSlack]:
    local = LocalSlack()
    with ThreadedAsgiServer(local.app, name="slack") as server:
        local.base_url = server.url
        yield local


@dataclass
class Reviewer:
    app: ModuleType
    aws: ReviewAws
    admin: SandboxAdmin
    api: Pay4FeedbackClient
    campaign_id: str

    def handle(self, *records: dict[str, Any]) -> list[str]:
        answer = self.app.lambda_handler(
            sqs_event(list(records)), LocalLambdaContext("reward-reviewer", 30)
        )
        return [failure["itemIdentifier"] for failure in answer["batchItemFailures"]]

    def scored(self, score: int, **submission: Any) -> Response:
        response = self.admin.submit_response(self.campaign_id, **submission)
        return self.admin.score(response.id, score)

    def status(self, response_id: str) -> str:
        return str(self.api.get_response(response_id).status)

    def decided(self) -> list[dict[str, Any]]:
        return bus_events(boto3.client, self.aws.consumer_queue_url)


def start(
    load_function: LoadFunction, sandbox: SandboxServer, slack: LocalSlack | None, **options: Any
) -> Reviewer:
    bot = {"bot_token": slack.bot_token, "channel": min(slack.channels)} if slack else None
    aws = create_review_resources(
        boto3.client,
        api_key=KEY,
        base_url=sandbox.url,
        slack_bot=bot,
        slack_api_url=f"{slack.base_url}/api" if slack else "http://127.0.0.1:9/api",
        **options,
    )
    app = load_function("reward_reviewer", aws.environment)
    api = Pay4FeedbackClient(sandbox.url, api_key=KEY)
    campaign = api.create_campaign(name="Review", reward={"amount": "5.00", "currency": "USD"})
    api.update_campaign(campaign.id, status="ACTIVE")
    return Reviewer(app, aws, SandboxAdmin(sandbox.url, KEY), api, campaign.id)


@pytest.fixture
def reviewer(
    load_function: LoadFunction, sandbox: SandboxServer, slack: LocalSlack
) -> Iterator[Reviewer]:
    with mock_aws():
        yield start(load_function, sandbox, slack)


def valid_block_kit(message: dict[str, Any]) -> None:
    """Every block parses as Slack's own Block Kit models and passes their checks."""
    for block in message["blocks"]:
        parsed = Block.parse(block)
        assert parsed is not None, block
        parsed.validate_json()


def test_the_policy_approves_rejects_and_sends_the_rest_to_a_person(
    reviewer: Reviewer, slack: LocalSlack
) -> None:
    high, low, middle = reviewer.scored(91), reviewer.scored(12), reviewer.scored(67)
    assert reviewer.handle(*(scored_record(r) for r in (high, low, middle))) == []
    assert [reviewer.status(r.id) for r in (high, low, middle)] == [
        "APPROVED",
        "REJECTED",
        "PENDING",
    ]
    rejected = reviewer.api.get_response(low.id)
    assert rejected.rejection_reason == "The answers do not meet the campaign's quality bar"
    [message] = slack.board()
    assert middle.id in json.dumps(message.blocks)
    valid_block_kit({"blocks": message.blocks})
    decided = {d["response_id"]: d for d in reviewer.decided()}
    assert {rid: (d["decision"], d["outcome"]) for rid, d in decided.items()} == {
        high.id: ("approve", "applied"),
        low.id: ("reject", "applied"),
        middle.id: ("human_review", "sent_to_review"),
    }
    assert decided[high.id]["amount"] == {"amount": "5.00", "currency": "USD"}
    assert decided[high.id]["status"] == "APPROVED"
    assert decided[middle.id]["reason"] == "score 67 is between 20 and 85"


def test_redelivered_and_repeated_events_make_one_decision(reviewer: Reviewer) -> None:
    high = reviewer.scored(93)
    records = [
        scored_record(high),
        scored_record(high),
        scored_record(high, event_type="response_submitted"),
    ]
    assert reviewer.handle(*records) == []
    assert reviewer.handle(records[0]) == []  # SQS delivers it once more, later
    approvals = [
        e
        for e in reviewer.admin.events()
        if e.type == "reward_approved" and e.data["id"] == high.id
    ]
    assert len(approvals) == 1
    assert [d["outcome"] for d in reviewer.decided()] == ["applied"]


def test_past_the_daily_caps_a_person_decides(
    load_function: LoadFunction, sandbox: SandboxServer, slack: LocalSlack
) -> None:
    with mock_aws():
        reviewer = start(load_function, sandbox, slack, count_cap=2, amount_caps="USD=7.00")
        first, second = reviewer.scored(95), reviewer.scored(95)
        assert reviewer.handle(scored_record(first), scored_record(second)) == []
        assert [reviewer.status(r.id) for r in (first, second)] == ["APPROVED", "PENDING"]
        [held] = [d for d in reviewer.decided() if d["response_id"] == second.id]
        assert held["decision"] == "human_review"
        assert "today's caps on automatic approvals are reached" in held["reason"]
        assert reviewer.app.reviewer._ledger.day_totals(_today()) == {
            "approvals": Decimal(1),
            "amount_USD": Decimal("5.00"),
        }
        assert len(slack.board()) == 1


def _today() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).strftime("%Y-%m-%d")


def test_dry_run_reports_every_decision_and_applies_nothing(
    load_function: LoadFunction, sandbox: SandboxServer, slack: LocalSlack
) -> None:
    with mock_aws():
        reviewer = start(load_function, sandbox, slack, mode="dry-run")
        responses = [reviewer.scored(s) for s in (91, 12, 67)]
        assert reviewer.handle(*(scored_record(r) for r in responses)) == []
        assert [reviewer.status(r.id) for r in responses] == ["PENDING"] * 3
        assert slack.requests == []
        decided = reviewer.decided()
        assert [(d["decision"], d["outcome"], d["mode"]) for d in decided] == [
            ("approve", "dry_run", "dry-run"),
            ("reject", "dry_run", "dry-run"),
            ("human_review", "dry_run", "dry-run"),
        ]


@pytest.mark.parametrize(
    "policy",
    [
        "{not json",
        '{"approve_at_or_above": 80, "reject_below": 20, "reject_reason": "x", "aprove": 1}',
        '{"approve_at_or_above": 30, "reject_below": 60, "reject_reason": "overlapping"}',
        '{"approve_at_or_above": 80, "reject_below": 20, "reject_reason": "x",'
        ' "campaigns": {"c": {"reject_below": 95}}}',
    ],
    ids=["not-json", "unknown-field", "overlapping-bands", "overlapping-override"],
)
def test_an_invalid_policy_sends_every_response_to_a_person_and_raises_the_alarm(
    load_function: LoadFunction,
    sandbox: SandboxServer,
    slack: LocalSlack,
    capsys: pytest.CaptureFixture[str],
    policy: str,
) -> None:
    with mock_aws():
        reviewer = start(load_function, sandbox, slack, policy=policy)
        capsys.readouterr()
        responses = [reviewer.scored(s) for s in (99, 1)]
        assert reviewer.handle(*(scored_record(r) for r in responses)) == []
        assert [reviewer.status(r.id) for r in responses] == ["PENDING", "PENDING"]
        assert len(slack.board()) == 2
        decided = reviewer.decided()
        assert {d["band"] for d in decided} == {"human_review"}
        assert all("the review policy is invalid" in d["reason"] for d in decided)
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "_aws" in line]
    assert sum(sum(e.get("ReviewPolicyInvalid", [0])) for e in emitted) == 2


def test_a_response_approved_elsewhere_first_is_recorded_so_not_an_error(
    reviewer: Reviewer,
) -> None:
    high = reviewer.scored(97)
    reviewer.api.reject_response(high.id, reason="Rejected in the dashboard")
    assert reviewer.handle(scored_record(high)) == []
    [decided] = reviewer.decided()
    assert (decided["decision"], decided["outcome"], decided["status"]) == (
        "approve",
        "decided_elsewhere",
        "REJECTED",
    )
    # Its reservation in today's caps was given back.
    assert reviewer.app.reviewer._ledger.day_totals(_today())["approvals"] == 0


def test_a_click_approves_and_the_message_shows_who_and_the_outcome(
    reviewer: Reviewer, slack: LocalSlack
) -> None:
    middle = reviewer.scored(60)
    reviewer.handle(scored_record(middle))
    [message] = slack.board()
    url = slack.response_url_for(message.ts, REVIEWER)
    assert reviewer.handle(click_record(middle.id, Decision.APPROVE, url)) == []
    assert reviewer.status(middle.id) == "APPROVED"
    [updated] = slack.board()
    assert updated.updated_at is not None
    shown = json.dumps(updated.blocks)
    assert f"*Approved* by <@{REVIEWER}>" in shown
    assert "p4f_review_approve" not in shown  # no buttons any more
    valid_block_kit({"blocks": updated.blocks})
    *_, decided = reviewer.decided()
    assert decided["decided_by"] == {"kind": "slack", "user_id": REVIEWER, "user_name": "ana"}
    assert (decided["decision"], decided["outcome"]) == ("approve", "applied")


def test_a_double_click_decides_once_and_tells_the_second_who_came_first(
    reviewer: Reviewer, slack: LocalSlack
) -> None:
    middle = reviewer.scored(55)
    reviewer.handle(scored_record(middle))
    [message] = slack.board()
    first = click_record(middle.id, Decision.REJECT, slack.response_url_for(message.ts, REVIEWER))
    second = click_record(middle.id, Decision.APPROVE, slack.response_url_for(message.ts, "U0456"))
    assert reviewer.handle(first, second) == []
    assert reviewer.status(middle.id) == "REJECTED"
    changes = [
        e for e in reviewer.admin.events() if e.type in {"reward_approved", "reward_rejected"}
    ]
    assert [e.data["id"] for e in changes].count(middle.id) == 1
    [updated] = slack.board()
    assert updated.ephemeral == [
        ("U0456", f"Someone else decided first: <@{REVIEWER}> chose to reject (REJECTED).")
    ]


def test_logs_hold_no_bot_token_api_key_or_email(
    reviewer: Reviewer,
    slack: LocalSlack,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    email = "ana.secret@example.com"
    responses = [
        reviewer.scored(score, respondent={"id": f"resp_{score}", "email": email})
        for score in (90, 50, 5)
    ]
    reviewer.handle(*(scored_record(r) for r in responses))
    [message] = slack.board()
    reviewer.handle(
        click_record(
            responses[1].id, Decision.APPROVE, slack.response_url_for(message.ts, REVIEWER)
        )
    )
    formatter = reviewer.app.logger.registered_formatter
    logged = "\n".join(formatter.format(r) for r in caplog.records) + capsys.readouterr().out
    assert "record reviewed" in logged
    for secret in (slack.bot_token, KEY, email):
        assert secret not in logged
    assert email not in json.dumps([m.blocks for m in slack.board()])  # nor in Slack
