"""A local Slack: an incoming webhook and chat.postMessage, which check every message
against Slack's limits, answer as Slack does, and record what they got; and a Slack app's
interactivity: a page that shows the messages and whose buttons click as Slack's do.

    slack = LocalSlack()
    with ThreadedAsgiServer(slack.app, name="slack") as server:
        webhook_url = server.url + slack.webhook_path    # {"webhook_url": ...}
        api_url = server.url + "/api"                     # SLACK_API_URL, with slack.bot_token
        slack.interactivity_url = "<the app's Interactivity Request URL>"
        # GET server.url + "/": every message, its blocks readable, its buttons clickable

Incoming webhook: 200 "ok", or the error as text: 400 invalid_payload / invalid_blocks /
no_text / msg_too_long / msg_blocks_too_long, 404 no_service (an unknown webhook URL).
chat.postMessage: HTTP 200 with {"ok": true, "channel", "ts", "message"} or
{"ok": false, "error", "response_metadata": {"messages": [...]}} (not_authed,
invalid_auth, channel_not_found, and the message errors above). Both answer a 429 with
Retry-After, and so do posts beyond Slack's pace (`ChannelRateLimit`: about one message a
second per channel, short bursts allowed; a webhook is a channel of its own): HTTP 429
"rate_limited", or {"ok": false, "error": "ratelimited"}, with the seconds to wait. The
limits are Slack's, not the bridge's budgets inside them.

Interactivity, as Slack does it: a click on a button (on the page, or `click(...)`) POSTs a
`block_actions` payload (form-encoded `payload=<JSON>`, signed with `signing_secret` by
Slack's v0 scheme, `p4f.slack_signing`) to `interactivity_url`, with a `response_url` of this
server; a message POSTed there replaces the clicked message (`replace_original`) or is shown
to the clicker alone (`response_type: ephemeral`). Those posts are recorded and checked like
the others, and listed by `messages()` after what chat.postMessage posted.
"""

from __future__ import annotations

import json
import math
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, override
from urllib.parse import parse_qs, urlencode

import httpx
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Route

from local.recording import Answer, Fault, FaultKind, RecordingReceiver
from local.slack_page import render_page
from p4f.slack_signing import sign

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

BLOCK_TYPES = frozenset({"header", "section", "context", "divider", "actions"})
"""The block types the bridge's messages use; anything else is refused here."""
MAX_ACTION_ELEMENTS = 25
MAX_BUTTON_TEXT_CHARS = 75
MAX_BUTTON_VALUE_CHARS = 2000
MAX_ACTION_ID_CHARS = 255
DEFAULT_USERS = {"U0123": "ana", "U0456": "bo"}
"""The workspace's people, by user id: who can click on the page."""


@dataclass(frozen=True)
class ChannelRateLimit:
    """How fast Slack lets an app post to one channel: `per_second` messages a second on
    average, `burst` of them at once (Slack documents "1 per second, short bursts allowed")."""

    per_second: float = 1.0
    burst: int = 3


SLACK_RATE_LIMIT = ChannelRateLimit()


class _ChannelPace:
    """The rate limit of each channel (GCRA: when each channel's next message is due)."""

    def __init__(self, limit: ChannelRateLimit) -> None:
        self._interval = 1 / limit.per_second
        self._tolerance = (limit.burst - 1) * self._interval
        self._due: dict[str, float] = {}
        self._lock = threading.Lock()

    def wait_for(self, channel: str) -> float:
        """0 if a message may be posted to `channel` now (and count it); else the seconds
        until one may."""
        with self._lock:
            now = time.monotonic()
            due = max(self._due.get(channel, now), now)
            if due - now > self._tolerance:
                return due - now - self._tolerance
            self._due[channel] = due + self._interval
            return 0.0


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
            return _context_problems(block)
        case "actions":
            return _actions_problems(block)
    return []  # a divider has nothing to check


def _context_problems(block: dict[str, Any]) -> list[str]:
    elements = block.get("elements")
    if not isinstance(elements, list) or not 1 <= len(elements) <= MAX_CONTEXT_ELEMENTS:
        return [f"a context needs 1 to {MAX_CONTEXT_ELEMENTS} elements"]
    return [
        problem
        for i, element in enumerate(elements)
        for problem in _text_problems(element, f"elements/{i}", MAX_SECTION_CHARS)
    ]


def _actions_problems(block: dict[str, Any]) -> list[str]:
    elements = block.get("elements")
    if not isinstance(elements, list) or not 1 <= len(elements) <= MAX_ACTION_ELEMENTS:
        return [f"an actions block needs 1 to {MAX_ACTION_ELEMENTS} elements"]
    problems = []
    for i, button in enumerate(elements):
        where = f"elements/{i}"
        if not isinstance(button, dict) or button.get("type") != "button":
            problems.append(f"{where}: only buttons are supported here")
            continue
        problems += _text_problems(
            button.get("text"), f"{where}/text", MAX_BUTTON_TEXT_CHARS, plain_only=True
        )
        action_id = button.get("action_id")
        if not isinstance(action_id, str) or not 0 < len(action_id) <= MAX_ACTION_ID_CHARS:
            problems.append(f"{where}: action_id must be 1 to {MAX_ACTION_ID_CHARS} characters")
        if len(str(button.get("value", ""))) > MAX_BUTTON_VALUE_CHARS:
            problems.append(f"{where}: value must be at most {MAX_BUTTON_VALUE_CHARS} characters")
        if button.get("style") not in (None, "primary", "danger"):
            problems.append(f"{where}: style must be primary or danger")
    return problems


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


