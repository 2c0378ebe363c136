"""Subscription manager: the CloudFormation custom resource that registers the webhook
receiver's URL at Pay4Feedback on `sam deploy`, and removes it when the stack goes.

It always answers CloudFormation (see p4f.custom_resource), so a stack never hangs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
import httpx
from aws_lambda_powertools import Logger, Tracer

from p4f import settings as env_readers
from p4f.api import ApiSettings, budgeted_client
from p4f.custom_resource import serve
from p4f.secrets import SigningSecrets
from p4f.subscriptions import NOT_CREATED_PREFIX, SubscriptionManager

if TYPE_CHECKING:
    from collections.abc import Mapping

    from aws_lambda_powertools.utilities.typing import LambdaContext

# Time kept back from the function's timeout to answer CloudFormation after a late call.
_ANSWER_MARGIN_SECONDS = 5


@dataclass(frozen=True)
class Settings:
    api: ApiSettings
    webhook_secret_arn: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        return cls(
            api=ApiSettings.from_env(env),
            webhook_secret_arn=env_readers.required(env, "WEBHOOK_SECRET_ARN"),
        )


logger = Logger()
tracer = Tracer()

settings = Settings.from_env(os.environ)
signing_secrets = SigningSecrets(settings.webhook_secret_arn)
# An interactive caller of the API budget: a deploy waits for it.
client = budgeted_client(settings.api, boto3.client("dynamodb"))
# The newest signing secret comes first in the secret (see README, rotation).
manager = SubscriptionManager(client, signing_secret=lambda: signing_secrets.refresh()[0])
cloudformation = httpx.Client(timeout=10)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> None:
    serve(
        event,
        context,
        manager.apply,
        http=cloudformation,
        deadline=client.deadline,
        margin=_ANSWER_MARGIN_SECONDS,
        log=logger,
        failed_physical_id=lambda request: f"{NOT_CREATED_PREFIX}{request.request_id}",
    )
