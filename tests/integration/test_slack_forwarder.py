"""The Slack forwarder's handler, end to end: SQS batches in, the local Slack over real HTTP
on 127.0.0.1, Secrets Manager in moto. Waits run on a fake clock; requests time out for real."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws
from slack_delivery import SlackForwarder, SlackSecret, SlackTiming
from slack_messages import DashboardLinks

from local.asgi_server import ThreadedAsgiServer
from local.lambda_events import LocalLambdaContext, sqs_event, sqs_record
from local.recording import Fault, FaultKind
from local.sample_events import EVENTS_DIR
from local.slack_receiver import LocalSlack
from p4f.models import EventType
from p4f.retries import RetryPolicy
from tests.conftest import FakeTime, LoadFunction, queued_record

QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:slack-forwarder"
CHANNEL = "C0LOCAL0001"
FAST = SlackTiming(
    request_timeout=0.2,  # the local Slack's hang (0.6 s) outlasts it
    send_interval=1.0,
    retry=RetryPolicy(max_attempts=3, max_rate_limit_waits=2, base_delay=0.1, max_delay=0.4),
)


@dataclass
class Forwarder:
    """The loaded function, the local Slack it posts to, and the fake clock it waits on."""

    app: Any
    """The loaded functions/slack_forwarder/app.py."""
    slack: LocalSlack
    secret_arn: str
    fake: FakeTime = field(default_factory=FakeTime)

    def __post_init__(self) -> None:
        self.app.forwarder = SlackForwarder(
            SlackSecret(self.secret_arn, clock=self.fake.clock),
            self.app.http,
            api_url=self.app.settings.slack_api_url,
            links=DashboardLinks(self.app.settings.dashboard_url),
            timing=FAST,
            clock=self.fake.clock,
            sleep=self.fake.sleep,
        )

    def handle(self, records: list[dict[str, Any]], *, seconds: float = 30) -> list[str]:
        """Run the handler on a batch; the ids of the records it reports failed."""
        context = LocalLambdaContext("slack-forwarder", timeout_seconds=seconds)
        answer = self.app.lambda_handler(sqs_event(records), context)
        return [failure["itemIdentifier"] for failure in answer["batchItemFailures"]]

    def set_secret(self, value: dict[str, str]) -> None:
        boto3.client("secretsmanager").put_secret_value(
            SecretId=self.secret_arn, SecretString=json.dumps(value)
        )

    def statuses(self) -> list[int]:
        return [request.status for request in self.slack.requests]


def batch(*types: EventType) -> list[dict[str, Any]]:
    return [queued_record(event_type, f"m-{i}") for i, event_type in enumerate(types)]


def ids(records: list[dict[str, Any]]) -> list[str]:
    return [r["messageId"] for r in records]


@pytest.fixture
def slack() -> Iterator[LocalSlack]:
    receiver = LocalSlack(channels=frozenset({CHANNEL}), hang_seconds=0.6)
    with ThreadedAsgiServer(receiver.app, name="slack") as server:
        receiver.url = server.url  # type: ignore[attr-defined]
        yield receiver


def secret_for(slack: LocalSlack, mode: str) -> dict[str, str]:
    if mode == "webhook":
        return {"webhook_url": slack.url + slack.webhook_path}  # type: ignore[attr-defined]
    return {"bot_token": slack.bot_token, "channel": CHANNEL}


def load(load_function: LoadFunction, slack: LocalSlack, secret: dict[str, str]) -> ModuleType:
    arn = boto3.client("secretsmanager").create_secret(
        Name="p4f/slack", SecretString=json.dumps(secret)
    )["ARN"]
    return load_function(
        "slack_forwarder",
        {
            "SLACK_SECRET_ARN": arn,
            "SLACK_API_URL": slack.url + "/api",  # type: ignore[attr-defined]
            "P4F_DASHBOARD_URL": "https://dashboard.example",
        },
    )


def start(load_function: LoadFunction, slack: LocalSlack, secret: dict[str, str]) -> Forwarder:
    app = load(load_function, slack, secret)
    return Forwarder(app, slack, app.settings.slack_secret_arn)


@pytest.fixture(params=["webhook", "bot"])
def forwarder(
    request: pytest.FixtureRequest, load_function: LoadFunction, slack: LocalSlack
) -> Iterator[Forwarder]:
    with mock_aws():
        yield start(load_function, slack, secret_for(slack, request.param))


@pytest.fixture
def bot(load_function: LoadFunction, slack: LocalSlack) -> Iterator[Forwarder]:
    with mock_aws():
        yield start(load_function, slack, secret_for(slack, "bot"))


def test_a_full_batch_is_posted_in_order_one_request_per_event_one_a_second(
    forwarder: Forwarder,
) -> None:
    types = list(EventType)[:10]
    assert forwarder.handle(batch(*types)) == []
    messages = forwarder.slack.messages()
    assert len(forwarder.slack.requests) == len(messages) == 10
    assert [m["blocks"][-1]["elements"][1]["text"].split("`")[1] for m in messages] == types
    assert messages[1]["blocks"][0]["text"]["text"] == ":new: Campaign created: Onboarding survey"
    assert forwarder.fake.sleeps == [1.0] * 9  # paced: Slack allows about one a second


def test_the_committed_sample_batch_is_posted_whole(forwarder: Forwarder) -> None:
    records = json.loads((EVENTS_DIR / "slack_forwarder" / "sqs_batch.json").read_text())
    assert forwarder.handle(records["Records"]) == []
    assert len(forwarder.slack.messages()) == len(records["Records"]) == 9


def test_the_bot_mode_posts_to_its_channel_with_its_token(bot: Forwarder) -> None:
    assert bot.handle(batch(EventType.REWARD_APPROVED)) == []
    [request] = bot.slack.requests
    assert request.path == "/api/chat.postMessage"
    assert request.headers["authorization"] == f"Bearer {bot.slack.bot_token}"
    assert request.json()["channel"] == CHANNEL
    assert request.json()["text"] == "Reward approved: 5.00 USD"
    assert request.json()["unfurl_links"] is False


def test_the_app_as_built_at_init_posts_with_its_own_clients(
    load_function: LoadFunction, slack: LocalSlack
) -> None:
    with mock_aws():
        app = load(load_function, slack, secret_for(slack, "webhook"))
        context = LocalLambdaContext("slack-forwarder", timeout_seconds=30)
        answer = app.lambda_handler(sqs_event(batch(EventType.PAYOUT_COMPLETED)), context)
    assert answer == {"batchItemFailures": []}
    [message] = slack.messages()
    assert "https://dashboard.example/responses/" in json.dumps(message)


def test_a_429_is_waited_out_when_the_invocation_has_time(forwarder: Forwarder) -> None:
    forwarder.slack.inject(Fault(FaultKind.RATE_LIMITED, retry_after=3))
    assert forwarder.handle(batch(EventType.REWARD_APPROVED, EventType.PAYOUT_COMPLETED)) == []
    assert forwarder.statuses() == [429, 200, 200]
    assert len(forwarder.slack.messages()) == 2
    assert forwarder.fake.sleeps == [3.0, 1.0]  # Retry-After, then the pacing


def test_a_429_the_invocation_cannot_wait_out_fails_it_and_every_later_record_unsent(
    forwarder: Forwarder,
) -> None:
    records = batch(*[EventType.REWARD_APPROVED] * 5)
    forwarder.slack.inject(Fault(FaultKind.RATE_LIMITED, retry_after=30), after=2)
    assert forwarder.handle(records, seconds=10) == ids(records[2:])
    assert forwarder.statuses() == [200, 200, 429]  # not one more request after the 429
    assert 30.0 not in forwarder.fake.sleeps


def test_the_pause_a_429_asks_for_holds_for_the_containers_next_invocations(
    forwarder: Forwarder,
) -> None:
    records = batch(*[EventType.REWARD_APPROVED] * 4)
    forwarder.slack.inject(Fault(FaultKind.RATE_LIMITED, retry_after=30))
    assert forwarder.handle(records[:2], seconds=10) == ids(records[:2])
    forwarder.fake.sleep(20)  # new events arrive 20 s later: Slack's pause has 10 s to go
    assert forwarder.handle(records[2:], seconds=5) == ids(records[2:])
    assert forwarder.statuses() == [429]
    assert forwarder.handle(records[2:], seconds=30) == []  # this one can wait the 10 s
    assert forwarder.statuses() == [429, 200, 200]
    assert forwarder.fake.sleeps[-2:] == [10.0, 1.0]


def test_a_429_that_keeps_coming_fails_the_message_after_the_allowed_waits(
    forwarder: Forwarder,
) -> None:
    records = batch(EventType.REWARD_APPROVED, EventType.PAYOUT_COMPLETED)
    forwarder.slack.inject(Fault(FaultKind.RATE_LIMITED, retry_after=2), times=3)
    assert forwarder.handle(records) == ids(records[:1])
    # The next message waits out the last Retry-After before it goes.
    assert forwarder.statuses() == [429, 429, 429, 200]
    assert forwarder.fake.sleeps == [2.0, 2.0, 2.0]


def test_5xx_and_time_outs_are_retried_with_backoff(forwarder: Forwarder) -> None:
    forwarder.slack.inject(Fault(FaultKind.SERVER_ERROR))
    forwarder.slack.inject(Fault(FaultKind.HANG))
    assert forwarder.handle(batch(EventType.REWARD_REJECTED)) == []
    assert forwarder.statuses() == [500, 504, 200]  # 504: the hang the client gave up on
    assert len(forwarder.slack.messages()) == 1
    assert forwarder.fake.sleeps == [1.0, 1.0]  # backoff (0.1 s, 0.2 s) inside the pacing


def test_a_backoff_longer_than_the_pacing_is_waited_in_full(forwarder: Forwarder) -> None:
    forwarder.app.forwarder._timing = SlackTiming(
        request_timeout=0.2, retry=RetryPolicy(base_delay=4.0, max_delay=6.0)
    )
    forwarder.slack.inject(Fault(FaultKind.SERVER_ERROR), times=2)
    assert forwarder.handle(batch(EventType.REWARD_REJECTED)) == []
    first, second = forwarder.fake.sleeps
    assert 2.0 <= first <= 4.0
    assert 3.0 <= second <= 6.0


def test_5xx_and_time_outs_that_persist_fail_the_record_and_the_batch_goes_on(
    forwarder: Forwarder,
) -> None:
    records = batch(EventType.REWARD_APPROVED, EventType.PAYOUT_COMPLETED)
    forwarder.slack.inject(Fault(FaultKind.SERVER_ERROR), times=2)
    forwarder.slack.inject(Fault(FaultKind.HANG))
    assert forwarder.handle(records) == ids(records[:1])
    assert forwarder.statuses() == [500, 500, 504, 200]
    assert forwarder.slack.messages()[0]["text"] == "Payout completed: 5.00 USD"


def test_records_the_invocation_has_no_time_left_for_go_back_unsent(forwarder: Forwarder) -> None:
    records = batch(*[EventType.REWARD_APPROVED] * 3)
    # 1.6 s left, 1 s of it kept back: the first message goes; the second would have to
    # wait a second for the pacing.
    assert forwarder.handle(records, seconds=1.6) == ids(records[1:])
    assert forwarder.statuses() == [200]


def test_a_refused_channel_fails_each_record_once_and_says_what_to_do(
    bot: Forwarder, caplog: pytest.LogCaptureFixture
) -> None:
    bot.set_secret({"bot_token": bot.slack.bot_token, "channel": "C0GONE"})
    records = batch(EventType.REWARD_APPROVED, EventType.PAYOUT_COMPLETED)
    assert bot.handle(records) == ids(records)
    assert len(bot.slack.requests) == 2  # a refusal is not retried
    reasons = [r.reason for r in caplog.records if hasattr(r, "reason")]
    assert all("channel_not_found" in reason for reason in reasons)
    assert all("invite the app" in reason for reason in reasons)


def test_a_rotated_webhook_url_is_read_again_when_slack_refuses_the_old_one(
    load_function: LoadFunction, slack: LocalSlack
) -> None:
    with mock_aws():
        forwarder = start(load_function, slack, {"webhook_url": slack.url + "/services/T/B/old"})  # type: ignore[attr-defined]
        records = batch(EventType.REWARD_APPROVED)
        assert forwarder.handle(records) == ids(records)  # no_service, and the secret agrees
        forwarder.set_secret(secret_for(slack, "webhook"))  # the operator rotates it
        assert forwarder.handle(records) == []  # refused from the cache, then read again
    assert forwarder.statuses() == [404, 404, 200]


def test_a_poison_record_is_reported_and_the_others_posted(forwarder: Forwarder) -> None:
    records = [
        queued_record(EventType.REWARD_APPROVED, "m-0"),
        sqs_record("not an event", queue_arn=QUEUE_ARN, message_id="m-poison"),
        queued_record(EventType.PAYOUT_FAILED, "m-2"),
    ]
    assert forwarder.handle(records) == ["m-poison"]
    assert len(forwarder.slack.messages()) == 2


def test_an_unknown_event_type_gets_the_generic_message(forwarder: Forwarder) -> None:
    records = [
        queued_record("respondent_banned", "m-0", respondent_id="resp_9", email="x@example.com")
    ]
    assert forwarder.handle(records) == []
    [message] = forwarder.slack.messages()
    assert message["text"] == "Pay4Feedback event respondent_banned"
    assert "resp_9" in json.dumps(message)
    assert "x@example.com" not in json.dumps(message)


def test_a_secret_in_neither_form_fails_every_record_naming_the_forms(
    bot: Forwarder, caplog: pytest.LogCaptureFixture
) -> None:
    bot.set_secret({"token": "xoxb-misplaced"})
    records = batch(EventType.REWARD_APPROVED, EventType.PAYOUT_COMPLETED)
    assert bot.handle(records) == ids(records)
    assert bot.slack.requests == []
    [reason, _] = [r.reason for r in caplog.records if hasattr(r, "reason")]
    assert '{"webhook_url": "https://hooks.slack.com/services/..."} or {"bot_token"' in reason
    assert "xoxb-misplaced" not in reason


def test_logs_and_metrics_name_events_never_the_webhook_url_or_token(
    forwarder: Forwarder, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    forwarder.slack.inject(Fault(FaultKind.RATE_LIMITED, retry_after=2))
    forwarder.slack.inject(Fault(FaultKind.SERVER_ERROR))
    forwarder.slack.inject(Fault(FaultKind.SERVER_ERROR), after=1, times=3)
    records = [
        *batch(EventType.REWARD_APPROVED, EventType.PAYOUT_FAILED),
        sqs_record("{}", queue_arn=QUEUE_ARN, message_id="m-poison"),
    ]
    assert forwarder.handle(records) == ["m-1", "m-poison"]

    formatter = forwarder.app.logger.registered_formatter
    lines = [json.loads(formatter.format(r)) for r in caplog.records]
    outcomes = {line["message_id"]: line for line in lines if "message_id" in line}
    assert outcomes["m-0"]["message"] == "event forwarded"
    assert outcomes["m-0"]["event_type"] == "reward_approved"
    assert outcomes["m-1"]["error"] == "SlackUnavailableError"
    assert outcomes["m-1"]["reason"] == "Slack answered HTTP 500"
    assert "the record will end in the dead-letter queue" in outcomes["m-poison"]["message"]
    assert any("trying again in 2.0s" in line["message"] for line in lines)

    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "_aws" in line]
    [counts] = [{k: v for k, v in e.items() if k.startswith("Events")} for e in emitted]
    assert counts == {"EventsForwarded": [1.0], "EventsFailed": [2.0]}

    logged = json.dumps(lines) + json.dumps(emitted)
    for secret in (forwarder.slack.webhook_path.rsplit("/", 1)[1], forwarder.slack.bot_token):
        assert secret not in logged


def test_the_settings_need_the_secret_arn(load_function: LoadFunction) -> None:
    from p4f.settings import ConfigurationError

    with mock_aws(), pytest.raises(ConfigurationError, match="SLACK_SECRET_ARN is not set"):
        load_function("slack_forwarder", {"SLACK_SECRET_ARN": ""})


def test_each_container_waits_as_many_seconds_as_there_are_containers(
    load_function: LoadFunction,
) -> None:
    with mock_aws():
        app = load_function("slack_forwarder", {"SLACK_SECRET_ARN": "arn", "SLACK_CONTAINERS": "2"})
    assert app.timing.send_interval == 2.0
