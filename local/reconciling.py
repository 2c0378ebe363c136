"""A dropped stretch on the local stack: webhooks lost while campaigns live, then the
reconciler fills the gaps, then the lost webhooks arrive late: every change on the bus once.

    result = dropped_stretch(stack, campaigns=1, responses_each=2)   # the demo's part
    result = dropped_stretch(stack, campaigns=5, responses_each=40)  # the bench's 200

Counted per change identity (p4f.changes), on the bus's consumer queue. What a run cannot
recover is a campaign's change a later one overwrote before the run (its launch, then a
pause): `recoverable` says which changes still show in the API.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from p4f.changes import change_of
from p4f.client import Pay4FeedbackClient
from p4f.models import EventType, WebhookEvent
from p4f.ratelimit import SlidingWindowLimiter

if TYPE_CHECKING:
    from collections.abc import Callable

    from local.sandbox import SandboxAdmin
    from local.stack import RunningStack
    from p4f.client import MoneyFields

REWARD: MoneyFields = {"amount": "2.50", "currency": "EUR"}
QUIET_SECONDS = 2.0
"""How long the bus's consumer queue stays empty before a drain ends."""
DELIVERY_TIMEOUT_SECONDS = 120.0


def identity(event_type: str, data: Any) -> str:
    """The change identity of an event (ValueError for a type without one)."""
    change = change_of(event_type, data)
    if change is None:
        raise ValueError(f"a {event_type} event is about no change the reconciler finds")
    return change.identity


def per_change(bus_events: list[dict[str, Any]]) -> Counter[str]:
    """How many times each change reached the bus (its EventBridge events)."""
    return Counter(identity(e["detail-type"], e["detail"]["data"]) for e in bus_events)


def recoverable(dropped: list[WebhookEvent]) -> set[str]:
    """The changes of `dropped` (newest first) that still show in the API: every one but a
    campaign's change a later one overwrote (a launch, before a pause)."""
    found, changed = set(), set()
    for event in dropped:
        data = event.data
        if event.type != EventType.CAMPAIGN_CREATED and event.type.startswith("campaign_"):
            if data["id"] in changed:
                continue
            changed.add(data["id"])
        found.add(identity(event.type, data))
    return found


def drain_bus(stack: RunningStack) -> list[dict[str, Any]]:
    """The Pay4Feedback events the bus's consumer got since the last drain."""
    sqs = stack.aws.client("sqs")
    found = []
    quiet_since = time.monotonic()
    while time.monotonic() - quiet_since < QUIET_SECONDS:
        batch = sqs.receive_message(QueueUrl=stack.consumer_queue_url, MaxNumberOfMessages=10).get(
            "Messages", []
        )
        if batch:
            quiet_since = time.monotonic()
        for message in batch:
            found.append(json.loads(message["Body"]))
            sqs.delete_message(
                QueueUrl=stack.consumer_queue_url, ReceiptHandle=message["ReceiptHandle"]
            )
    return [event for event in found if event["source"] == "pay4feedback"]


def play_lives(api: Pay4FeedbackClient, admin: SandboxAdmin, campaigns: int, each: int) -> None:
    """Campaigns launched and answered; most answers scored, some approved or rejected;
    the last campaign paused."""
    created = [api.create_campaign(name=f"Dropped {n}", reward=REWARD) for n in range(campaigns)]
    for campaign in created:
        api.update_campaign(campaign.id, status="ACTIVE")
    responses = [admin.submit_response(c.id) for c in created for _ in range(each)]
    for n, response in enumerate(responses):
        if n % 4 != 3:
            admin.score(response.id, 30 + n % 70)
        if n % 4 == 0:
            api.approve_response(response.id)
        elif n % 4 == 1:
            api.reject_response(response.id, reason="Off topic")
    api.pause_campaign(created[-1].id)


def wait_delivered(admin: SandboxAdmin, event_ids: set[str]) -> dict[str, int | None]:
    """Each event's last delivery attempt's status, once each was answered 2xx."""
    deadline = time.monotonic() + DELIVERY_TIMEOUT_SECONDS
    while True:
        last: dict[str, int | None] = {}
        for attempt in reversed(admin.deliveries()):  # oldest first: the last one wins
            if attempt.event_id in event_ids:
                last[attempt.event_id] = attempt.status_code
        if set(last) == event_ids and all(s is not None and s < 300 for s in last.values()):
            return last
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(event_ids) - len(last)} webhooks were never delivered")
        time.sleep(0.2)


@dataclass
class Stretch:
    """What became of the changes of a dropped stretch."""

    dropped: int = 0
    """Changes whose webhooks were dropped."""
    recoverable: int = 0
    """Of those, the ones that still show in the API."""
    recovered: int = 0
    """Changes the reconciler's run put on the bus."""
    duplicates: int = 0
    """Changes on the bus more than once, after the late webhooks and a second run."""
    late_published: int = 0
    """Late webhooks published (changes the run could not see); the others were duplicates."""
    first_run: dict[str, Any] = field(default_factory=dict)
    second_run: dict[str, Any] = field(default_factory=dict)
    run_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return (
            self.recovered == self.recoverable
            and self.duplicates == 0
            and self.late_published == self.dropped - self.recoverable
            and self.second_run.get("published") == 0
        )


def dropped_stretch(
    stack: RunningStack,
    *,
    campaigns: int,
    responses_each: int,
    say: Callable[[str], None],
    requests_per_minute: int = 60,
) -> Stretch:
    """Drop the webhooks while campaigns live, run the reconciler, release the webhooks,
    run it again; what reached the bus, per change. `requests_per_minute`: the pace of the
    scenario's own API calls (the sandbox's limit must allow it)."""
    result = Stretch()
    admin = stack.admin()
    try:
        pace = SlidingWindowLimiter(requests_per_minute, 60.0)
        with Pay4FeedbackClient(stack.urls.sandbox, api_key=stack.api_key, budget=pace) as api:
            drain_bus(stack)
            before = {e.id for e in admin.events()}
            admin.arm_fault(drop_deliveries=True)
            try:
                play_lives(api, admin, campaigns, responses_each)
            finally:
                admin.clear_faults()
        dropped = [e for e in admin.events() if e.id not in before]
        result.dropped = len(dropped)
        wanted = recoverable(dropped)
        result.recoverable = len(wanted)
        say(f"  {len(dropped)} webhooks dropped (a receiver outage longer than the retries)")
        started = time.monotonic()
        result.first_run = stack.reconcile()
        result.run_seconds = time.monotonic() - started
        seen = per_change(drain_bus(stack))
        result.recovered = len(set(seen) & wanted)
        say(
            f"  the reconciler's run: {result.recovered} of the {len(wanted)} changes the API "
            f"still shows put on the bus, {result.first_run['api_calls']} API calls, "
            f"{result.run_seconds:.1f}s"
        )
        admin.release_dropped()
        wait_delivered(admin, {e.id for e in dropped})
        late = per_change(drain_bus(stack))
        result.late_published = len(late)
        say(
            f"  the dropped webhooks, released late: {len(dropped) - len(late)} answered "
            f"200 duplicate, {len(late)} published (changes a later one had overwritten)"
        )
        result.second_run = stack.reconcile()
        seen += late + per_change(drain_bus(stack))
        result.duplicates = sum(1 for count in seen.values() if count > 1)
        say(
            f"  a second run: {result.second_run['published']} published; "
            f"{result.duplicates} changes on the bus more than once"
        )
    finally:
        admin.close()
    return result
