"""Segment forwarder: Pay4Feedback events from the bridge's bus, through its SQS queue, to
Segment's HTTP Tracking API.

An SQS batch in, a partial batch answer out (p4f.forwarding); calls written by
segment_calls and sent by segment_delivery, one /v1/batch request per SQS batch when it
fits. Clients are built once per container, at init; the SQS client that defers records
after a 429 on first use (p4f.deferral).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import httpx
from aws_lambda_powertools import Logger, Metrics, Tracer
from segment_delivery import DEFAULT_TIMEOUT_SECONDS, SegmentForwarder, Settings, WriteKeySecret

from p4f import __version__
from p4f.deferral import Deferral
from p4f.forwarding import forward_batch
from p4f.secrets import secretsmanager_client

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
    from aws_lambda_powertools.utilities.typing import LambdaContext


logger = Logger()
metrics = Metrics()
tracer = Tracer()

settings = Settings.from_env(os.environ)
write_key = WriteKeySecret(settings.segment_secret_arn, boto3_client=secretsmanager_client())
http = httpx.Client(
    timeout=DEFAULT_TIMEOUT_SECONDS, headers={"User-Agent": f"p4f-bridge/{__version__}"}
)
forwarder = SegmentForwarder(
    write_key,
    http,
    endpoint=settings.endpoint,
    personal_data=settings.send_personal_data,
)
deferral = Deferral(settings.queue_url)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return forward_batch(event, context, forwarder, metrics, deferral)
