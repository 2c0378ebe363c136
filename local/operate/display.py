"""How the operating commands show times, counts and tables in a terminal."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime

_UNITS = (("d", 86400), ("h", 3600), ("m", 60))


def age(seconds: float) -> str:
    """`12s`, `3m`, `90m`, `2h`, `5d`: a unit once there are two of it (a minute at once)."""
    whole = max(0, int(seconds))
    for unit, size in _UNITS:
        if whole >= 2 * size or (unit == "m" and whole >= size):
            return f"{whole // size}{unit}"
    return f"{whole}s"


def age_of(moment: datetime, now: datetime | None = None) -> str:
    """How long ago `moment` was."""
    return age(((now or datetime.now(UTC)) - moment).total_seconds())


def counted(count: int, thing: str) -> str:
    """`1 message`, `2 messages`."""
    return f"{count} {thing}{'' if count == 1 else 's'}"


def number(value: float) -> str:
    """A count as a whole number, anything else as short as it goes."""
    return str(int(value)) if value == int(value) else f"{value:g}"


def table(rows: Sequence[Sequence[str]], *, header: bool = False) -> list[str]:
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
