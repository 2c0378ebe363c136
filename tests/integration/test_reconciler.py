"""The reconciler end to end on the local stack: webhooks dropped while a scenario plays
(the sandbox's drop_deliveries fault), then reconciler runs and the late webhooks, counted
per change identity on the bus; the subscription deleted behind the bridge's back."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from local.sandbox import SandboxAdmin
from local.stack import LocalStack, RunningStack
from p4f.changes import change_of
from p4f.client import Pay4FeedbackClient
from p4f.models import EventType, WebhookEvent

PARAMETERS = {
    "EnableSlackForwarder": "false",
    "EnableSegmentForwarder": "false",
    "EnableWarehouseMirror": "false",
    "RepairSubscription": "true",
}
DELIVERY_TIMEOUT_SECONDS = 30.0


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    log_dir = tmp_path_factory.mktemp("reconciler")
    with LocalStack(log_dir=log_dir, parameters=PARAMETERS, webhook_retry_base=0.2) as running:
        yield running


@pytest.fixture
def api(stack: RunningStack) -> Iterator[Pay4FeedbackClient]:
    with Pay4FeedbackClient(stack.urls.sandbox, api_key=stack.api_key) as client:
        yield client


@pytest.fixture
def admin(stack: RunningStack) -> Iterator[SandboxAdmin]:
    admin = stack.admin()
    yield admin
    admin.clear_faults()
    admin.close()


def drain(stack: RunningStack) -> list[dict[str, Any]]:
    """The Pay4Feedback events the bus's consumer got since the last drain."""
    sqs = stack.aws.client("sqs")
    found = []
    quiet_since = time.monotonic()
    while time.monotonic() - quiet_since < 2:  # until nothing more comes for 2 s
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


def identity(event_type: str, data: Any) -> str:
    change = change_of(event_type, data)
    assert change is not None, f"{event_type} has no change identity"
    return change.identity


def per_change(events: list[dict[str, Any]]) -> Counter[str]:
    return Counter(identity(e["detail-type"], e["detail"]["data"]) for e in events)


def play(api: Pay4FeedbackClient, admin: SandboxAdmin) -> None:
    """Two campaigns' lives: launched, answered, scored, reviewed; one paused."""
    reward = {"amount": "2.50", "currency": "EUR"}
    campaigns = [api.create_campaign(name=f"Dropped {n}", reward=reward) for n in range(2)]
    for campaign in campaigns:
        api.update_campaign(campaign.id, status="ACTIVE")
    responses = [admin.submit_response(c.id) for c in campaigns for _ in range(2)]
    for n, response in enumerate(responses[:3]):
        admin.score(response.id, 40 + 20 * n)
    api.approve_response(responses[0].id)
    api.reject_response(responses[1].id, reason="Off topic")
    api.pause_campaign(campaigns[1].id)


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


def answered(admin: SandboxAdmin, event_ids: set[str]) -> dict[str, int | None]:
    """Each event's last delivery attempt's status, once every one was attempted."""
    deadline = time.monotonic() + DELIVERY_TIMEOUT_SECONDS
    while True:
        last: dict[str, int | None] = {}
        for attempt in reversed(admin.deliveries()):  # oldest first: the last one wins
            if attempt.event_id in event_ids:
                last[attempt.event_id] = attempt.status_code
        if set(last) == event_ids and all(s is not None and s < 300 for s in last.values()):
            return last
        assert time.monotonic() < deadline, f"{len(event_ids) - len(last)} never delivered"
        time.sleep(0.2)


@pytest.mark.timeout(240)
def test_dropped_webhooks_are_recovered_once_and_arrive_late_as_duplicates(
    stack: RunningStack, api: Pay4FeedbackClient, admin: SandboxAdmin
) -> None:
    drain(stack)
    before = {e.id for e in admin.events()}
    admin.arm_fault(drop_deliveries=True)
    play(api, admin)
    dropped = [e for e in admin.events() if e.id not in before]
    admin.clear_faults()
    dropped_ids = {e.id for e in dropped}
    assert not {a.event_id for a in admin.deliveries()} & dropped_ids  # none was attempted
    assert drain(stack) == []

    report = stack.reconcile()

    recovered = recoverable(dropped)
    on_bus = drain(stack)
    assert per_change(on_bus) == Counter(recovered)  # each once, nothing else
    assert all(e["detail"]["reconciled_at"] for e in on_bus)
    assert (report["missing"], report["published"], report["duplicates"]) == (
        len(recovered),
        len(recovered),
        0,
    )
    assert len(recovered) == len(dropped) - 1  # the paused campaign's launch, overwritten

    # The webhooks come after all: those of recovered changes are duplicates (200).
    assert admin.release_dropped() == len(dropped)
    assert set(answered(admin, dropped_ids).values()) == {200}
    late = drain(stack)
    overwritten = {identity(e.type, e.data) for e in dropped} - recovered
    assert per_change(late) == Counter(overwritten)
    assert all("reconciled_at" not in e["detail"] for e in late)

    # A second run finds nothing missing: the bus had every change, once.
    again = stack.reconcile()
    assert (again["missing"], again["published"]) == (0, 0)
    assert drain(stack) == []


@pytest.mark.timeout(120)
def test_a_subscription_deleted_behind_the_bridges_back_is_detected_and_repaired(
    stack: RunningStack, api: Pay4FeedbackClient
) -> None:
    assert stack.reconcile()["subscription"] == "healthy"
    (ours,) = [w for w in api.list_webhooks() if w.url == stack.urls.webhook]
    api.delete_webhook(ours.id)

    report = stack.reconcile()

    assert report["subscription"] == "repaired"
    (repaired,) = [w for w in api.list_webhooks() if w.url == stack.urls.webhook]
    assert repaired.id == report["repaired_webhook_id"]
    assert set(repaired.events) == set(ours.events)
    # Signed with the current signing secret: the receiver takes its deliveries again.
    drain(stack)
    reward = {"amount": "1.00", "currency": "USD"}
    campaign = api.create_campaign(name="After the repair", reward=reward)
    created = [e["detail"] for e in drain(stack) if e["detail-type"] == "campaign_created"]
    assert [(e["data"]["id"], "reconciled_at" in e) for e in created] == [(campaign.id, False)]
    assert stack.reconcile()["subscription"] == "healthy"
