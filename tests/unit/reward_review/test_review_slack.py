"""The review bot's requests as Slack gets them: UTF-8 JSON whatever a respondent wrote, and
Slack's own pause when a 429 names none."""

from __future__ import annotations

import json

import httpx
import pytest
from review_slack import ReviewSlack, SlackBusyError

RESPONSE_URL = "https://hooks.slack.com/actions/T0/1/abc"


def bot(handler: httpx.MockTransport) -> ReviewSlack:
    return ReviewSlack(None, httpx.Client(transport=handler))


def test_a_lone_surrogate_is_sent_as_the_replacement_character_in_utf_8() -> None:
    sent: list[httpx.Request] = []

    def slack(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, text="ok")

    bot(httpx.MockTransport(slack)).respond(RESPONSE_URL, {"text": "Love it \ud83d"})
    [request] = sent
    assert request.headers["content-type"] == "application/json; charset=utf-8"
    assert json.loads(request.content.decode("utf-8")) == {"text": "Love it \ufffd"}


@pytest.mark.parametrize(
    ("answer", "wait"),
    [
        (httpx.Response(429), 1.0),  # no Retry-After: Slack asks for about a second
        (httpx.Response(429, headers={"Retry-After": "7"}), 7.0),
    ],
)
def test_a_429_waits_what_slack_asks(answer: httpx.Response, wait: float) -> None:
    with pytest.raises(SlackBusyError) as raised:
        bot(httpx.MockTransport(lambda _: answer)).respond(RESPONSE_URL, {"text": "Decided"})
    assert raised.value.retry_after == wait
