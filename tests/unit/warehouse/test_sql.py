"""The mirror's SQL: one source, Athena's dialect, and it runs in DuckDB with the answers
it claims."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlglot
from sqlglot import exp

from local.warehouse.engine import MirrorQueryError
from local.warehouse.sql import SqlFile, named_queries, named_query, views
from local.warehouse.tables import table_columns
from p4f.mirror import MirrorKind
from tests.unit.warehouse.conftest import MakeMirror
from tests.unit.warehouse.events import live

EVERY_STATEMENT = [*views(), *named_queries()]


@pytest.mark.parametrize("statement", EVERY_STATEMENT, ids=lambda s: s.name)
def test_each_statement_is_one_select_in_athenas_dialect(statement: SqlFile) -> None:
    [parsed] = sqlglot.parse(statement.sql, read="trino")
    assert isinstance(parsed, exp.Select)
    # sqlglot parses much that only DuckDB runs: a function it does not know as Trino's
    # (list_value, strftime) and `* EXCLUDE (...)` would pass DuckDB and fail in Athena.
    assert [f.name for f in parsed.find_all(exp.Anonymous)] == []
    assert [s for s in parsed.find_all(exp.Star) if any(s.args.values())] == []
    assert statement.description  # the named query's description, the view's comment


@pytest.mark.parametrize("statement", EVERY_STATEMENT, ids=lambda s: s.name)
def test_each_statement_runs_in_duckdb_on_an_empty_mirror(
    statement: SqlFile, make_mirror: MakeMirror
) -> None:
    assert make_mirror([]).query(statement.sql) == []


@pytest.mark.parametrize("kind", list(MirrorKind))
def test_each_view_has_its_tables_columns_and_types(
    kind: MirrorKind, make_mirror: MakeMirror
) -> None:
    mirror = make_mirror([])
    described = mirror.query(f"DESCRIBE {kind.value}_current")
    unquoted = [(c["column_name"], c["column_type"].replace('"', "")) for c in described]
    assert unquoted == [(c.name, c.type.duckdb().replace('"', "")) for c in table_columns(kind)]


def test_a_mistake_in_a_query_says_what_duckdb_found(make_mirror: MakeMirror) -> None:
    with pytest.raises(MirrorQueryError, match="no_such_column"):
        make_mirror([]).query("SELECT no_such_column FROM responses")


def test_a_statement_file_must_say_what_it_answers(tmp_path: Path) -> None:
    path = tmp_path / "bare.sql"
    path.write_text("SELECT 1")
    with pytest.raises(ValueError, match="-- comment"):
        SqlFile.read(path)
    with pytest.raises(KeyError, match="approval_rate_by_campaign"):
        named_query("no_such_query")


def a_campaigns_life() -> list[dict[str, Any]]:
    """Three responses to one campaign: two approved (one paid, one payout failed), one
    rejected; and one response still waiting, to another campaign."""
    events = [live("campaign_created", "2026-04-18T09:00:00Z", status="DRAFT", name="Checkout")]
    for n, (score, decision) in enumerate([(91, "approved"), (67, "approved"), (18, "rejected")]):
        data: dict[str, Any] = {
            "id": f"r{n}",
            "quality": {"score": score, "verdict": "high", "breakdown": {}},
            "submitted_at": "2026-04-19T10:00:00Z",
        }
        events.append(
            live(
                "response_scored",
                "2026-04-19T10:00:00Z",
                **data,
                status="PENDING",
                reviewed_at=None,
            )
        )
        events.append(
            live(
                f"reward_{decision}",
                f"2026-04-{20 + n % 2}T10:00:00Z",
                **data,
                status=decision.upper(),
                reviewed_at=f"2026-04-{20 + n % 2}T10:00:00Z",
            )
        )
    events.append(
        live(
            "response_submitted",
            "2026-04-19T11:00:00Z",
            id="r3",
            campaign_id="another",
            status="PENDING",
            quality=None,
            reviewed_at=None,
            submitted_at="2026-04-19T11:00:00Z",
            reward={"amount": "2.50", "currency": "EUR"},
        )
    )
    events.append(live("payout_completed", "2026-04-20T12:00:00Z", id="p0", response_id="r0"))
    events.append(live("payout_failed", "2026-04-21T12:00:00Z", id="p1", response_id="r1"))
    return events


def test_the_named_queries_answer_what_they_say(make_mirror: MakeMirror) -> None:
    mirror = make_mirror(a_campaigns_life())
    by_campaign = mirror.query(named_query("approval_rate_by_campaign").sql)
    assert by_campaign[0] == {
        "campaign_id": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
        "campaign": "Checkout",
        "responses": 3,
        "approved": 2,
        "rejected": 1,
        "approval_rate_pct": pytest.approx(66.7),
        "mean_score": pytest.approx(58.7),
    }
    assert by_campaign[1]["campaign"] is None  # no campaign event seen for it: still counted
    assert by_campaign[1]["approval_rate_pct"] is None  # none decided yet
    spend = mirror.query(named_query("reward_spend_by_currency_per_day").sql)
    assert [(str(r["day"]), r["currency"], r["approved"], r["spend"]) for r in spend] == [
        ("2026-04-21", "USD", 1, Decimal("5.0000")),
        ("2026-04-20", "USD", 1, Decimal("5.0000")),
    ]
    failed = mirror.query(named_query("payouts_failed").sql)
    assert [(r["payout_id"], r["failure_reason"]) for r in failed] == [
        ("p1", "The respondent's PayPal account is closed.")
    ]
    waiting = mirror.query(named_query("responses_waiting_for_review").sql)
    assert [(r["response_id"], r["score"], r["reward"], r["currency"]) for r in waiting] == [
        ("r3", None, "2.50", "EUR")
    ]
