"""The benchmark's results: rows of a table, printed as Markdown and written as JSON.

Each row is one figure for one subject: its value, and where it is compared, the
reference's value measured in the same run, the ratio of the two and the target it is held to.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from pathlib import Path

_COLUMNS = ("Figure", "Subject", "Measure", "Value", "Reference", "Ratio", "Target", "Met")


@dataclass(frozen=True)
class Target:
    """What a figure must reach: `value <= limit` (or `>=`), on the ratio or the value."""

    limit: float
    at_most: bool = True
    on_ratio: bool = False
    text: str = ""

    def met(self, value: float, ratio: float | None) -> bool:
        measured = ratio if self.on_ratio else value
        if measured is None:
            return False
        return measured <= self.limit if self.at_most else measured >= self.limit

    def describe(self) -> str:
        if self.text:
            return self.text
        sign = "<=" if self.at_most else ">="
        return f"{sign} {self.limit:g}x ref" if self.on_ratio else f"{sign} {self.limit:g}"


@dataclass(frozen=True)
class Row:
    figure: str
    subject: str
    measure: str
    value: float
    unit: str
    reference: float | None = None
    target: Target | None = None
    details: dict[str, Any] = field(default_factory=dict)
    """Anything else measured (breakdowns, samples' spread): in the JSON only."""

    @property
    def ratio(self) -> float | None:
        if self.reference is None or self.reference == 0:
            return None
        return self.value / self.reference

    @property
    def met(self) -> bool | None:
        return None if self.target is None else self.target.met(self.value, self.ratio)

    def cells(self) -> tuple[str, ...]:
        ratio = self.ratio
        met = {None: "", True: "yes", False: "**no**"}[self.met]
        return (
            self.figure,
            self.subject,
            self.measure,
            _number(self.value, self.unit),
            "" if self.reference is None else _number(self.reference, self.unit),
            "" if ratio is None else f"{ratio:.2f}x",
            "" if self.target is None else self.target.describe(),
            met,
        )

    def as_json(self) -> dict[str, Any]:
        found = asdict(self)
        found["target"] = None if self.target is None else self.target.describe()
        found["ratio"] = self.ratio
        found["met"] = self.met
        return found


def _number(value: float, unit: str) -> str:
    if unit == "%":
        return f"{value:.1f} %"
    if value == int(value) and (abs(value) >= 1 or value == 0):
        return f"{int(value):,} {unit}".strip()
    digits = 2 if abs(value) < 10 else 1 if abs(value) < 100 else 0
    return f"{value:,.{digits}f} {unit}".strip()


def median(samples: Sequence[float]) -> float:
    return statistics.median(samples)


def spread(samples: Sequence[float]) -> dict[str, float]:
    """Median, quartiles and extremes of repeated measurements, for the JSON."""
    ordered = sorted(samples)
    quartiles = statistics.quantiles(ordered, n=4) if len(ordered) > 1 else [ordered[0]] * 3
    return {
        "runs": len(ordered),
        "median": statistics.median(ordered),
        "q1": quartiles[0],
        "q3": quartiles[2],
        "min": ordered[0],
        "max": ordered[-1],
    }


def machine() -> dict[str, Any]:
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "machine": platform.machine(),
        "system": platform.platform(),
        "cpus": os.cpu_count(),
    }


def markdown(rows: Iterable[Row]) -> str:
    lines = [_COLUMNS, tuple("---" for _ in _COLUMNS), *(row.cells() for row in rows)]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)


def write_json(rows: Sequence[Row], settings: dict[str, Any], directory: Path) -> Path:
    """bench/results/<UTC time>.json, and latest.json beside it."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    document = {
        "created_at": now.isoformat(timespec="seconds"),
        "machine": machine(),
        "settings": settings,
        "rows": [row.as_json() for row in rows],
    }
    text = json.dumps(document, indent=2) + "\n"
    path = directory / f"{now:%Y%m%dT%H%M%SZ}.json"
    path.write_text(text)
    (directory / "latest.json").write_text(text)
    return path
