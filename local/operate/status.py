"""`p4f-bridge status --stack NAME | --local`: a stack's health on one screen.

    report = read_status(OperatedStack.running_locally(Path(".local-stack")))
    print("\\n".join(report.lines()))
    sys.exit(report.exit_status)       # 0 healthy, 1 something needs attention

Sections, each read on its own (one that cannot be read says why in its own line, and the
others still show):

- the webhook subscription at Pay4Feedback: one with the stack's WebhookUrl and
  WebhookEvents (p4f.subscriptions, the subscription manager's own test), its id against the
  output WebhookSubscriptionId; asked through the stack's API budget, as an interactive caller;
- every queue and dead-letter queue: messages, in flight, the oldest message's age (CloudWatch
  AWS/SQS ApproximateAgeOfOldestMessage; `-` without a datapoint, as in moto);
- the stack's alarms in ALARM (named `<stack>-...`), with their reason;
- the newest accepted (or duplicate) delivery per event type over 7 days, from the receiver's
  `delivery handled` log lines, and the reconciler's last run;
- the API budget: how full it is now, and ApiBudgetUsed / ApiBudgetExhausted of the last hour;
- the receiver's outcomes of the last hour (WebhookAccepted, ...Duplicate, ...Rejected,
  ...Busy, ...Failed).

Something needs attention when the subscription is missing or unknown, a dead-letter queue
holds messages, an alarm is in ALARM, or a section could not be read. Nothing secret is
shown: no API key, no signing secret, no event body.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from local.operate.api import StackApi, operated_api
from local.operate.stack import LogQueryError
from p4f.budget import BudgetUnavailableError, Priority
from p4f.errors import Pay4FeedbackError
from p4f.secrets import SecretError
from p4f.subscriptions import Subscription, SubscriptionManager

if TYPE_CHECKING:
    from local.operate.stack import OperatedStack

CALLER = "p4f-bridge status"
"""The budget's function_name of this command's API calls."""
NAMESPACE = "P4fBridge"
SERVICE = "p4f-bridge"
"""The service dimension Powertools Metrics gives the functions' metrics (Globals)."""
RECEIVER = "WebhookReceiverFunction"
RECONCILER = "ReconcilerFunction"
OUTCOMES = ("Accepted", "Duplicate", "Rejected", "Busy", "Failed")
"""The receiver's metrics, Webhook<outcome>."""
EVENTS_SINCE = timedelta(days=7)
METRICS_SINCE = timedelta(hours=1)
QUEUE_AGE_SINCE = timedelta(minutes=5)
API_SECONDS = 10.0
"""How long the subscription's check may take, waiting for its budget slot included."""
_UNREADABLE = (
    BotoCoreError,
    ClientError,
    Pay4FeedbackError,
    BudgetUnavailableError,
    SecretError,
    LogQueryError,
)
"""What a section that cannot be read meets: AWS refused or did not answer (permissions,
a stack being changed), the API did not answer, the key or the budget is unusable."""
_REASON_WIDTH = 100
_MOST_QUERIES = 500
"""GetMetricData's most queries a call."""


@dataclass
class Section:
    """One part of the screen: its lines, and what in it needs attention."""

    title: str
    lines: list[str] = field(default_factory=list)
    attention: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Status:
    """A stack's status: the screen, and whether something needs attention."""

    stack: str
    local: bool
    at: datetime
    sections: list[Section]

    @property
    def attention(self) -> list[str]:
        return [reason for section in self.sections for reason in section.attention]

    @property
    def exit_status(self) -> int:
        return 1 if self.attention else 0

    def lines(self) -> list[str]:
        where = "the local stack" if self.local else "deployed stack"
        shown = [f"{self.stack} ({where}) at {self.at:%Y-%m-%d %H:%M:%S} UTC"]
        for section in self.sections:
            shown += ["", section.title, *(f"  {line}" for line in section.lines)]
        shown.append("")
        if self.attention:
            shown.append("Needs attention:")
            shown += [f"  - {reason}" for reason in self.attention]
        else:
            shown.append("Healthy: nothing needs attention.")
        return shown


