"""The reward reviewer outside the local stack, for its tests and its benchmark: its AWS
resources as template.yaml declares them (in moto, in-process or moto_server), the
function's environment, its review queue's records, and what came of them (the
RewardReviewDecided events on the bus, the decisions the sandbox saw)."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from local.sample_events import forwarder_record
from local.template import Template
from p4f.envelope import utc_timestamp
from p4f.models import Response

if TYPE_CHECKING:
    from local.sandbox import SandboxAdmin

TEMPLATE = Template.load()
DEFAULT_POLICY = str(TEMPLATE.properties("RewardReviewPolicy")["Value"])
"""The policy the template deploys: approve at 85 with verdict high, reject under 20 if low."""
REVIEW_QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:review-queue"
TENANT = "5b3a1f0c-2d4e-4f6a-9b8c-7d6e5f4a3b2c"


@dataclass(frozen=True)
class ReviewAws:
    """The reviewer's resources, and its environment pointing at them."""

    environment: dict[str, str]
    table: str
    bus: str
    consumer_queue_url: str
    """Every event on the bus (RewardReviewDecided included)."""


def create_review_resources(
    client: Callable[..., Any],
    *,
    api_key: str,
    base_url: str,
    slack_bot: Mapping[str, str] | None,
    slack_api_url: str,
    mode: str = "on",
    policy: str = DEFAULT_POLICY,
    count_cap: int = 50,
    amount_caps: str = "USD=250.00,EUR=250.00",
    budget_per_minute: int = 6000,
) -> ReviewAws:
    """template.yaml's review resources (tables from its key schemas) and the function's
    environment: `client` is boto3.client in mock_aws, or MotoServer.client."""
    suffix = uuid.uuid4().hex[:8]
    dynamodb, sqs, events = client("dynamodb"), client("sqs"), client("events")
    table, budget = f"review-{suffix}", f"budget-{suffix}"
    dynamodb.create_table(**TEMPLATE.table_definition("ReviewTable", table))
    dynamodb.create_table(**TEMPLATE.table_definition("ApiBudgetTable", budget))
    bus = f"bus-{suffix}"
    events.create_event_bus(Name=bus)
    queues = {
        name: sqs.create_queue(QueueName=f"{name}-{suffix}")["QueueUrl"]
        for name in ("review-queue", "decision-queue", "consumer")
    }
    consumer_arn = sqs.get_queue_attributes(
        QueueUrl=queues["consumer"], AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    events.put_rule(
        Name="all", EventBusName=bus, EventPattern=json.dumps({"source": ["p4f-bridge"]})
    )
    events.put_targets(Rule="all", EventBusName=bus, Targets=[{"Id": "c", "Arn": consumer_arn}])
    parameter = f"/review-{suffix}/policy"
    client("ssm").put_parameter(Name=parameter, Value=policy, Type="String")
    secrets = client("secretsmanager")
    api_key_arn = secrets.create_secret(Name=f"key-{suffix}", SecretString=api_key)["ARN"]
    environment = {
        "REVIEW_MODE": mode,
        "REVIEW_POLICY_PARAMETER": parameter,
        "REVIEW_TABLE": table,
        "AUTO_APPROVE_DAILY_COUNT": str(count_cap),
        "AUTO_APPROVE_DAILY_AMOUNTS": amount_caps,
        "REVIEW_SLACK_SECRET_ARN": "",
        "SLACK_API_URL": slack_api_url,
        "EVENT_BUS_NAME": bus,
        "REVIEW_QUEUE_URL": queues["review-queue"],
        "DECISION_QUEUE_URL": queues["decision-queue"],
        "P4F_API_KEY_SECRET_ARN": api_key_arn,
        "P4F_BASE_URL": base_url,
        "API_BUDGET_TABLE": budget,
        "API_REQUESTS_PER_MINUTE": str(budget_per_minute),
    }
    if slack_bot is not None:
        environment["REVIEW_SLACK_SECRET_ARN"] = secrets.create_secret(
            Name=f"bot-{suffix}", SecretString=json.dumps(dict(slack_bot))
        )["ARN"]
    return ReviewAws(environment, table, bus, queues["consumer"])


def scored_record(response: Response, *, event_type: str = "response_scored") -> dict[str, Any]:
    """The review queue's record of a response_scored event (a fresh event id each time)."""
    body = {
        "id": f"evt_{uuid.uuid4().hex}",
        "type": event_type,
        "created_at": utc_timestamp(),
        "tenant_id": TENANT,
        "api_version": "v1",
        "data": response.model_dump(mode="json"),
    }
    return forwarder_record(body, queue_arn=REVIEW_QUEUE_ARN)


def bus_events(client: Callable[..., Any], queue_url: str) -> list[dict[str, Any]]:
    """The RewardReviewDecided details the bus delivered so far (and takes them)."""
    sqs, found = client("sqs"), []
    while batch := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get(
        "Messages", []
    ):
        for message in batch:
            found.append(json.loads(message["Body"])["detail"])
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return found


def decisions_per_response(admin: SandboxAdmin) -> Counter[str]:
    """How many times each response's status changed (reward_approved / reward_rejected)."""
    return Counter(
        str(e.data["id"])
        for e in admin.events()
        if e.type in {"reward_approved", "reward_rejected"}
    )
