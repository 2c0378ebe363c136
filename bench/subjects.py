"""What the benchmark runs: the functions, each one small entry, and the reference.

A function lands -> add a `Subject` to `SUBJECTS`: where `sam build` puts its code, its
handler, its settings (from the resources of a `Fixture`), the event it handles and how to
tell that it succeeded. Its cold start is then measured against `REFERENCE` in every run;
so is its warm cost per event if it does the reference's job (`compare_warm`), and its
throughput against a local receiver if it forwards events (`throughput`). A subject's
`targets` hold what the issue asks of it; a subject without targets is reported.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache, partial
from pathlib import Path
from typing import Any

from bench.report import Target
from local.asgi_server import ThreadedAsgiServer
from local.lambda_events import (
    ACCOUNT,
    REGION,
    custom_resource_request,
    function_url_event,
    sqs_event,
)
from local.moto_server import MotoServer
from local.recording import RecordingReceiver
from local.sample_events import (
    FORWARDER_EVENT_TYPES,
    SAMPLE_EVENT,
    catalogue_event,
    forwarder_record,
)
from local.sandbox import running_sandbox
from local.segment_receiver import LocalSegment
from local.slack_receiver import LocalSlack
from local.template import Template
from p4f.signing import delivery_headers

BENCH = Path(__file__).resolve().parent
BUILD = BENCH.parent / ".aws-sam" / "build"
UNREACHABLE_URL = "http://127.0.0.1:9"
"""Nothing listens there: a request that should not be sent fails at once."""
SANDBOX_KEY = "p4f_test_bench_functions"
TRACE_ID = "Root=1-6a1b2c3d-0123456789abcdef01234567;Parent=0123456789abcdef;Sampled=1"

# What every function of the template gets (template.yaml, Globals.Function), and what
# Lambda itself sets; credentials that reach nothing real.
COMMON_ENV = {
    "AWS_REGION": REGION,
    "AWS_DEFAULT_REGION": REGION,
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_SESSION_TOKEN": "bench",
    "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
    "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
    # X-Ray active tracing (Globals: Tracing: Active): segments go to a daemon by UDP (no
    # daemon listens here). With LAMBDA_TASK_ROOT set, the X-Ray SDK behaves as in Lambda,
    # which includes touching /tmp/.aws-xray/initialized.
    "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
    "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
    "_X_AMZN_TRACE_ID": TRACE_ID,
    "POWERTOOLS_SERVICE_NAME": "p4f-bridge",
    "POWERTOOLS_METRICS_NAMESPACE": "P4fBridge",
    "POWERTOOLS_LOG_LEVEL": "INFO",
}


@dataclass(frozen=True)
class Fixture:
    """What the subjects talk to: AWS resources (in a moto_server, or only named for runs
    whose AWS calls are answered in-process), the Pay4Feedback sandbox, and local Slack
    and Segment receivers (`bench_services()` starts them all)."""

    secret: str
    secret_arn: str
    api_key_secret_arn: str
    slack_secret_arn: str
    segment_secret_arn: str
    trigger_token: str
    trigger_token_arn: str
    table: str
    trigger_table: str
    slack_table: str
    budget_table: str
    bus: str
    queue_url: str
    trigger_queue_url: str
    slack_queue_url: str
    segment_queue_url: str
    responses_bucket: str
    aws_url: str
    sandbox_url: str
    segment_url: str

    @classmethod
    def named(cls) -> Fixture:
        """Names only; any request that escapes the in-process answers fails at once."""
        arn = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret"
        return cls(
            secret="whsec_bench_secret",
            secret_arn=f"{arn}:p4f/webhook-AbCdEf",
            api_key_secret_arn=f"{arn}:p4f/api-key-AbCdEf",
            slack_secret_arn=f"{arn}:p4f/slack-AbCdEf",
            segment_secret_arn=f"{arn}:p4f/segment-AbCdEf",
            trigger_token="bench-trigger-token-0123456789abcdef0123456789",
            trigger_token_arn=f"{arn}:p4f/trigger-token-AbCdEf",
            table="idempotency",
            trigger_table="triggers",
            slack_table="slack-ledger",
            budget_table="api-budget",
            bus="p4f-bridge-events",
            queue_url=f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/fan-out",
            trigger_queue_url=f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/create-campaign",
            slack_queue_url=f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/slack-forwarder",
            segment_queue_url=f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/segment-forwarder",
            responses_bucket="cloudformation-responses",
            aws_url=UNREACHABLE_URL,
            sandbox_url=UNREACHABLE_URL,
            segment_url=UNREACHABLE_URL,
        )

    @classmethod
    def create(
        cls, aws_url: str, sandbox_url: str, slack_webhook_url: str, segment: tuple[str, str]
    ) -> Fixture:
        """The resources, made in the AWS at `aws_url` (a moto_server); the secrets point
        at the sandbox, Slack's incoming webhook and Segment (its URL and write key)."""
        named = cls.named()
        segment_url, write_key = segment
        secrets = _client("secretsmanager", aws_url)

        def secret(name: str, value: str) -> str:
            arn: str = secrets.create_secret(Name=name, SecretString=value)["ARN"]
            return arn

        secret_arn = secret("p4f/webhook", named.secret)
        api_key_arn = secret("p4f/api-key", SANDBOX_KEY)
        slack_arn = secret("p4f/slack", json.dumps({"webhook_url": slack_webhook_url}))
        segment_arn = secret("p4f/segment", json.dumps({"write_key": write_key}))
        trigger_token_arn = secret("p4f/trigger-token", named.trigger_token)
        template = Template.load()
        dynamodb = _client("dynamodb", aws_url)
        dynamodb.create_table(**template.table_definition("IdempotencyTable", named.table))
        dynamodb.create_table(**template.table_definition("TriggerTable", named.trigger_table))
        dynamodb.create_table(**template.table_definition("SlackLedgerTable", named.slack_table))
        dynamodb.create_table(**template.table_definition("ApiBudgetTable", named.budget_table))
        _client("events", aws_url).create_event_bus(Name=named.bus)
        sqs = _client("sqs", aws_url)
        queue_url, trigger_queue_url, slack_queue_url, segment_queue_url = (
            sqs.create_queue(QueueName=name)["QueueUrl"]
            for name in ("fan-out", "create-campaign", "slack-forwarder", "segment-forwarder")
        )
        # CloudFormation's ResponseURL is a pre-signed S3 URL: here, a bucket in moto.
        _client("s3", aws_url).create_bucket(Bucket=named.responses_bucket)
        return cls(
            named.secret,
            secret_arn,
            api_key_arn,
            slack_arn,
            segment_arn,
            named.trigger_token,
            trigger_token_arn,
            named.table,
            named.trigger_table,
            named.slack_table,
            named.budget_table,
            named.bus,
            queue_url,
            trigger_queue_url,
            slack_queue_url,
            segment_queue_url,
            named.responses_bucket,
            aws_url,
            sandbox_url,
            segment_url,
        )

    def env(self) -> dict[str, str]:
        return COMMON_ENV | {"AWS_ENDPOINT_URL": self.aws_url}


