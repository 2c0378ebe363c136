"""The bridge's one budget of Pay4Feedback API requests, shared by every function and container.

Pay4Feedback allows 60 requests a minute per tenant, however many callers the tenant has. The
bridge keeps all of its own calls under `ApiRequestsPerMinute` (55 by default, leaving room for
the customer's own scripts) with one DynamoDB item that every caller updates atomically:

    {"id": "tenant-budget", "tat": <epoch seconds>, "background_tat": <epoch seconds>}

It is the generic cell rate algorithm (GCRA) with the requests waiting their turn instead of
being refused. `tat` ("theoretical arrival time") is when the budget would next be idle if
every reserved request went at the sustained pace, one every `interval` seconds; a caller
reserves the next slot with one conditional UpdateItem, then waits for its send time:

    budget idle   (tat < now)           SET tat = now + interval          send now
    budget busy   (tat >= now)          SET tat = tat + interval          send at tat - tolerance

Concurrent busy reservations never conflict (the update adds to what is stored, whatever it
is), so a call costs one DynamoDB request whenever the budget is in use. A burst of `burst`
requests goes at once (`tolerance` = (burst - 1) x interval); the pace is chosen so that no
sliding window of `window_seconds` ever holds more than `requests_per_window` send times:

    interval = window / (requests_per_window - burst + 1)

Priorities: an INTERACTIVE caller (a person or a no-code tool waits: the trigger's function
URL, a click in Slack, a deploy) queues for the next slot, as far ahead as its deadline lets
it. A BACKGROUND caller (the trigger's queue, the reconciler, the backfill) never queues: it
takes a slot only when one is free at once, and it has a pace of its own, `background_tat`
at `interval / (1 - interactive_reserve)` (with the same burst), so that background work
never uses more than (1 - interactive_reserve) of the budget over time and the rest stays
free for interactive callers. Waiting interactive callers are ahead of every background
caller.

A real 429 from Pay4Feedback (the customer's scripts share the tenant's limit) pushes `tat`
past its Retry-After for every caller (`block_for`). A caller whose slot would come after
its deadline gets `BudgetExhaustedError`, which says it was the bridge's own budget.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from p4f import settings as env_readers
from p4f.errors import RateLimitError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from mypy_boto3_dynamodb import DynamoDBClient

DEFAULT_REQUESTS_PER_MINUTE = 55
"""Of the tenant's 60: five a minute stay free for the customer's own scripts."""
DEFAULT_INTERACTIVE_RESERVE_PERCENT = 25
WINDOW_SECONDS = 60.0
"""Pay4Feedback's window: 60 requests per minute."""
BUDGET_ITEM_ID = "tenant-budget"
_CLOCK_RESOLUTION = 1e-6
"""Times are stored to the microsecond: a wait shorter than that is rounding, not a wait."""
_FAR_FUTURE = 1e12
"""A deadline-free caller's latest send time (epoch seconds, year 33658)."""
_BACKGROUND_RETRY_JITTER = 0.25
"""Background callers waiting for a free slot wake up to this share of an interval apart."""


class Priority(StrEnum):
    INTERACTIVE = "interactive"
    """Someone waits for the answer: may use the whole budget, and queues for it."""
    BACKGROUND = "background"
    """Nobody waits: yields to interactive callers, and never to more than its share."""


class BudgetExhaustedError(RateLimitError):
    """The bridge's own API budget has no slot for this call before the caller's deadline.

    Not a 429 from Pay4Feedback: the bridge held the call back to stay under its budget.
    `retry_after` is when a slot may be free.
    """

    hint = (
        "Retry after retry_after seconds; if this happens often, the bridge's functions "
        "together want more than ApiRequestsPerMinute (see README, 'The API budget')."
    )

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message, retry_after=retry_after, status=None)


class BudgetUnavailableError(RuntimeError):
    """The budget's DynamoDB table did not answer; the call was not sent."""


class Slot(Protocol):
    """One request's place in a budget."""

    def answered(self) -> None:
        """The request's answer is back."""
        ...


class RequestBudget(Protocol):
    """What paces a client's requests: `TenantBudget`, or `SlidingWindowLimiter` in a process."""

    def acquire(self, max_wait: float | None, priority: Priority) -> Slot:
        """Wait for a slot (at most `max_wait` seconds) and take it; else BudgetExhaustedError."""
        ...

    def block_for(self, seconds: float) -> None:
        """Send nothing for `seconds`: Pay4Feedback answered 429."""
        ...


