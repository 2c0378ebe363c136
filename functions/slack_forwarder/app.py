"""Slack forwarder: Pay4Feedback events from the bridge's bus, through its SQS queue, to Slack.

An SQS batch in, a partial batch answer out (p4f.forwarding); one message per event, or
digests for a backlog, written by slack_messages and posted by slack_delivery, once per
event (the Slack ledger, p4f.dedupe). Clients are built once per container, at init;
the SQS client that defers records after a 429 on first use (p4f.deferral).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import boto3
import httpx
from aws_lambda_powertools import Logger, Metrics, Tracer
from botocore.config import Config
from slack_delivery import (
    LEDGER_TTL_SECONDS,
    Settings,
    SlackForwarder,
    SlackSecret,
    SlackTiming,
)
from slack_messages import DashboardLinks

from p4f import __version__
from p4f.dedupe import DeliveryLedger
from p4f.deferral import Deferral
from p4f.forwarding import forward_batch
from p4f.secrets import secretsmanager_client

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
    from aws_lambda_powertools.utilities.typing import LambdaContext


logger = Logger()
metrics = Metrics()
# Not httpx: X-Ray would record each request's URL, and an incoming webhook's URL is its secret.
tracer = Tracer(patch_modules=["botocore"])

# The ledger's calls come between Slack posts: short time-outs, few retries.
AWS_CONFIG = Config(
    connect_timeout=1, read_timeout=2, retries={"total_max_attempts": 2, "mode": "standard"}
)

settings = Settings.from_env(os.environ)
timing = SlackTiming(send_interval=1.0 * settings.containers)
secret = SlackSecret(settings.slack_secret_arn, boto3_client=secretsmanager_client())
http = httpx.Client(
    timeout=timing.request_timeout, headers={"User-Agent": f"p4f-bridge/{__version__}"}
)
forwarder = SlackForwarder(
    secret,
    http,
    DeliveryLedger(
        settings.ledger_table,
        boto3.client("dynamodb", config=AWS_CONFIG),
        ttl_seconds=LEDGER_TTL_SECONDS,
    ),
    api_url=settings.slack_api_url,
    reconciled_max_age=settings.reconciled_max_age,
    links=DashboardLinks(settings.dashboard_url),
    timing=timing,
    digest_above=settings.digest_above,
)
deferral = Deferral(settings.queue_url)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return forward_batch(event, context, forwarder, metrics, deferral)
