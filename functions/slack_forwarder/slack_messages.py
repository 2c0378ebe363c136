"""Slack Block Kit messages for Pay4Feedback events: pure functions of the typed event.

    render(queued, links) -> SlackContent: the event's own message {"text", "blocks"}, and
                             its line in a digest
    digest(lines)         -> one message for several events of one type (a backlog)

A readable message per event type of the catalogue (what happened, to which campaign,
response or payout, the amounts, the score, the reason, a link to the dashboard), and a
generic one for a type this code does not know yet, showing only its ids and status (its
other fields may hold personal data). Respondents appear by their id, never by e-mail.

Every message stays inside Slack's limits with room to spare: a header of at most 150
characters, section texts well under 3,000, at most 10 fields of at most ~320, at most 15
blocks (a digest: DIGEST_EVENTS + 2), and blocks whose JSON is at most MESSAGE_BUDGET
characters (Slack refuses near 13,000): answers fill what the rest leaves, the last one
cut short if need be, and "N more answers in the dashboard" says what did not fit. A
digest holds at most DIGEST_EVENTS lines (one section each, every event linked) within
the same budget.

Text written by people (campaign names, prompts, answers, reasons) is shown as written,
never acted on (`escape`): &, < and > are escaped, so that "<!channel>" or "<https://x|y>"
is shown and not sent to everyone or linked; a *, _, ~ or ` that could format (one not
inside a word) is fenced by zero-width spaces, and a ">" that starts a line is preceded
by one, so that nothing in it bolds, strikes, quotes or opens code (and a prompt's own
asterisks do not end its bold); and every mrkdwn text object is `verbatim`, so that Slack
does not link URLs, channel names or @here in it.
Text is cut at a word boundary with "…", never inside an escape.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
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
_MORE_ANSWERS_RESERVE = 150
_LINE_ITEM_CHARS = 120
_LINE_FIELD_CHARS = 80
_LINE_NOTE_CHARS = 300
DIGEST_EVENTS = 20
"""The most events one digest lists."""
DIGEST_BUDGET = MESSAGE_BUDGET - 1_000
"""The most characters of JSON a digest's lines may have (its header and footer take the rest)."""
_WORD_SEARCH = 20
"""How far back a cut looks for a space, to end on a whole word."""
_ZWSP = "\u200b"
_FORMATTING_MARK = re.compile(r"(?<![^\W_])[*_~`]|[*_~`](?![^\W_])")
"""A *, _, ~ or ` that could open or close formatting: not between two letters or digits
(in "resp_4b1e" or "2*3" nothing formats, and an id stays as it is copied)."""
_QUOTE_AT_LINE_START = re.compile(r"^(?=&gt;)", re.MULTILINE)

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


class TextObject(TypedDict, total=False):
    type: Required[Literal["plain_text", "mrkdwn"]]
    text: Required[str]
    verbatim: bool


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
    item: str
    """What the event is about, as its line in a digest names it (and links it)."""
    subject: str = ""
    """What the header names after the title: a campaign's name, an amount, a score."""
    fields: Sequence[tuple[str, str]] = ()
    note: tuple[str, str] | None = None
    """A labelled paragraph: a rejection or failure reason, a campaign's description."""
    answers: Sequence[Answer] = ()


def render(queued: QueuedEvent, links: DashboardLinks) -> SlackMessage:
    """The Slack message for an event."""
    emoji, title = _title(queued.event.type)
    return _assemble(queued.event, emoji, title, _content(queued, links))


def digest_line(queued: QueuedEvent, links: DashboardLinks) -> SectionBlock:
    """The event's line in a digest: what it is about (linked), its fields and id, the
    reason or the first answer."""
    content = _content(queued, links)
    _, url = content.link
    parts = [f"<{_link(url)}|{clip(escape(content.item), _LINE_ITEM_CHARS)}>"]
    parts += [
        f"{label} {clip(escape(value), _LINE_FIELD_CHARS)}"
        for label, value in content.fields[:_MAX_FIELDS]
        if content.item not in {value, f"{label} {value}"}
    ]
    parts.append(clip(escape(queued.event.id), _LINE_FIELD_CHARS))  # to trace it by
    text = " · ".join(parts)
    if content.note is not None:
        label, note = content.note
        text += f"\n_{label}:_ {clip(escape(one_line(note)), _LINE_NOTE_CHARS)}"
    if content.answers:
        first = content.answers[0]
        shown = clip(escape(one_line(_answer_text(first.value))), _LINE_NOTE_CHARS)
        text += f"\n{_prompt(first.prompt)} {shown}"
    return _section(text)


def digest(events: Sequence[tuple[WebhookEvent, SectionBlock]]) -> SlackMessage:
    """One message for several events of one type: their `digest_line`s, in order."""
    event_type = events[0][0].type
    emoji, title = _title(event_type)
    headline = f"{title} ({len(events)} events)"
    earliest, latest = (when([event.created_at for event, _ in events]) for when in (min, max))
    span = _date(earliest) if earliest == latest else f"{_date(earliest)} to {_date(latest)}"
    footer: ContextBlock = {
        "type": "context",
        "elements": [
            _mrkdwn(
                f"`{clip(escape(str(event_type)), 64)}` · {len(events)} events, {span} · "
                "one message for many: Slack takes about one a second"
            )
        ],
    }
    return {
        "text": clip(escape(headline), _TEXT_CHARS),
        "blocks": [_header(f"{emoji} {headline}"), *(line for _, line in events), footer],
    }