def _client(service: str, endpoint_url: str) -> Any:
    from local.moto_server import moto_client

    return moto_client(endpoint_url, service)


@dataclass(frozen=True)
class BenchServices:
    fixture: Fixture
    receivers: Mapping[str, RecordingReceiver]
    """The local Slack and Segment, by name."""


@contextmanager
def bench_services() -> Iterator[BenchServices]:
    """moto_server, the sandbox, a local Slack and a local Segment, and the resources."""
    slack, segment = LocalSlack(), LocalSegment()
    with (
        MotoServer() as aws,
        # A new subscription's ping goes nowhere and is not retried.
        running_sandbox([SANDBOX_KEY], rate_limit=1000, webhook_retry_for=0) as sandbox,
        ThreadedAsgiServer(slack.app, name="slack") as slack_server,
        ThreadedAsgiServer(segment.app, name="segment") as segment_server,
    ):
        fixture = Fixture.create(
            aws.url,
            sandbox.url,
            slack_server.url + slack.webhook_path,
            (segment_server.url, segment.write_key),
        )
        yield BenchServices(fixture, {"slack": slack, "segment": segment})


# Every operation the receivers call, answered at once by warm runs.
AWS_ANSWERS: dict[str, dict[str, Any]] = {
    "GetSecretValue": {"Name": "p4f/webhook", "SecretString": "whsec_bench_secret"},
    "PutItem": {},
    "UpdateItem": {},
    "PutEvents": {"FailedEntryCount": 0, "Entries": [{"EventId": "11111111-2222"}]},
    "SendMessage": {"MessageId": "33333333-4444", "MD5OfMessageBody": "0" * 32},
}


