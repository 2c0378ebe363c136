"""Review actions: Slack's interaction payloads (a click on Approve or Reject) -> the decision
queue, within Slack's 3 s.

Behind a Lambda function URL (AuthType NONE: Slack's request signature is the
authentication). It calls no Pay4Feedback API: the reward reviewer applies each queued click
by the same path as its automatic decisions. Clients are built once per container, at init.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import boto3
import httpx
from aws_lambda_powertools import Logger
from botocore.config import Config
from slack_clicks import ReviewActions, Settings, SlackSigningSecret

from p4f import __version__
from p4f.function_url import BadRequestEncodingError, HttpRequest, error_answer

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

# Slack waits 3 s: every call gives up long before that.
AWS_CONFIG = Config(
    connect_timeout=0.5, read_timeout=1, retries={"total_max_attempts": 2, "mode": "standard"}
)

logger = Logger()

settings = Settings.from_env(os.environ)
actions = ReviewActions(
    settings,
    SlackSigningSecret(
        settings.signing_secret_arn,
        boto3_client=boto3.client("secretsmanager", config=AWS_CONFIG),
    )
    if settings.signing_secret_arn
    else None,
    boto3.client("sqs", config=AWS_CONFIG),
    httpx.Client(headers={"User-Agent": f"p4f-bridge/{__version__}"}),
)


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:  # noqa: ARG001 (Lambda's signature)
    try:
        request = HttpRequest.from_event(event)
    except BadRequestEncodingError as exc:
        return error_answer(400, str(exc))
    return actions.receive(request)
