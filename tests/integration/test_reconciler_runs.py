"""Reconciler runs against the sandbox over HTTP, with AWS in moto (in process): what a run
finds and publishes, what it knows from the bus, its horizon, the subscription check, and
its share of the API budget while an interactive caller is busy."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import boto3
import pytest
from aws_lambda_powertools import Metrics
from moto import mock_aws
from reconcile import (
    LIST_LIMIT,
    Kind,
    Reconciler,
    RunReport,
    SubscriptionCheck,
    SubscriptionState,
)
from reconciler_state import StateFeed, StateStore, sighting_of

from local.lambda_events import LocalLambdaContext, sqs_event
from local.sample_events import forwarder_record
from local.sandbox import SandboxAdmin, running_sandbox
from local.stack import reconcile_event
from local.template import Template
from p4f.budget import Priority, TenantBudget
from p4f.changes import Change
from p4f.client import MoneyFields, Pay4FeedbackClient
from p4f.dedupe import ClaimOutcome, DeliveryLedger
from p4f.fanout import FanOut
from p4f.forwarding import forward_batch
from p4f.models import EventType
from p4f.publish_once import OncePublisher
from p4f.retries import Deadline
from p4f.subscriptions import Subscription, SubscriptionManager
from tests.conftest import LoadFunction, api_budget

KEY = "p4f_test_reconciler_runs"
RECEIVER_URL = "http://127.0.0.1:9/receiver"
EVENTS = tuple(str(t) for t in EventType)
REWARD: MoneyFields = {"amount": "3.00", "currency": "USD"}


@dataclass
class World:
    api: Pay4FeedbackClient
    admin: SandboxAdmin
    store: StateStore
    ledger: DeliveryLedger
    reconciler: Reconciler
    sqs: Any
    bus_queue: str

    def on_bus(self) -> list[dict[str, Any]]:
        found = []
        while batch := self.sqs.receive_message(
            QueueUrl=self.bus_queue, MaxNumberOfMessages=10
        ).get("Messages", []):
            for message in batch:
                found.append(json.loads(message["Body"]))
                self.sqs.delete_message(
                    QueueUrl=self.bus_queue, ReceiptHandle=message["ReceiptHandle"]
                )
        return found


def make_world(sandbox_url: str, *, repair: bool = False, budget: Any = None) -> World:
    template = Template.load()
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    for logical_id in ("IdempotencyTable", "ReconcilerStateTable"):
        dynamodb.create_table(**template.table_definition(logical_id, logical_id))
    events = boto3.client("events", region_name="us-east-1")
    sqs = boto3.client("sqs", region_name="us-east-1")
    events.create_event_bus(Name="bus")
    queue = sqs.create_queue(QueueName="bus-tap")["QueueUrl"]
    events.put_rule(Name="tap", EventBusName="bus", EventPattern='{"source": ["pay4feedback"]}')
    events.put_targets(
        Rule="tap",
        EventBusName="bus",
        Targets=[{"Id": "tap", "Arn": "arn:aws:sqs:us-east-1:123456789012:bus-tap"}],
    )
    api = Pay4FeedbackClient(sandbox_url, api_key=KEY, budget=budget)
    store = StateStore("ReconcilerStateTable", dynamodb)
    ledger = DeliveryLedger("IdempotencyTable", dynamodb)
    publisher = OncePublisher(ledger, FanOut(events=events, bus_name="bus"))
    check = SubscriptionCheck(
        SubscriptionManager(api, signing_secret=lambda: "whsec_current"),
        Subscription(RECEIVER_URL, EVENTS, rotation=""),
        repair=repair,
    )
    reconciler = Reconciler(api, store, publisher, check)
    return World(api, SandboxAdmin(sandbox_url, KEY), store, ledger, reconciler, sqs, queue)


@pytest.fixture
def world() -> Iterator[World]:
    with running_sandbox([KEY], rate_limit=10_000) as sandbox, mock_aws():
        made = make_world(sandbox.url)
        made.api.create_webhook(RECEIVER_URL, EVENTS, "whsec_current")
        # Nothing listens at RECEIVER_URL: without this the sandbox would spend the test
        # retrying every event's delivery there (hundreds in the busiest test).
        made.admin.arm_fault(drop_deliveries=True)
        yield made
        made.api.close()
        made.admin.close()


def types_on(events: list[dict[str, Any]]) -> list[str]:
    return sorted(e["detail-type"] for e in events)


def test_a_first_run_publishes_each_change_the_api_shows_once_a_second_run_none(
    world: World,
) -> None:
    campaign = world.api.create_campaign(name="First", reward=REWARD)
    world.api.update_campaign(campaign.id, status="ACTIVE")
    response = world.admin.submit_response(campaign.id)
    world.admin.score(response.id, 80)
    world.api.approve_response(response.id)

    report = world.reconciler.run()

    published = world.on_bus()
    assert types_on(published) == sorted(
        [
            "campaign_created",
            "campaign_updated",
            "response_submitted",
            "response_scored",
            "reward_approved",
        ]
    )
    assert (report.missing, report.published, report.duplicates) == (5, 5, 0)
    assert report.subscription == SubscriptionState.HEALTHY
    approved = next(e["detail"] for e in published if e["detail-type"] == "reward_approved")
    assert approved["data"] == world.api.get_response(response.id).model_dump(mode="json")
    assert approved["created_at"] == approved["data"]["reviewed_at"]
    assert approved["reconciled_at"]
    assert approved["id"].startswith("evt_reconciled_")
    again = world.reconciler.run()
    assert (again.missing, again.published, world.on_bus()) == (0, 0, [])


def test_changes_the_bus_carried_are_not_looked_for_and_claimed_ones_are_duplicates(
    world: World,
) -> None:
    campaign = world.api.create_campaign(name="Seen", reward=REWARD)
    webhook = next(e for e in world.admin.events() if e.type == EventType.CAMPAIGN_CREATED)
    record = forwarder_record(webhook.model_dump(mode="json"), queue_arn="arn:q", message_id="m")

    class Invocation:
        def get_remaining_time_in_millis(self) -> int:
            return 30_000

    feed = StateFeed(world.store)
    answer = forward_batch(sqs_event([record]), Invocation(), feed, Metrics(namespace="test"))
    assert answer == {"batchItemFailures": []}
    world.api.update_campaign(campaign.id, status="ACTIVE")
    paused = world.api.pause_campaign(campaign.id)
    # The pause's webhook was published, and the state table has not heard of it yet.
    change = Change(campaign.id, EventType.CAMPAIGN_PAUSED, paused.updated_at)
    assert world.ledger.claim("evt_webhook", 5, change).outcome is ClaimOutcome.NEW
    world.ledger.complete("evt_webhook", ["eventbridge"], Deadline(5))

    report = world.reconciler.run()

    # The launch is overwritten by the pause: only the pause shows, and it was published.
    assert (report.missing, report.duplicates, report.published) == (1, 1, 0)
    assert world.on_bus() == []
    assert world.reconciler.run().missing == 0  # the duplicate counts as seen


def test_a_campaign_seen_paused_then_found_active_was_resumed(world: World) -> None:
    campaign = world.api.create_campaign(name="Cycle", reward=REWARD)
    world.api.update_campaign(campaign.id, status="ACTIVE")
    world.api.pause_campaign(campaign.id)
    world.reconciler.run()
    world.on_bus()
    time.sleep(1.0)  # times are to the second
    world.api.resume_campaign(campaign.id)
    world.reconciler.run()
    assert types_on(world.on_bus()) == ["campaign_resumed"]


def run_then_submit_more_than_a_list_holds(world: World) -> RunReport:
    """A complete run, then LIST_LIMIT + 1 responses after it, whose webhooks reached the bus
    (what is missing is not the point here); the run's report."""
    campaign = world.api.create_campaign(name="Busy", reward=REWARD)
    world.api.update_campaign(campaign.id, status="ACTIVE")
    first = world.reconciler.run()
    time.sleep(1.0)  # times are to the second: every response is after the run
    submitted = [world.admin.submit_response(campaign.id) for _ in range(LIST_LIMIT + 1)]
    world.store.record(
        sighting
        for response in submitted
        if (sighting := sighting_of("response_submitted", response.model_dump(mode="json")))
    )
    return first


