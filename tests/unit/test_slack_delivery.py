"""slack_delivery's parts: the secret's two forms, the settings, and what Slack's answers mean."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from slack_delivery import (
    DEFAULT_API_URL,
    DEFAULT_RECONCILED_MAX_AGE_MINUTES,
    BotChannel,
    IncomingWebhook,
    Settings,
    SlackRateLimitedError,
    SlackRejectedError,
    SlackSecret,
    SlackUnavailableError,
    check_answer,
)
from slack_messages import DEFAULT_DASHBOARD_URL

from p4f.secrets import SecretFormatError

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

WEBHOOK_URL = "https://hooks.slack.com/services/T0/B0/s3cr3tpart"
TOKEN = "xoxb-1234-s3cr3t"


def read(secretsmanager: SecretsManagerClient, value: str) -> IncomingWebhook | BotChannel:
    secretsmanager.create_secret(Name="p4f/slack", SecretString=value)
    return SlackSecret("p4f/slack", boto3_client=secretsmanager).get()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"webhook_url": f" {WEBHOOK_URL} "}, IncomingWebhook(WEBHOOK_URL)),
        ({"bot_token": TOKEN, "channel": "C0123456789"}, BotChannel(TOKEN, "C0123456789")),
    ],
)
def test_the_secret_holds_a_webhook_url_or_a_bot_token_and_channel(
    secretsmanager: SecretsManagerClient, value: dict[str, str], expected: object
) -> None:
    assert read(secretsmanager, json.dumps(value)) == expected


@pytest.mark.parametrize(
    "value",
    [
        WEBHOOK_URL,
        json.dumps({"webhook_url": "ftp://hooks.slack.com/x"}),
        json.dumps({"bot_token": TOKEN}),
        json.dumps({"webhook_url": WEBHOOK_URL, "bot_token": TOKEN, "channel": "C1"}),
        json.dumps(["s3cr3tpart"]),
    ],
)
def test_a_secret_in_neither_form_says_which_forms_work_and_never_its_value(
    secretsmanager: SecretsManagerClient, value: str
) -> None:
    with pytest.raises(
        SecretFormatError, match=re.escape('"webhook_url": "https://hooks.slack.com')
    ) as raised:
        read(secretsmanager, value)
    assert "s3cr3t" not in str(raised.value)


def test_destinations_keep_their_secrets_out_of_their_repr() -> None:
    assert repr(IncomingWebhook(WEBHOOK_URL)) == "IncomingWebhook()"
    assert repr(BotChannel(TOKEN, "C1")) == "BotChannel(channel='C1')"


def test_the_settings_default_to_slacks_api_and_the_dashboard() -> None:
    needed = {"SLACK_SECRET_ARN": "arn:secret", "SLACK_LEDGER_TABLE": "t", "SLACK_QUEUE_URL": "q"}
    settings = Settings.from_env(needed)
    assert settings == Settings(
        "arn:secret",
        "t",
        "q",
        DEFAULT_API_URL,
        DEFAULT_DASHBOARD_URL,
        containers=1,
        reconciled_max_age=timedelta(minutes=DEFAULT_RECONCILED_MAX_AGE_MINUTES),
    )
    local = Settings.from_env(
        needed | {"SLACK_API_URL": "http://127.0.0.1:9/api/", "P4F_DASHBOARD_URL": "d"}
    )
    assert (local.slack_api_url, local.dashboard_url) == ("http://127.0.0.1:9/api", "d")


def web_api(status: int, body: Any, **headers: str) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


@pytest.mark.parametrize(
    "answer",
    [httpx.Response(200, text="ok"), web_api(200, {"ok": True, "channel": "C1", "ts": "1.2"})],
)
def test_a_posted_message_is_a_success(answer: httpx.Response) -> None:
    check_answer(answer, webhook=answer.headers.get("content-type") != "application/json")


@pytest.mark.parametrize(
    ("answer", "webhook", "error", "text"),
    [
        (httpx.Response(429, headers={"Retry-After": "4"}), True, SlackRateLimitedError, "4s"),
        (
            web_api(429, {"ok": False, "error": "ratelimited"}, **{"Retry-After": "2"}),
            False,
            SlackRateLimitedError,
            "2s",
        ),
        # Without Retry-After: about a second, as Slack asks (not the API reference's 30 s).
        (web_api(200, {"ok": False, "error": "ratelimited"}), False, SlackRateLimitedError, "1s"),
        (httpx.Response(429, text="rate_limited"), True, SlackRateLimitedError, "Retry-After 1s"),
        (httpx.Response(503, text="unavailable"), True, SlackUnavailableError, "HTTP 503"),
        (
            httpx.Response(400, text="invalid_blocks"),
            True,
            SlackRejectedError,
            "invalid_blocks; the message itself was refused: report this as a p4f-bridge bug",
        ),
        (
            web_api(
                200,
                {
                    "ok": False,
                    "error": "invalid_blocks",
                    "response_metadata": {"messages": ["[ERROR] too long"]},
                },
            ),
            False,
            SlackRejectedError,
            "invalid_blocks ([ERROR] too long)",
        ),
        (
            httpx.Response(404, text="no_service"),
            True,
            SlackRejectedError,
            "no_service; the incoming webhook is no longer valid (removed, or its app "
            "uninstalled): create a new one in Slack and put its URL in the Slack secret's "
            "webhook_url",
        ),
        (
            web_api(200, {"ok": False, "error": "invalid_auth"}),
            False,
            SlackRejectedError,
            "invalid_auth; put a valid bot token in the Slack secret's bot_token",
        ),
        (
            web_api(200, {"ok": False, "error": "not_in_channel"}),
            False,
            SlackRejectedError,
            "fix the channel in the Slack secret, and invite the app to it",
        ),
        # A webhook has no channel in the secret to fix: it needs a new webhook.
        (
            httpx.Response(404, text="channel_not_found"),
            True,
            SlackRejectedError,
            "channel_not_found; the incoming webhook's channel was deleted or archived: "
            "create an incoming webhook for a channel that exists",
        ),
        (
            httpx.Response(410, text="channel_is_archived"),
            True,
            SlackRejectedError,
            "create an incoming webhook for a channel that exists",
        ),
        (
            httpx.Response(403, text="action_prohibited"),
            True,
            SlackRejectedError,
            "create the incoming webhook for another channel",
        ),
        (
            web_api(200, {"ok": False, "error": "restricted_action"}),
            False,
            SlackRejectedError,
            "ask a Slack admin, or put another channel in the Slack secret",
        ),
        (
            web_api(200, {"ok": False, "error": "missing_scope"}),
            False,
            SlackRejectedError,
            "give the app the chat:write scope",
        ),
        (
            httpx.Response(200, text="<html>"),
            False,
            SlackRejectedError,
            "without the Web API's JSON",
        ),
    ],
)
def test_each_failure_answer_raises_what_it_means(
    answer: httpx.Response, webhook: bool, error: type[Exception], text: str
) -> None:
    with pytest.raises(error, match=re.escape(text)):
        check_answer(answer, webhook=webhook)


@pytest.mark.parametrize("error", ["channel_not_found", "channel_is_archived", "no_service"])
def test_advice_for_a_webhook_never_names_a_channel_or_token_in_the_secret(error: str) -> None:
    with pytest.raises(SlackRejectedError) as raised:
        check_answer(httpx.Response(404, text=error), webhook=True)
    advice = str(raised.value)
    assert "channel in the Slack secret" not in advice
    assert "bot token" not in advice
    assert "webhook_url" in advice
