"""The Slack forwarder's handler, end to end: SQS batches in, the local Slack over real HTTP
on 127.0.0.1, Secrets Manager in moto. Waits run on a fake clock; requests time out for real."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws
from slack_delivery import SlackSecret, SlackTiming

from local.asgi_server import ThreadedAsgiServer
from local.lambda_events import LocalLambdaContext, sqs_event, sqs_record
from local.recording import Fault, FaultKind
from local.sample_events import EVENTS_DIR
from local.slack_receiver import LocalSlack
from local.template import Template
from p4f.deferral import DEFERRED_SINCE, Deferral
from p4f.models import EventType
from p4f.retries import RetryPolicy
from tests.conftest import (
    LONE_SURROGATE_ANSWERS,
    FakeTime,
    LoadFunction,
    between_two_events,
    nested_record,
    own_record,
    queued_record,
)

QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:slack-forwarder"
CHANNEL = "C0LOCAL0001"
FAST = SlackTiming(
    # Long enough for a loaded CI machine's answer; the local Slack's hang (2.5 s) outlasts it.
    request_timeout=1.0,
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
    sent_back: list[dict[str, Any]] = field(default_factory=list)
    """The SendMessageBatch entries of deferred records."""

    def __post_init__(self) -> None:
        # The forwarder as app.py built it, with short time-outs, waiting on the fake clock.
        forwarder = self.app.forwarder
        forwarder._secret = SlackSecret(self.secret_arn, clock=self.fake.clock)
        forwarder._timing = FAST
        forwarder._clock = self.fake.clock
        forwarder._sleep = self.fake.sleep
        sqs = boto3.client("sqs")
        sqs.meta.events.register(
            "provide-client-params.sqs.SendMessageBatch",
            lambda params, **_: self.sent_back.extend(params["Entries"]),
        )
        self.app.deferral = Deferral(self.app.settings.queue_url, boto3_client=sqs)

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

    def deferred(self) -> list[dict[str, Any]]:
        """The records sent back to the forwarder's queue: body, delay, attributes."""
        return [
            {
                "body": entry["MessageBody"],
                "delay": entry["DelaySeconds"],
                "attributes": {k: v["StringValue"] for k, v in entry["MessageAttributes"].items()},
            }
            for entry in self.sent_back
        ]

    def forget_claims(self) -> None:
        """Time passes: every claim of an earlier invocation has lapsed."""
        self.app.forwarder._ledger._clock = lambda: time.time() + 3600


def record(event_type: EventType | str, message_id: str, **data: Any) -> dict[str, Any]:
    return own_record(event_type, message_id, queue_arn=QUEUE_ARN, **data)


def batch(*types: EventType) -> list[dict[str, Any]]:
    return [record(event_type, f"m-{i}") for i, event_type in enumerate(types)]


def ids(records: list[dict[str, Any]]) -> list[str]:
    return [r["messageId"] for r in records]