class BudgetObserver(Protocol):
    """Told of each slot taken (and of each call held back), e.g. to emit metrics."""

    def used(self, waited: float, priority: Priority) -> None: ...

    def exhausted(self, wait: float, priority: Priority) -> None: ...


@dataclass(frozen=True)
class BudgetSettings:
    """The budget's part of a function's environment (one owner of these variable names)."""

    table_name: str
    requests_per_minute: int
    interactive_reserve_percent: int
    window_seconds: int
    """60 in AWS; tests compress it together with the sandbox's window."""
    function_name: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> BudgetSettings:
        reserve = env_readers.integer(
            env, "API_INTERACTIVE_RESERVE_PERCENT", DEFAULT_INTERACTIVE_RESERVE_PERCENT
        )
        if reserve > 90:
            raise env_readers.ConfigurationError(
                "API_INTERACTIVE_RESERVE_PERCENT must be 0 to 90: background work needs a share"
            )
        return cls(
            table_name=env_readers.required(env, "API_BUDGET_TABLE"),
            requests_per_minute=env_readers.integer(
                env, "API_REQUESTS_PER_MINUTE", DEFAULT_REQUESTS_PER_MINUTE, minimum=1
            ),
            interactive_reserve_percent=reserve,
            window_seconds=env_readers.integer(
                env, "API_BUDGET_WINDOW_SECONDS", int(WINDOW_SECONDS), minimum=1
            ),
            function_name=env_readers.optional(env, "AWS_LAMBDA_FUNCTION_NAME") or "local",
        )


@dataclass
class BudgetStats:
    """What one budget object did, for benchmarks and tests."""

    slots: int = 0
    dynamodb_calls: int = 0
    waited_seconds: float = 0.0
    exhausted: int = 0


@dataclass(frozen=True)
class BudgetUse:
    """How much of the budget is taken at a moment, as its item says: the slots reserved
    whose time has not passed yet, of all the budget's, and of the background's share."""

    taken: int
    requests_per_window: int
    background_taken: int
    background_requests_per_window: int
    window_seconds: float


@dataclass(frozen=True)
class _Track:
    """One pace kept in the budget item: its attribute, interval and burst tolerance."""

    attribute: str
    interval: float
    tolerance: float

    @classmethod
    def paced(cls, attribute: str, interval: float, burst: int) -> _Track:
        """A pace of one request every `interval` seconds (rounded up to the microsecond, as
        the item keeps times), `burst` of them at once."""
        rounded = _microseconds_up(interval)
        return cls(attribute, rounded, (burst - 1) * rounded)


@dataclass(frozen=True)
class _Plan:
    """The conditional UpdateItem that reserves a slot on `tracks`, or `free_at`: when a slot
    may be free, if none may be taken now."""

    tracks: tuple[_Track, ...]
    condition: str = ""
    update: str = ""
    values: dict[str, Any] = field(default_factory=dict)
    free_at: float | None = None


class _Reserved:
    """A slot of the tenant budget: it counts from its send time, fixed when it was reserved."""

    def answered(self) -> None:
        """Nothing to do."""