def read_status(
    stack: OperatedStack,
    *,
    now: datetime | None = None,
    api: Callable[[], StackApi] | None = None,
) -> Status:
    """The status of `stack` (`api`: how to reach Pay4Feedback; the stack's own by default)."""
    at = now or datetime.now(UTC)
    reach = api or (lambda: operated_api(stack, caller=CALLER))
    cloudwatch = _Lazy(lambda: stack.client("cloudwatch"))
    built: list[StackApi] = []

    def stack_api() -> StackApi:
        if not built:
            built.append(reach())
        return built[0]

    readers: list[tuple[str, Callable[[Section], None]]] = [
        ("Webhook subscription at Pay4Feedback", lambda s: _subscription(s, stack, stack_api)),
        ("Queues", lambda s: _queues(s, stack, cloudwatch, at)),
        ("Alarms in ALARM", lambda s: _alarms(s, stack, cloudwatch, at)),
        (
            f"Last event seen per type (accepted or duplicate, {_age(EVENTS_SINCE)})",
            lambda s: _last_events(s, stack, at),
        ),
        ("API budget", lambda s: _budget(s, stack_api, cloudwatch, at)),
        ("Webhook receiver, last hour", lambda s: _outcomes(s, cloudwatch, at)),
    ]
    sections = []
    for title, read in readers:
        section = Section(title)
        try:
            read(section)
        except _UNREADABLE as exc:
            section.lines.append(f"cannot be read: {_why(exc)}")
            section.attention.append(f"{title}: cannot be read")
        sections.append(section)
    try:
        return Status(stack.name, stack.local, at, sections)
    finally:
        if built:
            built[0].client.close()


