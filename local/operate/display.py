"""How the operating commands show times and tables in a terminal."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

_UNITS = ((86400, "d"), (3600, "h"), (60, "m"))


def age(seconds: float) -> str:
    """90 -> `1m`, 7200 -> `2h`: the largest whole unit."""
    for size, unit in _UNITS:
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def age_of(moment: datetime, now: datetime | None = None) -> str:
    """How long ago `moment` was."""
    return age(max(0.0, ((now or datetime.now(UTC)) - moment).total_seconds()))


def aligned(rows: Sequence[Sequence[str]]) -> list[str]:
    """Rows of cells as lines, each column as wide as its widest cell."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