class TenantBudget:
    """The tenant-wide budget in DynamoDB (one item of the ApiBudgetTable)."""

    def __init__(
        self,
        table_name: str,
        dynamodb: DynamoDBClient,
        *,
        requests_per_window: int = DEFAULT_REQUESTS_PER_MINUTE,
        window_seconds: float = WINDOW_SECONDS,
        interactive_reserve: float = DEFAULT_INTERACTIVE_RESERVE_PERCENT / 100,
        burst: int | None = None,
        observer: BudgetObserver | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """`burst`: requests that may go at once (default a tenth of the budget); the rest of
        the window's requests are paced so that no window ever holds more than the budget."""
        if requests_per_window < 1 or window_seconds <= 0:
            raise ValueError("the budget needs requests_per_window >= 1 and window_seconds > 0")
        if not 0 <= interactive_reserve < 1:
            raise ValueError("interactive_reserve is a share: at least 0, less than 1")
        self.requests_per_window = requests_per_window
        self.window_seconds = window_seconds
        self.burst = burst if burst is not None else max(1, requests_per_window // 10)
        if not 1 <= self.burst <= requests_per_window:
            raise ValueError("burst must be 1 to requests_per_window")
        interval = window_seconds / (requests_per_window - self.burst + 1)
        self._shared = _Track.paced("tat", interval, self.burst)
        background = interval / (1 - interactive_reserve)
        self._background = _Track.paced("background_tat", background, self.burst)
        self._table = table_name
        self._dynamodb = dynamodb
        self._observer = observer
        self._clock = clock
        self._sleep = sleep
        self._known: dict[str, float] = {}
        """The item as this process last saw it: the best guess of which update will apply."""
        self.stats = BudgetStats()

    @classmethod
    def from_settings(
        cls,
        settings: BudgetSettings,
        dynamodb: DynamoDBClient,
        *,
        observer: BudgetObserver | None = None,
    ) -> TenantBudget:
        return cls(
            settings.table_name,
            dynamodb,
            requests_per_window=settings.requests_per_minute,
            window_seconds=settings.window_seconds,
            interactive_reserve=settings.interactive_reserve_percent / 100,
            observer=observer,
        )

    @property
    def interval(self) -> float:
        """Seconds between two requests at the budget's sustained pace."""
        return self._shared.interval

    def acquire(self, max_wait: float | None, priority: Priority) -> Slot:
        """Reserve the next slot this caller may have and wait until its send time."""
        started = self._clock()
        while True:
            now = self._clock()
            left = None if max_wait is None else max_wait - (now - started)
            plan = self._plan(now, priority, left)
            if plan.free_at is not None:  # no slot may be taken now
                wait = plan.free_at - now
                if priority is Priority.INTERACTIVE or (left is not None and wait > left):
                    self._refuse(now - started + wait, priority)
                # A background caller waits for a free slot, then tries again.
                jitter = random.uniform(0, _BACKGROUND_RETRY_JITTER * self.interval)  # noqa: S311
                self._sleep(wait + jitter)
                continue
            item = self._update(plan.update, plan.condition, plan.values)
            if item is None:  # the item had changed: plan again from what it is now
                continue
            self._sleep_until(self._send_time(item, plan.tracks))
            waited = self._clock() - started
            self.stats.slots += 1
            self.stats.waited_seconds += waited
            if self._observer is not None:
                self._observer.used(waited, priority)
            return _Reserved()

    def use(self) -> BudgetUse:
        """How full the budget is now (one consistent read of its item, no slot taken); an
        interactive caller queued ahead, or a 429's hold, shows as more than the budget."""
        now = self._clock()
        self._remember(self._read())

        def taken(track: _Track) -> int:
            ahead = self._known.get(track.attribute, now) - now
            return max(0, math.ceil(round(ahead / track.interval, 6)))

        def per_window(track: _Track) -> int:
            return min(
                self.requests_per_window,
                math.floor(self.window_seconds / track.interval + 1e-9) + self.burst - 1,
            )

        return BudgetUse(
            taken=taken(self._shared),
            requests_per_window=self.requests_per_window,
            background_taken=taken(self._background),
            background_requests_per_window=per_window(self._background),
            window_seconds=self.window_seconds,
        )

    def block_for(self, seconds: float) -> None:
        """Hold every caller back for `seconds` (Pay4Feedback said 429: someone else spends
        the tenant's limit), bursts included."""
        until = self._clock() + seconds + self._shared.tolerance
        self._update(
            update="SET tat = :until",
            condition="attribute_not_exists(tat) OR tat < :until",
            values={":until": _number(until)},
        )

    # --- the item -----------------------------------------------------------------------

    def _plan(self, now: float, priority: Priority, left: float | None) -> _Plan:
        """The update that takes the next slot for `priority`, as far as this process knows the
        item, or when a slot may be free if none may be taken now.

        `left`: how far ahead the caller may wait for its send time (None: as long as it takes).
        The update's condition holds only if the item still allows that, so that a slot is
        never taken past a deadline, whatever other callers did since this process looked.
        """
        tracks: tuple[_Track, ...] = (self._shared,)
        if priority is Priority.BACKGROUND:
            tracks, left = (self._shared, self._background), 0.0  # background never queues
        free_at = now
        conditions, updates, values = [], [], {":now": _number(now)}
        for track in tracks:
            name, known = track.attribute, self._known.get(track.attribute)
            if known is None or known < now:  # idle, as far as this process knows
                conditions.append(f"(attribute_not_exists({name}) OR {name} < :now)")
                updates.append(f"{name} = :{name}_idle")
                values[f":{name}_idle"] = _number(now + track.interval)
                continue
            free_at = max(free_at, known - track.tolerance)
            latest = _FAR_FUTURE if left is None else now + left + track.tolerance
            conditions.append(f"({name} >= :now AND {name} <= :{name}_latest)")
            updates.append(f"{name} = {name} + :{name}_interval")
            values[f":{name}_latest"] = _number(latest)
            values[f":{name}_interval"] = _number(track.interval)
        if left is not None and free_at > now + left:
            return _Plan(tracks, free_at=free_at)
        return _Plan(tracks, " AND ".join(conditions), "SET " + ", ".join(updates), values)

    def _send_time(self, item: Mapping[str, float], tracks: tuple[_Track, ...]) -> float:
        """When the slot just reserved may be used: read from the item as the update left it
        (each track moved on by one interval from where the slot is)."""
        return max(item[t.attribute] - t.interval - t.tolerance for t in tracks)

    def _sleep_until(self, when: float) -> None:
        wait = when - self._clock()
        if wait > _CLOCK_RESOLUTION:
            self._sleep(wait)

    def _update(
        self, update: str, condition: str, values: dict[str, Any]
    ) -> dict[str, float] | None:
        """One conditional UpdateItem: the item as it left it, or None (and the item as it is
        remembered) when the condition did not hold."""
        self.stats.dynamodb_calls += 1
        try:
            answer = self._dynamodb.update_item(
                TableName=self._table,
                Key={"id": {"S": BUDGET_ITEM_ID}},
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise BudgetUnavailableError(_unavailable(exc)) from exc
            returned: Any = exc.response.get("Item")  # moto and older endpoints may not send it
            self._remember(returned or self._read())
            return None
        except BotoCoreError as exc:
            raise BudgetUnavailableError(_unavailable(exc)) from exc
        return self._remember(answer.get("Attributes", {}))

    def _read(self) -> Mapping[str, Any]:
        self.stats.dynamodb_calls += 1
        try:
            answer = self._dynamodb.get_item(
                TableName=self._table, Key={"id": {"S": BUDGET_ITEM_ID}}, ConsistentRead=True
            )
        except (ClientError, BotoCoreError) as exc:
            raise BudgetUnavailableError(_unavailable(exc)) from exc
        return answer.get("Item", {})

    def _remember(self, item: Mapping[str, Any]) -> dict[str, float]:
        self._known = {
            name: float(item[name]["N"])
            for name in (self._shared.attribute, self._background.attribute)
            if name in item
        }
        return self._known

    def _refuse(self, wait: float, priority: Priority) -> None:
        self.stats.exhausted += 1
        if self._observer is not None:
            self._observer.exhausted(wait, priority)
        raise BudgetExhaustedError(
            f"the bridge's API budget ({self.requests_per_window} requests per "
            f"{self.window_seconds:g}s, shared by all its functions) has no free slot for this "
            f"{priority} call before its deadline; the next may be free in {wait:.1f}s",
            retry_after=wait,
        )


def _microseconds_up(value: float) -> float:
    """`value` rounded up to the microsecond: a time or an interval rounded down would let the
    pace run a hair faster than the budget."""
    return math.ceil(round(value * 1e6, 3)) / 1e6


def _number(value: float) -> dict[str, str]:
    """A time or an interval as DynamoDB stores it: to the microsecond, rounded up."""
    return {"N": f"{_microseconds_up(value):.6f}"}


def _unavailable(exc: Exception) -> str:
    code = exc.response.get("Error", {}).get("Code") if isinstance(exc, ClientError) else None
    return (
        f"the bridge's API budget table did not answer ({code or type(exc).__name__}); the "
        "call was not sent: retry later"
    )


@dataclass
class BudgetMetrics:
    """Powertools metrics of one function's use of the budget: ApiBudgetUsed (count),
    ApiBudgetWaited (seconds) and ApiBudgetExhausted (count), each with the dimensions
    function_name and priority, emitted at once as Powertools' own ColdStart metric is."""

    function_name: str
    namespace: str | None = None
    _dimensions: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self._dimensions = {"function_name": self.function_name}

    def used(self, waited: float, priority: Priority) -> None:
        self._emit("ApiBudgetUsed", "Count", 1, priority)
        self._emit("ApiBudgetWaited", "Seconds", round(waited, 3), priority)

    def exhausted(self, wait: float, priority: Priority) -> None:  # noqa: ARG002 (in the error)
        self._emit("ApiBudgetExhausted", "Count", 1, priority)

    def _emit(self, name: str, unit: str, value: float, priority: Priority) -> None:
        from aws_lambda_powertools.metrics import MetricUnit, single_metric

        dimensions = self._dimensions | {"priority": str(priority)}
        with single_metric(
            name=name,
            unit=MetricUnit(unit),
            value=value,
            namespace=self.namespace,
            default_dimensions=dimensions,
        ):
            pass
