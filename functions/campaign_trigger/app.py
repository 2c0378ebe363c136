"""Campaign trigger: one campaign per trigger, from no-code tools and from EventBridge.

Two event sources, one logic (`trigger.CampaignTrigger`):

* its function URL (AuthType NONE: the bearer token is the authentication):
  `POST /triggers/campaigns` from Zapier, Make, n8n... (`trigger_http`);
* its SQS queue, fed by a rule on the bridge's bus with CreateCampaign events
  (`trigger_queue`, partial batch failures).

Clients are built once per container, at init. The Pay4Feedback client takes its slots
from the tenant-wide API budget (p4f.budget) the bridge's functions share: the function URL
as an interactive caller (a no-code tool waits), the queue as a background one.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from botocore.config import Config
from trigger import CampaignTrigger, Outcome, Settings, TriggerResult
from trigger_http import TriggerEndpoint, rejection
from trigger_ledger import TriggerLedger
from trigger_queue import TriggerQueue

from p4f.api import budgeted_client
from p4f.budget import Priority
from p4f.deferral import Deferral
from p4f.function_url import BadRequestEncodingError, HttpRequest
from p4f.secrets import TriggerToken, secretsmanager_client

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

# No-code tools wait about 30 s: every AWS call gives up long before that.
AWS_CONFIG = Config(connect_timeout=1, read_timeout=3, retries={"max_attempts": 2})

logger = Logger()
metrics = Metrics()
tracer = Tracer()

settings = Settings.from_env(os.environ)
_secretsmanager = secretsmanager_client()
_dynamodb = boto3.client("dynamodb", config=AWS_CONFIG)
client = budgeted_client(settings.api, _dynamodb, secretsmanager=_secretsmanager)
trigger = CampaignTrigger(client, TriggerLedger(settings.table_name, _dynamodb))
endpoint = TriggerEndpoint(
    trigger, TriggerToken(settings.token_secret_arn, boto3_client=_secretsmanager)
)
queue = TriggerQueue(
    trigger,
    events=boto3.client("events", config=AWS_CONFIG),
    bus_name=settings.event_bus_name,
    deferral=Deferral(settings.queue_url, boto3_client=boto3.client("sqs", config=AWS_CONFIG)),
)

_METRIC_NAMES = {
    Outcome.CREATED: "CampaignsCreated",
    Outcome.REPLAYED: "TriggersReplayed",
    Outcome.REFUSED: "TriggersFailed",
    Outcome.FAILED: "TriggersFailed",
    Outcome.DEFERRED: "TriggersDeferred",
    Outcome.DESCRIBED: "TriggerDescribed",
}


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    def seconds_left() -> float:
        return context.get_remaining_time_in_millis() / 1000

    if _is_sqs_batch(event):
        with client.priority(Priority.BACKGROUND):  # nobody waits on the queue
            batch = queue.consume(event["Records"], seconds_left)
        for one in batch.handled:
            _report(
                one.result,
                entry="eventbridge",
                correlation_id=one.correlation_id,
                message_id=one.message_id,
                retried=one.message_id in batch.retried,
            )
        return batch.answer()
    try:
        request = HttpRequest.from_event(event)
    except BadRequestEncodingError as exc:
        reception = rejection(400, str(exc))
    else:
        reception = endpoint.receive(request, seconds_left)
    _report(reception.result, entry="http", correlation_id=context.aws_request_id)
    return reception.answer


def _is_sqs_batch(event: dict[str, Any]) -> bool:
    records = event.get("Records")
    return (
        isinstance(records, list) and bool(records) and records[0].get("eventSource") == "aws:sqs"
    )


def _report(result: TriggerResult, *, entry: str, **fields: object) -> None:
    """One log line and one metric per trigger: names and ids, never bodies or secrets."""
    metrics.add_metric(name=_METRIC_NAMES[result.outcome], unit=MetricUnit.Count, value=1)
    logger.info(
        "trigger handled",
        extra={
            "entry": entry,
            "outcome": result.outcome,
            "status": result.status,
            "idempotency_key": result.key,
            "campaign_id": result.campaign.id if result.campaign else None,
            "error": result.error,
            **fields,
        },
    )
