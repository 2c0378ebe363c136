"""README's first command: the demo plays its steps and ends 0."""

from __future__ import annotations

import pytest

from local import demo


def test_the_demo_succeeds_and_shows_every_event(capsys: pytest.CaptureFixture[str]) -> None:
    assert demo.main() == 0
    shown = capsys.readouterr().out
    assert shown.rstrip().endswith("OK")
    for event_type in ("campaign_created", "reward_rejected", "payout_completed"):
        assert event_type in shown