@dataclass
class PostedMessage:
    """A message chat.postMessage posted, as it is now (after response_url updates)."""

    channel: str
    ts: str
    text: str
    blocks: list[Any]
    posted_at: float
    updated_at: float | None = None
    """When a response_url post last replaced it."""
    ephemeral: list[tuple[str, str]] = field(default_factory=list)
    """Notes shown to one user only: (user id, text)."""


@dataclass(frozen=True)
class Click:
    """A click on a button, as sent to the interactivity URL, and Slack's side of it."""

    ts: str
    action_id: str
    user_id: str
    clicked_at: float
    status: int
    """What the interactivity URL answered (0: no answer)."""


class LocalSlack(RecordingReceiver):
    """Slack's incoming webhook, chat.postMessage and interactivity, on 127.0.0.1."""

    def __init__(
        self,
        *,
        webhook_path: str | None = None,
        bot_token: str | None = None,
        channels: frozenset[str] = frozenset({"C0LOCAL0001"}),
        hang_seconds: float = 2.0,
        users: dict[str, str] | None = None,
        rate_limit: ChannelRateLimit | None = SLACK_RATE_LIMIT,
    ) -> None:
        """`rate_limit` None: no pace is enforced (for tests whose clock is not the wall's)."""
        self.webhook_path = webhook_path or f"/services/T0LOCAL/B0LOCAL/{secrets.token_hex(12)}"
        self.bot_token = bot_token or f"xoxb-local-{secrets.token_hex(12)}"
        self.signing_secret = secrets.token_hex(16)
        """The Slack app's signing secret: every click is signed with it."""
        self.channels = channels
        self.users = dict(users or DEFAULT_USERS)
        self.interactivity_url: str | None = None
        """Where clicks go (the app's Interactivity Request URL); None: buttons do nothing."""
        self.base_url = ""
        """This server's own URL, for response_urls (set by whoever serves it)."""
        self._board: dict[str, PostedMessage] = {}
        self._clicks: list[Click] = []
        self._clickers: dict[str, str] = {}
        """Who clicked, by their response_url's token."""
        self._board_lock = threading.Lock()
        self._pace = _ChannelPace(rate_limit) if rate_limit is not None else None
        super().__init__(hang_seconds=hang_seconds)

    @override
    def paths(self) -> list[str]:
        return ["/services/{rest:path}", "/api/chat.postMessage", "/response/{ts}/{token}"]

    @override
    def other_routes(self) -> list[Route]:
        return [
            Route("/", self._page, methods=["GET"]),
            Route("/click", self._clicked, methods=["POST"]),
        ]

    def messages(self) -> list[dict[str, Any]]:
        """What was posted, in order: messages, and the posts to response_urls."""
        return self.accepted()

    def board(self) -> list[PostedMessage]:
        """The messages chat.postMessage posted, each as it is now."""
        with self._board_lock:
            return list(self._board.values())

    def clicks(self) -> list[Click]:
        with self._board_lock:
            return list(self._clicks)

    def click(self, ts: str, action_id: str, user_id: str) -> int:
        """Click a button of a posted message as `user_id`; what the app's URL answered."""
        message = self._message(ts)
        payload = self._payload(message, action_id, user_id)
        body = urlencode({"payload": json.dumps(payload)}).encode()
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "User-Agent": "Slackbot 1.0",
        }
        clicked_at = time.time()
        status = 0
        if self.interactivity_url is not None:
            try:
                status = httpx.post(
                    self.interactivity_url,
                    content=body,
                    headers=headers | sign(body, self.signing_secret),
                    timeout=3.0,  # Slack gives the app 3 s
                ).status_code
            except httpx.HTTPError:
                status = 0
        with self._board_lock:
            self._clicks.append(Click(ts, action_id, user_id, clicked_at, status))
        return status

    def response_url_for(self, ts: str, user_id: str) -> str:
        """A new response_url for a click by `user_id` on message `ts`."""
        token = secrets.token_hex(8)
        with self._board_lock:
            self._clickers[token] = user_id
        return f"{self.base_url}/response/{ts}/{token}"

    def _message(self, ts: str) -> PostedMessage:
        with self._board_lock:
            message = self._board.get(ts)
        if message is None:
            raise KeyError(f"no message {ts} was posted")
        return message

    def _payload(self, message: PostedMessage, action_id: str, user_id: str) -> dict[str, Any]:
        """A block_actions payload as Slack sends it (the fields apps use)."""
        button, block_id = next(
            (element, block.get("block_id"))
            for block in message.blocks
            if block.get("type") == "actions"
            for element in block.get("elements", [])
            if element.get("action_id") == action_id
        )
        now = f"{time.time():.6f}"
        return {
            "type": "block_actions",
            "user": {
                "id": user_id,
                "username": self.users.get(user_id, user_id),
                "name": self.users.get(user_id, user_id),
                "team_id": "T0LOCAL",
            },
            "api_app_id": "A0LOCAL",
            "team": {"id": "T0LOCAL", "domain": "local"},
            "container": {
                "type": "message",
                "message_ts": message.ts,
                "channel_id": message.channel,
                "is_ephemeral": False,
            },
            "trigger_id": f"{secrets.token_hex(8)}.local",
            "channel": {"id": message.channel, "name": "reward-reviews"},
            "message": {
                "type": "message",
                "ts": message.ts,
                "text": message.text,
                "blocks": message.blocks,
            },
            "response_url": self.response_url_for(message.ts, user_id),
            "actions": [
                {
                    "type": "button",
                    "action_id": action_id,
                    "block_id": block_id,
                    "text": button.get("text"),
                    "value": button.get("value"),
                    "style": button.get("style"),
                    "action_ts": now,
                }
            ],
        }

    @override
    def answer(self, request: Request, body: bytes) -> Answer:
        if request.url.path.startswith("/api/"):
            return self._post_message(request, body)
        if request.url.path.startswith("/response/"):
            return self._respond(request.path_params["ts"], request.path_params["token"], body)
        if request.url.path != self.webhook_path:
            return Answer(PlainTextResponse("no_service", 404), ("no_service",))
        problems = message_problems(_json_or_none(body))
        if problems:
            return Answer(PlainTextResponse(problems[0][0], 400), _details(problems))
        if wait := self._too_soon("webhook"):
            return Answer(self._rate_limited(wait, api=False), ("rate_limited",))
        return Answer(PlainTextResponse("ok"), accepted=True)

    def _too_soon(self, channel: str) -> float:
        """Seconds until a message may be posted to `channel`; 0: it may now (counted)."""
        return self._pace.wait_for(channel) if self._pace is not None else 0.0

    @staticmethod
    def _rate_limited(wait: float, *, api: bool) -> Response:
        headers = {"Retry-After": str(max(1, math.ceil(wait)))}
        if api:
            return JSONResponse({"ok": False, "error": "ratelimited"}, 429, headers)
        return PlainTextResponse("rate_limited", 429, headers)

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
        if wait := self._too_soon(str(channel)):
            return Answer(self._rate_limited(wait, api=True), ("ratelimited",))
        assert isinstance(payload, dict)  # noqa: S101 (message_problems found it is one)
        message = {"type": "message", "text": payload["text"], "blocks": payload.get("blocks")}
        ts = f"{time.time():.6f}"
        with self._board_lock:
            while ts in self._board:  # one ts a message, as in Slack
                ts = f"{float(ts) + 0.000001:.6f}"
            self._board[ts] = PostedMessage(
                str(channel), ts, payload["text"], list(payload.get("blocks") or []), time.time()
            )
        return Answer(
            JSONResponse({"ok": True, "channel": channel, "ts": ts, "message": message}),
            accepted=True,
        )

    def _respond(self, ts: str, token: str, body: bytes) -> Answer:
        """A post to a click's response_url: Slack answers 200 "ok" or 404 for an unknown one."""
        payload = _json_or_none(body)
        with self._board_lock:
            message = self._board.get(ts)
            clicker = self._clickers.get(token)
            if message is None or clicker is None:
                return Answer(PlainTextResponse("no_message", 404), ("no_message",))
            problems = message_problems(payload)
            if problems:
                return Answer(PlainTextResponse(problems[0][0], 400), _details(problems))
            assert isinstance(payload, dict)  # noqa: S101 (message_problems found it is one)
            if payload.get("response_type") == "ephemeral":
                message.ephemeral.append((clicker, str(payload["text"])))
            elif payload.get("replace_original", True) is not False:
                message.text = str(payload["text"])
                message.blocks = list(payload.get("blocks") or [])
                message.updated_at = time.time()
        return Answer(PlainTextResponse("ok"), accepted=True)

    async def _page(self, request: Request) -> Response:
        refresh = request.query_params.get("refresh", "3")
        return HTMLResponse(render_page(self.board(), self.users, refresh=refresh))

    async def _clicked(self, request: Request) -> Response:
        form = parse_qs((await request.body()).decode())
        ts, action_id, user_id = (form.get(name, [""])[0] for name in ("ts", "action_id", "user"))
        from starlette.concurrency import run_in_threadpool

        await run_in_threadpool(self.click, ts, action_id, user_id)
        return RedirectResponse(f"/?refresh={request.query_params.get('refresh', '3')}", 303)

    @override
    def fault_answer(self, request: Request, fault: Fault) -> Response:
        api = request.url.path.startswith("/api/")
        if fault.kind is FaultKind.RATE_LIMITED:
            return self._rate_limited(fault.retry_after, api=api)
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
