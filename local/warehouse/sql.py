"""The mirror's SQL, written once: the current-state views and the named queries.

    warehouse/views/<name>.sql      a view of that name (Athena: a Glue view; DuckDB: a view)
    warehouse/queries/<name>.sql    a named query of the Athena workgroup (and README's reports)

Each file opens with `--` comment lines saying what it answers (the named query's
description). The SQL is Athena's (Trino's) and runs unchanged in DuckDB, with
`from_iso8601_timestamp` defined there as Athena has it (local.warehouse.engine).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import takewhile
from pathlib import Path

WAREHOUSE_DIR = Path(__file__).resolve().parents[2] / "warehouse"
VIEWS_DIR = WAREHOUSE_DIR / "views"
QUERIES_DIR = WAREHOUSE_DIR / "queries"


@dataclass(frozen=True)
class SqlFile:
    name: str
    description: str
    """The opening comment, as one line."""
    sql: str
    """The statement, without the opening comment."""

    @classmethod
    def read(cls, path: Path) -> SqlFile:
        lines = path.read_text().strip().splitlines()
        opening = len(list(takewhile(lambda line: line.startswith("--"), lines)))
        description = " ".join(line.removeprefix("--").strip() for line in lines[:opening])
        if not description:
            raise ValueError(f"{path} must open with a -- comment saying what it answers")
        return cls(path.stem, description, "\n".join(lines[opening:]).strip())


def views() -> list[SqlFile]:
    """Every view, by name."""
    return [SqlFile.read(path) for path in sorted(VIEWS_DIR.glob("*.sql"))]


def named_queries() -> list[SqlFile]:
    """Every named query, by name."""
    return [SqlFile.read(path) for path in sorted(QUERIES_DIR.glob("*.sql"))]


def named_query(name: str) -> SqlFile:
    path = QUERIES_DIR / f"{name}.sql"
    if not path.exists():
        known = ", ".join(query.name for query in named_queries())
        raise KeyError(f"no named query {name!r}; there are: {known}")
    return SqlFile.read(path)
