"""The local Slack's page: every message the bridge posted, its blocks readable as Slack would
show them, and its buttons clickable (a form per button, posted to the local Slack's /click,
which sends Slack's signed interaction payload to the app).

Text is escaped for HTML (what respondents wrote is shown, never run); `mrkdwn` keeps its
bold and its mentions readable, `plain_text` is shown as typed.
"""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from local.slack_receiver import PostedMessage

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 52em; color: #1d1c1d; }
.message { border: 1px solid #ddd; border-radius: 8px; padding: 1em 1.2em; margin: 1em 0; }
.header { font-size: 1.25em; font-weight: bold; margin: 0.2em 0 0.5em; }
.fields { display: grid; grid-template-columns: 1fr 1fr; gap: 0.3em 1.5em; margin: 0.5em 0; }
.section { white-space: pre-wrap; margin: 0.5em 0; }
.context { color: #616061; font-size: 0.9em; margin: 0.5em 0; }
.actions { display: flex; gap: 0.5em; align-items: center; margin-top: 0.8em; }
.actions form { display: inline; }
button { padding: 0.4em 1em; border-radius: 4px; border: 1px solid #bbb; background: #fff; }
button.primary { background: #007a5a; color: #fff; border-color: #007a5a; }
button.danger { background: #e01e5a; color: #fff; border-color: #e01e5a; }
.ephemeral { background: #f8f8f8; border-left: 3px solid #1264a3; padding: 0.3em 0.6em; }
.meta { color: #999; font-size: 0.8em; }
"""


def _text(text: Any) -> str:
    """A text object as HTML: plain_text as typed, mrkdwn with *bold* and <@U...> shown."""
    if not isinstance(text, dict):
        return ""
    escaped = html.escape(str(text.get("text", "")))
    if text.get("type") == "mrkdwn":
        escaped = re.sub(r"\*([^*\n]+)\*", r"<b>\1</b>", escaped)
        escaped = re.sub(r"&lt;@([UW][A-Z0-9]+)&gt;", r"<b>@\1</b>", escaped)
    return escaped


def _block(block: Mapping[str, Any], ts: str, users: Mapping[str, str], refresh: str) -> str:
    kind = block.get("type")
    if kind == "header":
        return f'<div class="header">{_text(block.get("text"))}</div>'
    if kind == "section":
        parts = []
        if "text" in block:
            parts.append(f'<div class="section">{_text(block["text"])}</div>')
        if "fields" in block:
            cells = "".join(f"<div>{_text(f)}</div>" for f in block["fields"])
            parts.append(f'<div class="fields">{cells}</div>')
        return "".join(parts)
    if kind == "context":
        return '<div class="context">' + " ".join(_text(e) for e in block["elements"]) + "</div>"
    if kind == "actions":
        return _actions(block, ts, users, refresh)
    return "<hr>" if kind == "divider" else ""


def _actions(block: Mapping[str, Any], ts: str, users: Mapping[str, str], refresh: str) -> str:
    options = "".join(
        f'<option value="{html.escape(user_id)}">{html.escape(name)} ({html.escape(user_id)})'
        "</option>"
        for user_id, name in users.items()
    )
    buttons = []
    for button in block.get("elements", []):
        label = _text(button.get("text"))
        style = html.escape(str(button.get("style") or ""))
        if "url" in button:
            buttons.append(f'<a href="{html.escape(str(button["url"]))}">{label}</a>')
            continue
        action_id = html.escape(str(button.get("action_id", "")))
        buttons.append(
            f'<form method="post" action="/click?refresh={html.escape(refresh)}">'
            f'<input type="hidden" name="ts" value="{html.escape(ts)}">'
            f'<input type="hidden" name="action_id" value="{action_id}">'
            f'<input type="hidden" name="user" class="clicker">'
            f'<button type="submit" class="{style}" data-action="{action_id}">{label}</button>'
            "</form>"
        )
    picker = (
        f'<label>clicking as <select class="user" onchange="pick(this)">{options}</select></label>'
    )
    return f'<div class="actions">{"".join(buttons)}{picker}</div>'


def _message(message: PostedMessage, users: Mapping[str, str], refresh: str) -> str:
    blocks = "".join(_block(b, message.ts, users, refresh) for b in message.blocks)
    notes = "".join(
        f'<div class="ephemeral">Only visible to {html.escape(users.get(user, user))}: '
        f"{_text({'type': 'mrkdwn', 'text': text})}</div>"
        for user, text in message.ephemeral
    )
    posted = datetime.fromtimestamp(message.posted_at, UTC).strftime("%H:%M:%S")
    updated = (
        f", updated {datetime.fromtimestamp(message.updated_at, UTC):%H:%M:%S}"
        if message.updated_at
        else ""
    )
    content = blocks or _text({"type": "plain_text", "text": message.text})
    return (
        f'<div class="message" id="m-{html.escape(message.ts)}">{content}'
        f'{notes}<div class="meta">#{html.escape(message.channel)} · ts {html.escape(message.ts)}'
        f" · posted {posted} UTC{updated}</div></div>"
    )


def render_page(
    board: Sequence[PostedMessage], users: Mapping[str, str], *, refresh: str = "3"
) -> str:
    """The whole page: newest message first. `refresh`: seconds between reloads, 0 for none."""
    reload = (
        f'<meta http-equiv="refresh" content="{int(refresh)}">'
        if refresh.isdigit() and int(refresh)
        else ""
    )
    script = (
        "<script>function pick(s){s.closest('.actions').querySelectorAll('.clicker')"
        ".forEach(i=>i.value=s.value)}document.querySelectorAll('select.user').forEach(pick)"
        "</script>"
    )
    messages = "".join(_message(m, users, refresh) for m in reversed(board)) or (
        "<p>No messages yet.</p>"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'>{reload}"
        f"<title>Local Slack</title><style>{_STYLE}</style></head><body>"
        f"<h1>Local Slack: #reward-reviews</h1>{messages}{script}</body></html>"
    )
