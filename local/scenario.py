"""The demo scenario: a campaign's life, played on the local stack, checked end to end.

A no-code tool's trigger creates and launches a campaign (and is retried: still one
campaign), a producer on the bus asks for another, respondents answer, the AI scores them
and the reward reviewer decides (with RewardReviewMode on and a daily cap of one automatic
approval): one automatic approval, one automatic rejection, one response held by the daily
cap, and one a reviewer approves with a click in the local Slack. One payout completes and
one fails. Every Pay4Feedback event must then arrive exactly once on the bus's consumer, in
Slack (the types the Slack forwarder takes) and in Segment (the types it takes), and, when
the stack has the warehouse mirror, as a row of its table; a small report from the mirror
ends it.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from local.template import Template
from local.warehouse import BUCKET_OUTPUT, format_table, query
from local.warehouse.sql import named_query
from p4f.mirror import MirrorKind, event_types
from p4f.models import EventType, PayoutStatus, ResponseStatus, WebhookEvent
from p4f.reviews import APPROVE_ACTION, REWARD_REVIEW_DECIDED

if TYPE_CHECKING:
    from collections.abc import Callable

    from local.sandbox import SandboxAdmin
    from local.slack_receiver import PostedMessage
    from local.stack import RunningStack

REVIEWER = "U0123"
"""The local Slack's user who may decide rewards (RewardReviewers)."""
DEMO_PARAMETERS = {
    "RewardReviewMode": "on",
    "RewardReviewers": REVIEWER,
    "AutoApproveDailyCount": "1",
}
"""The template Parameters of the demo: the reward review on, one automatic approval a day."""
REVIEW_TIMEOUT_SECONDS = 30.0
ARRIVAL_TIMEOUT_SECONDS = 90.0
SETTLE_SECONDS = 3.0
"""How long to keep watching once everything arrived, so that a duplicate would show."""
PRODUCER_SOURCE = "com.example.crm"
MIRROR_TYPES = frozenset(t for kind in MirrorKind for t in event_types(kind))
"""The events that become rows of the warehouse mirror."""
MIRROR_REPORT = ("approval_rate_by_campaign", "reward_spend_by_currency_per_day")
"""The named queries the demo ends with."""

type Say = Callable[[str], None]


@dataclass
class Arrivals:
    """What reached each destination, by Pay4Feedback event id."""

    on_bus: Counter[str] = field(default_factory=Counter)
    outcomes_on_bus: list[dict[str, Any]] = field(default_factory=list)
    in_slack: Counter[str] = field(default_factory=Counter)
    in_segment: Counter[str] = field(default_factory=Counter)
    in_mirror: Counter[str] = field(default_factory=Counter)
    """Rows of the warehouse mirror, by event id (when the stack has the mirror)."""


@dataclass(frozen=True)
class Expected:
    events: list[WebhookEvent]
    """Oldest first."""
    slack_types: frozenset[str]
    segment_types: frozenset[str]

    def for_slack(self) -> list[WebhookEvent]:
        return [e for e in self.events if e.type in self.slack_types]

    def for_segment(self) -> list[WebhookEvent]:
        return [e for e in self.events if e.type in self.segment_types]

    def for_mirror(self) -> list[WebhookEvent]:
        return [e for e in self.events if e.type in MIRROR_TYPES]

    def complete(self, got: Arrivals) -> bool:
        return (
            all(got.on_bus[e.id] for e in self.events)
            and all(got.in_slack[e.id] for e in self.for_slack())
            and all(got.in_segment[e.id] for e in self.for_segment())
        )


