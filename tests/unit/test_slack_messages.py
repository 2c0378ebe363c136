"""Slack messages for every event type, and digests: readable, inside Slack's limits
(checked by the local Slack's own validator and by slack_sdk's Block Kit models), and
showing what people wrote as written, never formatting or mentioning from it."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from slack_messages import (
    DIGEST_EVENTS,
    MESSAGE_BUDGET,
    DashboardLinks,
    SlackMessage,
    clip,
    digest,
    digest_groups,
    digest_line,
    escape,
    render,
)
from slack_sdk.models.blocks import Block

from local.slack_receiver import message_problems
from p4f.models import EventType
from tests.conftest import queued_event

LINKS = DashboardLinks("https://dashboard.example")
CAMPAIGN_ID = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
RESPONSE_ID = "0c2d6f4e-8a1b-4c3d-9e5f-6a7b8c9d0e1f"
EMAIL = "ana@example.com"


ZWSP = "\u200b"


def unfenced(text: str) -> list[int]:
    """Where `text` has a formatting mark that could format: neither fenced by zero-width
    spaces nor between two letters or digits."""
    padded = f" {text} "
    return [
        at - 1
        for at, char in enumerate(padded)
        if char in "*_~`"
        and not (padded[at - 1] == padded[at + 1] == ZWSP)
        and not (padded[at - 1].isalnum() and padded[at + 1].isalnum())
    ]


def valid(message: SlackMessage) -> str:
    """The message's JSON after the local Slack and slack_sdk's Block Kit models found
    nothing to refuse in it, and every mrkdwn text in it is verbatim."""
    assert message_problems(message) == []
    for block in message["blocks"]:
        parsed = Block.parse(dict(block))
        assert parsed is not None, block
        parsed.validate_json()
    mrkdwn = [text for text in text_objects(message) if text["type"] == "mrkdwn"]
    assert mrkdwn, "no mrkdwn text found"
    assert all(text.get("verbatim") is True for text in mrkdwn), "a mrkdwn text not verbatim"
    return json.dumps(message, ensure_ascii=False)


def text_objects(message: SlackMessage) -> list[dict[str, Any]]:
    """Every text object of the message's blocks (headers, sections, fields, contexts)."""
    found = []
    for block in message["blocks"]:
        raw: dict[str, Any] = dict(block)
        objects = [raw.get("text"), *raw.get("fields", []), *raw.get("elements", [])]
        found += [text for text in objects if isinstance(text, dict)]
    return found


def texts_of(message: SlackMessage) -> list[str]:
    """Every text of the message's blocks."""
    return [str(text["text"]) for text in text_objects(message)]


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


FORMATTING = "*bold* _italic_ ~struck~ `code` ```block``` @here #general https://evil.example"


def test_what_a_respondent_wrote_cannot_format_mention_or_link() -> None:
    answers = [{"question_id": "q", "prompt": "Anything else?", "value": f"{FORMATTING}\n> quoted"}]
    message = render(queued_event(EventType.RESPONSE_SUBMITTED, answers=answers), LINKS)
    valid(message)
    [shown] = [text for text in texts_of(message) if "bold" in text]
    answer = shown.split("\n", 1)[1]
    assert unfenced(answer) == []
    assert answer.replace(ZWSP, "") == FORMATTING + "\n&gt; quoted"
    assert "\n" + ZWSP + "&gt; quoted" in answer  # not a quote
    # Slack links no URL or channel and mentions nobody in a verbatim text.
    assert "<https://evil.example" not in answer


def test_ids_with_underscores_stay_as_they_are_copied() -> None:
    assert escape("resp_4b1e9c and 2*3") == "resp_4b1e9c and 2*3"
    assert escape("_a_") == f"{ZWSP}_{ZWSP}a{ZWSP}_{ZWSP}"


@pytest.mark.parametrize(
    "prompt",
    ["Rate *Pro* (1-5)*", "*", "Two\nlines  and\ttabs", "   ", "Use `code` or _this_?"],
)
def test_a_prompt_is_bold_on_one_line_whatever_it_holds(prompt: str) -> None:
    answers = [{"question_id": "q", "prompt": prompt, "value": "yes"}]
    message = render(queued_event(EventType.RESPONSE_SUBMITTED, answers=answers), LINKS)
    valid(message)
    [shown] = [text for text in texts_of(message) if text.endswith("\nyes")]
    head = shown.removesuffix("\nyes")
    if prompt.strip():
        # Its own bold marks, first and last: none of the prompt's can end it early.
        assert unfenced(head) == [0, len(head) - 1]
        assert head[1:-1].replace(ZWSP, "") == " ".join(prompt.split())
    else:
        assert head == "_(no prompt)_"


