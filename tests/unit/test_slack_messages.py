"""Slack messages for every event type: readable, and inside Slack's limits (checked by the
local Slack's own validator)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from slack_messages import MESSAGE_BUDGET, DashboardLinks, SlackMessage, clip, escape, render

from local.slack_receiver import message_problems
from p4f.models import EventType
from tests.conftest import queued_event

LINKS = DashboardLinks("https://dashboard.example")
CAMPAIGN_ID = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
RESPONSE_ID = "0c2d6f4e-8a1b-4c3d-9e5f-6a7b8c9d0e1f"
EMAIL = "ana@example.com"


def valid(message: SlackMessage) -> str:
    """The message's JSON after the local Slack found nothing to refuse in it."""
    assert message_problems(message) == []
    return json.dumps(message, ensure_ascii=False)


def header_of(message: SlackMessage) -> str:
    block: Any = message["blocks"][0]
    assert block["type"] == "header"
    return str(block["text"]["text"])


def fields_of(message: SlackMessage) -> dict[str, str]:
    for block in message["blocks"]:
        if "fields" in block:
            pairs = (f["text"].split("\n", 1) for f in block["fields"])  # type: ignore[typeddict-item]
            return {label.strip("*"): value for label, value in pairs}
    return {}


CASES: list[tuple[EventType, str, dict[str, str], list[str]]] = [
    (
        EventType.CAMPAIGN_CREATED,
        ":new: Campaign created: Onboarding survey",
        {"Status": "DRAFT", "Reward": "5.00 USD", "Max responses": "200", "Questions": "1"},
        ["Why new users stop", f"/campaigns/{CAMPAIGN_ID}|Open the campaign"],
    ),
    (
        EventType.CAMPAIGN_UPDATED,
        ":pencil2: Campaign updated: Onboarding survey",
        {"Status": "ACTIVE", "Campaign": "Onboarding survey"},
        [f"/campaigns/{CAMPAIGN_ID}"],
    ),
    (
        EventType.CAMPAIGN_PAUSED,
        ":double_vertical_bar: Campaign paused: Onboarding survey",
        {"Status": "PAUSED"},
        [],
    ),
    (EventType.CAMPAIGN_RESUMED, ":arrow_forward: Campaign resumed: Onboarding survey", {}, []),
    (
        EventType.RESPONSE_SUBMITTED,
        ":speech_balloon: New response",
        {"Status": "PENDING", "Campaign": CAMPAIGN_ID, "Respondent": "resp_4b1e9c"},
        ["What almost stopped you", "did not say if the trial needs a card"],
    ),
    (
        EventType.RESPONSE_SCORED,
        ":bar_chart: Response scored: 87/100 · high",
        {"Score": "87/100 · high"},
        ["did not say if the trial needs a card", f"/responses/{RESPONSE_ID}|Open the response"],
    ),
    (
        EventType.REWARD_APPROVED,
        ":white_check_mark: Reward approved: 5.00 USD",
        {"Status": "APPROVED", "Reward": "5.00 USD", "Score": "87/100 · high"},
        [f"/responses/{RESPONSE_ID}"],
    ),
    (
        EventType.REWARD_REJECTED,
        ":no_entry_sign: Reward rejected: 5.00 USD",
        {"Status": "REJECTED"},
        ["*Reason*\\nThe answer does not address the question."],
    ),
    (
        EventType.PAYOUT_COMPLETED,
        ":moneybag: Payout completed: 5.00 USD",
        {"Amount": "5.00 USD", "Status": "COMPLETED", "Payout": "po_7d2c9e41"},
        [f"/responses/{RESPONSE_ID}"],
    ),
    (
        EventType.PAYOUT_FAILED,
        ":warning: Payout failed: 5.00 USD",
        {"Status": "FAILED"},
        ["*Failure reason*\\nThe respondent's PayPal account is closed."],
    ),
    (
        EventType.PING,
        ":wave: Pay4Feedback webhook connected",
        {"Webhook": "wh_3a9f0c52"},
        ["https://dashboard.example|Open Pay4Feedback"],
    ),
]


def test_the_cases_cover_the_whole_catalogue() -> None:
    assert {case[0] for case in CASES} == set(EventType)


@pytest.mark.parametrize(("event_type", "header", "fields", "texts"), CASES)
def test_every_catalogue_event_renders_a_readable_valid_message(
    event_type: EventType, header: str, fields: dict[str, str], texts: list[str]
) -> None:
    item = queued_event(event_type)
    message = render(item, LINKS)
    everything = valid(message)
    assert header_of(message) == header
    assert fields.items() <= fields_of(message).items()
    for text in texts:
        assert text in everything
    assert message["text"] == header.split(" ", 1)[1]  # the fallback: the headline, no emoji
    footer: Any = message["blocks"][-1]
    assert footer["type"] == "context"
    assert f"`{event_type}` · {item.event.id} · <!date^1776608571^" in footer["elements"][1]["text"]
    assert EMAIL not in everything


def test_answers_appear_only_where_they_are_the_news() -> None:
    answer = "did not say if the trial needs a card"
    assert answer in valid(render(queued_event(EventType.RESPONSE_SUBMITTED), LINKS))
    assert answer not in valid(render(queued_event(EventType.REWARD_APPROVED), LINKS))


