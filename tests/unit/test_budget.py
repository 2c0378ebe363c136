"""p4f.budget.TenantBudget: the tenant-wide API budget in DynamoDB (moto, atomic), on a fake
clock. Several budget objects on one table stand for several containers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from itertools import count
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from moto import mock_aws

from local.template import Template
from p4f.budget import (
    BUDGET_ITEM_ID,
    BudgetExhaustedError,
    BudgetMetrics,
    BudgetSettings,
    BudgetUnavailableError,
    Priority,
    TenantBudget,
)
from p4f.errors import RateLimitError
from p4f.settings import ConfigurationError
from tests.conftest import FakeTime

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

INTERACTIVE, BACKGROUND = Priority.INTERACTIVE, Priority.BACKGROUND
_tables = count()


@pytest.fixture
def dynamodb() -> Iterator[DynamoDBClient]:
    with mock_aws():
        yield boto3.client("dynamodb", region_name="us-east-1")


def new_table(dynamodb: DynamoDBClient) -> str:
    name = f"budget-{next(_tables)}"
    dynamodb.create_table(**Template.load().table_definition("ApiBudgetTable", name))
    return name


class Containers:
    """Budget objects sharing one table and one fake clock, and the send times they gave."""

    def __init__(self, dynamodb: DynamoDBClient, fake: FakeTime, **options: Any) -> None:
        self.table = new_table(dynamodb)
        self.dynamodb = dynamodb
        self.fake = fake
        self.options = options
        self.sends: list[tuple[float, Priority]] = []

    def container(self) -> TenantBudget:
        return TenantBudget(
            self.table, self.dynamodb, clock=self.fake.clock, sleep=self.fake.sleep, **self.options
        )

    def send(
        self, budget: TenantBudget, priority: Priority, max_wait: float | None = None
    ) -> float:
        """Take a slot, as the client does before a request; when the request went."""
        budget.acquire(max_wait, priority)
        self.sends.append((self.fake.now, priority))
        return self.fake.now

    def most_in_a_window(self, window: float, priority: Priority | None = None) -> int:
        """The most sends in any `window` seconds (to the microsecond, as the budget keeps
        times)."""
        times = sorted(t for t, p in self.sends if priority in (None, p))
        span = window - 1e-6
        return max((sum(start <= t < start + span for t in times) for start in times), default=0)


@pytest.fixture
def fake() -> FakeTime:
    return FakeTime(now=1_800_000_000.0)


def test_a_burst_goes_at_once_then_the_budget_paces(
    dynamodb: DynamoDBClient, fake: FakeTime
) -> None:
    tenant = Containers(dynamodb, fake, requests_per_window=55, window_seconds=60)
    budget = tenant.container()
    assert (budget.burst, round(budget.interval, 3)) == (5, round(60 / 51, 3))
    started = fake.now
    sent = [tenant.send(budget, INTERACTIVE) - started for _ in range(8)]
    assert sent[:5] == [0.0] * 5
    assert sent[5:] == pytest.approx([budget.interval * n for n in (1, 2, 3)], abs=0.002)


def test_no_window_ever_holds_more_than_the_budget(
    dynamodb: DynamoDBClient, fake: FakeTime
) -> None:
    tenant = Containers(dynamodb, fake, requests_per_window=55, window_seconds=60)
    containers = [tenant.container() for _ in range(4)]
    for n in range(400):  # 4 containers calling as fast as they are let, for ~7 minutes
        tenant.send(containers[n % 4], INTERACTIVE)
    assert tenant.most_in_a_window(60) == 55
    elapsed = tenant.sends[-1][0] - tenant.sends[0][0]
    assert 400 / (elapsed / 60) >= 0.9 * 55  # the budget is used, not just respected


def test_whatever_the_callers_do_no_window_holds_more_than_the_budget() -> None:
    steps = st.lists(
        st.tuples(
            st.integers(0, 2),  # which container
            st.sampled_from([INTERACTIVE, BACKGROUND]),
            st.floats(0, 3),  # seconds since the previous call
            st.one_of(st.none(), st.floats(0, 30)),  # the caller's max wait
        ),
        min_size=1,
        max_size=60,
    )

    @settings(max_examples=40, deadline=None)
    @given(steps=steps, limit=st.integers(2, 30))
    def check(steps: list[tuple[int, Priority, float, float | None]], limit: int) -> None:
        fake = FakeTime(now=1_800_000_000.0)
        tenant = Containers(shared, fake, requests_per_window=limit, window_seconds=10)
        containers = [tenant.container() for _ in range(3)]
        refusals = []
        for container, priority, pause, max_wait in steps:
            fake.now += pause
            try:
                tenant.send(containers[container], priority, max_wait)
            except BudgetExhaustedError as exc:
                refusals.append((exc.retry_after, max_wait or 0))
        assert tenant.most_in_a_window(10) <= limit
        assert all(wait > allowed - 1e-6 for wait, allowed in refusals)  # only past the wait

    with mock_aws():
        shared = boto3.client("dynamodb", region_name="us-east-1")
        check()


def test_an_interactive_caller_past_its_deadline_is_refused_in_the_bridges_words(
    dynamodb: DynamoDBClient, fake: FakeTime
) -> None:
    tenant = Containers(dynamodb, fake, requests_per_window=2, window_seconds=60)
    budget = tenant.container()
    tenant.send(budget, INTERACTIVE)  # one every 30 s: the next slot is 30 s away
    with pytest.raises(BudgetExhaustedError) as raised:
        budget.acquire(10, INTERACTIVE)
    exc = raised.value
    assert isinstance(exc, RateLimitError)  # callers that defer on a 429 defer on it too
    assert exc.status is None  # no answer of Pay4Feedback's
    assert exc.retry_after == pytest.approx(30, abs=0.01)
    assert "the bridge's API budget (2 requests per 60s, shared by all its functions)" in str(exc)
    assert "Rate limit exceeded" not in str(exc)
    assert fake.sleeps == []  # not waited for: it could not have helped
    # The refused call took nothing: the next caller that can wait gets the slot at 30 s.
    assert tenant.send(budget, INTERACTIVE, 30.5) == pytest.approx(fake.now)
    assert budget.stats.exhausted == 1


def test_a_busy_budget_costs_one_dynamodb_call_a_request(
    dynamodb: DynamoDBClient, fake: FakeTime
) -> None:
    tenant = Containers(dynamodb, fake, requests_per_window=55, window_seconds=60)
    containers = [tenant.container() for _ in range(3)]
    for container in containers:  # each learns the item once
        tenant.send(container, INTERACTIVE)
    before = [c.stats.dynamodb_calls for c in containers]
    for n in range(150):  # interleaved: every container's view is stale, and it does not matter
        tenant.send(containers[n % 3], INTERACTIVE)
    calls = sum(c.stats.dynamodb_calls for c in containers) - sum(before)
    assert calls == 150


def test_background_callers_never_take_more_than_their_share(
    dynamodb: DynamoDBClient, fake: FakeTime
) -> None:
    tenant = Containers(
        dynamodb, fake, requests_per_window=55, window_seconds=60, interactive_reserve=0.25
    )
    containers = [tenant.container() for _ in range(3)]
    for n in range(300):
        tenant.send(containers[n % 3], BACKGROUND)
    elapsed = tenant.sends[-1][0] - tenant.sends[0][0]
    per_minute = (300 - containers[0].burst) / (elapsed / 60)
    assert per_minute == pytest.approx(0.75 * 51, rel=0.02)  # 75 % of the sustained pace
    assert tenant.most_in_a_window(60) <= 55


def test_an_interactive_call_goes_at_once_while_background_callers_saturate(
    dynamodb: DynamoDBClient, fake: FakeTime
) -> None:
    tenant = Containers(dynamodb, fake, requests_per_window=55, window_seconds=60)
    background = [tenant.container() for _ in range(3)]
    interactive = tenant.container()
    waits = []
    for n in range(200):
        tenant.send(background[n % 3], BACKGROUND)
        if n % 20 == 19:
            asked = fake.now
            tenant.send(interactive, INTERACTIVE, max_wait=2)
            waits.append(fake.now - asked)
    assert max(waits) <= interactive.interval  # at most one slot's wait, never refused
    assert tenant.most_in_a_window(60) <= 55


def test_background_callers_yield_to_waiting_interactive_ones(
    dynamodb: DynamoDBClient, fake: FakeTime
) -> None:
    tenant = Containers(dynamodb, fake, requests_per_window=10, window_seconds=10)
    budget = tenant.container()
    for _ in range(5):  # interactive callers queue 4 s ahead (burst 1, one a second)
        budget.acquire(None, INTERACTIVE)
    asked = fake.now
    tenant.send(tenant.container(), BACKGROUND, max_wait=30)
    assert fake.now - asked >= 0.99  # it waited for the queue ahead of it to drain
    with pytest.raises(BudgetExhaustedError, match="background call"):
        tenant.container().acquire(0, BACKGROUND)


def test_pay4feedbacks_429_holds_every_container_back(
    dynamodb: DynamoDBClient, fake: FakeTime
) -> None:
    tenant = Containers(dynamodb, fake, requests_per_window=55, window_seconds=60)
    told, other = tenant.container(), tenant.container()
    tenant.send(other, INTERACTIVE)
    told.block_for(12)  # the customer's own script spent the tenant's limit
    asked = fake.now
    tenant.send(other, INTERACTIVE)
    assert fake.now - asked == pytest.approx(12, abs=0.01)  # bursts included


def test_an_unreachable_table_is_a_budget_error_and_nothing_is_sent(
    dynamodb: DynamoDBClient,
) -> None:
    budget = TenantBudget("no-such-table", dynamodb)
    with pytest.raises(BudgetUnavailableError, match="ResourceNotFoundException"):
        budget.acquire(5, INTERACTIVE)


def test_the_item_is_one_per_tenant_and_holds_times_only(
    dynamodb: DynamoDBClient, fake: FakeTime
) -> None:
    tenant = Containers(dynamodb, fake)
    tenant.send(tenant.container(), BACKGROUND)
    item = dynamodb.get_item(TableName=tenant.table, Key={"id": {"S": BUDGET_ITEM_ID}})["Item"]
    assert set(item) == {"id", "tat", "background_tat"}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"requests_per_window": 0}, "requests_per_window >= 1"),
        ({"interactive_reserve": 1.0}, "a share"),
        ({"burst": 100}, "burst must be"),
    ],
)
def test_an_impossible_budget_is_refused(
    dynamodb: DynamoDBClient, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        TenantBudget("t", dynamodb, **options)


def test_every_value_the_template_allows_makes_a_budget(dynamodb: DynamoDBClient) -> None:
    parameters = Template.load().body["Parameters"]
    rate, reserve = parameters["ApiRequestsPerMinute"], parameters["ApiInteractiveReservePercent"]
    for requests in (rate["MinValue"], rate["Default"], rate["MaxValue"]):
        for percent in (reserve["MinValue"], reserve["Default"], reserve["MaxValue"]):
            settings_ = BudgetSettings.from_env(
                {
                    "API_BUDGET_TABLE": "t",
                    "API_REQUESTS_PER_MINUTE": str(requests),
                    "API_INTERACTIVE_RESERVE_PERCENT": str(percent),
                }
            )
            budget = TenantBudget.from_settings(settings_, dynamodb)
            assert budget.interval > 0


def test_a_reserve_that_leaves_background_work_nothing_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="0 to 90"):
        BudgetSettings.from_env({"API_BUDGET_TABLE": "t", "API_INTERACTIVE_RESERVE_PERCENT": "95"})


def test_metrics_are_emitted_per_function_and_priority(
    dynamodb: DynamoDBClient, fake: FakeTime, capsys: pytest.CaptureFixture[str]
) -> None:
    metrics = BudgetMetrics("p4f-campaign-trigger", namespace="P4fBridge")
    tenant = Containers(dynamodb, fake, requests_per_window=2, window_seconds=60, observer=metrics)
    budget = tenant.container()
    tenant.send(budget, BACKGROUND)
    with pytest.raises(BudgetExhaustedError):
        budget.acquire(1, INTERACTIVE)
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    names = [m["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"] for m in emitted]
    assert names == ["ApiBudgetUsed", "ApiBudgetWaited", "ApiBudgetExhausted"]
    assert [m["priority"] for m in emitted] == ["background", "background", "interactive"]
    assert {m["function_name"] for m in emitted} == {"p4f-campaign-trigger"}
    assert emitted[0]["ApiBudgetUsed"] == [1.0]


def test_its_use_is_the_slots_reserved_ahead_of_now(
    dynamodb: DynamoDBClient, fake: FakeTime
) -> None:
    tenant = Containers(dynamodb, fake, requests_per_window=55, window_seconds=60)
    budget = tenant.container()
    idle = budget.use()
    assert (idle.taken, idle.requests_per_window, idle.background_taken) == (0, 55, 0)
    assert idle.background_requests_per_window == 42  # 75 % of the paced 51, and the burst
    for _ in range(3):
        tenant.send(budget, BACKGROUND)
    assert (budget.use().taken, budget.use().background_taken) == (3, 3)
    for _ in range(5):
        tenant.send(budget, INTERACTIVE)
    assert budget.use().taken == 5  # a burst of 5: the pace caught up with the first three
    assert tenant.container().use().taken == 5  # what the item says, not what one process did
    fake.sleep(60)
    assert budget.use().taken == 0
