"""A local Slack: an incoming webhook and chat.postMessage, which check every message
against Slack's limits, answer as Slack does, and record what they got.

    slack = LocalSlack()
    with ThreadedAsgiServer(slack.app, name="slack") as server:
        webhook_url = server.url + slack.webhook_path    # {"webhook_url": ...}
        api_url = server.url + "/api"                     # SLACK_API_URL, with slack.bot_token

Incoming webhook: 200 "ok", or the error as text: 400 invalid_payload / invalid_blocks /
no_text / msg_too_long / msg_blocks_too_long, 404 no_service (an unknown webhook URL).
chat.postMessage: HTTP 200 with {"ok": true, "channel", "ts", "message"} or
{"ok": false, "error", "response_metadata": {"messages": [...]}} (not_authed,
invalid_auth, channel_not_found, and the message errors above). Both answer a 429 with
Retry-After. The limits are Slack's, not the bridge's budgets inside them.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import TYPE_CHECKING, Any, override

from starlette.responses import JSONResponse, PlainTextResponse, Response

from local.recording import Answer, Fault, FaultKind, RecordingReceiver

if TYPE_CHECKING:
    from starlette.requests import Request

MAX_BLOCKS = 50
MAX_HEADER_CHARS = 150
MAX_SECTION_CHARS = 3000
MAX_FIELDS = 10
MAX_FIELD_CHARS = 2000
MAX_CONTEXT_ELEMENTS = 10
MAX_TEXT_CHARS = 40_000
"""Slack refuses a `text` longer than this (msg_too_long)."""
MAX_BLOCKS_CHARS = 13_000
"""Near this total Slack answers msg_blocks_too_long, even inside the per-block limits;
measured here as the length of the blocks' JSON."""

BLOCK_TYPES = frozenset({"header", "section", "context", "divider"})
"""The block types the bridge's messages use; anything else is refused here."""

type Problem = tuple[str, str]
"""Slack's error code, and what exactly is wrong."""


def message_problems(payload: object) -> list[Problem]:
    """What Slack would refuse in a message payload (`text` and `blocks`); [] if nothing."""
    if not isinstance(payload, dict):
        return [("invalid_payload", "the body is not a JSON object")]
    problems: list[Problem] = []
    text = payload.get("text")
    if not isinstance(text, str) or not text.strip():
        problems.append(("no_text", "text (the notification and fallback) is missing or empty"))
    elif len(text) > MAX_TEXT_CHARS:
        problems.append(("msg_too_long", f"text has {len(text)} characters"))
    blocks = payload.get("blocks", [])
    if not isinstance(blocks, list):
        return [*problems, ("invalid_blocks", "blocks is not a list")]
    if len(blocks) > MAX_BLOCKS:
        problems.append(("invalid_blocks", f"{len(blocks)} blocks, more than {MAX_BLOCKS}"))
    for index, block in enumerate(blocks):
        problems += [("invalid_blocks", f"/blocks/{index}: {p}") for p in _block_problems(block)]
    size = len(json.dumps(blocks, ensure_ascii=False))
    if size > MAX_BLOCKS_CHARS:
        problems.append(("msg_blocks_too_long", f"the blocks have {size} characters"))
    return problems


def _block_problems(block: object) -> list[str]:
    if not isinstance(block, dict) or block.get("type") not in BLOCK_TYPES:
        kind = block.get("type") if isinstance(block, dict) else type(block).__name__
        return [f"unsupported block {kind!r}"]
    match block["type"]:
        case "header":
            return _text_problems(block.get("text"), "text", MAX_HEADER_CHARS, plain_only=True)
        case "section":
            return _section_problems(block)
        case "context":
            elements = block.get("elements")
            if not isinstance(elements, list) or not 1 <= len(elements) <= MAX_CONTEXT_ELEMENTS:
                return [f"a context needs 1 to {MAX_CONTEXT_ELEMENTS} elements"]
            return [
                problem
                for i, element in enumerate(elements)
                for problem in _text_problems(element, f"elements/{i}", MAX_SECTION_CHARS)
            ]
    return []  # a divider has nothing to check