def webhook_delivery(number: int, fixture: Fixture) -> dict[str, Any]:
    """The sample delivery (events/), signed now, with an event id of its own."""
    event_id = f"evt_bench_{number:08d}"
    body = json.dumps(SAMPLE_EVENT | {"id": event_id}, separators=(",", ":")).encode()
    headers = delivery_headers(
        body, fixture.secret, event_id=event_id, event_type=SAMPLE_EVENT["type"]
    )
    return function_url_event("POST", body, headers, source_ip="203.0.113.7")


def answered_200(answer: Any, number: int, fixture: Fixture) -> bool:  # noqa: ARG001
    return isinstance(answer, dict) and answer.get("statusCode") == 200


def subscription_request(number: int, fixture: Fixture) -> dict[str, Any]:
    """CloudFormation creating the stack's webhook subscription (template.yaml)."""
    request_id = f"bench-{number:08d}"
    return custom_resource_request(
        "Create",
        {
            # The sandbox pings a new subscription; nothing listens here, and it does not retry.
            "WebhookUrl": f"{UNREACHABLE_URL}/webhook",
            "Events": ["reward_approved", "payout_completed"],
            "SecretRotation": "1",
        },
        response_url=f"{fixture.aws_url}/{fixture.responses_bucket}/{request_id}",
        request_id=request_id,
    )


def trigger_request(number: int, fixture: Fixture) -> dict[str, Any]:
    """A no-code tool's POST /triggers/campaigns, with a key of its own."""
    body = {
        "name": f"Bench campaign {number}",
        "reward": {"amount": "5.00", "currency": "USD"},
        "questions": [{"type": "text", "prompt": "What almost stopped you?"}],
        "activate": True,
    }
    headers = {
        "Authorization": f"Bearer {fixture.trigger_token}",
        "Content-Type": "application/json",
        "Idempotency-Key": f"bench-{number:08d}",
    }
    return function_url_event(
        "POST", json.dumps(body).encode(), headers, path="/triggers/campaigns"
    )


def answered_201(answer: Any, number: int, fixture: Fixture) -> bool:  # noqa: ARG001
    return isinstance(answer, dict) and answer.get("statusCode") == 201


def forwarder_batch(function: str, number: int, fixture: Fixture, *, size: int) -> dict[str, Any]:  # noqa: ARG001
    """An SQS batch of `size` events for `function`'s queue, of the types its rule lets
    through by default, each with an id of its own."""
    types = Template.load().default(FORWARDER_EVENT_TYPES[function]).split(",")
    queue_arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{function.replace('_', '-')}"
    records = []
    for index in range(size):
        body = catalogue_event(types[index % len(types)])
        body["id"] = f"evt_bench_{number:08d}_{index:03d}"
        records.append(forwarder_record(body, queue_arn=queue_arn, message_id=body["id"]))
    return sqs_event(records)


def no_failed_records(answer: Any, number: int, fixture: Fixture) -> bool:  # noqa: ARG001
    return isinstance(answer, dict) and answer.get("batchItemFailures") == []


