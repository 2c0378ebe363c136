"""Slack Block Kit messages of the reward review: pure functions of the response.

    review_message(response, reason, links)     a response waiting for a person: score,
                                                verdict, breakdown, answers, reward, and
                                                Approve / Reject buttons
    decided_message(response, ...)              the same after the decision: who decided and
                                                the outcome, no buttons (through response_url)
    taken_message(response_id, taken)           a click that came second: who decided first

Everything a respondent or a campaign author wrote (answers, prompts, the verdict, the
breakdown's names, ids) goes out as `plain_text`, which Slack never formats and in which
`<!channel>`, `*bold*` or a URL is shown as typed: no formatting and no mention from
outside. `mrkdwn` holds only the bridge's own words and the reviewer's mention (`<@U...>`,
a user id Slack itself sent). The notification `text` names no respondent's text either.
Every message stays inside Slack's limits: at most 3,000 characters a text, 10 fields, 50
blocks, and MESSAGE_BUDGET characters of blocks in all (answers fill what is left, the last
cut short, and "N more answers in the dashboard" says what did not fit).
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import TYPE_CHECKING, Any

from p4f.reviews import (
    ACTIONS_BLOCK,
    APPROVE_ACTION,
    REJECT_ACTION,
    Decision,
    ReviewOutcome,
    ephemeral,
)

if TYPE_CHECKING:
    from review_ledger import Taken

    from p4f.models import Answer, Response

DEFAULT_DASHBOARD_URL = "https://app.pay4feedback.com"
MESSAGE_BUDGET = 11_000
"""The most characters the blocks' JSON may have (Slack refuses near 13,000)."""

_TEXT_CHARS = 2_900
_FIELD_CHARS = 1_900
_HEADER_CHARS = 150
_MAX_ANSWERS = 20
_MIN_ANSWER_CHARS = 200
_MORE_RESERVE = 200
_USER_ID = re.compile(r"[UW][A-Z0-9]{2,30}")

type Block = dict[str, Any]
type SlackMessage = dict[str, Any]
"""{"text": <notification>, "blocks": [...]} (chat.postMessage, response_url)."""


def _plain(text: str, limit: int = _TEXT_CHARS) -> dict[str, Any]:
    return {"type": "plain_text", "text": _cut(text, limit) or " ", "emoji": False}


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text}


def _cut(text: str, limit: int) -> str:
    """`text` in at most `limit` characters, ending on a whole word with "…" if cut."""
    if len(text) <= limit:
        return text
    head = text[: limit - 1]
    space = head.rfind(" ", max(0, limit - 20))
    return (head[:space] if space > 0 else head).rstrip() + "…"


def reviewer_mention(user_id: str | None, user_name: str | None) -> str:
    """How the message names a Slack reviewer: a mention of a real user id, else the name
    (escaped), else "someone"."""
    if user_id and _USER_ID.fullmatch(user_id):
        return f"<@{user_id}>"
    name = (user_name or "someone").replace("&", "&amp;").replace("<", "&lt;")
    return name.replace(">", "&gt;")


def _reward(response: Response) -> str:
    return f"{response.reward.amount:f} {response.reward.currency}"


def _summary_fields(response: Response, reason: str | None) -> list[dict[str, Any]]:
    quality = response.quality
    fields = [
        _plain(f"Reward: {_reward(response)}", _FIELD_CHARS),
        _plain(
            f"Score: {quality.score} ({quality.verdict})" if quality else "Score: not scored yet",
            _FIELD_CHARS,
        ),
        _plain(f"Response: {response.id}", _FIELD_CHARS),
        _plain(f"Campaign: {response.campaign_id}", _FIELD_CHARS),
        _plain(f"Respondent: {response.respondent.id}", _FIELD_CHARS),
    ]
    if reason:
        fields.append(_plain(f"Why a person decides: {reason}", _FIELD_CHARS))
    return fields


def _breakdown(response: Response) -> list[Block]:
    if response.quality is None or not response.quality.breakdown:
        return []
    parts = [f"{name} {value}" for name, value in sorted(response.quality.breakdown.items())]
    return [{"type": "section", "text": _plain("Breakdown: " + " · ".join(parts))}]


def _answer_text(answer: Answer) -> str:
    value = answer.value if isinstance(answer.value, str) else json.dumps(answer.value)
    return f"{answer.prompt}\n{value}"


