"""The reconciler end to end on the local stack: webhooks dropped while a scenario plays
(the sandbox's drop_deliveries fault), then reconciler runs and the late webhooks, counted
per change identity on the bus; the subscription deleted behind the bridge's back."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from local import cli
from local.reconciling import (
    REWARD,
    drain_bus,
    identity,
    per_change,
    play_lives,
    recoverable,
    wait_delivered,
)
from local.sandbox import SandboxAdmin
from local.stack import LocalStack, RunningStack
from p4f.client import Pay4FeedbackClient

PARAMETERS = {
    "EnableSlackForwarder": "false",
    "EnableSegmentForwarder": "false",
    "EnableWarehouseMirror": "false",
    "RepairSubscription": "true",
}


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


@pytest.mark.timeout(240)
def test_dropped_webhooks_are_recovered_once_and_arrive_late_as_duplicates(
    stack: RunningStack, api: Pay4FeedbackClient, admin: SandboxAdmin
) -> None:
    drain_bus(stack)
    before = {e.id for e in admin.events()}
    admin.arm_fault(drop_deliveries=True)
    play_lives(api, admin, campaigns=2, each=2)
    dropped = [e for e in admin.events() if e.id not in before]
    admin.clear_faults()
    dropped_ids = {e.id for e in dropped}
    assert not {a.event_id for a in admin.deliveries()} & dropped_ids  # none was attempted
    assert drain_bus(stack) == []

    report = stack.reconcile()

    recovered = recoverable(dropped)
    on_bus = drain_bus(stack)
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
    assert set(wait_delivered(admin, dropped_ids).values()) == {200}
    late = drain_bus(stack)
    overwritten = {identity(e.type, e.data) for e in dropped} - recovered
    assert per_change(late) == Counter(overwritten)
    assert all("reconciled_at" not in e["detail"] for e in late)

    # A second run finds nothing missing: the bus had every change, once.
    again = stack.reconcile()
    assert (again["missing"], again["published"]) == (0, 0)
    assert drain_bus(stack) == []


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
    drain_bus(stack)
    campaign = api.create_campaign(name="After the repair", reward=REWARD)
    created = [e["detail"] for e in drain_bus(stack) if e["detail-type"] == "campaign_created"]
    assert [(e["data"]["id"], "reconciled_at" in e) for e in created] == [(campaign.id, False)]
    assert stack.reconcile()["subscription"] == "healthy"


@pytest.mark.timeout(120)
def test_p4f_bridge_reconcile_runs_once_against_the_running_stack_and_says_what_it_found(
    stack: RunningStack,
    api: Pay4FeedbackClient,
    admin: SandboxAdmin,
    capsys: pytest.CaptureFixture[str],
) -> None:
    drain_bus(stack)
    admin.arm_fault(drop_deliveries=True)
    campaign = api.create_campaign(name="For the CLI", reward=REWARD)
    admin.clear_faults()

    status = cli.main(["reconcile", "--log-dir", str(stack.log_dir)])

    out = capsys.readouterr().out
    assert status == 0
    assert "1 change the bridge had not seen: 1 published" in out
    assert f"campaign_created {campaign.id}" in out
    assert "Webhook subscription: healthy" in out
    assert per_change(drain_bus(stack)) == Counter(
        [identity("campaign_created", campaign.model_dump(mode="json"))]
    )


def test_p4f_bridge_reconcile_without_a_running_stack_says_how_to_start_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["reconcile", "--log-dir", str(tmp_path)]) == 2
    assert "p4f-bridge local up" in capsys.readouterr().err
