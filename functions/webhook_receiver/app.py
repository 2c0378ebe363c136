"""Webhook receiver: Pay4Feedback's signed POSTs -> the EventBridge bus and/or SQS queue.

Behind a Lambda function URL (AuthType NONE: the HMAC signature is the authentication).
Clients are built once per container, at init, where Lambda gives the most CPU.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from botocore.config import Config
from receiver import Outcome, Settings, WebhookReceiver, rejection

from p4f.dedupe import DeliveryLedger
from p4f.fanout import FanOut
from p4f.function_url import BadRequestEncodingError, HttpRequest
from p4f.secrets import SigningSecrets

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

# Pay4Feedback waits 10 s for an answer: every AWS call must give up well before that.
AWS_CONFIG = Config(
    connect_timeout=1, read_timeout=2, retries={"total_max_attempts": 2, "mode": "standard"}
)

logger = Logger()
metrics = Metrics()

settings = Settings.from_env(os.environ)
receiver = WebhookReceiver(
    secrets=SigningSecrets(
        settings.webhook_secret_arn, boto3_client=boto3.client("secretsmanager", config=AWS_CONFIG)
    ),
    ledger=DeliveryLedger(settings.idempotency_table, boto3.client("dynamodb", config=AWS_CONFIG)),
    fanout=FanOut.to(
        bus_name=settings.event_bus_name, queue_url=settings.fanout_queue_url, config=AWS_CONFIG
    ),
    tolerance_seconds=settings.signature_tolerance_seconds,
)

_METRIC_NAMES = {
    Outcome.ACCEPTED: "WebhookAccepted",
    Outcome.DUPLICATE: "WebhookDuplicate",
    Outcome.REJECTED: "WebhookRejected",
    Outcome.BUSY: "WebhookBusy",
    Outcome.FAILED: "WebhookFailed",
}


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        request = HttpRequest.from_event(event)
    except BadRequestEncodingError as exc:
        reception = rejection(400, str(exc))
    else:
        reception = receiver.receive(request, context.get_remaining_time_in_millis() / 1000)
    metrics.add_metric(name=_METRIC_NAMES[reception.outcome], unit=MetricUnit.Count, value=1)
    if reception.bad_signature:  # also a WebhookRejected: the alarm takes their share of all
        metrics.add_metric(name="WebhookSignatureRejected", unit=MetricUnit.Count, value=1)
    logger.info(
        "delivery handled",
        extra={
            "outcome": reception.outcome,
            "status": reception.answer["statusCode"],
            "event_id": reception.event_id,
            "event_type": reception.event_type,
            "reason": reception.reason,
        },
    )
    return reception.answer