def play(stack: RunningStack, say: Say) -> bool:
    """Play the scenario; True when every event arrived exactly once where it should."""
    started = time.monotonic()
    say("The scenario")
    trigger_token = stack.secret_value("TriggerTokenSecretArn")
    campaign_id = _trigger_over_http(stack, trigger_token, say)
    _trigger_on_the_bus(stack, say)
    admin = stack.admin()
    review = _review(stack, admin, campaign_id, say)
    admin.pay_out(review.auto_approved, PayoutStatus.COMPLETED)
    admin.pay_out(review.clicked, PayoutStatus.FAILED, "The card was declined")
    say("  9. one payout completed, one failed")
    expected = Expected(
        events=list(reversed(admin.events())),
        slack_types=_default_types("SlackEventTypes"),
        segment_types=_default_types("SegmentEventTypes"),
    )
    admin.close()
    got = _watch(stack, expected)
    mirrored = BUCKET_OUTPUT in stack.deployment.outputs
    if mirrored:
        # Once everything reached the bus: the mirror waits for its Firehose hop itself.
        got.in_mirror = Counter(
            row["event_id"]
            for row in query(
                stack,
                " UNION ALL ".join(f"SELECT event_id FROM {kind}" for kind in MirrorKind),  # noqa: S608 (table names)
            )
        )
    _show(stack, expected, got, say)
    ok = _exactly_once(expected, got, say, mirrored=mirrored) and review.ok(say)
    if mirrored:
        _mirror_report(stack, say)
    say(f"({time.monotonic() - started:.1f}s)")
    return ok


@dataclass(frozen=True)
class Review:
    """What the reward review did in the scenario."""

    auto_approved: str
    auto_rejected: str
    held_by_cap: str
    clicked: str
    statuses: dict[str, str]
    click_to_update_seconds: float | None

    def ok(self, say: Say) -> bool:
        wanted = {
            self.auto_approved: ResponseStatus.APPROVED,
            self.auto_rejected: ResponseStatus.REJECTED,
            self.held_by_cap: ResponseStatus.PENDING,
            self.clicked: ResponseStatus.APPROVED,
        }
        right = all(self.statuses.get(rid) == status for rid, status in wanted.items())
        right = right and self.click_to_update_seconds is not None
        say(
            "  reward review: 1 approved and 1 rejected automatically, 1 held by the daily cap,"
            f" 1 approved with a click: {'as expected' if right else 'NOT as expected'}"
        )
        return right


def _review(stack: RunningStack, admin: SandboxAdmin, campaign_id: str, say: Say) -> Review:
    """Respondents answer, the AI scores them, the reward reviewer decides (one at a time, so
    that the daily cap of one automatic approval goes to the first high score)."""
    ana, bo, cy, di = (
        admin.submit_response(campaign_id, respondent={"id": respondent}).id
        for respondent in ("resp_ana", "resp_bo", "resp_cy", "resp_di")
    )
    say(f"  4. four respondents answered campaign {campaign_id[:8]}")
    admin.score(ana, 91)
    _wait_for_status(admin, ana, EventType.REWARD_APPROVED)
    say("  5. the AI scored one 91: the reward reviewer approved it (policy: 85 and high)")
    admin.score(cy, 12)
    _wait_for_status(admin, cy, EventType.REWARD_REJECTED)
    say("  6. another 12: rejected, with the policy's reason")
    admin.score(di, 96)
    _review_message(stack, di)
    say("  7. another 96: held for a person, the day's one automatic approval is used")
    admin.score(bo, 67)
    message = _review_message(stack, bo)
    say(f"     and one 67 (between the bands): a message with buttons at {stack.urls.slack_page}")
    clicked = time.monotonic()
    stack.slack.click(message.ts, APPROVE_ACTION, REVIEWER)
    updated = _wait_for_update(stack, message.ts)
    took = time.monotonic() - clicked if updated else None
    _wait_for_status(admin, bo, EventType.REWARD_APPROVED)
    shown = f"{took:.2f}s from the click to the updated message" if took else "NOT updated"
    say(f"  8. {REVIEWER} clicked Approve in Slack: approved, {shown}")
    statuses = {
        str(event.data["id"]): str(event.data["status"])
        for event in reversed(admin.events())
        if event.type in _RESPONSE_EVENTS
    }
    return Review(ana, cy, di, bo, statuses, took)