class _Lazy:
    """A client made once, when first used."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self._make = make
        self._made: Any = None

    def __call__(self) -> Any:
        if self._made is None:
            self._made = self._make()
        return self._made


# --- the sections ------------------------------------------------------------------------


def _subscription(section: Section, stack: OperatedStack, api: Callable[[], StackApi]) -> None:
    wanted = Subscription(
        stack.outputs.get("WebhookUrl", ""),
        tuple(e.strip() for e in stack.parameters.get("WebhookEvents", "").split(",") if e),
        stack.parameters.get("WebhookSecretRotation", ""),
    )
    noted = stack.outputs.get("WebhookSubscriptionId", "-")
    rows = [
        ("url", wanted.url or "- (no output WebhookUrl)"),
        ("events", f"{len(wanted.events)} (WebhookEvents)"),
    ]
    try:
        client = api().client
        # Someone waits at the terminal: an interactive caller, which may queue for a slot.
        with client.priority(Priority.INTERACTIVE), client.deadline(API_SECONDS):
            # The signing secret is never needed to look: only to register.
            registered = SubscriptionManager(client, _no_secret).registered(wanted)
    except _UNREADABLE as exc:
        rows.insert(0, ("state", f"UNKNOWN: Pay4Feedback was not asked ({_why(exc)})"))
        section.attention.append("the webhook subscription is unknown: Pay4Feedback was not asked")
    else:
        if registered is None:
            rows.insert(0, ("state", f"MISSING (the stack's WebhookSubscriptionId: {noted})"))
            section.attention.append(
                "the webhook subscription is missing at Pay4Feedback: no webhook reaches the "
                "stack (the reconciler repairs it with RepairSubscription=true)"
            )
        elif registered == noted:
            rows.insert(0, ("state", f"registered as {registered} (WebhookSubscriptionId)"))
        else:
            rows.insert(
                0,
                (
                    "state",
                    f"registered as {registered}; the stack's WebhookSubscriptionId is {noted} "
                    "(re-registered by the reconciler: sam delete leaves this one)",
                ),
            )
    section.lines += _table(rows)


def _no_secret() -> str:
    raise RuntimeError("p4f-bridge status looks at the subscription; it never registers one")


def _queues(section: Section, stack: OperatedStack, cloudwatch: _Lazy, now: datetime) -> None:
    queues = [(name, url, "queue") for name, url in stack.queues()]
    queues += [(dlq.name, dlq.url, "DLQ") for dlq in stack.dead_letter_queues()]
    if not queues:
        section.lines.append("none in the stack's Outputs")
        return
    sqs = stack.client("sqs")
    try:
        ages = _oldest_ages(cloudwatch(), [_queue_name(url) for _, url, _ in queues], now)
        age_note = None
    except _UNREADABLE as exc:
        ages, age_note = {}, f"oldest: cannot be read from CloudWatch ({_why(exc)})"
    rows: list[tuple[str, ...]] = [("queue", "kind", "messages", "in flight", "oldest")]
    for name, url, kind in queues:
        try:
            attributes = sqs.get_queue_attributes(
                QueueUrl=url,
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                ],
            )["Attributes"]
        except _UNREADABLE as exc:
            rows.append((name, kind, f"cannot be read: {_why(exc)}"))
            section.attention.append(f"the {kind} {name} cannot be read")
            continue
        waiting = int(attributes.get("ApproximateNumberOfMessages", 0))
        age = ages.get(_queue_name(url))
        rows.append(
            (
                name,
                kind,
                str(waiting),
                str(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
                "-" if age is None else _age(timedelta(seconds=age)),
            )
        )
        if kind == "DLQ" and waiting:
            section.attention.append(
                f"the {name} dead-letter queue holds {_counted(waiting, 'message')}"
            )
    section.lines += _table(rows, header=True)
    if age_note:
        section.lines.append(age_note)


def _alarms(section: Section, stack: OperatedStack, cloudwatch: _Lazy, now: datetime) -> None:
    prefix = f"{stack.name}-"
    pages = (
        cloudwatch()
        .get_paginator("describe_alarms")
        .paginate(
            AlarmNamePrefix=prefix,
            StateValue="ALARM",
            AlarmTypes=["MetricAlarm", "CompositeAlarm"],
        )
    )
    alarms = [
        alarm
        for page in pages
        for alarm in (*page.get("MetricAlarms", []), *page.get("CompositeAlarms", []))
    ]
    if not alarms:
        section.lines.append("none")
        return
    rows: list[tuple[str, ...]] = [("alarm", "since", "reason")]
    for alarm in sorted(alarms, key=lambda a: a["AlarmName"]):
        name = alarm["AlarmName"].removeprefix(prefix)
        since = alarm.get("StateUpdatedTimestamp")
        rows.append(
            (
                name,
                _age(now - since) if since else "-",
                _shortened(str(alarm.get("StateReason", "")), _REASON_WIDTH),
            )
        )
        section.attention.append(f"the alarm {name} is in ALARM")
    section.lines += _table(rows, header=True)


def _last_events(section: Section, stack: OperatedStack, now: datetime) -> None:
    since = now - EVENTS_SINCE
    seen = stack.logs.last_seen(
        stack.resources(RECEIVER),
        message="delivery handled",
        by="event_type",
        where={"outcome": ("accepted", "duplicate")},
        since=since,
    )
    subscribed = [e.strip() for e in stack.parameters.get("WebhookEvents", "").split(",") if e]
    types = subscribed + sorted(set(seen) - set(subscribed))
    rows: list[tuple[str, ...]] = [("event type", "last seen")]
    for event_type in types:
        at = seen.get(event_type)
        rows.append(
            (
                event_type if event_type in subscribed else f"{event_type} (not in WebhookEvents)",
                f"{_age(now - at)} ago" if at else "-",
            )
        )
    section.lines += _table(rows, header=True)
    section.lines.append(_reconciler_run(stack, now, since))


def _reconciler_run(stack: OperatedStack, now: datetime, since: datetime) -> str:
    try:
        function = stack.resources(RECONCILER)
        run = stack.logs.newest(function, message="reconciler run", since=since)
    except _UNREADABLE as exc:
        return f"reconciler's last run: cannot be read ({_why(exc)})"
    if run is None:
        return f"reconciler's last run: none in {_age(EVENTS_SINCE)}"
    report = run.fields.get("report")
    said = ""
    if isinstance(report, dict):
        said = (
            f": {report.get('published', '?')} published, subscription "
            f"{report.get('subscription', '?')}"
            + (f", stopped: {report['stopped']}" if report.get("stopped") else "")
        )
    return f"reconciler's last run: {_age(now - run.at)} ago{said}"


def _budget(
    section: Section, api: Callable[[], StackApi], cloudwatch: _Lazy, now: datetime
) -> None:
    try:
        use = api().budget.use()
    except _UNREADABLE as exc:
        section.lines.append(f"now        cannot be read ({_why(exc)})")
        section.attention.append("the API budget cannot be read")
    else:
        section.lines.append(
            f"now        {use.taken} of {use.requests_per_window} requests a minute taken "
            f"(background {use.background_taken} of its {use.background_requests_per_window})"
        )
    watch = cloudwatch()
    found = _distinct(
        metric
        for name in ("ApiBudgetUsed", "ApiBudgetExhausted")
        for page in watch.get_paginator("list_metrics").paginate(
            Namespace=NAMESPACE, MetricName=name
        )
        for metric in page["Metrics"]
    )
    sums = _sums(watch, found, now - METRICS_SINCE, now, stat="Sum", period=300)
    per_caller: dict[tuple[str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for metric, values in zip(found, sums, strict=True):
        dimensions = {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}
        caller = (dimensions.get("function_name", "-"), dimensions.get("priority", "-"))
        per_caller[caller][metric["MetricName"]] += sum(values)
    if not per_caller:
        section.lines.append("last hour  no API calls")
        return
    section.lines.append("last hour  (ApiBudgetUsed, ApiBudgetExhausted)")
    rows: list[tuple[str, ...]] = [("function", "priority", "used", "exhausted")]
    for (function, priority), counts in sorted(per_caller.items()):
        rows.append(
            (
                function,
                priority,
                _number(counts["ApiBudgetUsed"]),
                _number(counts["ApiBudgetExhausted"]),
            )
        )
    section.lines += [f"  {line}" for line in _table(rows, header=True)]


def _outcomes(section: Section, cloudwatch: _Lazy, now: datetime) -> None:
    metrics = [
        {
            "Namespace": NAMESPACE,
            "MetricName": f"Webhook{outcome}",
            "Dimensions": [{"Name": "service", "Value": SERVICE}],
        }
        for outcome in OUTCOMES
    ]
    sums = _sums(cloudwatch(), metrics, now - METRICS_SINCE, now, stat="Sum", period=300)
    header = tuple(outcome.lower() for outcome in OUTCOMES)
    section.lines += _table([header, tuple(_number(sum(v)) for v in sums)], header=True)


# --- CloudWatch ----------------------------------------------------------------------------


def _distinct(metrics: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each metric once (moto_server's ListMetrics names a metric once per datum)."""
    seen: dict[tuple[str, str, frozenset[tuple[str, str]]], dict[str, Any]] = {}
    for metric in metrics:
        dimensions = frozenset((d["Name"], d["Value"]) for d in metric.get("Dimensions", []))
        seen.setdefault((metric["Namespace"], metric["MetricName"], dimensions), metric)
    return list(seen.values())


