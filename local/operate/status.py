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
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from local.operate.api import StackApi, operated_api
from local.operate.cloudwatch import distinct, metric_values, oldest_ages
from local.operate.dead_letters import counts, oldest_seen
from local.operate.display import age, age_of, counted, number, table
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
EVENTS_SECONDS = EVENTS_SINCE.total_seconds()
METRICS_SINCE = timedelta(hours=1)
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
    built: list[StackApi] = []

    def stack_api() -> StackApi:
        if not built:
            built.append(reach())
        return built[0]

    readers: list[tuple[str, Callable[[Section], None]]] = [
        ("Webhook subscription at Pay4Feedback", lambda s: _subscription(s, stack, stack_api)),
        ("Queues", lambda s: _queues(s, stack, at)),
        ("Alarms in ALARM", lambda s: _alarms(s, stack, at)),
        (
            f"Last event seen per type (accepted or duplicate, {age(EVENTS_SECONDS)})",
            lambda s: _last_events(s, stack, at),
        ),
        ("API budget", lambda s: _budget(s, stack, stack_api, at)),
        ("Webhook receiver, last hour", lambda s: _outcomes(s, stack, at)),
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
    section.lines += table(rows)


def _no_secret() -> str:
    raise RuntimeError("p4f-bridge status looks at the subscription; it never registers one")


def _queues(section: Section, stack: OperatedStack, now: datetime) -> None:
    queues: list[tuple[str, str, str]] = [(name, url, "queue") for name, url in stack.queues()]
    dead_letters = {dlq.url: dlq for dlq in stack.dead_letter_queues()}
    queues += [(dlq.name, dlq.url, "DLQ") for dlq in dead_letters.values()]
    if not queues:
        section.lines.append("none in the stack's Outputs")
        return
    try:
        ages = oldest_ages(
            stack.client("cloudwatch"), [_queue_name(url) for _, url, _ in queues], now
        )
        age_note = None
    except _UNREADABLE as exc:
        ages, age_note = {}, f"oldest: cannot be read from CloudWatch ({_why(exc)})"
    rows: list[tuple[str, ...]] = [("queue", "kind", "messages", "in flight", "oldest")]
    for name, url, kind in queues:
        try:
            waiting, in_flight = counts(stack, url)
        except _UNREADABLE as exc:
            rows.append((name, kind, f"cannot be read: {_why(exc)}"))
            section.attention.append(f"the {kind} {name} cannot be read")
            continue
        oldest, at_least = ages.get(_queue_name(url)), ""
        if oldest is None and waiting and url in dead_letters:  # a peek sees some of them
            oldest, at_least = oldest_seen(stack, dead_letters[url]), ">= "
        rows.append(
            (
                name,
                kind,
                str(waiting),
                str(in_flight),
                "-" if oldest is None else f"{at_least}{age(oldest)}",
            )
        )
        if kind == "DLQ" and waiting:
            section.attention.append(
                f"the {name} dead-letter queue holds {counted(waiting, 'message')}"
            )
    section.lines += table(rows, header=True)
    if age_note:
        section.lines.append(age_note)


def _alarms(section: Section, stack: OperatedStack, now: datetime) -> None:
    prefix = f"{stack.name}-"
    pages = (
        stack.client("cloudwatch")
        .get_paginator("describe_alarms")
        .paginate(
            AlarmNamePrefix=prefix,
            StateValue="ALARM",
            AlarmTypes=["MetricAlarm", "CompositeAlarm"],
        )
    )
    # CloudFormation names an alarm `<stack>-<LogicalId>-<suffix>`, and a logical id starts
    # with a capital: `p4f-bridge-staging-...` is another stack's.
    alarms = [
        alarm
        for page in pages
        for alarm in (*page.get("MetricAlarms", []), *page.get("CompositeAlarms", []))
        if alarm["AlarmName"].removeprefix(prefix)[:1].isupper()
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
                age_of(since, now) if since else "-",
                _shortened(str(alarm.get("StateReason", "")), _REASON_WIDTH),
            )
        )
        section.attention.append(f"the alarm {name} is in ALARM")
    section.lines += table(rows, header=True)


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
                f"{age_of(at, now)} ago" if at else "-",
            )
        )
    section.lines += table(rows, header=True)
    section.lines.append(_reconciler_run(stack, now, since))


def _reconciler_run(stack: OperatedStack, now: datetime, since: datetime) -> str:
    try:
        function = stack.resources(RECONCILER)
        run = stack.logs.newest(function, message="reconciler run", since=since)
    except _UNREADABLE as exc:
        return f"reconciler's last run: cannot be read ({_why(exc)})"
    if run is None:
        return f"reconciler's last run: none in {age(EVENTS_SECONDS)}"
    report = run.fields.get("report")
    said = ""
    if isinstance(report, dict):
        said = (
            f": {report.get('published', '?')} published, subscription "
            f"{report.get('subscription', '?')}"
            + (f", stopped: {report['stopped']}" if report.get("stopped") else "")
        )
    return f"reconciler's last run: {age_of(run.at, now)} ago{said}"


def _budget(
    section: Section, stack: OperatedStack, api: Callable[[], StackApi], now: datetime
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
    watch = stack.client("cloudwatch")
    found = distinct(
        metric
        for name in ("ApiBudgetUsed", "ApiBudgetExhausted")
        for page in watch.get_paginator("list_metrics").paginate(
            Namespace=NAMESPACE, MetricName=name
        )
        for metric in page["Metrics"]
    )
    sums = metric_values(watch, found, now - METRICS_SINCE, now, stat="Sum", period=300)
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
    for (function, priority), sums_of in sorted(per_caller.items()):
        rows.append(
            (
                function,
                priority,
                number(sums_of["ApiBudgetUsed"]),
                number(sums_of["ApiBudgetExhausted"]),
            )
        )
    section.lines += [f"  {line}" for line in table(rows, header=True)]


def _outcomes(section: Section, stack: OperatedStack, now: datetime) -> None:
    metrics = [
        {
            "Namespace": NAMESPACE,
            "MetricName": f"Webhook{outcome}",
            "Dimensions": [{"Name": "service", "Value": SERVICE}],
        }
        for outcome in OUTCOMES
    ]
    cloudwatch = stack.client("cloudwatch")
    sums = metric_values(cloudwatch, metrics, now - METRICS_SINCE, now, stat="Sum", period=300)
    header = tuple(outcome.lower() for outcome in OUTCOMES)
    section.lines += table([header, tuple(number(sum(v)) for v in sums)], header=True)


# --- text ----------------------------------------------------------------------------------


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