def test_a_list_full_of_changes_newer_than_the_last_run_says_it_may_have_missed_some(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    first = run_then_submit_more_than_a_list_holds(world)
    assert first.may_have_missed == []
    assert first.horizon[Kind.RESPONSES] is None

    report = world.reconciler.run()

    assert report.listed[Kind.RESPONSES] == LIST_LIMIT  # v1.0: the newest 500
    assert report.may_have_missed == [Kind.RESPONSES]
    assert report.missing == 0
    horizon = report.horizon[Kind.RESPONSES]
    assert horizon is not None
    assert datetime.fromisoformat(horizon) > datetime.fromisoformat(first.started_at)
    assert "may have missed changes" in caplog.text


def test_a_failed_listing_does_not_move_the_time_the_next_horizon_is_compared_with(
    world: World,
) -> None:
    assert run_then_submit_more_than_a_list_holds(world).stopped is None
    world.admin.arm_fault(method="GET", path="/api/v1/responses", status=400, times=1)
    failed = world.reconciler.run()
    assert failed.stopped is not None
    assert failed.stopped.startswith("listing responses")
    time.sleep(1.0)

    report = world.reconciler.run()

    # The oldest of the 501 was never listed: the failed run does not hide that.
    assert report.stopped is None
    assert report.listed[Kind.RESPONSES] == LIST_LIMIT
    assert report.may_have_missed == [Kind.RESPONSES]
    # The campaigns were listed completely by the failed run, and by this one.
    assert world.store.listed_at()[Kind.CAMPAIGNS] > datetime.fromisoformat(failed.started_at)


def test_a_missing_subscription_is_reported_and_left_alone_unless_repair_is_on(
    world: World,
) -> None:
    (ours,) = world.api.list_webhooks()
    world.api.delete_webhook(ours.id)
    assert world.reconciler.run().subscription == SubscriptionState.MISSING
    assert world.api.list_webhooks() == []


def test_with_repair_on_a_missing_subscription_is_registered_with_the_current_secret() -> None:
    with running_sandbox([KEY]) as sandbox, mock_aws():
        made = make_world(sandbox.url, repair=True)
        report = made.reconciler.run()
        (webhook,) = made.api.list_webhooks()
    assert report.subscription == SubscriptionState.REPAIRED
    assert (webhook.id, webhook.url, tuple(webhook.events)) == (
        report.repaired_webhook_id,
        RECEIVER_URL,
        EVENTS,
    )


@pytest.mark.parametrize(
    ("api_key", "incomplete"), [(KEY, 0), ("p4f_test_revoked_key", 1)], ids=["read", "401"]
)
def test_a_run_the_api_does_not_answer_raises_reconciler_incomplete(
    load_function: LoadFunction,
    capsys: pytest.CaptureFixture[str],
    api_key: str,
    incomplete: int,
) -> None:
    with running_sandbox([KEY]) as sandbox, mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        template = Template.load()
        for logical_id in ("IdempotencyTable", "ReconcilerStateTable"):
            dynamodb.create_table(**template.table_definition(logical_id, logical_id))
        secrets = boto3.client("secretsmanager", region_name="us-east-1")
        key_arn, signing_arn = (
            secrets.create_secret(Name=name, SecretString=value)["ARN"]
            for name, value in (("key", api_key), ("signing", "whsec_current"))
        )
        boto3.client("events", region_name="us-east-1").create_event_bus(Name="bus")
        environment = api_budget(
            dynamodb,
            P4F_API_KEY_SECRET_ARN=key_arn,
            P4F_BASE_URL=sandbox.url,
            RECONCILER_STATE_TABLE="ReconcilerStateTable",
            IDEMPOTENCY_TABLE="IdempotencyTable",
            EVENT_BUS_NAME="bus",
            WEBHOOK_URL=RECEIVER_URL,
            WEBHOOK_EVENTS=",".join(EVENTS),
            WEBHOOK_SECRET_ARN=signing_arn,
        )
        app = load_function("reconciler", environment)
        capsys.readouterr()
        report = app.lambda_handler(reconcile_event(), LocalLambdaContext("reconciler", 60))
    assert (report["stopped"] is None) is (incomplete == 0)
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "_aws" in line]
    (run,) = [e for e in emitted if "ReconciledChanges" in e]  # the budget's lines aside
    assert run["ReconcilerIncomplete"] == [incomplete]
    # Nothing else of a blind run says it is blind: no failure, no missing subscription
    # (the run that reads the API finds none: the sandbox has no webhook registered).
    assert (run["ReconcilerFailures"], run["WebhookSubscriptionMissing"]) == ([0], [1 - incomplete])


