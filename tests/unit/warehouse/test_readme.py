"""README's Warehouse section: its example queries run, and it names what the mirror has."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlglot

from local.warehouse.engine import MirrorDatabase
from local.warehouse.rows import write_mirror_files
from local.warehouse.sql import named_queries, views
from p4f.mirror import MirrorKind
from tests.unit.warehouse.test_sql import a_campaigns_life

README = Path(__file__).resolve().parents[3] / "README.md"
SECTION = README.read_text().split("\n## Warehouse\n", 1)[1].split("\n## ", 1)[0]
EXAMPLES = re.findall(r"```sql\n(.*?)```", SECTION, flags=re.DOTALL)


def test_the_section_has_example_queries() -> None:
    assert len(EXAMPLES) >= 3


@pytest.mark.parametrize("sql", EXAMPLES, ids=lambda sql: sql.splitlines()[0])
def test_each_example_is_athenas_sql_and_answers_in_duckdb(sql: str, tmp_path: Path) -> None:
    sqlglot.parse_one(sql, read="trino")
    write_mirror_files(tmp_path, a_campaigns_life(), arrived=datetime(2026, 4, 21, tzinfo=UTC))
    with MirrorDatabase(tmp_path) as mirror:
        assert mirror.query(sql)


def test_the_section_names_every_table_view_and_named_query() -> None:
    for name in [*MirrorKind, *(v.name for v in views()), *(q.name for q in named_queries())]:
        assert f"`{name}`" in SECTION, name