def _section_problems(block: dict[str, Any]) -> list[str]:
    if "text" not in block and "fields" not in block:
        return ["a section needs text or fields"]
    problems = []
    if "text" in block:
        problems += _text_problems(block["text"], "text", MAX_SECTION_CHARS)
    if "fields" in block:
        fields = block["fields"]
        if not isinstance(fields, list) or not 1 <= len(fields) <= MAX_FIELDS:
            return [*problems, f"a section has 1 to {MAX_FIELDS} fields"]
        for i, field in enumerate(fields):
            problems += _text_problems(field, f"fields/{i}", MAX_FIELD_CHARS)
    return problems


def _text_problems(text: object, where: str, limit: int, *, plain_only: bool = False) -> list[str]:
    kinds = {"plain_text"} if plain_only else {"plain_text", "mrkdwn"}
    if not isinstance(text, dict) or text.get("type") not in kinds:
        return [f"{where}: not a text object of type {' or '.join(sorted(kinds))}"]
    value = text.get("text")
    if not isinstance(value, str) or not value:
        return [f"{where}: must be more than 0 characters"]
    if len(value) > limit:
        return [f"{where}: must be less than {limit + 1} characters, has {len(value)}"]
    return []


class LocalSlack(RecordingReceiver):
    """Slack's incoming webhook and chat.postMessage, on 127.0.0.1."""

    def __init__(
        self,
        *,
        webhook_path: str | None = None,
        bot_token: str | None = None,
        channels: frozenset[str] = frozenset({"C0LOCAL0001"}),
        hang_seconds: float = 2.0,
    ) -> None:
        self.webhook_path = webhook_path or f"/services/T0LOCAL/B0LOCAL/{secrets.token_hex(12)}"
        self.bot_token = bot_token or f"xoxb-local-{secrets.token_hex(12)}"
        self.channels = channels
        super().__init__(hang_seconds=hang_seconds)

    @override
    def paths(self) -> list[str]:
        return ["/services/{rest:path}", "/api/chat.postMessage"]

    def messages(self) -> list[dict[str, Any]]:
        """The messages Slack posted, in order."""
        return self.accepted()

    @override
    def answer(self, request: Request, body: bytes) -> Answer:
        if request.url.path.startswith("/api/"):
            return self._post_message(request, body)
        if request.url.path != self.webhook_path:
            return Answer(PlainTextResponse("no_service", 404), ("no_service",))
        problems = message_problems(_json_or_none(body))
        if problems:
            return Answer(PlainTextResponse(problems[0][0], 400), _details(problems))
        return Answer(PlainTextResponse("ok"), accepted=True)

    def _post_message(self, request: Request, body: bytes) -> Answer:
        authorization = request.headers.get("authorization", "")
        if not authorization:
            return _api_error("not_authed")
        if authorization != f"Bearer {self.bot_token}":
            return _api_error("invalid_auth")
        payload = _json_or_none(body)
        channel = payload.get("channel") if isinstance(payload, dict) else None
        if channel not in self.channels:
            return _api_error("channel_not_found")
        problems = message_problems(payload)
        if problems:
            return _api_error(problems[0][0], _details(problems))
        assert isinstance(payload, dict)  # noqa: S101 (message_problems found it is one)
        message = {"type": "message", "text": payload["text"], "blocks": payload.get("blocks")}
        ts = f"{time.time():.6f}"
        return Answer(
            JSONResponse({"ok": True, "channel": channel, "ts": ts, "message": message}),
            accepted=True,
        )

    @override
    def fault_answer(self, request: Request, fault: Fault) -> Response:
        api = request.url.path.startswith("/api/")
        if fault.kind is FaultKind.RATE_LIMITED:
            headers = {"Retry-After": str(fault.retry_after)}
            if api:
                return JSONResponse({"ok": False, "error": "ratelimited"}, 429, headers)
            return PlainTextResponse("rate_limited", 429, headers)
        if api:
            return JSONResponse({"ok": False, "error": "internal_error"}, 500)
        return PlainTextResponse("internal_error", 500)


def _json_or_none(body: bytes) -> object:
    try:
        return json.loads(body)
    except ValueError:
        return None


def _details(problems: list[Problem]) -> tuple[str, ...]:
    return tuple(f"[ERROR] {detail}" for _, detail in problems)


def _api_error(error: str, details: tuple[str, ...] = ()) -> Answer:
    body: dict[str, Any] = {"ok": False, "error": error}
    if details:
        body["response_metadata"] = {"messages": list(details)}
    return Answer(JSONResponse(body), details or (error,))
