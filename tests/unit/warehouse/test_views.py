"""The current-state views: one row per resource, its newest state, whatever order the
events came in and however often."""

from __future__ import annotations

from itertools import permutations
from typing import Any

from p4f.mirror import MirrorKind
from tests.unit.warehouse.conftest import MakeMirror
from tests.unit.warehouse.events import live, snapshot

RESPONSE = "0c2d6f4e-8a1b-4c3d-9e5f-6a7b8c9d0e1f"
CAMPAIGN = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
QUALITY = {"score": 87, "verdict": "high", "breakdown": {"relevance": 92}}


def a_response_lifecycle(submitted: str, reviewed: str) -> list[dict[str, Any]]:
    pending = {"status": "PENDING", "reviewed_at": None, "submitted_at": submitted}
    return [
        live("response_submitted", submitted, **pending, quality=None),
        live("response_scored", submitted, **pending, quality=QUALITY),
        live(
            "reward_approved",
            reviewed,
            status="APPROVED",
            submitted_at=submitted,
            reviewed_at=reviewed,
            quality=QUALITY,
        ),
    ]


def test_out_of_order_and_repeated_events_give_the_newest_state_once(
    make_mirror: MakeMirror,
) -> None:
    events = a_response_lifecycle("2026-04-19T14:02:10Z", "2026-04-19T14:22:51Z")
    for order in permutations(events):
        mirror = make_mirror([*order, order[0]])  # and the first one again
        [current] = mirror.query("SELECT * FROM responses_current")
        assert current["id"] == RESPONSE
        assert current["status"] == "APPROVED"
        assert current["event_type"] == "reward_approved"
        assert current["quality"]["score"] == 87
        assert mirror.query("SELECT count(*) AS n FROM responses") == [{"n": 4}]


def test_within_one_second_the_state_that_got_furthest_wins(make_mirror: MakeMirror) -> None:
    # Times in seconds, as the API sends them: submitted, scored and approved in one second.
    same = "2026-04-19T14:02:10Z"
    submitted, scored, approved = a_response_lifecycle(same, same)
    mirror = make_mirror([approved, scored, submitted])
    [current] = mirror.query("SELECT status, quality FROM responses_current")
    assert current["status"] == "APPROVED"
    mirror = make_mirror([scored], more=True)  # scored once more, later: approval still wins
    assert mirror.query("SELECT status FROM responses_current") == [{"status": "APPROVED"}]


def test_scoring_alone_comes_after_submission_in_the_same_second(make_mirror: MakeMirror) -> None:
    submitted, scored, _ = a_response_lifecycle("2026-04-19T14:02:10Z", "2026-04-19T15:00:00Z")
    mirror = make_mirror([scored, submitted])
    [current] = mirror.query("SELECT event_type, quality FROM responses_current")
    assert current["event_type"] == "response_scored"
    assert current["quality"] is not None


def test_a_snapshot_never_outranks_a_state_that_got_further_or_a_webhook_of_its_moment(
    make_mirror: MakeMirror,
) -> None:
    submitted, scored, approved = a_response_lifecycle(
        "2026-04-19T14:02:10Z", "2026-04-19T14:22:51Z"
    )
    listed_pending = snapshot(
        MirrorKind.RESPONSES, submitted["detail"]["data"], "2026-04-19T14:05:00.123456+00:00"
    )
    mirror = make_mirror([scored, listed_pending])
    # Listed later, but the scored state got further at the same time.
    [current] = mirror.query("SELECT event_type FROM responses_current")
    assert current["event_type"] == "response_scored"
    listed_approved = snapshot(
        MirrorKind.RESPONSES, approved["detail"]["data"], "2026-04-20T08:00:00+00:00"
    )
    mirror = make_mirror([listed_approved, approved, submitted])
    [current] = mirror.query("SELECT event_type, status FROM responses_current")
    assert current == {"event_type": "reward_approved", "status": "APPROVED"}


def test_a_campaign_resumed_in_the_second_a_snapshot_listed_it_paused_is_active(
    make_mirror: MakeMirror,
) -> None:
    moment = "2026-04-19T10:00:00Z"
    resumed = live("campaign_resumed", moment, status="ACTIVE", updated_at=moment)
    paused = resumed["detail"]["data"] | {"status": "PAUSED"}
    listed = snapshot(MirrorKind.CAMPAIGNS, paused, "2026-04-19T10:00:00.900+00:00")
    mirror = make_mirror([listed, resumed])
    assert mirror.query("SELECT status FROM campaigns_current") == [{"status": "ACTIVE"}]


def test_a_snapshot_of_a_newer_state_wins_over_older_events(make_mirror: MakeMirror) -> None:
    paused = live("campaign_paused", "2026-04-19T09:00:00Z", status="PAUSED")
    paused["detail"]["data"]["updated_at"] = "2026-04-19T09:00:00Z"
    resumed = paused["detail"]["data"] | {"status": "ACTIVE", "updated_at": "2026-04-19T10:00:00Z"}
    mirror = make_mirror(
        [paused, snapshot(MirrorKind.CAMPAIGNS, resumed, "2026-04-19T10:00:01+00:00")]
    )
    assert mirror.query("SELECT status, event_type FROM campaigns_current") == [
        {"status": "ACTIVE", "event_type": "campaign_snapshot"}
    ]


def test_a_campaign_is_its_last_update_and_a_draft_never_outlives_its_launch(
    make_mirror: MakeMirror,
) -> None:
    created = live(
        "campaign_created",
        "2026-04-18T09:00:00Z",
        status="DRAFT",
        updated_at="2026-04-18T09:00:00Z",
    )
    launched = live(
        "campaign_updated",
        "2026-04-18T09:00:00Z",
        status="ACTIVE",
        updated_at="2026-04-18T09:00:00Z",
    )
    paused = live(
        "campaign_paused",
        "2026-04-19T10:00:00Z",
        status="PAUSED",
        updated_at="2026-04-19T10:00:00Z",
    )
    resumed = live(
        "campaign_resumed",
        "2026-04-19T11:00:00Z",
        status="ACTIVE",
        updated_at="2026-04-19T11:00:00Z",
    )
    mirror = make_mirror([launched, created])
    assert mirror.query("SELECT status FROM campaigns_current") == [{"status": "ACTIVE"}]
    mirror = make_mirror([resumed, paused, paused, created])
    [current] = mirror.query("SELECT id, status, event_type FROM campaigns_current")
    assert current == {"id": CAMPAIGN, "status": "ACTIVE", "event_type": "campaign_resumed"}


def test_a_repeated_payout_event_is_one_payout(make_mirror: MakeMirror) -> None:
    failed = live("payout_failed", "2026-04-19T15:02:10Z")
    mirror = make_mirror([failed, failed, failed])
    [current] = mirror.query("SELECT status, failure_reason FROM payouts_current")
    assert current["status"] == "FAILED"
    assert current["failure_reason"] == "The respondent's PayPal account is closed."


def test_each_resource_has_one_current_row(make_mirror: MakeMirror) -> None:
    events = [
        event
        for n in range(20)
        for event in a_response_lifecycle(
            f"2026-04-19T14:{n:02d}:00Z", f"2026-04-19T15:{n:02d}:00Z"
        )
    ]
    for n, event in enumerate(events):
        event["detail"]["data"]["id"] = f"response-{n // 3}"
    mirror = make_mirror([*reversed(events), *events[::2]])
    rows = mirror.query("SELECT id, status FROM responses_current ORDER BY id")
    assert len(rows) == 20
    assert {row["status"] for row in rows} == {"APPROVED"}
