"""Slack Block Kit messages for Pay4Feedback events: pure functions of the typed event.

    render(queued, links) -> {"text": <notification and fallback>, "blocks": [...]}

A readable message per event type of the catalogue (what happened, to which campaign,
response or payout, the amounts, the score, the reason, a link to the dashboard), and a
generic one for a type this code does not know yet, showing only its ids and status (its
other fields may hold personal data). Respondents appear by their id, never by e-mail.

Every message stays inside Slack's limits with room to spare: a header of at most 150
characters, section texts well under 3,000, at most 10 fields of at most ~320, at most 15
blocks, and blocks whose JSON is at most MESSAGE_BUDGET characters (Slack refuses near
13,000): answers fill what the rest leaves, the last one cut short if need be, and
"N more answers in the dashboard" says what did not fit.

Text written by people (campaign names, answers, reasons) is escaped for mrkdwn, so that an
answer saying "<!channel>" is shown and not sent to everyone, and cut at a word boundary
with "…", never inside an escape.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Literal, Required, TypedDict
from urllib.parse import quote

from p4f.forwarding import identifying_fields
from p4f.models import Campaign, EventType, Payout, Ping, Quality, Response

if TYPE_CHECKING:
    from pydantic import JsonValue

    from p4f.forwarding import QueuedEvent
    from p4f.models import Answer, WebhookEvent

DEFAULT_DASHBOARD_URL = "https://app.pay4feedback.com"
MESSAGE_BUDGET = 12_000
"""The most characters the blocks' JSON may have."""

_HEADER_CHARS = 150
_TEXT_CHARS = 300
_FIELD_CHARS = 300
_NOTE_CHARS = 2_000
_PROMPT_CHARS = 200
_ANSWER_CHARS = 2_500
_MIN_ANSWER_CHARS = 200
"""An answer is not cut shorter than this; it is left out instead."""
_MAX_ANSWERS = 10
_MAX_FIELDS = 10
_URL_CHARS = 500
"""A link longer than this (an absurdly long id) points at the dashboard's start instead."""
_MORE_ANSWERS_RESERVE = 100
_WORD_SEARCH = 20
"""How far back a cut looks for a space, to end on a whole word."""

_TITLES: dict[str, tuple[str, str]] = {
    EventType.PING: (":wave:", "Pay4Feedback webhook connected"),
    EventType.CAMPAIGN_CREATED: (":new:", "Campaign created"),
    EventType.CAMPAIGN_UPDATED: (":pencil2:", "Campaign updated"),
    EventType.CAMPAIGN_PAUSED: (":double_vertical_bar:", "Campaign paused"),
    EventType.CAMPAIGN_RESUMED: (":arrow_forward:", "Campaign resumed"),
    EventType.RESPONSE_SUBMITTED: (":speech_balloon:", "New response"),
    EventType.RESPONSE_SCORED: (":bar_chart:", "Response scored"),
    EventType.REWARD_APPROVED: (":white_check_mark:", "Reward approved"),
    EventType.REWARD_REJECTED: (":no_entry_sign:", "Reward rejected"),
    EventType.PAYOUT_COMPLETED: (":moneybag:", "Payout completed"),
    EventType.PAYOUT_FAILED: (":warning:", "Payout failed"),
}


class TextObject(TypedDict):
    type: Literal["plain_text", "mrkdwn"]
    text: str


class HeaderBlock(TypedDict):
    type: Literal["header"]
    text: TextObject


class SectionBlock(TypedDict, total=False):
    type: Required[Literal["section"]]
    text: TextObject
    fields: list[TextObject]


class ContextBlock(TypedDict):
    type: Literal["context"]
    elements: list[TextObject]


type Block = HeaderBlock | SectionBlock | ContextBlock


class SlackMessage(TypedDict):
    text: str
    """The notification, and what clients that cannot show blocks show."""
    blocks: list[Block]


@dataclass(frozen=True)
class DashboardLinks:
    """Links into the Pay4Feedback dashboard.

    An assumption: the API reference documents no dashboard URLs. These are the paths the
    dashboard is expected to use; the base comes from P4F_DASHBOARD_URL (see README).
    """

    base_url: str = DEFAULT_DASHBOARD_URL

    def campaign(self, campaign_id: str) -> str:
        return f"{self.base_url.rstrip('/')}/campaigns/{quote(campaign_id, safe='')}"

    def response(self, response_id: str) -> str:
        return f"{self.base_url.rstrip('/')}/responses/{quote(response_id, safe='')}"


