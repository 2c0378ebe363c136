"""The reviewer's money code after a crash or a failed step, in process (DynamoDB in moto):
a redelivery resumes the claim it left, and what it reserved in the caps, approved or posted
is neither lost nor done twice. And what one failing record, or one Pay4Feedback refuses,
does to its batch and to the person who clicked."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, cast

import boto3
import pytest
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from botocore.exceptions import ClientError
from moto import mock_aws
from review_batch import ReviewBatch
from review_ledger import Claim, DailyCaps, ReviewLedger, utc_day
from review_policy import PolicySource
from review_slack import Posted
from reviewer import Fate, PublishError, RewardReviewer

from local.reward_review import DEFAULT_POLICY, TEMPLATE, scored_record
from p4f.client import Pay4FeedbackClient
from p4f.errors import AuthenticationError, ResponseAlreadyReviewedError, ServerError
from p4f.models import Response
from p4f.reviews import Decision, ReviewMode, RewardReviewDecided, SlackDecision
from tests.reward_review import click_record

NOW = 1_780_000_000.0
DAY = utc_day(NOW)
URL = "https://hooks.slack.test/actions/T1/1/abc"


def pending(response_id: str, score: int) -> Response:
    return Response.model_validate(
        {
            "id": response_id,
            "campaign_id": "camp_1",
            "status": "PENDING",
            "respondent": {"id": "r1", "email": None},
            "answers": [],
            "quality": {"score": score, "verdict": "high", "breakdown": {}},
            "reward": {"amount": "5.00", "currency": "USD"},
            "submitted_at": "2026-01-01T00:00:00Z",
            "reviewed_at": None,
            "rejection_reason": None,
        }
    )


def a_click(response_id: str, decision: Decision) -> SlackDecision:
    return SlackDecision.model_validate_json(click_record(response_id, decision, URL)["body"])


@dataclass
class FakeApi:
    """Pay4Feedback's approve and reject: each response's status, the calls that changed
    one, and failures to raise before (`fail`) or after (`lose`) a call is applied."""

    status: dict[str, str] = field(default_factory=dict)
    changed: list[tuple[str, str]] = field(default_factory=list)
    fail: list[Exception] = field(default_factory=list)
    lose: list[Exception] = field(default_factory=list)

    @contextmanager
    def priority(self, priority: object) -> Iterator[None]:
        yield

    @contextmanager
    def deadline(self, seconds: float) -> Iterator[None]:
        yield

    def approve_response(self, response_id: str, *, idempotency_key: str) -> Response:
        return self._review(response_id, "APPROVED")

    def reject_response(
        self, response_id: str, reason: str | None, *, idempotency_key: str
    ) -> Response:
        return self._review(response_id, "REJECTED")

    def _review(self, response_id: str, wanted: str) -> Response:
        if self.fail:
            raise self.fail.pop(0)
        now = pending(response_id, 50).model_copy(update={"status": self.status[response_id]})
        if now.status != "PENDING":
            raise ResponseAlreadyReviewedError("already reviewed", response=now)
        self.status[response_id] = wanted
        self.changed.append((response_id, wanted))
        if self.lose:  # applied, but the answer never came back
            raise self.lose.pop(0)
        return now.model_copy(update={"status": wanted})


@dataclass
class FakeSlack:
    posted: list[dict[str, Any]] = field(default_factory=list)
    told: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def post(self, message: dict[str, Any]) -> Posted:
        self.posted.append(message)
        return Posted("C1", f"{len(self.posted)}.000")

    def respond(self, response_url: str, message: dict[str, Any]) -> None:
        self.told.append((response_url, message))


@dataclass
class Bus:
    events: list[RewardReviewDecided] = field(default_factory=list)
    fail: list[Exception] = field(default_factory=list)

    def publish(self, decided: RewardReviewDecided) -> None:
        if self.fail:
            raise self.fail.pop(0)
        self.events.append(decided)


@dataclass
class Clock:
    """Time that moves a millisecond each time it is read (a fixed one never lapses a claim
    released `now`), and jumps when a test says so."""

    now: float = NOW

    def __call__(self) -> float:
        self.now += 0.001
        return self.now


@dataclass
class Parts:
    api: FakeApi
    slack: FakeSlack
    bus: Bus
    ledger: ReviewLedger
    clock: Clock

    def reviewer(
        self,
        *,
        mode: ReviewMode = ReviewMode.ON,
        policy: Callable[[], str] = lambda: DEFAULT_POLICY,
        ledger: ReviewLedger | None = None,
    ) -> RewardReviewer:
        return RewardReviewer(
            cast("Pay4FeedbackClient", self.api),
            ledger or self.ledger,
            PolicySource(policy),
            cast("Any", self.slack),
            self.bus.publish,
            mode=mode,
            caps=DailyCaps(10, {"USD": Decimal(250)}),
            clock=self.clock,
        )

    def caps(self) -> dict[str, Decimal]:
        return self.ledger.day_totals(DAY)


@pytest.fixture
def parts() -> Iterator[Parts]:
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        dynamodb.create_table(**TEMPLATE.table_definition("ReviewTable", "review"))
        clock = Clock()
        ledger = ReviewLedger("review", dynamodb, clock=clock, sleep=lambda _: None)
        yield Parts(FakeApi(), FakeSlack(), Bus(), ledger, clock)


def throttled(operation: str) -> ClientError:
    error = {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}
    return ClientError(error, operation)  # type: ignore[arg-type]


# --- 1. a reservation is given back once ----------------------------------------------------


def test_a_reservation_given_back_is_not_given_back_again_by_the_redelivery(
    parts: Parts,
) -> None:
    """Decided elsewhere (409), then the publish fails: the redelivery resumes the claim,
    meets the 409 again, and the caps still count the approvals that really happened."""
    reviewer = parts.reviewer()
    for done in ("resp_a", "resp_b", "resp_c"):  # three real automatic approvals today
        parts.api.status[done] = "PENDING"
        assert reviewer.review(pending(done, 95), 30).fate is Fate.DONE
    parts.api.status["resp_1"] = "REJECTED"  # in the dashboard, before the event came
    parts.bus.fail.append(PublishError("the bus did not take RewardReviewDecided: Throttling"))
    first = reviewer.review(pending("resp_1", 95), 30)
    assert first.fate is Fate.FAILED
    assert parts.caps() == {"approvals": 3, "amount_USD": Decimal("15.00")}
    again = reviewer.review(pending("resp_1", 95), 30)
    assert again.fate is Fate.DONE
    assert again.decided is not None
    assert again.decided.outcome == "decided_elsewhere"
    assert parts.caps() == {"approvals": 3, "amount_USD": Decimal("15.00")}


def test_give_back_takes_a_reservation_out_once(parts: Parts) -> None:
    parts.api.status["resp_1"] = "PENDING"
    claim = parts.ledger.claim_automatic("resp_1", 30)
    assert isinstance(claim, Claim)
    reward = pending("resp_1", 95).reward
    reserved = parts.ledger.reserve(claim, reward, DailyCaps(10, {"USD": Decimal(250)}))
    assert parts.caps() == {"approvals": 1, "amount_USD": Decimal("5.00")}
    given = parts.ledger.give_back(reserved, reward)
    assert given.cap_day is None
    parts.ledger.give_back(reserved, reward)  # a stale copy of the claim: nothing happens
    assert parts.caps() == {"approvals": 0, "amount_USD": Decimal("0.00")}


# --- 4. crash recovery of the money code ----------------------------------------------------


def test_a_lapsed_automatic_claim_is_resumed_and_its_own_approve_recognised(
    parts: Parts,
) -> None:
    """The first invocation's approve went through but its answer was lost, and then the
    invocation died (its claim lapses): the redelivery approves once, counts once."""
    parts.api.status["resp_1"] = "PENDING"
    parts.api.lose.append(ServerError("the answer was lost", status=502))
    dying = parts.reviewer()
    # The failure path releases the claim; a dead invocation would not: take the release away.
    dying._ledger = cast("Any", _NoRelease(parts.ledger))
    assert dying.review(pending("resp_1", 95), 30).fate is Fate.FAILED
    assert parts.caps() == {"approvals": 1, "amount_USD": Decimal("5.00")}
    assert parts.reviewer().review(pending("resp_1", 95), 30).fate is Fate.DONE  # still held
    assert parts.bus.events == []
    parts.clock.now += 31  # the dead invocation's claim lapsed
    resumed = parts.reviewer().review(pending("resp_1", 95), 30)
    assert resumed.fate is Fate.DONE
    assert resumed.decided is not None
    assert (resumed.decided.outcome, resumed.decided.status) == ("applied", "APPROVED")
    assert parts.api.changed == [("resp_1", "APPROVED")]
    assert parts.caps() == {"approvals": 1, "amount_USD": Decimal("5.00")}


@dataclass
class _NoRelease:
    ledger: ReviewLedger

    def release(self, claim: object) -> None:
        pass

    def __getattr__(self, name: str) -> Any:
        return getattr(self.ledger, name)


def test_a_released_claim_is_taken_by_the_next_delivery_at_once(parts: Parts) -> None:
    parts.api.status["resp_1"] = "PENDING"
    parts.api.fail.append(ServerError("Pay4Feedback failed", status=503))
    reviewer = parts.reviewer()
    assert reviewer.review(pending("resp_1", 95), 30).fate is Fate.FAILED
    again = reviewer.review(pending("resp_1", 95), 30)  # no time has passed
    assert again.fate is Fate.DONE
    assert parts.api.changed == [("resp_1", "APPROVED")]
    assert parts.caps() == {"approvals": 1, "amount_USD": Decimal("5.00")}
    assert [e.outcome for e in parts.bus.events] == ["applied"]


def test_a_click_on_a_response_decided_in_the_dashboard_is_recorded_so(parts: Parts) -> None:
    parts.api.status["resp_1"] = "PENDING"
    reviewer = parts.reviewer()
    assert reviewer.review(pending("resp_1", 60), 30).fate is Fate.DONE  # to a person
    parts.api.status["resp_1"] = "APPROVED"  # in the dashboard
    click = a_click("resp_1", Decision.REJECT)
    decided = reviewer.decide(click, 30)
    assert decided.fate is Fate.DONE
    assert decided.decided is not None
    assert (decided.decided.outcome, decided.decided.status) == ("decided_elsewhere", "APPROVED")
    assert parts.api.changed == []
    [(_, shown)] = parts.slack.told
    assert "approved outside this review (the dashboard or the API)" in str(shown)
    assert parts.caps() == {}  # a person's decision is never counted in the caps


# --- 5. a review message is posted once -----------------------------------------------------


def test_a_review_message_is_not_posted_again_when_its_publish_failed(parts: Parts) -> None:
    parts.api.status["resp_1"] = "PENDING"
    parts.bus.fail.append(PublishError("the bus did not take RewardReviewDecided: Throttling"))
    reviewer = parts.reviewer()
    assert reviewer.review(pending("resp_1", 60), 30).fate is Fate.FAILED
    assert reviewer.review(pending("resp_1", 60), 30).fate is Fate.DONE
    assert len(parts.slack.posted) == 1
    assert [e.outcome for e in parts.bus.events] == ["sent_to_review"]
    click = a_click("resp_1", Decision.APPROVE)
    assert reviewer.decide(click, 30).fate is Fate.DONE  # the one message awaits the click
    assert parts.api.changed == [("resp_1", "APPROVED")]


# --- 2. a failure outside the per-record steps fails its record alone ------------------------


def test_an_unreadable_policy_fails_each_record_alone(parts: Parts) -> None:
    def unreadable() -> str:
        raise GetParameterError("An error occurred (ThrottlingException) calling GetParameter")

    batch = ReviewBatch(parts.reviewer(policy=unreadable), {})
    records = [scored_record(pending("resp_1", 95)), scored_record(pending("resp_2", 95))]
    answered = batch.consume(records, lambda: 30)
    assert answered.failed == {r["messageId"] for r in records}
    assert all(
        "the review policy Parameter cannot be read" in one.reviewed.reason
        for one in answered.records
    )


class _FailingLedger:
    """The review table throttles its first claim, and works after."""

    def __init__(self, ledger: ReviewLedger) -> None:
        self._ledger = ledger
        self._failed = False

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._ledger, name)
        if not name.startswith("claim_") or self._failed:
            return found

        def failing(*args: object, **kwargs: object) -> object:
            self._failed = True
            raise throttled("UpdateItem")

        return failing


def test_a_failing_claim_fails_its_record_and_the_batch_goes_on(parts: Parts) -> None:
    for rid in ("resp_1", "resp_2", "resp_3"):
        parts.api.status[rid] = "PENDING"
    ledger = cast("ReviewLedger", _FailingLedger(parts.ledger))
    batch = ReviewBatch(parts.reviewer(ledger=ledger), {})
    records = [scored_record(pending(rid, 95)) for rid in ("resp_1", "resp_2", "resp_3")]
    answered = batch.consume(records, lambda: 30)
    assert answered.failed == {records[0]["messageId"]}
    assert [one.reviewed.fate for one in answered.records] == [Fate.FAILED, Fate.DONE, Fate.DONE]
    assert "ThrottlingException" in answered.records[0].reviewed.reason
    assert parts.api.changed == [("resp_2", "APPROVED"), ("resp_3", "APPROVED")]


def test_a_failing_claim_of_a_click_fails_it_alone_and_tells_the_clicker(parts: Parts) -> None:
    parts.api.status["resp_1"] = "PENDING"
    parts.reviewer().review(pending("resp_1", 60), 30)
    ledger = cast("ReviewLedger", _FailingLedger(parts.ledger))
    batch = ReviewBatch(parts.reviewer(ledger=ledger), {})
    records = [click_record("resp_1", Decision.APPROVE, URL) for _ in range(2)]
    answered = batch.consume(records, lambda: 30)
    assert answered.failed == {records[0]["messageId"]}
    assert answered.records[1].reviewed.fate is Fate.DONE
    assert parts.api.changed == [("resp_1", "APPROVED")]
    told = [str(message["text"]) for _, message in parts.slack.told if "text" in message]
    assert any(t.startswith("Your decision was not applied: ClientError") for t in told)


def test_a_failing_dry_run_publish_fails_its_record_alone(parts: Parts) -> None:
    parts.bus.fail.append(PublishError("the bus did not take RewardReviewDecided: Throttling"))
    batch = ReviewBatch(parts.reviewer(mode=ReviewMode.DRY_RUN), {})
    records = [scored_record(pending("resp_1", 95)), scored_record(pending("resp_2", 95))]
    answered = batch.consume(records, lambda: 30)
    assert answered.failed == {records[0]["messageId"]}
    assert [e.response_id for e in parts.bus.events] == ["resp_2"]


# --- 3. Pay4Feedback's permanent refusals -------------------------------------------------


def test_a_refused_automatic_decision_fails_and_says_a_retry_will_not_help(
    parts: Parts,
) -> None:
    parts.api.status["resp_1"] = "PENDING"
    parts.api.fail.append(AuthenticationError("Invalid API key", status=401))
    reviewed = parts.reviewer().review(pending("resp_1", 95), 30)
    assert (reviewed.fate, reviewed.permanent) == (Fate.FAILED, True)
    assert "a retry will not change that" in reviewed.reason
    assert "Check the API key" in reviewed.reason
    assert parts.caps() == {"approvals": 1, "amount_USD": Decimal("5.00")}  # kept for the retry


def test_a_temporary_failure_is_not_called_permanent(parts: Parts) -> None:
    parts.api.status["resp_1"] = "PENDING"
    parts.api.fail.append(ServerError("Pay4Feedback failed", status=503))
    reviewed = parts.reviewer().review(pending("resp_1", 95), 30)
    assert (reviewed.fate, reviewed.permanent) == (Fate.FAILED, False)


def test_a_refused_click_is_done_and_the_clicker_told_what_to_do(parts: Parts) -> None:
    parts.api.status["resp_1"] = "PENDING"
    reviewer = parts.reviewer()
    reviewer.review(pending("resp_1", 60), 30)
    parts.api.fail.append(AuthenticationError("Invalid API key", status=401))
    click = a_click("resp_1", Decision.APPROVE)
    refused = reviewer.decide(click, 30)
    assert (refused.fate, refused.permanent) == (Fate.DONE, True)
    [(url, message)] = parts.slack.told
    assert url == URL
    assert message["response_type"] == "ephemeral"
    assert str(message["text"]).startswith("Your decision was not applied: Pay4Feedback refused")
    assert "Click again once that is fixed" in str(message["text"])
    # The claim was given back: the click after the fix applies it.
    assert reviewer.decide(click, 30).fate is Fate.DONE
    assert parts.api.changed == [("resp_1", "APPROVED")]
