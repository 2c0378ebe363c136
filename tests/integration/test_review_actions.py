"""review_actions behind its function URL over local HTTP (AWS in moto), clicked by the local
Slack as Slack clicks: signed payloads queued, everything else refused or ignored."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from urllib.parse import urlencode

import boto3
import httpx
import pytest
from moto import mock_aws

from local.asgi_server import ThreadedAsgiServer
from local.function_url_server import function_url_app
from local.slack_receiver import LocalSlack
from p4f.reviews import ACTIONS_BLOCK, APPROVE_ACTION, REJECT_ACTION, SlackDecision
from p4f.slack_signing import sign
from tests.conftest import LoadFunction
from tests.reward_review import REVIEWER

BOT = {"text": "A reward waits", "blocks": [
    {"type": "section", "text": {"type": "plain_text", "text": "Reward review: 5.00 USD"}},
    {"type": "actions", "block_id": ACTIONS_BLOCK, "elements": [
        {"type": "button", "action_id": APPROVE_ACTION, "value": "resp-1",
         "text": {"type": "plain_text", "text": "Approve"}, "style": "primary"},
        {"type": "button", "action_id": REJECT_ACTION, "value": "resp-1",
         "text": {"type": "plain_text", "text": "Reject"}, "style": "danger"},
        {"type": "button", "action_id": "p4f_review_open", "url": "https://example.com/r/1",
         "text": {"type": "plain_text", "text": "Open in the dashboard"}},
    ]},
]}  # fmt: skip


@dataclass
class Actions:
    app: ModuleType
    slack: LocalSlack
    url: str
    queue_url: str
    secret_arn: str
    ts: str

    def queued(self) -> list[SlackDecision]:
        messages = (
            boto3.client("sqs")
            .receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10)
            .get("Messages", [])
        )
        return [SlackDecision.model_validate_json(m["Body"]) for m in messages]

    def post(self, body: bytes, headers: dict[str, str]) -> httpx.Response:
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        return httpx.post(self.url, content=body, headers=form | headers, timeout=5)


def start(load_function: LoadFunction, **environment: str) -> Iterator[Actions]:
    slack = LocalSlack()
    with mock_aws(), ThreadedAsgiServer(slack.app, name="slack") as slack_server:
        slack.base_url = slack_server.url
        queue_url = boto3.client("sqs").create_queue(QueueName="decisions")["QueueUrl"]
        secret_arn = boto3.client("secretsmanager").create_secret(
            Name="signing", SecretString=slack.signing_secret
        )["ARN"]
        env = {
            "SLACK_SIGNING_SECRET_ARN": secret_arn,
            "DECISION_QUEUE_URL": queue_url,
            "REWARD_REVIEWERS": f"{REVIEWER},U0777",
            "REVIEW_MODE": "on",
        } | environment
        app = load_function("review_actions", env)
        handler = function_url_app(
            app.lambda_handler, function_name="review-actions", timeout_seconds=3
        )
        with ThreadedAsgiServer(handler, name="review-actions") as server:
            slack.interactivity_url = server.url
            posted = httpx.post(
                f"{slack.base_url}/api/chat.postMessage",
                json=BOT | {"channel": min(slack.channels)},
                headers={"Authorization": f"Bearer {slack.bot_token}"},
            ).json()
            yield Actions(app, slack, server.url, queue_url, secret_arn, posted["ts"])


@pytest.fixture
def actions(load_function: LoadFunction) -> Iterator[Actions]:
    yield from start(load_function)


def test_a_reviewers_click_is_queued_within_slacks_three_seconds(actions: Actions) -> None:
    started = time.monotonic()
    assert actions.slack.click(actions.ts, APPROVE_ACTION, REVIEWER) == 200
    assert time.monotonic() - started < 3
    [queued] = actions.queued()
    assert (queued.response_id, queued.decision, queued.user_id) == ("resp-1", "approve", REVIEWER)
    assert queued.response_url.startswith(f"{actions.slack.base_url}/response/{actions.ts}/")


def test_someone_not_in_reward_reviewers_is_told_only_they_cannot(actions: Actions) -> None:
    assert actions.slack.click(actions.ts, REJECT_ACTION, "U0456") == 200
    assert actions.queued() == []
    [message] = actions.slack.board()
    [(who, text)] = message.ephemeral
    assert who == "U0456"
    assert text.startswith("You are not allowed to decide rewards")
    assert message.updated_at is None  # the message itself is unchanged


def test_the_dashboard_link_and_other_payloads_are_acknowledged_and_ignored(
    actions: Actions,
) -> None:
    assert actions.slack.click(actions.ts, "p4f_review_open", REVIEWER) == 200
    body = urlencode({"payload": json.dumps({"type": "view_closed", "user": {"id": REVIEWER}})})
    assert (
        actions.post(body.encode(), sign(body.encode(), actions.slack.signing_secret)).status_code
        == 200
    )
    assert actions.queued() == []


def signed_click_body() -> bytes:
    payload = {
        "type": "block_actions",
        "user": {"id": REVIEWER, "username": "ana"},
        "response_url": "http://127.0.0.1:9/response/x/y",
        "actions": [{"action_id": APPROVE_ACTION, "value": "resp-1"}],
    }
    return urlencode({"payload": json.dumps(payload)}).encode()


def forgeries(secret: str) -> dict[str, tuple[bytes, dict[str, str]]]:
    body = signed_click_body()
    good = sign(body, secret)
    return {
        "unsigned": (body, {}),
        "no timestamp": (body, {"X-Slack-Signature": good["X-Slack-Signature"]}),
        "no signature": (body, {"X-Slack-Request-Timestamp": good["X-Slack-Request-Timestamp"]}),
        "another secret": (body, sign(body, "not-the-signing-secret")),
        "another body": (body.replace(b"approve", b"reject_"), good),
        "stale": (body, sign(body, secret, int(time.time()) - 400)),
        "from the future": (body, sign(body, secret, int(time.time()) + 400)),
        "malformed": (body, good | {"X-Slack-Signature": "v0=zz"}),
    }


def test_forged_stale_and_unsigned_requests_get_401_and_change_nothing(
    actions: Actions, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for name, (body, headers) in forgeries(actions.slack.signing_secret).items():
        answer = actions.post(body, headers)
        assert answer.status_code == 401, name
        assert answer.json()["success"] is False, name
    assert actions.queued() == []
    formatter = actions.app.logger.registered_formatter
    logged = "\n".join(formatter.format(r) for r in caplog.records)
    assert "refused an unsigned request" in logged
    assert actions.slack.signing_secret not in logged


def test_a_rotated_signing_secret_is_read_again(actions: Actions) -> None:
    boto3.client("secretsmanager").put_secret_value(
        SecretId=actions.secret_arn, SecretString="the-new-signing-secret"
    )
    body = signed_click_body()
    assert actions.post(body, sign(body, "the-new-signing-secret")).status_code == 200
    assert len(actions.queued()) == 1


def test_with_review_off_a_click_changes_nothing(load_function: LoadFunction) -> None:
    for actions in start(load_function, REVIEW_MODE="off"):
        assert actions.slack.click(actions.ts, APPROVE_ACTION, REVIEWER) == 200
        assert actions.queued() == []
        [message] = actions.slack.board()
        assert message.ephemeral == [(REVIEWER, "Reward review is off: nothing was changed.")]


def test_a_reviewer_list_that_is_not_user_ids_is_a_deployment_error(
    load_function: LoadFunction,
) -> None:
    from p4f.settings import ConfigurationError

    with pytest.raises(ConfigurationError, match="REWARD_REVIEWERS holds Slack user ids"):
        next(start(load_function, REWARD_REVIEWERS="ana@example.com"))