def test_an_unscored_response_says_so() -> None:
    message = render(queued_event(EventType.RESPONSE_SCORED, quality=None), LINKS)
    assert header_of(message) == ":bar_chart: Response scored: no score"
    assert "Score" not in fields_of(message)


def test_a_rejection_without_a_reason_says_none_was_given() -> None:
    message = render(queued_event(EventType.REWARD_REJECTED, rejection_reason=None), LINKS)
    assert "*Reason*\\nNo reason was given." in valid(message)


def test_an_unknown_type_gets_a_generic_message_with_ids_and_status_only() -> None:
    item = queued_event(
        "respondent_banned",
        respondent_id="resp_9",
        campaign_id=CAMPAIGN_ID,
        status="BANNED",
        email=EMAIL,
        note="free text about the respondent",
    )
    message = render(item, LINKS)
    everything = valid(message)
    assert header_of(message) == ":information_source: Pay4Feedback event respondent_banned"
    assert fields_of(message) == {
        "respondent_id": "resp_9",
        "campaign_id": CAMPAIGN_ID,
        "status": "BANNED",
    }
    assert f"/campaigns/{CAMPAIGN_ID}|Open the campaign" in everything
    assert EMAIL not in everything
    assert "free text" not in everything


def test_very_long_answers_fill_the_budget_and_the_rest_is_counted() -> None:
    answers = [
        {"question_id": f"q{i}", "prompt": f"Question {i}?", "value": f"answer{i} " * 2_000}
        for i in range(12)
    ]
    message = render(queued_event(EventType.RESPONSE_SUBMITTED, answers=answers), LINKS)
    everything = valid(message)
    assert len(json.dumps(message["blocks"], ensure_ascii=False)) <= MESSAGE_BUDGET
    shown = [b for b in message["blocks"] if "text" in b and "Question" in b["text"]["text"]]  # type: ignore[typeddict-item]
    assert 2 <= len(shown) < 12
    assert all(b["text"]["text"].endswith("…") for b in shown)  # type: ignore[typeddict-item]
    assert f"_{12 - len(shown)} more answers in the dashboard_" in everything


def test_a_very_long_reason_is_cut_at_a_word_and_the_message_stays_valid() -> None:
    reason = "Spam. " + "The answer repeats itself. " * 2_000
    message = render(queued_event(EventType.REWARD_REJECTED, rejection_reason=reason), LINKS)
    valid(message)
    [note] = [b for b in message["blocks"] if "Reason" in json.dumps(b)]
    text = note["text"]["text"]  # type: ignore[typeddict-item]
    assert text.startswith("*Reason*\nSpam. The answer repeats itself.")
    assert text.endswith("…")
    assert text[:-1].split()[-1] in {"The", "answer", "repeats", "itself."}  # a whole word
    assert 1_900 < len(text) <= 2_000 + len("*Reason*\n")


def test_everything_at_once_too_long_still_fits() -> None:
    long_id = "x" * 5_000
    item = queued_event(
        EventType.RESPONSE_SCORED,
        id=long_id,
        campaign_id=long_id,
        respondent={"id": long_id, "email": EMAIL},
        answers=[{"question_id": "q", "prompt": "p" * 5_000, "value": "v" * 50_000}] * 12,
    )
    message = render(item, LINKS)
    valid(message)
    assert len(header_of(message)) <= 150
    assert len(json.dumps(message["blocks"], ensure_ascii=False)) <= MESSAGE_BUDGET
    assert "https://app.pay4feedback.com|Open the response" in json.dumps(message)


def test_a_very_long_campaign_name_is_cut_in_the_header_and_the_fallback() -> None:
    message = render(queued_event(EventType.CAMPAIGN_CREATED, name="Onboarding " * 100), LINKS)
    valid(message)
    assert len(header_of(message)) <= 150
    assert header_of(message).endswith("Onboarding…")
    assert len(message["text"]) <= 300


def test_mentions_and_links_in_what_people_wrote_are_shown_not_acted_on() -> None:
    value = "<!channel> see <https://evil.example|this> & more"
    answers = [{"question_id": "q", "prompt": "Any <@U123> thoughts?", "value": value}]
    everything = valid(render(queued_event(EventType.RESPONSE_SUBMITTED, answers=answers), LINKS))
    assert "&lt;!channel&gt; see &lt;https://evil.example|this&gt; &amp; more" in everything
    assert "Any &lt;@U123&gt; thoughts?" in everything
    assert "<!channel>" not in everything


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("short", 10, "short"),
        ("exactly ten", 11, "exactly ten"),
        ("cut at a word boundary please", 20, "cut at a word…"),
        ("abcdefghijklmnopqrstuvwxyz" * 2, 10, "abcdefghi…"),
        ("a" * 20 + " &amp; b", 25, "a" * 20 + "…"),
        ("a" * 30 + "&lt;b", 33, "a" * 30 + "…"),
    ],
)
def test_clip_cuts_at_words_never_inside_an_escape(text: str, limit: int, expected: str) -> None:
    assert clip(text, limit) == expected
    assert len(clip(text, limit)) <= limit


def test_escape_leaves_nothing_slack_would_parse() -> None:
    assert escape("a < b > c & d") == "a &lt; b &gt; c &amp; d"


def test_dashboard_links_escape_ids() -> None:
    links = DashboardLinks("https://app.example/")
    assert links.campaign("a/b?c") == "https://app.example/campaigns/a%2Fb%3Fc"
    assert links.response("r1") == "https://app.example/responses/r1"
