"""`p4f-bridge replay`: the events the bus's archive holds for a window of time, sent to the
bus again, to every rule or to the chosen ones, optionally of some types only.

    Replayer(stack, say=print).run(ReplayRequest(start, end, types=(), rules=()))

EventBridge replays to the archive's own bus, to the rules of Destination.FilterArns (all of
them when it names none), the events whose time is in the window: the bridge stamps an event
with when Pay4Feedback made it (`created_at`), so one that arrived late (Pay4Feedback retries
for days, the reconciler finds what never came) is replayed by the time it was made.

A replay of some types only goes through a rule of its own for each chosen rule: the rule's
pattern narrowed to those types and to this replay (`replay-name`), with the rule's targets,
made RULES_SETTLE_SECONDS before the replay starts and deleted as long after it ends (the
stack's queue policies let rules named `p4f-replay-*` on its bus send, for this).

Replayed events are new EventBridge events (a new `id`, the field `replay-name`) with the
same `detail`: consumers that drop what they saw by `detail.id` (every one of the bridge's)
take each once.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from local.operate.stack import OperatedStack

ALL_RULES = "all"
TEMPORARY_RULE_PREFIX = "p4f-replay-"
"""Rules a replay of some types makes for itself (template.yaml's queue policies allow them)."""
_FINAL = frozenset({"COMPLETED", "CANCELLED", "FAILED"})
RULES_SETTLE_SECONDS = 30.0
"""A new rule matches events only after a moment (EventBridge: "a short period"), and a
replay that has ended may still be delivering its last events to the targets."""
ARCHIVE_DELAY = timedelta(minutes=10)
"""EventBridge archives an event within minutes; it advises waiting 10 before replaying."""
_AGO = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


class ReplayError(RuntimeError):
    """A replay that cannot be made as asked."""


def archived_types() -> list[str]:
    """The detail-types the archive keeps: Pay4Feedback's events and the bridge's own."""
    from local.event_catalogue import BRIDGE_EVENT_MODELS
    from p4f.mirror import SNAPSHOT_TYPES
    from p4f.models import EventType

    return [*(kind.value for kind in EventType), *BRIDGE_EVENT_MODELS, *SNAPSHOT_TYPES.values()]


def parse_moment(text: str, now: datetime | None = None) -> datetime:
    """`now`, a time ago (`90m`, `2h`, `7d`) or ISO 8601 (a time without a zone is UTC)."""
    now = now or datetime.now(UTC)
    if text == "now":
        return now
    ago = _AGO.match(text)
    if ago:
        return now - timedelta(**{_UNITS[ago.group(2)]: int(ago.group(1))})
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{text!r} is not a time: give `now`, a time ago (90m, 2h, 7d) or ISO 8601 "
            "(2026-12-01T09:30:00Z)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class ReplayRequest:
    start: datetime
    end: datetime
    types: tuple[str, ...] = ()
    """Only events of these detail-types (all when empty)."""
    rules: tuple[str, ...] = ()
    """Names, or parts of names, of the bus's rules to replay to (every rule when empty)."""


@dataclass(frozen=True)
class ReplayOutcome:
    name: str
    state: str
    reason: str
    rules: tuple[str, ...]
    """The rules the events went to (empty: every rule of the bus)."""
    seconds: float

    @property
    def ok(self) -> bool:
        return self.state == "COMPLETED"


class Replayer:
    """Starts a replay of the stack's archive and follows it to its end."""

    def __init__(
        self,
        stack: OperatedStack,
        *,
        say: Callable[[str], None],
        poll_seconds: float = 5.0,
        rules_settle_seconds: float = RULES_SETTLE_SECONDS,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """`rules_settle_seconds`: how long the replay's own rules get, after they are made
        and before the replay starts, and after it ends and before they go."""
        self._stack = stack
        self._events = stack.client("events")
        self._say = say
        self._poll_seconds = poll_seconds
        self._settle_seconds = rules_settle_seconds
        self._now = now

    def run(self, request: ReplayRequest) -> ReplayOutcome:
        archive = self._stack.outputs.get("EventArchiveArn")
        if not archive:
            raise ReplayError(
                f"the stack {self._stack.name!r} has no archive: deploy it with "
                "EventArchiveRetentionDays above 0 (events from then on are archived)"
            )
        unknown = sorted(set(request.types) - set(archived_types()))
        if unknown:
            raise ReplayError(
                f"the archive keeps no events of type {', '.join(unknown)}; "
                f"it keeps {', '.join(archived_types())}"
            )
        now = self._now()
        end = min(request.end, now)
        if request.start >= end:
            raise ReplayError("--from must be before --to (and before now)")
        name = f"p4f-bridge-{now:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"
        bus = self._stack.outputs["EventBusName"]
        chosen = self._chosen(bus, request.rules)
        made: list[dict[str, Any]] = []
        try:
            if request.types:
                chosen = self._narrowed(bus, chosen or self._rules(bus), request.types, name, made)
                time.sleep(self._settle_seconds)  # a new rule matches only after a moment
            self._say(
                f"Replaying the events stamped {request.start:%Y-%m-%d %H:%M:%S} to "
                f"{end:%Y-%m-%d %H:%M:%S} UTC ({', '.join(request.types) or 'every type'}) to "
                + (", ".join(_shown(rule) for rule in chosen) if chosen else f"every rule of {bus}")
            )
            if end > now - ARCHIVE_DELAY:
                self._say(
                    f"  note: the archive may not hold the events of the last "
                    f"{ARCHIVE_DELAY.seconds // 60} minutes yet; replay those again later"
                )
            replay, seconds = self._replay(name, archive, request.start, end, chosen)
        finally:
            if made:
                time.sleep(self._settle_seconds)  # deliveries of the last events under way
            for rule in made:
                self._delete(bus, rule["Name"])
        return ReplayOutcome(
            name=name,
            state=replay["State"],
            reason=replay.get("StateReason", ""),
            rules=tuple(rule.get("For", rule["Name"]) for rule in chosen),
            seconds=seconds,
        )

    def _replay(
        self,
        name: str,
        archive: str,
        start: datetime,
        end: datetime,
        rules: Sequence[dict[str, Any]],
    ) -> tuple[dict[str, Any], float]:
        """Start the replay and follow it to its end (Ctrl-C cancels it); and how long."""
        destination: dict[str, Any] = {"Arn": self._stack.outputs["EventBusArn"]}
        if rules:
            destination["FilterArns"] = [rule["Arn"] for rule in rules]
        started = time.monotonic()
        self._events.start_replay(
            ReplayName=name,
            Description="p4f-bridge replay",
            EventSourceArn=archive,
            EventStartTime=start,
            EventEndTime=end,
            Destination=destination,
        )
        try:
            return self._follow(name), time.monotonic() - started
        except KeyboardInterrupt:
            self._events.cancel_replay(ReplayName=name)
            self._say(f"replay {name} cancelled")
            raise

    def _rules(self, bus: str) -> list[dict[str, Any]]:
        """The bus's rules, but EventBridge's own (the archive's) and other replays'."""
        rules: list[dict[str, Any]] = []
        for page in self._events.get_paginator("list_rules").paginate(EventBusName=bus):
            rules += [
                rule
                for rule in page["Rules"]
                if "ManagedBy" not in rule
                and "EventPattern" in rule
                and not rule["Name"].startswith(TEMPORARY_RULE_PREFIX)
            ]
        return rules

    def _chosen(self, bus: str, wanted: Sequence[str]) -> list[dict[str, Any]]:
        if not wanted or ALL_RULES in wanted:
            return []
        rules = self._rules(bus)
        chosen = []
        for part in wanted:
            matching = [rule for rule in rules if _squashed(part) in _squashed(rule["Name"])]
            if not matching:
                known = ", ".join(rule["Name"] for rule in rules)
                raise ReplayError(f"no rule of {bus} is named like {part!r}; its rules: {known}")
            chosen += [rule for rule in matching if rule not in chosen]
        return chosen

    def _narrowed(
        self,
        bus: str,
        rules: list[dict[str, Any]],
        types: Sequence[str],
        replay: str,
        made: list[dict[str, Any]],
    ) -> list[dict[str, Any]]:
        """A rule of the replay's own for each of `rules` that takes some of `types`, each
        added to `made` as soon as it exists (so that it goes however this ends)."""
        for number, rule in enumerate(rules):
            pattern = json.loads(rule["EventPattern"])
            taken = pattern.get("detail-type")
            if taken is not None and not all(isinstance(one, str) for one in taken):
                raise ReplayError(
                    f"the rule {rule['Name']} matches detail-type with {taken}, which --types "
                    "cannot narrow: replay to it without --types"
                )
            kept = [one for one in types if taken is None or one in taken]
            if not kept:
                continue
            name = f"{TEMPORARY_RULE_PREFIX}{replay.removeprefix('p4f-bridge-')}-{number}"
            arn = self._events.put_rule(
                Name=name,
                EventBusName=bus,
                EventPattern=json.dumps(pattern | {"detail-type": kept, "replay-name": [replay]}),
                Description=f"replay {replay} to {rule['Name']}; deleted when it ends"[:512],
            )["RuleArn"]
            made.append({"Name": name, "Arn": arn, "For": rule["Name"]})
            targets = self._events.list_targets_by_rule(Rule=rule["Name"], EventBusName=bus)
            if not targets["Targets"]:
                continue  # a rule without targets: the replay's own has none either
            answer = self._events.put_targets(
                Rule=name, EventBusName=bus, Targets=targets["Targets"]
            )
            if answer.get("FailedEntryCount"):
                failed = "; ".join(
                    f"{entry.get('TargetId')}: {entry.get('ErrorMessage')}"
                    for entry in answer.get("FailedEntries", [])
                )
                raise ReplayError(f"the targets of {rule['Name']} could not be copied: {failed}")
        if not made:
            raise ReplayError(f"none of the chosen rules takes events of type {', '.join(types)}")
        return made

    def _follow(self, name: str) -> dict[str, Any]:
        shown = None
        while True:
            replay: dict[str, Any] = self._events.describe_replay(ReplayName=name)
            last = replay.get("EventLastReplayedTime")
            progress = (replay["State"], last)
            if progress != shown:
                upto = f" (events up to {last:%H:%M:%S} replayed)" if last else ""
                self._say(f"  replay {name}: {replay['State']}{upto}")
                shown = progress
            if replay["State"] in _FINAL:
                return replay
            time.sleep(self._poll_seconds)

    def _delete(self, bus: str, rule: str) -> None:
        targets = self._events.list_targets_by_rule(Rule=rule, EventBusName=bus)["Targets"]
        if targets:
            self._events.remove_targets(
                Rule=rule, EventBusName=bus, Ids=[target["Id"] for target in targets]
            )
        self._events.delete_rule(Name=rule, EventBusName=bus)


def _shown(rule: dict[str, Any]) -> str:
    """A rule chosen, and the replay's own rule standing in for it, if any."""
    return f"{rule['For']} (through {rule['Name']})" if "For" in rule else str(rule["Name"])


def _squashed(name: str) -> str:
    """`slack-forwarder` and `p4f-bridge-SlackForwarderRule-1X2Y` compare as `slackforwarder`."""
    return re.sub(r"[^a-z0-9]", "", name.lower())