class Slots:
    """Each slot the budget gave, with its priority and time."""

    def __init__(self) -> None:
        self.taken: list[tuple[float, Priority]] = []
        self._lock = threading.Lock()

    def used(self, waited: float, priority: Priority) -> None:
        with self._lock:
            self.taken.append((time.monotonic(), priority))

    def exhausted(self, wait: float, priority: Priority) -> None:
        """Nothing to count."""


@pytest.mark.timeout(120)
def test_the_reconciler_keeps_to_the_background_share_while_an_interactive_caller_is_busy() -> None:
    limit, window, reserve = 20, 2.0, 0.5
    # The tenant's limit a little above the bridge's budget, as 60 is above 55.
    with (
        running_sandbox(
            [KEY], api_version="1.1", page_size=5, rate_limit=limit + 4, rate_window=window
        ) as sandbox,
        mock_aws(),
    ):
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        dynamodb.create_table(**Template.load().table_definition("ApiBudgetTable", "budget"))
        slots = Slots()

        def budget() -> TenantBudget:
            return TenantBudget(
                "budget",
                dynamodb,
                requests_per_window=limit,
                window_seconds=window,
                interactive_reserve=reserve,
                observer=slots,
            )

        made_budget = budget()
        made = make_world(sandbox.url, budget=made_budget)
        seed = SandboxAdmin(sandbox.url, KEY)
        with Pay4FeedbackClient(sandbox.url, api_key=KEY, budget=budget()) as trigger:
            campaign = trigger.create_campaign(name="Shared", reward=REWARD)
            trigger.update_campaign(campaign.id, status="ACTIVE")
            for _ in range(60):  # 12 pages of responses
                seed.submit_response(campaign.id)
            slots.taken.clear()
            busy = threading.Event()

            def interactive() -> None:  # the trigger's URL: about 4 calls a second
                while not busy.wait(0.25):
                    trigger.get_campaign(campaign.id)

            caller = threading.Thread(target=interactive)
            caller.start()
            try:
                report = made.reconciler.run()
            finally:
                busy.set()
                caller.join()
        stats = seed.stats()
        seed.close()
    background = [at for at, priority in slots.taken if priority is Priority.BACKGROUND]
    interactive_calls = len(slots.taken) - len(background)
    assert report.listed == {Kind.CAMPAIGNS: 1, Kind.RESPONSES: 60}
    assert report.stopped is None
    assert len(background) >= 15  # me, the webhooks, a page of campaigns, 12 of responses
    assert stats.rate_limited == 0  # the budget kept everyone under the tenant's limit
    assert interactive_calls > 0
    # At most the background share of any window, and its burst, went to the reconciler.
    share = int(limit * (1 - reserve)) + made_budget.burst
    for start in background:
        assert sum(start <= at < start + window for at in background) <= share
