"""Posting the review messages: chat.postMessage with the Slack app's bot token, and the
updates after a click through the click's `response_url`.

A bot token, not an incoming webhook: chat.postMessage answers with the message's channel
and `ts`, which the review table keeps beside the response, and the bot posts to the channel
the secret names. The secret (Parameter RewardReviewSlackSecretArn) holds
{"bot_token": "xoxb-...", "channel": "C0123456789"}; the token is never logged, never in a
repr or an error message.

    ReviewSlackError            Slack did not take the message
    ├── SlackBusyError          429 (Retry-After), 5xx, or no answer: try again later
    └── SlackRefusedError       Slack refused it (its error code says why): a setup to fix
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from p4f.forwarding import encode_json
from p4f.retries import SLACK_RETRY_AFTER_SECONDS, retry_after
from p4f.secrets import CachedSecret, SecretFormatError

if TYPE_CHECKING:
    from collections.abc import Mapping

DEFAULT_API_URL = "https://slack.com/api"
REQUEST_TIMEOUT_SECONDS = 5.0
_BUSY_RETRY_SECONDS = 10.0


class ReviewSlackError(Exception):
    """Slack did not take the message."""


class SlackBusyError(ReviewSlackError):
    """Slack asked for a pause (429), failed (5xx) or did not answer: try again later."""

    def __init__(self, message: str, retry_after: float = _BUSY_RETRY_SECONDS) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class SlackRefusedError(ReviewSlackError):
    """Slack refused the message or the bot (not_authed, channel_not_found, ...)."""


@dataclass(frozen=True)
class BotChannel:
    token: str = field(repr=False)
    channel: str


@dataclass(frozen=True)
class Posted:
    channel: str
    ts: str


class ReviewSlackSecret(CachedSecret[BotChannel]):
    """The review bot: {"bot_token": "xoxb-...", "channel": "C..."}."""

    def _parse(self, secret_string: str) -> BotChannel:
        try:
            parsed: Any = json.loads(secret_string)
        except json.JSONDecodeError:
            parsed = None
        if isinstance(parsed, dict):
            token, channel = (
                str(parsed.get(name) or "").strip() for name in ("bot_token", "channel")
            )
            if token and channel:
                return BotChannel(token, channel)
        raise SecretFormatError(
            f'secret {self.secret_id!r} must hold {{"bot_token": "xoxb-...", "channel": "C..."}}'
        )


class ReviewSlack:
    """The review bot's two ways of talking to Slack."""

    def __init__(
        self, secret: ReviewSlackSecret | None, http: httpx.Client, api_url: str = DEFAULT_API_URL
    ) -> None:
        """`secret` None: no bot is configured, and a message to post is refused."""
        self._secret = secret
        self._http = http
        self._api_url = api_url.rstrip("/")

    def post(self, message: Mapping[str, Any]) -> Posted:
        """Post a new message to the review channel."""
        if self._secret is None:
            raise SlackRefusedError(
                "no Slack bot is configured for the review (RewardReviewSlackSecretArn)"
            )
        bot = self._secret.get()
        answer = self._send(
            f"{self._api_url}/chat.postMessage",
            {**message, "channel": bot.channel, "unfurl_links": False, "unfurl_media": False},
            {"Authorization": f"Bearer {bot.token}"},
        )
        payload = _web_api_payload(answer)
        return Posted(str(payload.get("channel") or bot.channel), str(payload.get("ts")))

    def respond(self, response_url: str, message: Mapping[str, Any]) -> None:
        """Update the clicked message (or tell the clicker something) through response_url."""
        if not response_url.startswith(("https://", "http://")):
            raise SlackRefusedError("the click's response_url is not an http(s) URL")
        answer = self._send(response_url, dict(message), {})
        if answer.status_code != 200:
            raise SlackRefusedError(f"Slack refused the update: HTTP {answer.status_code}")

    def _send(self, url: str, body: dict[str, Any], headers: dict[str, str]) -> httpx.Response:
        # encode_json: a respondent's half emoji (a lone surrogate) in the message cannot
        # be UTF-8 as it is, and must not fail the batch.
        headers = {**headers, "Content-Type": "application/json; charset=utf-8"}
        try:
            answer = self._http.post(
                url, content=encode_json(body), headers=headers, timeout=REQUEST_TIMEOUT_SECONDS
            )
        except httpx.TransportError as exc:
            raise SlackBusyError(f"Slack did not answer ({type(exc).__name__})") from exc
        if answer.status_code == 429:
            wait = retry_after(answer, SLACK_RETRY_AFTER_SECONDS)
            raise SlackBusyError(f"Slack answered 429, Retry-After {wait:g}s", wait)
        if answer.status_code >= 500:
            raise SlackBusyError(f"Slack answered HTTP {answer.status_code}")
        return answer


def _web_api_payload(answer: httpx.Response) -> dict[str, Any]:
    try:
        payload: Any = answer.json()
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        raise SlackRefusedError(f"HTTP {answer.status_code} without the Web API's JSON answer")
    if payload.get("ok") is True:
        return payload
    error = str(payload.get("error") or f"HTTP {answer.status_code}")
    if error == "ratelimited":
        raise SlackBusyError(
            "Slack answered ratelimited", retry_after(answer, SLACK_RETRY_AFTER_SECONDS)
        )
    raise SlackRefusedError(
        f"Slack refused the review message: {error} (check the bot token, its chat:write "
        "scope, and that the app is in the channel)"
    )