def cloudformation_told_success(answer: Any, number: int, fixture: Fixture) -> bool:  # noqa: ARG001
    """The answer PUT to the ResponseURL says SUCCESS."""
    stored = _client("s3", fixture.aws_url).get_object(
        Bucket=fixture.responses_bucket, Key=f"bench-{number:08d}"
    )
    return bool(json.loads(stored["Body"].read())["Status"] == "SUCCESS")


@dataclass(frozen=True)
class Targets:
    cold_ratio: Target | None = None
    warm_ratio: Target | None = None
    requests_per_1000_events: Target | None = None


@dataclass(frozen=True)
class Throughput:
    """How a forwarder is run against its local receiver: for each of `batch_sizes`, SQS
    batches of that size made by `batch` (a first, untimed one, then `events` events)."""

    receiver: str
    """"slack" or "segment" (`BenchServices.receivers`)."""
    batch: Callable[[int, Fixture, int], dict[str, Any]]
    """The `number`th batch, of `size` records."""
    events: int
    batch_sizes: tuple[int, ...] = (10,)
    """Each is a run of its own; the target applies to the last (the template's default)."""


@cache
def _timeout(logical_id: str) -> float:
    """A function's Timeout in template.yaml (its own, or the Globals')."""
    template = Template.load()
    found = template.properties(logical_id).get("Timeout")
    return float(found or template.body["Globals"]["Function"]["Timeout"])


@dataclass(frozen=True)
class Subject:
    """One function as the benchmark runs it."""

    name: str
    function: str
    """Its logical id in template.yaml: its Timeout, and its code in .aws-sam/build."""
    env: Callable[[Fixture], Mapping[str, str]]
    event: Callable[[int, Fixture], dict[str, Any]]
    """The `number`th event it handles (each run gets a number of its own)."""
    succeeded: Callable[[Any, int, Fixture], bool] = answered_200
    """Whether the handler's answer to event `number` (and what it did) is a success."""
    uses_layer: bool = True
    compare_warm: bool = False
    """It does the reference's job: its warm cost per event is compared with the reference's."""
    throughput: Throughput | None = None
    """It forwards events: its requests per event and events/s are measured."""
    without_bytecode_too: bool = False
    """Also measure its cold start with a layer that has no .pyc files."""
    targets: Targets = field(default_factory=Targets)
    handler: str = "app.lambda_handler"
    source: Path | None = None
    """Code of its own instead of the built function's (the reference)."""

    @property
    def code(self) -> Path:
        """Its code as built: a folder of .aws-sam/build, or the reference's file."""
        return self.source or BUILD / self.function

    @property
    def timeout(self) -> float:
        """Seconds, as template.yaml gives the function (its context counts them down)."""
        return _timeout(self.function)


def _reference_env(fixture: Fixture) -> dict[str, str]:
    return {"WEBHOOK_SECRET": fixture.secret, "EVENT_BUS_NAME": fixture.bus}


def _receiver_env(*, sqs: bool) -> Callable[[Fixture], dict[str, str]]:
    def env(fixture: Fixture) -> dict[str, str]:
        return {
            "WEBHOOK_SECRET_ARN": fixture.secret_arn,
            "IDEMPOTENCY_TABLE": fixture.table,
            "EVENT_BUS_NAME": fixture.bus,
            "FANOUT_QUEUE_URL": fixture.queue_url if sqs else "",
            "SIGNATURE_TOLERANCE_SECONDS": "300",
        }

    return env


def _subscription_manager_env(fixture: Fixture) -> dict[str, str]:
    return {
        "P4F_API_KEY_SECRET_ARN": fixture.api_key_secret_arn,
        "P4F_BASE_URL": fixture.sandbox_url,
        "WEBHOOK_SECRET_ARN": fixture.secret_arn,
        "API_BUDGET_TABLE": fixture.budget_table,
    }


def _trigger_env(fixture: Fixture) -> dict[str, str]:
    return {
        "TRIGGER_TOKEN_SECRET_ARN": fixture.trigger_token_arn,
        "P4F_API_KEY_SECRET_ARN": fixture.api_key_secret_arn,
        "P4F_BASE_URL": fixture.sandbox_url,
        "TRIGGER_TABLE": fixture.trigger_table,
        "EVENT_BUS_NAME": fixture.bus,
        "TRIGGER_QUEUE_URL": fixture.trigger_queue_url,
        "API_BUDGET_TABLE": fixture.budget_table,
    }