@dataclass(frozen=True)
class _Content:
    """What a message says, in plain text, before it is escaped and fitted into the limits."""

    link: tuple[str, str]
    """The dashboard link: its label and URL."""
    subject: str = ""
    """What the header names after the title: a campaign's name, an amount, a score."""
    fields: Sequence[tuple[str, str]] = ()
    note: tuple[str, str] | None = None
    """A labelled paragraph: a rejection or failure reason, a campaign's description."""
    answers: Sequence[Answer] = ()


def render(queued: QueuedEvent, links: DashboardLinks) -> SlackMessage:
    """The Slack message for an event."""
    event, resource = queued.event, queued.resource
    match resource:
        case Campaign():
            content = _campaign(event, resource, links)
        case Response():
            content = _response(event, resource, links)
        case Payout():
            content = _payout(event, resource, links)
        case Ping():
            content = _Content(
                link=("Open Pay4Feedback", links.base_url),
                fields=[("Webhook", resource.webhook_id)],
            )
        case _:
            content = _unknown(event, links)
    emoji, title = _TITLES.get(
        event.type, (":information_source:", f"Pay4Feedback event {event.type}")
    )
    return _assemble(event, emoji, title, content)


def _campaign(event: WebhookEvent, campaign: Campaign, links: DashboardLinks) -> _Content:
    limit = campaign.max_responses
    describe = event.type == EventType.CAMPAIGN_CREATED and campaign.description
    return _Content(
        link=("Open the campaign in Pay4Feedback", links.campaign(campaign.id)),
        subject=campaign.name,
        fields=[
            ("Campaign", campaign.name),
            ("Status", str(campaign.status)),
            ("Reward", _money(campaign.reward.amount, campaign.reward.currency)),
            ("Max responses", "no limit" if limit is None else str(limit)),
            ("Questions", str(len(campaign.questions))),
        ],
        note=("Description", campaign.description) if describe and campaign.description else None,
    )


def _response(event: WebhookEvent, response: Response, links: DashboardLinks) -> _Content:
    reward = _money(response.reward.amount, response.reward.currency)
    fields = [
        ("Campaign", response.campaign_id),
        ("Response", response.id),
        ("Respondent", response.respondent.id),
        ("Status", str(response.status)),
        ("Reward", reward),
    ]
    if response.quality is not None:
        fields.append(("Score", _score(response.quality)))
    subject, note = "", None
    answers: Sequence[Answer] = ()
    match event.type:
        case EventType.RESPONSE_SUBMITTED:
            answers = tuple(response.answers)
        case EventType.RESPONSE_SCORED:
            subject = _score(response.quality) if response.quality else "no score"
            answers = tuple(response.answers)
        case EventType.REWARD_APPROVED:
            subject = reward
        case EventType.REWARD_REJECTED:
            subject = reward
            note = ("Reason", response.rejection_reason or "No reason was given.")
    return _Content(
        link=("Open the response in Pay4Feedback", links.response(response.id)),
        subject=subject,
        fields=fields,
        note=note,
        answers=answers,
    )


def _payout(event: WebhookEvent, payout: Payout, links: DashboardLinks) -> _Content:
    failed = event.type == EventType.PAYOUT_FAILED
    return _Content(
        link=("Open the response in Pay4Feedback", links.response(payout.response_id)),
        subject=_money(payout.amount, payout.currency),
        fields=[
            ("Amount", _money(payout.amount, payout.currency)),
            ("Status", str(payout.status)),
            ("Campaign", payout.campaign_id),
            ("Response", payout.response_id),
            ("Respondent", payout.respondent.id),
            ("Payout", payout.id),
        ],
        note=("Failure reason", payout.failure_reason or "No reason was given.")
        if failed
        else None,
    )


def _unknown(event: WebhookEvent, links: DashboardLinks) -> _Content:
    ids = identifying_fields(event.data)
    if isinstance(ids.get("campaign_id"), str):
        link = ("Open the campaign in Pay4Feedback", links.campaign(str(ids["campaign_id"])))
    else:
        link = ("Open Pay4Feedback", links.base_url)
    return _Content(link=link, fields=[(name, str(value)) for name, value in ids.items()])