def _answers(response: Response, budget: int) -> list[Block]:
    """Answer blocks that fit in `budget` characters of JSON, and a note of what did not."""
    blocks: list[Block] = []
    used = 0
    for index, answer in enumerate(response.answers[:_MAX_ANSWERS]):
        room = budget - used - _MORE_RESERVE - 100
        if room < _MIN_ANSWER_CHARS:
            break
        block = {"type": "section", "text": _plain(_answer_text(answer), min(_TEXT_CHARS, room))}
        size = len(json.dumps(block, ensure_ascii=False))
        if used + size > budget - _MORE_RESERVE:
            break
        blocks.append(block)
        used += size
        shown = index + 1
    else:
        shown = len(blocks)
    left = len(response.answers) - shown
    if left > 0:
        blocks.append(
            {"type": "context", "elements": [_plain(f"{left} more answers in the dashboard")]}
        )
    return blocks


def _body(response: Response, reason: str | None, footer: list[Block]) -> list[Block]:
    head: list[Block] = [
        {
            "type": "header",
            "text": _plain(f"Reward review: {_reward(response)}", _HEADER_CHARS),
        },
        {"type": "section", "fields": _summary_fields(response, reason)},
        *_breakdown(response),
    ]
    used = len(json.dumps(head + footer, ensure_ascii=False))
    return [*head, *_answers(response, MESSAGE_BUDGET - used), *footer]


def _notification(response: Response, what: str) -> str:
    score = f", score {response.quality.score}" if response.quality else ""
    return f"{what}: response {response.id} ({_reward(response)}{score})"


def review_message(response: Response, reason: str, dashboard_url: str) -> SlackMessage:
    """The message a person decides a response from."""
    buttons = {
        "type": "actions",
        "block_id": ACTIONS_BLOCK,
        "elements": [
            {
                "type": "button",
                "action_id": APPROVE_ACTION,
                "text": _plain("Approve"),
                "style": "primary",
                "value": response.id,
            },
            {
                "type": "button",
                "action_id": REJECT_ACTION,
                "text": _plain("Reject"),
                "style": "danger",
                "value": response.id,
            },
            {
                "type": "button",
                "action_id": "p4f_review_open",
                "text": _plain("Open in the dashboard"),
                "url": f"{dashboard_url.rstrip('/')}/responses/{response.id}",
            },
        ],
    }
    return {
        "text": _notification(response, "A reward waits for your review"),
        "blocks": _body(response, reason, [buttons]),
    }


def outcome_line(
    decision: Decision,
    outcome: ReviewOutcome,
    status: str,
    who: str,
    when: datetime | None = None,
) -> str:
    """One line of the bridge's words: what became of the response, and who decided."""
    at = f" at {when:%H:%M} UTC" if when else ""
    if outcome is ReviewOutcome.DECIDED_ELSEWHERE:
        return (
            f":information_source: Already {status.lower()} outside this review "
            f"(the dashboard or the API): nothing was changed. {who} asked to {decision}{at}."
        )
    if outcome is ReviewOutcome.DRY_RUN:
        return f":test_tube: Dry run: {who} would {decision}{at}; nothing was applied."
    mark = ":white_check_mark:" if decision is Decision.APPROVE else ":no_entry_sign:"
    verb = "Approved" if decision is Decision.APPROVE else "Rejected"
    return f"{mark} *{verb}* by {who}{at}."


def decided_message(response: Response, line: str) -> SlackMessage:
    """The review message once decided: the response as it is now, `line`, no buttons."""
    footer = [{"type": "section", "text": _mrkdwn(line)}]
    return {
        "replace_original": True,
        "text": _notification(response, f"Reward {str(response.status).lower()}"),
        "blocks": _body(response, None, footer),
    }


def taken_message(taken: Taken) -> SlackMessage:
    """What a click that came too late is told, only to whoever clicked (ephemeral)."""
    if taken.decision in (Decision.APPROVE, Decision.REJECT):
        who = (
            reviewer_mention(taken.user_id, taken.user_name)
            if taken.by == "slack"
            else "the review policy"
        )
        text = f"Someone else decided first: {who} chose to {taken.decision} ({taken.status})."
    elif taken.state is not None and taken.by == "slack":
        who = reviewer_mention(taken.user_id, taken.user_name)
        text = f"{who} is deciding this response right now."
    else:
        text = "This response is not waiting for a review (any more)."
    return ephemeral(text)
