"""What became of the events sent toward each target: the chaos suite's accounting.

One `Tally` per target, filled by a run, judged the same way for all:

    sent          events sent toward the target (each event once, however often it was sent)
    acknowledged  events the bridge said it took (a 2xx to the sender; a record reported done)
    delivered     events that arrived at the target at least once
    lost          sent, and neither delivered nor in the dead-letter queue
    duplicated    delivered more than once; `windowed` are those a documented at-least-once
                  window explains (README, "At-least-once windows"), the rest are a failure
    in DLQ        events in the target's dead-letter queue; only poison may be there

A run passes when nothing is lost, every duplicate is windowed, the DLQ holds poison only,
and every sent event that could be delivered was acknowledged.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field


@dataclass
class Tally:
    target: str
    sent: set[str] = field(default_factory=set)
    acknowledged: set[str] = field(default_factory=set)
    arrivals: Counter[str] = field(default_factory=Counter)
    in_dlq: set[str] = field(default_factory=set)
    windowed: set[str] = field(default_factory=set)
    """Events for which a documented window opened (their duplicates are explained)."""
    poison: set[str] = field(default_factory=set)
    """Events that can never be delivered: their place is the DLQ."""

    @property
    def delivered(self) -> set[str]:
        return {event for event in self.sent if self.arrivals[event]}

    @property
    def lost(self) -> set[str]:
        return self.sent - self.delivered - self.in_dlq

    @property
    def duplicated(self) -> set[str]:
        return {event for event, count in self.arrivals.items() if count > 1}

    @property
    def unexplained_duplicates(self) -> set[str]:
        return self.duplicated - self.windowed

    def merge(self, other: Tally) -> None:
        self.sent |= other.sent
        self.acknowledged |= other.acknowledged
        self.arrivals += other.arrivals
        self.in_dlq |= other.in_dlq
        self.windowed |= other.windowed
        self.poison |= other.poison

    def problems(self) -> list[str]:
        """What is wrong, in words; [] when the target passed."""
        found = []
        if self.lost:
            found.append(f"{len(self.lost)} lost: {_some(self.lost)}")
        if self.unexplained_duplicates:
            found.append(
                f"{len(self.unexplained_duplicates)} duplicated outside the documented windows: "
                f"{_some(self.unexplained_duplicates)}"
            )
        healthy = self.in_dlq - self.poison
        if healthy:
            found.append(f"{len(healthy)} healthy events in the DLQ: {_some(healthy)}")
        misplaced = self.poison & self.delivered
        if misplaced:
            found.append(f"{len(misplaced)} poison records delivered: {_some(misplaced)}")
        unacknowledged = self.delivered - self.acknowledged - self.poison
        if unacknowledged:
            found.append(
                f"{len(unacknowledged)} delivered, never acknowledged: {_some(unacknowledged)}"
            )
        return [f"{self.target}: {problem}" for problem in found]


def _some(events: Iterable[str]) -> str:
    shown = sorted(events)
    return ", ".join(shown[:3]) + (" ..." if len(shown) > 3 else "")


_COLUMNS = ("target", "sent", "acknowledged", "delivered", "lost", "duplicated", "in DLQ")


def table(tallies: Sequence[Tally]) -> str:
    """The accounting table, one row per target (Markdown, like bench's)."""
    rows = [
        (
            tally.target,
            str(len(tally.sent)),
            str(len(tally.acknowledged)),
            str(len(tally.delivered)),
            str(len(tally.lost)),
            _duplicates(tally),
            f"{len(tally.in_dlq)}" + (f" (poison {len(tally.poison)})" if tally.poison else ""),
        )
        for tally in tallies
    ]
    widths = [max(len(row[n]) for row in [_COLUMNS, *rows]) for n in range(len(_COLUMNS))]

    def line(cells: Sequence[str]) -> str:
        padded = [
            cell.ljust(width) if n == 0 else cell.rjust(width)
            for n, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ]
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join("-" * (width + 2) for width in widths) + "|"
    return "\n".join([line(_COLUMNS), rule, *(line(row) for row in rows)])


def _duplicates(tally: Tally) -> str:
    count = len(tally.duplicated)
    unexplained = len(tally.unexplained_duplicates)
    if not count:
        return "0"
    return f"{count} ({count - unexplained} in windows)" if unexplained else f"{count} (in windows)"