def test_a_campaign_name_and_a_reason_cannot_format_either() -> None:
    reason = "*Spam*: see <https://x.example|this> `now`"
    message = render(queued_event(EventType.REWARD_REJECTED, rejection_reason=reason), LINKS)
    valid(message)
    [shown] = [text for text in texts_of(message) if text.startswith("*Reason*")]
    assert unfenced(shown.removeprefix("*Reason*")) == []
    named = render(queued_event(EventType.CAMPAIGN_CREATED, name="*Big* _launch_"), LINKS)
    valid(named)
    assert header_of(named) == ":new: Campaign created: *Big* _launch_"  # plain text: as written
    assert unfenced(named["text"]) == []


def lines_of(event_type: EventType, count: int, **data: Any) -> list[Any]:
    events = [queued_event(event_type, id=f"{event_type}-{n}", **data) for n in range(count)]
    return [(item.event, digest_line(item, LINKS)) for item in events]


@pytest.mark.parametrize("event_type", [*EventType, "respondent_banned"])
def test_a_digest_of_each_type_is_valid_and_links_every_event(event_type: EventType) -> None:
    if event_type == "respondent_banned":
        items = [queued_event(event_type, campaign_id=f"c-{n}", email=EMAIL) for n in range(3)]
    else:
        items = [queued_event(event_type, id=f"{event_type}-{n}") for n in range(3)]
    message = digest([(item.event, digest_line(item, LINKS)) for item in items])
    everything = valid(message)
    assert header_of(message).endswith("(3 events)")
    assert message["text"].endswith("(3 events)")
    lines = message["blocks"][1:-1]
    assert len(lines) == 3
    for item, line in zip(items, lines, strict=True):
        text = line["text"]["text"]  # type: ignore[typeddict-item]
        assert text.startswith(f"<{LINKS.base_url}")
        single = json.dumps(render(item, LINKS)["blocks"][-1])
        url = re.search(r"<(https://[^|]+)\|", single)
        assert url is not None
        assert text.startswith(f"<{url[1]}|")  # the link of the event's own message
    assert f"`{event_type}` · 3 events" in everything
    assert EMAIL not in everything


def test_a_digest_of_responses_shows_each_first_answer_and_score() -> None:
    message = digest(lines_of(EventType.RESPONSE_SCORED, 2))
    valid(message)
    [first, _] = message["blocks"][1:-1]
    text = first["text"]["text"]  # type: ignore[typeddict-item]
    assert text.startswith(f"<{LINKS.base_url}/responses/response_scored-0|Response response")
    assert "Score 87/100 · high" in text
    assert "did not say if the trial needs a card" in text


def test_a_full_digest_of_the_longest_lines_stays_inside_slacks_limits() -> None:
    long = "word " * 20_000
    lines = lines_of(
        EventType.REWARD_REJECTED,
        DIGEST_EVENTS * 2,
        rejection_reason=long,
        campaign_id="c" * 5_000,
        respondent={"id": "r" * 5_000},
    )
    groups = digest_groups(lines, lambda line: line[1])
    assert [item for group in groups for item in group] == lines  # in order, none lost
    for group in groups:
        assert len(group) <= DIGEST_EVENTS
        message = digest(group)
        valid(message)
        assert len(json.dumps(message["blocks"], ensure_ascii=False)) <= MESSAGE_BUDGET


def test_short_lines_fill_digests_of_digest_events() -> None:
    lines = lines_of(EventType.PAYOUT_COMPLETED, DIGEST_EVENTS * 2 + 1)
    assert [len(group) for group in digest_groups(lines, lambda line: line[1])] == [
        DIGEST_EVENTS,
        DIGEST_EVENTS,
        1,
    ]


def test_a_digest_line_cannot_format_from_an_answer() -> None:
    answers = [{"question_id": "q", "prompt": "*Why*?", "value": FORMATTING}]
    [(_, line)] = lines_of(EventType.RESPONSE_SUBMITTED, 1, answers=answers)
    text = line["text"]["text"]
    answer_line = text.split("\n")[1]
    prompt, answer = answer_line.split("* ", 1)
    assert unfenced(prompt + "*") == [0, len(prompt)]
    assert unfenced(answer) == []