def _oldest_ages(cloudwatch: Any, queue_names: Sequence[str], now: datetime) -> dict[str, float]:
    """The newest ApproximateAgeOfOldestMessage (Maximum, seconds) of each queue that has one."""
    metrics = [
        {
            "Namespace": "AWS/SQS",
            "MetricName": "ApproximateAgeOfOldestMessage",
            "Dimensions": [{"Name": "QueueName", "Value": name}],
        }
        for name in queue_names
    ]
    values = _sums(cloudwatch, metrics, now - QUEUE_AGE_SINCE, now, stat="Maximum", period=60)
    return {name: max(found) for name, found in zip(queue_names, values, strict=True) if found}


def _sums(
    cloudwatch: Any,
    metrics: Sequence[dict[str, Any]],
    start: datetime,
    end: datetime,
    *,
    stat: str,
    period: int,
) -> list[list[float]]:
    """Each metric's values of `stat` per `period` from `start` to `end`, newest first."""
    found: dict[str, list[float]] = defaultdict(list)
    for first in range(0, len(metrics), _MOST_QUERIES):
        queries = [
            {
                "Id": f"m{first + n}",
                "MetricStat": {
                    "Metric": {key: metric[key] for key in ("Namespace", "MetricName")}
                    | {"Dimensions": metric.get("Dimensions", [])},
                    "Period": period,
                    "Stat": stat,
                },
            }
            for n, metric in enumerate(metrics[first : first + _MOST_QUERIES])
        ]
        for page in cloudwatch.get_paginator("get_metric_data").paginate(
            MetricDataQueries=queries,
            StartTime=start,
            EndTime=end + timedelta(minutes=1),
            ScanBy="TimestampDescending",
        ):
            for result in page["MetricDataResults"]:
                found[result["Id"]] += [float(v) for v in result.get("Values", [])]
    return [found[f"m{n}"] for n in range(len(metrics))]


# --- text ----------------------------------------------------------------------------------


def _table(rows: Sequence[tuple[str, ...]], *, header: bool = False) -> list[str]:
    """Rows in aligned columns, numbers to the right (a last column of text is not padded)."""
    widths: dict[int, int] = defaultdict(int)
    for row in rows:
        for column, cell in enumerate(row):
            widths[column] = max(widths[column], len(cell))
    numeric = {
        column
        for column in widths
        if all(_is_number(row[column]) for row in rows[int(header) :] if len(row) > column)
    }

    def aligned(column: int, text: str, last: bool) -> str:
        if column in numeric:
            return text.rjust(widths[column])
        return text if last else text.ljust(widths[column])

    return [
        "  ".join(aligned(n, text, n == len(row) - 1) for n, text in enumerate(row)).rstrip()
        for row in rows
    ]


def _is_number(text: str) -> bool:
    return text.replace(".", "", 1).isdigit() or text == "-"


def _number(value: float) -> str:
    return f"{value:g}" if value != int(value) else str(int(value))


def _age(age: timedelta) -> str:
    """`12s`, `3m`, `2h`, `5d`."""
    seconds = max(0, int(age.total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= 2 * size or (unit == "m" and seconds >= size):
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _counted(count: int, thing: str) -> str:
    return f"{count} {thing}{'' if count == 1 else 's'}"


def _queue_name(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def _shortened(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 3] + "..."


def _why(exc: Exception) -> str:
    """A failure in a few words (botocore's error code, or the exception's own message)."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'error')}: {_shortened(str(error.get('Message', '')), 80)}"
    return f"{type(exc).__name__}: {_shortened(str(exc), 80)}"
