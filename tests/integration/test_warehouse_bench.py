"""Figure (7) of the benchmark measures what it says, on a small scale."""

from __future__ import annotations

from pathlib import Path

from bench.warehouse import QUERY_TARGET, duckdb_queries, local_path, readme_queries
from local.warehouse.sql import named_queries


def test_the_local_path_counts_every_row_it_times() -> None:
    [row] = local_path(30)
    assert row.details["rows"] == 30
    assert row.value == 30 / row.details["seconds"]


def test_every_readme_and_named_query_is_timed_against_the_target(tmp_path: Path) -> None:
    rows = duckdb_queries(300, 1, tmp_path)
    assert rows[0].measure == "load: read every file"
    timed = [row.measure.removeprefix("query: ").rsplit(" (", 1)[0] for row in rows[1:]]
    assert timed == [*readme_queries(), *(query.name for query in named_queries())]
    assert all(row.target is QUERY_TARGET for row in rows[1:])
    assert "300 responses" in rows[0].subject
