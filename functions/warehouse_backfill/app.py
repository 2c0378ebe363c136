"""Warehouse backfill: the CloudFormation custom resource that fills the warehouse mirror
with snapshots of the campaigns and responses the API lists when the mirror is created.

It always answers CloudFormation (see p4f.custom_resource), so a stack never hangs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
import httpx
from aws_lambda_powertools import Logger, Tracer
from backfill_resource import PHYSICAL_ID, BackfillResource

from p4f import settings as env_readers
from p4f.api import ApiSettings, budgeted_client
from p4f.backfill import Backfill
from p4f.custom_resource import serve

if TYPE_CHECKING:
    from collections.abc import Mapping

    from aws_lambda_powertools.utilities.typing import LambdaContext

# Time kept back from the function's timeout to publish what was listed, then answer.
_ANSWER_MARGIN_SECONDS = 20


@dataclass(frozen=True)
class Settings:
    api: ApiSettings
    bus_name: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        return cls(
            api=ApiSettings.from_env(env),
            bus_name=env_readers.required(env, "EVENT_BUS_NAME"),
        )


logger = Logger()
tracer = Tracer()

settings = Settings.from_env(os.environ)
# A background caller of the API budget (p4f.backfill asks for that priority).
client = budgeted_client(settings.api, boto3.client("dynamodb"))
resource = BackfillResource(Backfill(client, boto3.client("events"), settings.bus_name))
cloudformation = httpx.Client(timeout=10)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> None:
    serve(
        event,
        context,
        resource.apply,
        http=cloudformation,
        deadline=client.deadline,
        margin=_ANSWER_MARGIN_SECONDS,
        log=logger,
        failed_physical_id=lambda _: PHYSICAL_ID,
    )