@pytest.fixture
def slack() -> Iterator[LocalSlack]:
    # The forwarder waits on a fake clock: it would post faster than Slack allows.
    receiver = LocalSlack(channels=frozenset({CHANNEL}), hang_seconds=2.5, rate_limit=None)
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
    boto3.client("dynamodb").create_table(
        **Template.load().table_definition("SlackLedgerTable", "slack-ledger")
    )
    queue_url = boto3.client("sqs").create_queue(QueueName="slack-forwarder")["QueueUrl"]
    return load_function(
        "slack_forwarder",
        {
            "SLACK_SECRET_ARN": arn,
            "SLACK_LEDGER_TABLE": "slack-ledger",
            "SLACK_QUEUE_URL": queue_url,
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


def test_a_429_the_invocation_cannot_wait_out_defers_it_and_every_later_record_unsent(
    forwarder: Forwarder,
) -> None:
    records = batch(*[EventType.REWARD_APPROVED] * 5)
    forwarder.slack.inject(Fault(FaultKind.RATE_LIMITED, retry_after=30), after=2)
    assert forwarder.handle(records, seconds=10) == []  # deferred: no failure counted
    assert forwarder.statuses() == [200, 200, 429]  # not one more request after the 429
    assert 30.0 not in forwarder.fake.sleeps
    deferred = forwarder.deferred()
    assert [json.loads(d["body"]) for d in deferred] == [json.loads(r["body"]) for r in records[2:]]
    assert {d["delay"] for d in deferred} == {30}
    assert all(DEFERRED_SINCE in d["attributes"] for d in deferred)


def test_the_pause_a_429_asks_for_holds_for_the_containers_next_invocations(
    forwarder: Forwarder,
) -> None:
    records = batch(*[EventType.REWARD_APPROVED] * 4)
    forwarder.slack.inject(Fault(FaultKind.RATE_LIMITED, retry_after=30))
    assert forwarder.handle(records[:2], seconds=10) == []
    forwarder.fake.sleep(20)  # new events arrive 20 s later: Slack's pause has 10 s to go
    assert forwarder.handle(records[2:], seconds=5) == []
    assert forwarder.statuses() == [429]
    assert [d["delay"] for d in forwarder.deferred()] == [30, 30, 10, 10]
    assert forwarder.handle(records[2:], seconds=30) == []  # this one can wait the 10 s
    assert forwarder.statuses() == [429, 200, 200]
    assert forwarder.fake.sleeps[-2:] == [10.0, 1.0]


def test_a_429_that_keeps_coming_defers_the_message_after_the_allowed_waits(
    forwarder: Forwarder,
) -> None:
    records = batch(EventType.REWARD_APPROVED, EventType.PAYOUT_COMPLETED)
    forwarder.slack.inject(Fault(FaultKind.RATE_LIMITED, retry_after=2), times=3)
    assert forwarder.handle(records) == []
    # The next message waits out the last Retry-After before it goes.
    assert forwarder.statuses() == [429, 429, 429, 200]
    assert forwarder.fake.sleeps == [2.0, 2.0, 2.0]
    assert [json.loads(d["body"]) for d in forwarder.deferred()] == [json.loads(records[0]["body"])]


def test_5xx_are_retried_with_backoff(forwarder: Forwarder) -> None:
    forwarder.slack.inject(Fault(FaultKind.SERVER_ERROR), times=2)
    assert forwarder.handle(batch(EventType.REWARD_REJECTED)) == []
    assert forwarder.statuses() == [500, 500, 200]
    assert len(forwarder.slack.messages()) == 1
    assert forwarder.fake.sleeps == [1.0, 1.0]  # backoff (0.1 s, 0.2 s) inside the pacing


@pytest.mark.parametrize("fault", [FaultKind.HANG, FaultKind.SLOW])
def test_a_post_slack_did_not_answer_in_time_is_not_sent_again_in_the_invocation(
    forwarder: Forwarder, fault: FaultKind
) -> None:
    records = batch(EventType.REWARD_APPROVED, EventType.PAYOUT_COMPLETED)
    forwarder.slack.inject(Fault(fault))
    assert forwarder.handle(records) == ids(records[:1])  # SQS brings it back later
    assert len(forwarder.slack.requests) == 2  # one each: the first was not sent again
    posted = 2 if fault is FaultKind.SLOW else 1
    assert len(forwarder.slack.messages()) == posted
    # A copy of the event in this invocation's time (a redelivery, a duplicate) waits too.
    assert forwarder.handle([record(EventType.REWARD_APPROVED, "m-0")]) == []
    assert len(forwarder.slack.requests) == 2
    # Once this invocation's claim has lapsed, the redelivery posts it: the one window.
    forwarder.forget_claims()
    assert forwarder.handle(records[:1]) == []
    assert len(forwarder.slack.messages()) == posted + 1


def test_a_redelivered_event_is_not_posted_again(forwarder: Forwarder) -> None:
    records = batch(EventType.REWARD_APPROVED, EventType.PAYOUT_COMPLETED)
    assert forwarder.handle(records) == []
    forwarder.forget_claims()
    again = [record(EventType.REWARD_APPROVED, "m-0"), record(EventType.PAYOUT_COMPLETED, "m-1")]
    again[0]["messageId"] = "m-redelivered"
    assert forwarder.handle(again) == []
    assert len(forwarder.slack.requests) == 2


def test_an_event_twice_in_a_batch_is_posted_once(forwarder: Forwarder) -> None:
    first = record(EventType.PAYOUT_FAILED, "m-0")
    copy = record(EventType.PAYOUT_FAILED, "m-0") | {"messageId": "m-copy"}
    assert forwarder.handle([first, copy]) == []
    assert len(forwarder.slack.messages()) == 1


def test_an_event_another_invocation_is_posting_is_deferred(forwarder: Forwarder) -> None:
    records = batch(EventType.REWARD_APPROVED)
    event_id = json.loads(records[0]["body"])["detail"]["id"]
    forwarder.app.forwarder._ledger.claim(event_id, hold_seconds=20)
    assert forwarder.handle(records) == []
    assert forwarder.slack.requests == []
    [deferred] = forwarder.deferred()
    assert 19 <= deferred["delay"] <= 21


def test_a_ledger_that_does_not_answer_fails_the_records_unposted(forwarder: Forwarder) -> None:
    boto3.client("dynamodb").delete_table(TableName="slack-ledger")
    records = batch(EventType.REWARD_APPROVED, EventType.PAYOUT_COMPLETED)
    assert forwarder.handle(records) == ids(records)
    assert forwarder.slack.requests == []


def test_a_lone_surrogate_is_posted_as_the_replacement_character(forwarder: Forwarder) -> None:
    records = between_two_events(
        record(EventType.RESPONSE_SUBMITTED, "m-1", answers=LONE_SURROGATE_ANSWERS)
    )
    assert forwarder.handle(records) == []
    assert len(forwarder.slack.requests) == 3  # one each: nothing posted twice
    posted = json.dumps(forwarder.slack.messages()[1], ensure_ascii=False)
    assert "Love it \ufffd" in posted


def test_a_record_nested_too_deeply_is_poison_alone(forwarder: Forwarder) -> None:
    assert forwarder.handle(between_two_events(nested_record(QUEUE_ARN))) == ["m-deep"]
    assert len(forwarder.slack.messages()) == 2


def test_a_backoff_longer_than_the_pacing_is_waited_in_full(forwarder: Forwarder) -> None:
    forwarder.app.forwarder._timing = SlackTiming(
        request_timeout=FAST.request_timeout, retry=RetryPolicy(base_delay=4.0, max_delay=6.0)
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
    # 2.5 s left, 1 s of it kept back: the first message goes; the second would have to
    # wait a second for the pacing, and a second more for its answer.
    assert forwarder.handle(records, seconds=2.5) == ids(records[1:])
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
    assert "will end in the dead-letter queue" in outcomes["m-poison"]["message"]
    assert any("trying again in 2.0s" in line["message"] for line in lines)

    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "_aws" in line]
    [counts] = [{k: v for k, v in e.items() if k.startswith("Events")} for e in emitted]
    assert counts == {"EventsForwarded": [1.0], "EventsDeferred": [0.0], "EventsFailed": [2.0]}

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
    env = {"SLACK_LEDGER_TABLE": "t", "SLACK_QUEUE_URL": "https://sqs.example/q"}
    with mock_aws():
        app = load_function(
            "slack_forwarder", {"SLACK_SECRET_ARN": "arn", "SLACK_CONTAINERS": "2"} | env
        )
    assert app.timing.send_interval == 2.0


def test_a_posted_message_is_utf8_json_as_chat_postmessage_asks(bot: Forwarder) -> None:
    assert bot.handle(batch(EventType.REWARD_APPROVED)) == []
    [request] = bot.slack.requests
    assert request.headers["content-type"] == "application/json; charset=utf-8"


def backlog(event_type: EventType, count: int, start: int = 0) -> list[dict[str, Any]]:
    """`count` events of one type, each about a response of its own."""
    return [
        record(event_type, f"m-{event_type}-{n}", id=f"resp-{event_type}-{n}")
        for n in range(start, start + count)
    ]


def linked(message: dict[str, Any]) -> list[str]:
    """The responses a message links to."""
    return re.findall(r"/responses/([^|>]+)\|", json.dumps(message))


def test_a_backlog_is_posted_in_digests_of_each_type_every_event_linked(
    forwarder: Forwarder,
) -> None:
    records = [
        *backlog(EventType.RESPONSE_SUBMITTED, 4),
        record(EventType.PAYOUT_FAILED, "m-payout", id="po-1", response_id="resp-payout"),
        *backlog(EventType.RESPONSE_SUBMITTED, 4, start=4),
        *backlog(EventType.REWARD_APPROVED, 2),
    ]
    assert forwarder.handle(records) == []
    submitted, payout, approved = forwarder.slack.messages()
    assert submitted["text"] == "New response (8 events)"
    assert linked(submitted) == [f"resp-response_submitted-{n}" for n in range(8)]
    assert payout["text"] == "Payout failed: 5.00 USD"  # alone of its type: its own message
    assert approved["text"] == "Reward approved (2 events)"
    assert forwarder.fake.sleeps == [1.0, 1.0]  # three messages, paced


def test_a_batch_of_at_most_digest_above_events_is_posted_one_message_each(
    forwarder: Forwarder,
) -> None:
    assert forwarder.handle(backlog(EventType.RESPONSE_SUBMITTED, 5)) == []
    assert len(forwarder.slack.messages()) == 5


def test_a_digest_lists_only_the_events_not_posted_yet_and_a_redelivery_posts_none(
    forwarder: Forwarder,
) -> None:
    records = backlog(EventType.REWARD_APPROVED, 8)
    assert forwarder.handle(records[:2]) == []  # posted one by one earlier
    assert forwarder.handle(records) == []
    *_, digest = forwarder.slack.messages()
    assert linked(digest) == [f"resp-reward_approved-{n}" for n in range(2, 8)]
    forwarder.forget_claims()
    assert forwarder.handle(records) == []  # SQS delivers the batch again
    assert len(forwarder.slack.messages()) == 3


def test_an_event_another_invocation_holds_is_deferred_and_the_digest_goes_without_it(
    forwarder: Forwarder,
) -> None:
    records = backlog(EventType.RESPONSE_SCORED, 7)
    held = json.loads(records[3]["body"])["detail"]["id"]
    forwarder.app.forwarder._ledger.claim(held, hold_seconds=20)
    assert forwarder.handle(records) == []
    [digest] = forwarder.slack.messages()
    assert "resp-response_scored-3" not in linked(digest)
    assert len(linked(digest)) == 6
    [deferred] = forwarder.deferred()
    assert json.loads(deferred["body"])["detail"]["id"] == held


def test_copies_of_an_event_in_a_backlog_are_listed_once(forwarder: Forwarder) -> None:
    records = backlog(EventType.PAYOUT_COMPLETED, 6)
    copy = records[0] | {"messageId": "m-copy"}
    assert forwarder.handle([*records, copy]) == []
    [digest] = forwarder.slack.messages()
    assert digest["text"] == "Payout completed (6 events)"


def test_a_digest_slack_refuses_fails_its_records_and_releases_them(
    forwarder: Forwarder,
) -> None:
    records = backlog(EventType.REWARD_REJECTED, 6)
    forwarder.slack.inject(Fault(FaultKind.SERVER_ERROR), times=3)
    assert forwarder.handle(records) == ids(records)
    assert forwarder.slack.messages() == []
    assert forwarder.handle(records) == []  # released: the next delivery posts them all
    [digest] = forwarder.slack.messages()
    assert len(linked(digest)) == 6


def test_a_digest_slack_did_not_answer_is_not_posted_again_in_the_invocation(
    forwarder: Forwarder,
) -> None:
    records = backlog(EventType.REWARD_REJECTED, 6)
    forwarder.slack.inject(Fault(FaultKind.SLOW))
    assert forwarder.handle(records) == ids(records)
    assert forwarder.handle(records) == []  # the claims hold: deferred, nothing posted
    assert len(forwarder.slack.requests) == 1
    assert len(forwarder.deferred()) == 6  # until this invocation's claims lapse
    forwarder.forget_claims()
    assert forwarder.handle(records) == []  # the one window: the redelivery posts them again
    assert len(forwarder.slack.messages()) == 2


def test_a_poison_record_in_a_backlog_fails_alone(forwarder: Forwarder) -> None:
    records = [
        *backlog(EventType.RESPONSE_SUBMITTED, 6),
        sqs_record("not an event", queue_arn=QUEUE_ARN, message_id="m-poison"),
    ]
    assert forwarder.handle(records) == ["m-poison"]
    [digest] = forwarder.slack.messages()
    assert len(linked(digest)) == 6


def test_digests_can_be_turned_off_and_are_read_from_the_environment(
    load_function: LoadFunction,
) -> None:
    env = {"SLACK_LEDGER_TABLE": "t", "SLACK_QUEUE_URL": "https://sqs.example/q"}
    with mock_aws():
        app = load_function(
            "slack_forwarder", {"SLACK_SECRET_ARN": "arn", "SLACK_DIGEST_ABOVE": "10"} | env
        )
    assert app.settings.digest_above == 10
    assert app.forwarder._digest_above == 10