def _assemble(event: WebhookEvent, emoji: str, title: str, content: _Content) -> SlackMessage:
    headline = f"{title}: {content.subject}" if content.subject else title
    head: list[Block] = [_header(f"{emoji} {headline}")]
    if content.fields:
        head.append(
            {
                "type": "section",
                "fields": [
                    _mrkdwn(f"*{label}*\n{clip(escape(value), _FIELD_CHARS)}")
                    for label, value in content.fields[:_MAX_FIELDS]
                ],
            }
        )
    if content.note is not None:
        label, text = content.note
        head.append(_section(f"*{label}*\n{clip(escape(text), _NOTE_CHARS)}"))
    label, url = content.link
    footer: ContextBlock = {
        "type": "context",
        "elements": [
            _mrkdwn(f"<{url if len(url) <= _URL_CHARS else DEFAULT_DASHBOARD_URL}|{label}>"),
            _mrkdwn(
                f"`{clip(escape(str(event.type)), 64)}` · {clip(escape(event.id), 100)} · "
                f"{_date(event.created_at)}"
            ),
        ],
    }
    room = MESSAGE_BUDGET - _size([*head, footer]) - _MORE_ANSWERS_RESERVE
    answers = _answer_blocks(content.answers, room)
    blocks: list[Block] = [*head, *answers]
    if omitted := len(content.answers) - len(answers):
        more = f"{omitted} more answer{'s' if omitted > 1 else ''} in the dashboard"
        blocks.append({"type": "context", "elements": [_mrkdwn(f"_{more}_")]})
    blocks.append(footer)
    return {"text": clip(escape(headline), _TEXT_CHARS), "blocks": blocks}


def _answer_blocks(answers: Sequence[Answer], room: int) -> list[Block]:
    """Blocks for as many answers as fit in `room` characters of JSON, the last one cut."""
    blocks: list[Block] = []
    for answer in answers[:_MAX_ANSWERS]:
        prompt, value = escape(answer.prompt), escape(_answer_text(answer.value))
        limit = _ANSWER_CHARS
        block = _section(f"*{clip(prompt, _PROMPT_CHARS)}*\n{clip(value, limit)}")
        while (overflow := _cost(block) - room) > 0 and limit > _MIN_ANSWER_CHARS:
            limit = max(_MIN_ANSWER_CHARS, limit - overflow)
            block = _section(f"*{clip(prompt, _PROMPT_CHARS)}*\n{clip(value, limit)}")
        if _cost(block) > room:
            break
        blocks.append(block)
        room -= _cost(block)
    return blocks


def _answer_text(value: JsonValue) -> str:
    if isinstance(value, str):
        return value.strip() or "(no answer)"
    if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
        return ", ".join(str(v) for v in value)
    return json.dumps(value, ensure_ascii=False)


def escape(text: str) -> str:
    """`text` safe in mrkdwn: &, < and > escaped, so nothing in it becomes a link or mention."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: str, limit: int) -> str:
    """`text` in at most `limit` characters: cut at a word boundary when one is near, never
    inside an &amp;-style escape, and ended with "…" where it was cut."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ", max(0, len(cut) - _WORD_SEARCH))
    if space > 0:
        cut = cut[:space]
    entity = cut.rfind("&", max(0, len(cut) - 4))
    if entity != -1 and ";" not in cut[entity:]:
        cut = cut[:entity]
    return cut.rstrip() + "…"


def _money(amount: Decimal, currency: str) -> str:
    return f"{amount} {currency}"


def _score(quality: Quality) -> str:
    return f"{quality.score:g}/100 · {quality.verdict}"


def _date(when: datetime) -> str:
    """A date Slack shows in the reader's time zone, with the UTC time as the fallback."""
    fallback = when.isoformat().replace("+00:00", "Z")
    return f"<!date^{int(when.timestamp())}^{{date_short_pretty}} at {{time}}|{fallback}>"


def _header(text: str) -> HeaderBlock:
    return {"type": "header", "text": {"type": "plain_text", "text": clip(text, _HEADER_CHARS)}}


def _section(text: str) -> SectionBlock:
    return {"type": "section", "text": _mrkdwn(text)}


def _mrkdwn(text: str) -> TextObject:
    return {"type": "mrkdwn", "text": text}


def _size(blocks: Sequence[Block]) -> int:
    """The length of the blocks' JSON, as Slack's total limit is measured here."""
    return len(json.dumps(list(blocks), ensure_ascii=False))


def _cost(block: Block) -> int:
    """What adding `block` to a list adds to its JSON: the block and a separator."""
    return len(json.dumps(block, ensure_ascii=False)) + 2