_RESPONSE_EVENTS = frozenset(
    {EventType.RESPONSE_SCORED, EventType.REWARD_APPROVED, EventType.REWARD_REJECTED}
)


def _wait_for_status(admin: SandboxAdmin, response_id: str, event_type: EventType) -> None:
    deadline = time.monotonic() + REVIEW_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if any(e.type == event_type and e.data.get("id") == response_id for e in admin.events()):
            return
        time.sleep(0.1)
    raise RuntimeError(f"response {response_id} got no {event_type} (see the reviewer's log)")


def _review_message(stack: RunningStack, response_id: str) -> PostedMessage:
    deadline = time.monotonic() + REVIEW_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        for message in stack.slack.board():
            if response_id in json.dumps(message.blocks):
                return message
        time.sleep(0.1)
    raise RuntimeError(f"no review message for response {response_id} reached Slack")


def _wait_for_update(stack: RunningStack, ts: str) -> bool:
    deadline = time.monotonic() + REVIEW_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if any(m.ts == ts and m.updated_at for m in stack.slack.board()):
            return True
        time.sleep(0.02)
    return False


def _trigger_over_http(stack: RunningStack, token: str, say: Say) -> str:
    url = stack.urls.trigger
    if url is None:
        raise RuntimeError("the stack has no campaign trigger URL (CampaignTriggerUrl)")
    body = {
        "name": "Checkout feedback",
        "description": "Why do people leave the cart?",
        "reward": {"amount": "5.00", "currency": "USD"},
        "max_responses": 50,
        "questions": [{"type": "text", "prompt": "What almost stopped you from buying?"}],
        "activate": True,
        "external_id": "zap-run-4711",
    }
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "zap-run-4711"}
    first = httpx.post(url, json=body, headers=headers, timeout=30)
    first.raise_for_status()
    campaign = first.json()["data"]
    say(
        f"  1. a Zapier-style POST {url} -> {first.status_code}: campaign "
        f"{campaign['id'][:8]} {campaign['name']!r} is {campaign['status']}"
    )
    again = httpx.post(url, json=body, headers=headers, timeout=30)
    again.raise_for_status()
    same = again.json()["data"]["id"] == campaign["id"]
    say(
        f"  2. the tool retried it (same Idempotency-Key) -> {again.status_code}: "
        f"{'the same campaign' if same else 'ANOTHER campaign'}"
    )
    return str(campaign["id"])


def _trigger_on_the_bus(stack: RunningStack, say: Say) -> None:
    detail = {
        "name": "Onboarding check-in",
        "reward": {"amount": "3.00", "currency": "EUR"},
        "questions": [{"type": "text", "prompt": "What did you expect on your first day?"}],
        "external_id": "crm-segment-88",
    }
    stack.aws.client("events").put_events(
        Entries=[
            {
                "EventBusName": stack.deployment.outputs["EventBusName"],
                "Source": PRODUCER_SOURCE,
                "DetailType": "CreateCampaign",
                "Detail": json.dumps(detail),
            }
        ]
    )
    say(f"  3. {PRODUCER_SOURCE} put a CreateCampaign event on the bus")


def _default_types(parameter: str) -> frozenset[str]:
    return frozenset(Template.load().default(parameter).split(","))


