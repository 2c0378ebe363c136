"""The local Slack and Segment refuse what the real ones refuse, record what they get, and
answer injected faults, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from local.asgi_server import ThreadedAsgiServer
from local.recording import Fault, FaultKind
from local.segment_receiver import LocalSegment
from local.slack_receiver import ChannelRateLimit, LocalSlack, message_problems


def header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": {"type": "plain_text", "text": text}}


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def fields(*texts: str) -> dict[str, Any]:
    return {"type": "section", "fields": [{"type": "mrkdwn", "text": t} for t in texts]}


VALID_MESSAGE: dict[str, Any] = {
    "text": "Reward approved: 5.00 USD",
    "blocks": [
        header("Reward approved"),
        fields("*Reward*\n5.00 USD"),
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "evt_1"}]},
        {"type": "divider"},
    ],
}


def test_a_valid_message_has_no_problems() -> None:
    assert message_problems(VALID_MESSAGE) == []


@pytest.mark.parametrize(
    ("message", "code", "detail"),
    [
        ({"blocks": []}, "no_text", "text"),
        ({"text": "  "}, "no_text", "text"),
        ({"text": "x" * 40_001}, "msg_too_long", "40001"),
        ({"text": "t", "blocks": [section("s")] * 51}, "invalid_blocks", "51 blocks"),
        ({"text": "t", "blocks": [header("h" * 151)]}, "invalid_blocks", "less than 151"),
        (
            {"text": "t", "blocks": [{"type": "header", "text": {"type": "mrkdwn", "text": "h"}}]},
            "invalid_blocks",
            "plain_text",
        ),
        ({"text": "t", "blocks": [section("s" * 3001)]}, "invalid_blocks", "less than 3001"),
        ({"text": "t", "blocks": [section("")]}, "invalid_blocks", "more than 0"),
        ({"text": "t", "blocks": [fields(*["f"] * 11)]}, "invalid_blocks", "1 to 10 fields"),
        ({"text": "t", "blocks": [fields("f" * 2001)]}, "invalid_blocks", "fields/0"),
        ({"text": "t", "blocks": [{"type": "section"}]}, "invalid_blocks", "text or fields"),
        ({"text": "t", "blocks": [{"type": "video"}]}, "invalid_blocks", "'video'"),
        ({"text": "t", "blocks": [section("s" * 2900)] * 5}, "msg_blocks_too_long", "blocks have"),
    ],
)
def test_messages_beyond_slacks_limits_are_refused_with_slacks_error(
    message: dict[str, Any], code: str, detail: str
) -> None:
    problems = message_problems(message)
    assert problems, "the message should have been refused"
    assert problems[0][0] == code
    assert any(detail in text for _, text in problems)


@pytest.fixture
def slack() -> Iterator[tuple[LocalSlack, str]]:
    receiver = LocalSlack(hang_seconds=0.3)
    with ThreadedAsgiServer(receiver.app, name="slack") as server:
        yield receiver, server.url


def test_the_webhook_posts_a_valid_message_and_refuses_an_invalid_one(
    slack: tuple[LocalSlack, str],
) -> None:
    receiver, url = slack
    posted = httpx.post(url + receiver.webhook_path, json=VALID_MESSAGE)
    assert (posted.status_code, posted.text) == (200, "ok")
    refused = httpx.post(url + receiver.webhook_path, json={"text": "t", "blocks": [section("")]})
    assert (refused.status_code, refused.text) == (400, "invalid_blocks")
    unknown = httpx.post(url + "/services/T0/B0/revoked", json=VALID_MESSAGE)
    assert (unknown.status_code, unknown.text) == (404, "no_service")
    assert receiver.messages() == [VALID_MESSAGE]
    assert [r.accepted for r in receiver.requests] == [True, False, False]
    assert receiver.requests[1].problems == (
        "[ERROR] /blocks/0: text: must be more than 0 characters",
    )


def test_chat_post_message_checks_token_channel_and_blocks(slack: tuple[LocalSlack, str]) -> None:
    receiver, url = slack
    api = url + "/api/chat.postMessage"
    auth = {"Authorization": f"Bearer {receiver.bot_token}"}
    [channel] = receiver.channels

    def post(body: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
        answer = httpx.post(api, json=body, headers=headers)
        assert answer.status_code == 200  # the Web API says what went wrong in the body
        result: dict[str, Any] = answer.json()
        return result

    assert post(VALID_MESSAGE | {"channel": channel}, {})["error"] == "not_authed"
    wrong = {"Authorization": "Bearer xoxb-wrong"}
    assert post(VALID_MESSAGE | {"channel": channel}, wrong)["error"] == "invalid_auth"
    assert post(VALID_MESSAGE | {"channel": "C0NOPE"}, auth)["error"] == "channel_not_found"
    invalid = post({"channel": channel, "text": "t", "blocks": [header("h" * 151)]}, auth)
    assert invalid["error"] == "invalid_blocks"
    assert "less than 151" in invalid["response_metadata"]["messages"][0]
    posted = post(VALID_MESSAGE | {"channel": channel}, auth)
    assert posted["ok"] is True
    assert posted["channel"] == channel
    assert float(posted["ts"]) > 0
    assert receiver.messages() == [VALID_MESSAGE | {"channel": channel}]


def test_injected_faults_answer_the_next_requests_in_order(slack: tuple[LocalSlack, str]) -> None:
    receiver, url = slack
    receiver.inject(Fault(FaultKind.RATE_LIMITED, retry_after=7), times=2)
    receiver.inject(Fault(FaultKind.SERVER_ERROR))
    receiver.inject(Fault(FaultKind.HANG))
    webhook = url + receiver.webhook_path
    first, second = httpx.post(webhook, json=VALID_MESSAGE), httpx.post(webhook, json=VALID_MESSAGE)
    assert (first.status_code, first.headers["retry-after"]) == (429, "7")
    assert second.status_code == 429
    assert httpx.post(webhook, json=VALID_MESSAGE).status_code == 500
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(webhook, json=VALID_MESSAGE, timeout=0.1)
    assert httpx.post(webhook, json=VALID_MESSAGE).status_code == 200
    assert [r.fault for r in receiver.requests] == [
        FaultKind.RATE_LIMITED,
        FaultKind.RATE_LIMITED,
        FaultKind.SERVER_ERROR,
        FaultKind.HANG,
        None,
    ]
    assert len(receiver.messages()) == 1


def test_a_rate_limited_web_api_call_says_ratelimited(slack: tuple[LocalSlack, str]) -> None:
    receiver, url = slack
    receiver.inject(Fault(FaultKind.RATE_LIMITED, retry_after=3))
    answer = httpx.post(url + "/api/chat.postMessage", json=VALID_MESSAGE)
    assert answer.status_code == 429
    assert answer.headers["retry-after"] == "3"
    assert answer.json() == {"ok": False, "error": "ratelimited"}


@pytest.fixture
def segment() -> Iterator[tuple[LocalSegment, str]]:
    receiver = LocalSegment()
    with ThreadedAsgiServer(receiver.app, name="segment") as server:
        yield receiver, server.url


TRACK: dict[str, Any] = {
    "type": "track",
    "event": "Reward Approved",
    "userId": "resp_1",
    "properties": {"response_id": "r1"},
    "timestamp": "2026-04-19T14:22:51Z",
    "messageId": "evt_1",
}


def utf8(body: object) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def send(url: str, body: object, write_key: str) -> httpx.Response:
    return httpx.post(
        url + "/v1/batch",
        content=body if isinstance(body, bytes) else json.dumps(body).encode(),
        auth=(write_key, ""),
        headers={"Content-Type": "application/json"},
    )


def test_segment_takes_a_valid_batch(segment: tuple[LocalSegment, str]) -> None:
    receiver, url = segment
    identify = {"type": "identify", "userId": "resp_1", "traits": {"email": "a@example.com"}}
    answer = send(url, {"batch": [identify, TRACK]}, receiver.write_key)
    assert (answer.status_code, answer.json()) == (200, {"success": True})
    assert receiver.calls() == [identify, TRACK]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"not json", "not JSON"),
        ({"batch": []}, "no batch"),
        ({"batch": [TRACK | {"type": "page"}]}, "type 'page'"),
        ({"batch": [{k: v for k, v in TRACK.items() if k != "event"}]}, "needs an event name"),
        (
            {"batch": [{k: v for k, v in TRACK.items() if k != "userId"}]},
            "userId or an anonymousId",
        ),
        ({"batch": [TRACK | {"messageId": "m" * 100}]}, "under 100 characters"),
        ({"batch": [TRACK | {"timestamp": "yesterday"}]}, "not ISO 8601"),
        ({"batch": [TRACK | {"properties": {"p": "x" * 32_768}}]}, "more than 32768"),
        ({"batch": [TRACK | {"properties": {"p": "x" * 30_000}}] * 17}, "more than 500000"),
        # Sent as compact UTF-8, counted as analytics-python counts (escaped): a call of
        # 11 KB that counts 33 KB, and a batch of 170 KB that counts 510 KB.
        (utf8({"batch": [TRACK | {"properties": {"p": "\u00e9" * 5_500}}]}), "more than 32768"),
        (utf8({"batch": [TRACK | {"properties": {"p": "\u00e9" * 5_000}}] * 17}), "batch counts"),
    ],
)
def test_segment_refuses_what_breaks_its_rules_with_400(
    segment: tuple[LocalSegment, str], body: object, problem: str
) -> None:
    receiver, url = segment
    answer = send(url, body, receiver.write_key)
    assert answer.status_code == 400
    assert answer.json()["success"] is False
    assert problem in answer.json()["error"]
    assert receiver.calls() == []


def test_segment_refuses_another_write_key_and_answers_faults(
    segment: tuple[LocalSegment, str],
) -> None:
    receiver, url = segment
    assert send(url, {"batch": [TRACK]}, "not-the-key").status_code == 400
    receiver.inject(Fault(FaultKind.RATE_LIMITED, retry_after=4))
    receiver.inject(Fault(FaultKind.SERVER_ERROR))
    limited = send(url, {"batch": [TRACK]}, receiver.write_key)
    assert (limited.status_code, limited.headers["retry-after"]) == (429, "4")
    assert send(url, {"batch": [TRACK]}, receiver.write_key).status_code == 500
    assert send(url, {"batch": [TRACK]}, receiver.write_key).status_code == 200
    assert len(receiver.requests) == 4
    assert receiver.calls() == [TRACK]


def test_a_fault_can_wait_for_requests_answered_normally(segment: tuple[LocalSegment, str]) -> None:
    receiver, url = segment
    receiver.inject(Fault(FaultKind.SERVER_ERROR), after=2)
    statuses = [send(url, {"batch": [TRACK]}, receiver.write_key).status_code for _ in range(4)]
    assert statuses == [200, 200, 500, 200]


@pytest.mark.parametrize("bot", [False, True])
def test_posts_beyond_slacks_pace_per_channel_get_a_429_with_retry_after(bot: bool) -> None:
    # One message every 2 s, two at once: the third within 2 s waits.
    receiver = LocalSlack(
        channels=frozenset({"C1", "C2"}), rate_limit=ChannelRateLimit(per_second=0.5, burst=2)
    )
    with ThreadedAsgiServer(receiver.app, name="slack") as server:

        def post(channel: str = "C1") -> httpx.Response:
            if not bot:
                return httpx.post(server.url + receiver.webhook_path, json=VALID_MESSAGE)
            return httpx.post(
                server.url + "/api/chat.postMessage",
                json=VALID_MESSAGE | {"channel": channel},
                headers={"Authorization": f"Bearer {receiver.bot_token}"},
            )

        answers = [post() for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 429]
        assert answers[2].headers["retry-after"] in {"1", "2"}  # whole seconds, as Slack says
        if bot:
            assert answers[2].json() == {"ok": False, "error": "ratelimited"}
            assert post("C2").status_code == 200  # another channel has its own pace
        else:
            assert answers[2].text == "rate_limited"
    assert len(receiver.messages()) == (3 if bot else 2)
    assert [r.accepted for r in receiver.requests].count(False) == 1
