"""What the benchmark runs: the functions, each one small entry, and the reference.

A function lands -> add a `Subject` to `SUBJECTS`: where `sam build` puts its code, its
handler, its settings (from the AWS resources of `AwsFixture`) and the event it handles.
Its cold start and warm cost are then measured against `REFERENCE` in every run. A
subject's `targets` hold what the issue asks of it; a subject without targets is reported.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.report import Target
from local.lambda_events import function_url_event
from local.sample_events import SAMPLE_EVENT
from local.template import Template
from p4f.signing import delivery_headers

BENCH = Path(__file__).resolve().parent
BUILD = BENCH.parent / ".aws-sam" / "build"
REGION = "us-east-1"
ACCOUNT = "123456789012"
UNREACHABLE_ENDPOINT = "http://127.0.0.1:9"

# What every function of the template gets (template.yaml, Globals.Function), and what
# Lambda itself sets; credentials that reach nothing real.
COMMON_ENV = {
    "AWS_REGION": REGION,
    "AWS_DEFAULT_REGION": REGION,
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_SESSION_TOKEN": "bench",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
    "POWERTOOLS_SERVICE_NAME": "p4f-bridge",
    "POWERTOOLS_METRICS_NAMESPACE": "P4fBridge",
    "POWERTOOLS_LOG_LEVEL": "INFO",
}


@dataclass(frozen=True)
class AwsFixture:
    """The AWS resources the subjects use, in moto_server or only named (warm runs)."""

    secret: str
    secret_arn: str
    table: str
    bus: str
    queue_url: str
    endpoint_url: str

    @classmethod
    def named(cls) -> AwsFixture:
        """Names only: for runs whose AWS calls are answered in-process."""
        return cls(
            secret="whsec_bench_secret",
            secret_arn=f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:p4f/webhook-AbCdEf",
            table="idempotency",
            bus="p4f-bridge-events",
            queue_url=f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/fan-out",
            # Nothing listens there: a request that escaped the in-process answers fails
            # here instead of going out to AWS.
            endpoint_url=UNREACHABLE_ENDPOINT,
        )

    @classmethod
    def create(cls, endpoint_url: str) -> AwsFixture:
        """The resources, made in the AWS at `endpoint_url` (a moto_server)."""
        import boto3

        named = cls.named()
        session = boto3.Session(
            aws_access_key_id="bench", aws_secret_access_key="bench", region_name=REGION
        )
        secret_arn = session.client("secretsmanager", endpoint_url=endpoint_url).create_secret(
            Name="p4f/webhook-signing", SecretString=named.secret
        )["ARN"]
        session.client("dynamodb", endpoint_url=endpoint_url).create_table(
            **Template.load().table_definition("IdempotencyTable", named.table)
        )
        session.client("events", endpoint_url=endpoint_url).create_event_bus(Name=named.bus)
        queue_url = session.client("sqs", endpoint_url=endpoint_url).create_queue(
            QueueName="fan-out"
        )["QueueUrl"]
        return cls(named.secret, secret_arn, named.table, named.bus, queue_url, endpoint_url)

    def env(self) -> dict[str, str]:
        return COMMON_ENV | {"AWS_ENDPOINT_URL": self.endpoint_url}


# Every operation the subjects call, answered at once by warm runs.
AWS_ANSWERS: dict[str, dict[str, Any]] = {
    "GetSecretValue": {"Name": "p4f/webhook-signing", "SecretString": "whsec_bench_secret"},
    "PutItem": {},
    "UpdateItem": {},
    "PutEvents": {"FailedEntryCount": 0, "Entries": [{"EventId": "11111111-2222"}]},
    "SendMessage": {"MessageId": "33333333-4444", "MD5OfMessageBody": "0" * 32},
}


def webhook_delivery(number: int, aws: AwsFixture) -> dict[str, Any]:
    """The sample delivery (events/), signed now, with an event id of its own."""
    event_id = f"evt_bench_{number:08d}"
    body = json.dumps(SAMPLE_EVENT | {"id": event_id}, separators=(",", ":")).encode()
    headers = delivery_headers(body, aws.secret, event_id=event_id, event_type=SAMPLE_EVENT["type"])
    return function_url_event("POST", body, headers, source_ip="203.0.113.7")


@dataclass(frozen=True)
class Targets:
    cold_ratio: Target | None = None
    warm_ratio: Target | None = None


@dataclass(frozen=True)
class Subject:
    """One function as the benchmark runs it."""

    name: str
    code: Path
    """Its code as built: a folder of .aws-sam/build, or a file for the reference."""
    handler: str
    env: Callable[[AwsFixture], Mapping[str, str]]
    event: Callable[[int, AwsFixture], dict[str, Any]]
    uses_layer: bool = True
    without_bytecode_too: bool = False
    """Also measure its cold start with a layer that has no .pyc files."""
    targets: Targets = field(default_factory=Targets)


def _reference_env(aws: AwsFixture) -> dict[str, str]:
    return {"WEBHOOK_SECRET": aws.secret, "EVENT_BUS_NAME": aws.bus}


def _receiver_env(*, sqs: bool) -> Callable[[AwsFixture], dict[str, str]]:
    def env(aws: AwsFixture) -> dict[str, str]:
        return {
            "WEBHOOK_SECRET_ARN": aws.secret_arn,
            "IDEMPOTENCY_TABLE": aws.table,
            "EVENT_BUS_NAME": aws.bus,
            "FANOUT_QUEUE_URL": aws.queue_url if sqs else "",
            "SIGNATURE_TOLERANCE_SECONDS": "300",
        }

    return env


REFERENCE = Subject(
    name="reference receiver",
    code=BENCH / "reference_receiver.py",
    handler="reference_receiver.lambda_handler",
    env=_reference_env,
    event=webhook_delivery,
    uses_layer=False,
)


def _webhook_receiver(
    *, sqs: bool, without_bytecode_too: bool = False, targets: Targets | None = None
) -> Subject:
    return Subject(
        name=f"webhook_receiver (EventBridge{' + SQS' if sqs else ''})",
        code=BUILD / "WebhookReceiverFunction",
        handler="app.lambda_handler",
        env=_receiver_env(sqs=sqs),
        event=webhook_delivery,
        without_bytecode_too=without_bytecode_too,
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
)
"""The reference first, then every function."""