def _watch(stack: RunningStack, expected: Expected) -> Arrivals:
    """Collect arrivals until everything expected came, and a moment longer."""
    got = Arrivals()
    sqs = stack.aws.client("sqs")
    complete_at: float | None = None
    deadline = time.monotonic() + ARRIVAL_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        batch = sqs.receive_message(
            QueueUrl=stack.consumer_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
        ).get("Messages", [])
        for message in batch:
            event = json.loads(message["Body"])
            if event["source"] == "pay4feedback":
                got.on_bus[event["detail"]["id"]] += 1
            else:
                got.outcomes_on_bus.append(event)
            sqs.delete_message(
                QueueUrl=stack.consumer_queue_url, ReceiptHandle=message["ReceiptHandle"]
            )
        got.in_slack = Counter(
            e.id
            for message in stack.slack.messages()
            for e in expected.events
            if e.id in json.dumps(message)
        )
        got.in_segment = Counter(
            call["messageId"] for call in stack.segment.calls() if call.get("type") == "track"
        )
        if complete_at is None and expected.complete(got):
            complete_at = time.monotonic()
        if complete_at is not None and time.monotonic() - complete_at > SETTLE_SECONDS:
            break
        if not batch:
            time.sleep(0.2)
    return got


def _mark(count: int, wanted: bool) -> str:
    if not wanted:
        return "-"
    return "yes" if count == 1 else f"x{count}" if count else "NO"


def _show(stack: RunningStack, expected: Expected, got: Arrivals, say: Say) -> None:
    say("")
    say("Timeline: each Pay4Feedback event, and where it arrived")
    say(f"  {'time':8}  {'event':20}  {'id':14}  {'bus':>4}  {'Slack':>5}  {'Segment':>7}")
    for event in expected.events:
        say(
            f"  {event.created_at:%H:%M:%S}  {event.type:20}  {event.id[:14]}  "
            f"{_mark(got.on_bus[event.id], True):>4}  "
            f"{_mark(got.in_slack[event.id], event.type in expected.slack_types):>5}  "
            f"{_mark(got.in_segment[event.id], event.type in expected.segment_types):>7}"
        )
    say("")
    say(f"The bridge's own events on the bus ({len(got.outcomes_on_bus)}):")
    for outcome in got.outcomes_on_bus:
        detail = outcome["detail"]
        if outcome["detail-type"] == REWARD_REVIEW_DECIDED:
            say(
                f"  {REWARD_REVIEW_DECIDED}: response {detail['response_id'][:8]} "
                f"{detail['decision']} ({detail['outcome']}, by {detail['decided_by']['kind']}):"
                f" {detail['reason']}"
            )
            continue
        campaign_id = str((detail.get("campaign") or {}).get("id"))
        say(f"  {outcome['detail-type']} from {outcome['source']}: campaign {campaign_id[:8]}")
    say(f"Slack messages ({len(stack.slack.messages())}):")
    for message in stack.slack.messages():
        say(f"  {message['text']}")
    calls = stack.segment.calls()
    say(f"Segment calls ({len(calls)}):")
    for name, count in Counter(f"{c['type']} {c.get('event', '')}".strip() for c in calls).items():
        say(f"  {count} x {name}")


def _exactly_once(expected: Expected, got: Arrivals, say: Say, *, mirrored: bool) -> bool:
    checks = [
        ("on the bus", expected.events, got.on_bus),
        ("in Slack", expected.for_slack(), got.in_slack),
        ("in Segment", expected.for_segment(), got.in_segment),
    ]
    if mirrored:
        checks.append(("in the mirror", expected.for_mirror(), got.in_mirror))
    ok = True
    say("")
    for where, events, counts in checks:
        lost = [e for e in events if not counts[e.id]]
        doubled = [e for e in events if counts[e.id] > 1]
        ok = ok and not lost and not doubled
        say(
            f"  {where:13} {sum(1 for e in events if counts[e.id])}/{len(events)} arrived, "
            f"{len(lost)} lost, {len(doubled)} duplicated"
        )
    say("OK: every event arrived exactly once" if ok else "FAILED: see the counts above")
    return ok


def _mirror_report(stack: RunningStack, say: Say) -> None:
    """What the warehouse mirror says of the scenario, from its named queries."""
    for name in MIRROR_REPORT:
        report = named_query(name)
        say("")
        say(f"From the warehouse mirror: {report.description}")
        for line in format_table(query(stack, report.sql)):
            say(f"  {line}")