def _slack_env(fixture: Fixture) -> dict[str, str]:
    return {
        "SLACK_SECRET_ARN": fixture.slack_secret_arn,
        "SLACK_LEDGER_TABLE": fixture.slack_table,
        "SLACK_QUEUE_URL": fixture.slack_queue_url,
    }


def _segment_env(fixture: Fixture) -> dict[str, str]:
    return {
        "SEGMENT_SECRET_ARN": fixture.segment_secret_arn,
        "SEGMENT_QUEUE_URL": fixture.segment_queue_url,
        "SEGMENT_ENDPOINT": fixture.segment_url,
    }


REFERENCE = Subject(
    name="reference receiver",
    function="WebhookReceiverFunction",  # the same job, the same time budget
    source=BENCH / "reference_receiver.py",
    handler="reference_receiver.lambda_handler",
    env=_reference_env,
    event=webhook_delivery,
    uses_layer=False,
    compare_warm=True,
)


def _webhook_receiver(
    *, sqs: bool, without_bytecode_too: bool = False, targets: Targets | None = None
) -> Subject:
    return Subject(
        name=f"webhook_receiver (EventBridge{' + SQS' if sqs else ''})",
        function="WebhookReceiverFunction",
        env=_receiver_env(sqs=sqs),
        event=webhook_delivery,
        compare_warm=True,
        without_bytecode_too=without_bytecode_too,
        targets=targets or Targets(),
    )


def _forwarder(
    name: str,
    function: str,
    env: Callable[[Fixture], Mapping[str, str]],
    *,
    receiver: str,
    cold_batch: int,
    events: int,
    batch_sizes: tuple[int, ...] = (10,),
    targets: Targets | None = None,
) -> Subject:
    """A forwarder: SQS batches of its default event types in, its local receiver out."""
    batch = partial(forwarder_batch, name)
    return Subject(
        name=name,
        function=function,
        env=env,
        event=partial(batch, size=cold_batch),
        succeeded=no_failed_records,
        throughput=Throughput(
            receiver,
            lambda number, fixture, size: batch(number, fixture, size=size),
            events,
            batch_sizes,
        ),
        targets=targets or Targets(),
    )


SUBJECTS = (
    REFERENCE,
    _webhook_receiver(
        sqs=False,
        without_bytecode_too=True,
        # Like for like with the reference, which publishes to EventBridge only.
        targets=Targets(
            cold_ratio=Target(1.3, on_ratio=True), warm_ratio=Target(2.0, on_ratio=True)
        ),
    ),
    _webhook_receiver(sqs=True),
    Subject(
        name="subscription_manager (Create)",
        function="SubscriptionManagerFunction",
        env=_subscription_manager_env,
        event=subscription_request,
        succeeded=cloudformation_told_success,
    ),
    Subject(
        name="campaign_trigger (HTTP, activate)",
        function="CampaignTriggerFunction",
        env=_trigger_env,
        event=trigger_request,
        succeeded=answered_201,
    ),
    _forwarder(
        "slack_forwarder",
        "SlackForwarderFunction",
        _slack_env,
        receiver="slack",
        # Its cold start with one event: at Slack's pace (a message a second) the rest of a
        # bigger batch would be waiting. Then one batch of 10: about 10 s.
        cold_batch=1,
        events=10,
    ),
    _forwarder(
        "segment_forwarder",
        "SegmentForwarderFunction",
        _segment_env,
        receiver="segment",
        cold_batch=10,
        events=1000,
        # Before: batches of 10, one request each. Now: SegmentBatchSize's batches, in as
        # few requests as Segment's 500 KB allow.
        batch_sizes=(10, int(Template.load().default("SegmentBatchSize"))),
        targets=Targets(requests_per_1000_events=Target(5)),
    ),
)
"""The reference first, then every function."""
