"""A mirror made of the rows the template's rules make of some events."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from local.warehouse.engine import MirrorDatabase
from local.warehouse.rows import write_mirror_files


class MakeMirror:
    """mirror = make_mirror(events): a new mirror holding their rows; make_mirror(events,
    more=True): the last one with these rows added (another Firehose delivery)."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._folder = root
        self._opened: list[MirrorDatabase] = []

    def __call__(self, events: Sequence[dict[str, Any]], *, more: bool = False) -> MirrorDatabase:
        if not more:
            self._folder = self._root / f"mirror-{len(self._opened)}"
        write_mirror_files(self._folder, events)
        self._opened.append(MirrorDatabase(self._folder))
        return self._opened[-1]

    def close(self) -> None:
        for database in self._opened:
            database.close()


@pytest.fixture
def make_mirror(tmp_path: Path) -> Iterator[MakeMirror]:
    maker = MakeMirror(tmp_path)
    yield maker
    maker.close()
