"""`p4f-bridge query`: the warehouse mirror of a running local stack, or a folder of its
files, queried with DuckDB and printed as a table."""

from __future__ import annotations

from pathlib import Path

import pytest

from local.cli import main
from local.moto_server import MotoServer
from local.warehouse import LocalMirror
from local.warehouse.rows import write_mirror_files
from tests.unit.warehouse.events import live


def rows_in(folder: Path) -> None:
    write_mirror_files(
        folder,
        [
            live("payout_failed", "2026-04-19T15:02:10Z", id="po_1"),
            live("payout_completed", "2026-04-19T15:03:00Z", id="po_2"),
        ],
    )


def test_a_folder_of_the_mirrors_files_is_queried_and_printed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows_in(tmp_path)
    sql = "SELECT id, status, amount FROM payouts_current ORDER BY id"
    assert main(["query", "--files", str(tmp_path), sql]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "id    status     amount",
        "----  ---------  ------",
        "po_1  FAILED     5.00",
        "po_2  COMPLETED  5.00",
    ]


def test_the_running_local_stacks_mirror_is_read_from_its_bucket(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files, logs = tmp_path / "written", tmp_path / "logs"
    rows_in(files)
    logs.mkdir()
    with MotoServer() as aws:
        s3 = aws.client("s3")
        s3.create_bucket(Bucket="mirror")
        for path in files.rglob("*.gz"):
            s3.upload_file(str(path), "mirror", str(path.relative_to(files)))
        LocalMirror(aws.url, "mirror", logs / "warehouse").write(logs)
        assert main(["query", "--log-dir", str(logs), "SELECT count(*) AS n FROM payouts"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "2"


def test_without_a_running_stack_it_says_how_to_start_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["query", "--log-dir", str(tmp_path), "SELECT 1"]) == 2
    assert "p4f-bridge local up" in capsys.readouterr().err


def test_a_folder_without_the_mirrors_files_is_refused_with_how_to_get_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["query", "--files", str(tmp_path / "mirorr"), "SELECT 1"]) == 2
    assert "aws s3 sync" in capsys.readouterr().err


def test_a_query_duckdb_refuses_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows_in(tmp_path)
    assert main(["query", "--files", str(tmp_path), "SELECT nothing FROM payouts"]) == 1
    assert "nothing" in capsys.readouterr().err