def digest_groups[T](items: Sequence[T], line: Callable[[T], SectionBlock]) -> list[list[T]]:
    """`items` in order, in runs that each fit one digest: at most DIGEST_EVENTS lines, and
    lines of at most DIGEST_BUDGET characters of JSON in all."""
    groups: list[list[T]] = []
    room = 0
    for item in items:
        cost = _cost(line(item))
        if not groups or len(groups[-1]) == DIGEST_EVENTS or cost > room:
            groups.append([])
            room = DIGEST_BUDGET
        groups[-1].append(item)
        room -= cost
    return groups


def _title(event_type: str) -> tuple[str, str]:
    return _TITLES.get(event_type, (":information_source:", f"Pay4Feedback event {event_type}"))


def _content(queued: QueuedEvent, links: DashboardLinks) -> _Content:
    event, resource = queued.event, queued.resource
    match resource:
        case Campaign():
            return _campaign(event, resource, links)
        case Response():
            return _response(event, resource, links)
        case Payout():
            return _payout(event, resource, links)
        case Ping():
            return _Content(
                link=("Open Pay4Feedback", links.base_url),
                item=f"Webhook {resource.webhook_id}",
                fields=[("Webhook", resource.webhook_id)],
            )
        case _:
            return _unknown(event, links)


def _campaign(event: WebhookEvent, campaign: Campaign, links: DashboardLinks) -> _Content:
    limit = campaign.max_responses
    describe = event.type == EventType.CAMPAIGN_CREATED and campaign.description
    return _Content(
        link=("Open the campaign in Pay4Feedback", links.campaign(campaign.id)),
        item=campaign.name,
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
        item=f"Response {response.id}",
        subject=subject,
        fields=fields,
        note=note,
        answers=answers,
    )


def _payout(event: WebhookEvent, payout: Payout, links: DashboardLinks) -> _Content:
    failed = event.type == EventType.PAYOUT_FAILED
    return _Content(
        link=("Open the response in Pay4Feedback", links.response(payout.response_id)),
        item=f"Payout {payout.id}",
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
    return _Content(
        link=link, item=f"Event {event.id}", fields=[(n, str(v)) for n, v in ids.items()]
    )


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
            _mrkdwn(f"<{_link(url)}|{label}>"),
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
        prompt = _prompt(answer.prompt)
        value = escape(_answer_text(answer.value))
        limit = _ANSWER_CHARS
        block = _section(f"{prompt}\n{clip(value, limit)}")
        while (overflow := _cost(block) - room) > 0 and limit > _MIN_ANSWER_CHARS:
            limit = max(_MIN_ANSWER_CHARS, limit - overflow)
            block = _section(f"{prompt}\n{clip(value, limit)}")
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
    """`text` shown as written in mrkdwn: &, < and > escaped (nothing becomes a link or a
    mention), a *, _, ~ or ` that could format fenced by zero-width spaces (a mark inside
    a word formats nothing), and a ">" that starts a line kept from quoting it."""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    fenced = _FORMATTING_MARK.sub(lambda mark: f"{_ZWSP}{mark[0]}{_ZWSP}", escaped)
    return _QUOTE_AT_LINE_START.sub(_ZWSP, fenced)


def one_line(text: str) -> str:
    """`text` with its runs of white space (new lines too) as one space: bold does not
    span lines in mrkdwn."""
    return " ".join(text.split())


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


def _link(url: str) -> str:
    return url if len(url) <= _URL_CHARS else DEFAULT_DASHBOARD_URL


def _money(amount: Decimal, currency: str) -> str:
    return f"{amount} {currency}"


def _score(quality: Quality) -> str:
    return f"{quality.score:g}/100 · {quality.verdict}"


def _date(when: datetime) -> str:
    """A date Slack shows in the reader's time zone, with the UTC time as the fallback."""
    fallback = when.isoformat().replace("+00:00", "Z")
    return f"<!date^{int(when.timestamp())}^{{date_short_pretty}} at {{time}}|{fallback}>"


def _prompt(prompt: str) -> str:
    """A question's prompt in bold on one line, whatever it holds; "(no prompt)" for an
    empty one (two asterisks would show as such)."""
    shown = clip(escape(one_line(prompt)), _PROMPT_CHARS)
    return f"*{shown}*" if shown else "_(no prompt)_"


def _header(text: str) -> HeaderBlock:
    return {"type": "header", "text": {"type": "plain_text", "text": clip(text, _HEADER_CHARS)}}


def _section(text: str) -> SectionBlock:
    return {"type": "section", "text": _mrkdwn(text)}


def _mrkdwn(text: str) -> TextObject:
    # verbatim: Slack links no URL, channel name or @here of its own accord; the links and
    # dates written <...> here are the bridge's.
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def _size(blocks: Sequence[Block]) -> int:
    """The length of the blocks' JSON, as Slack's total limit is measured here."""
    return len(json.dumps(list(blocks), ensure_ascii=False))


def _cost(block: Block) -> int:
    """What adding `block` to a list adds to its JSON: the block and a separator."""
    return len(json.dumps(block, ensure_ascii=False)) + 2
