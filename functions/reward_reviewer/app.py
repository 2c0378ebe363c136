"""Reward reviewer: decides rewards from the AI quality score, and applies reviewers' clicks.

Two SQS event sources, one logic (`reviewer.RewardReviewer`, through `review_batch`):

* the review queue, fed by a rule on the bus with response_scored events (and
  response_submitted ones whose quality is set): the review policy decides, as a background
  caller of the API budget;
* the decision queue, fed by review_actions with reviewers' clicks in Slack: applied by the
  same path, as an interactive caller (a person waits for the message to change).

Clients are built once per container, at init.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import boto3
import httpx
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parameters import SSMProvider
from botocore.config import Config
from review_batch import ReviewBatch
from review_ledger import ReviewLedger
from review_policy import POLICY_CACHE_SECONDS, PolicySource
from review_slack import ReviewSlack, ReviewSlackSecret
from reviewer import DecisionEvents, Fate, RewardReviewer, Settings

from p4f import __version__
from p4f.api import budgeted_client
from p4f.deferral import Deferral
from p4f.reviews import ReviewOutcome
from p4f.secrets import secretsmanager_client

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

AWS_CONFIG = Config(connect_timeout=1, read_timeout=3, retries={"max_attempts": 2})

logger = Logger()
metrics = Metrics()
# Not httpx: X-Ray would record each request's URL, and a response_url is a credential.
tracer = Tracer(patch_modules=["botocore"])

settings = Settings.from_env(os.environ)
_dynamodb = boto3.client("dynamodb", config=AWS_CONFIG)
_sqs = boto3.client("sqs", config=AWS_CONFIG)
_secretsmanager = secretsmanager_client()
_parameters = SSMProvider(boto3_client=boto3.client("ssm", config=AWS_CONFIG))
client = budgeted_client(settings.api, _dynamodb, secretsmanager=_secretsmanager)
slack = ReviewSlack(
    ReviewSlackSecret(settings.slack_secret_arn, boto3_client=_secretsmanager)
    if settings.slack_secret_arn
    else None,
    httpx.Client(headers={"User-Agent": f"p4f-bridge/{__version__}"}),
    settings.slack_api_url,
)
reviewer = RewardReviewer(
    client,
    ReviewLedger(settings.table_name, _dynamodb),
    PolicySource(
        lambda: str(_parameters.get(settings.policy_parameter, max_age=POLICY_CACHE_SECONDS))
    ),
    slack,
    DecisionEvents(boto3.client("events", config=AWS_CONFIG), settings.event_bus_name).publish,
    mode=settings.mode,
    caps=settings.caps,
    dashboard_url=settings.dashboard_url,
)
batches = ReviewBatch(
    reviewer,
    {url.rsplit("/", 1)[-1]: Deferral(url, boto3_client=_sqs) for url in settings.queue_urls},
)

_OUTCOME_METRICS = {
    ReviewOutcome.APPLIED: "RewardDecisionsApplied",
    ReviewOutcome.DRY_RUN: "RewardDecisionsDryRun",
    ReviewOutcome.SENT_TO_REVIEW: "RewardsSentToReview",
    ReviewOutcome.DECIDED_ELSEWHERE: "RewardsDecidedElsewhere",
}

_FAILED_MESSAGES = {
    False: "record failed: SQS delivers it again, and after 5 deliveries it waits in the "
    "dead-letter queue (redrive it once the reason is fixed)",
    True: "record failed, and a retry will not change that: fix what the reason says, then "
    "redrive the record from the dead-letter queue",
}


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    batch = batches.consume(
        event.get("Records", []), lambda: context.get_remaining_time_in_millis() / 1000
    )
    metrics.add_metric("ReviewRecords", MetricUnit.Count, len(batch.records))
    for one in batch.records:
        reviewed, decided = one.reviewed, one.reviewed.decided
        if reviewed.policy_invalid:
            metrics.add_metric("ReviewPolicyInvalid", MetricUnit.Count, 1)
        if decided is not None:
            metrics.add_metric(_OUTCOME_METRICS[decided.outcome], MetricUnit.Count, 1)
        elif reviewed.fate is not Fate.DONE:
            metrics.add_metric(f"ReviewRecords{reviewed.fate.title()}", MetricUnit.Count, 1)
        # Ids, decisions and reasons; never an answer, an e-mail or a secret.
        log = logger.warning if reviewed.fate is Fate.FAILED else logger.info
        log(
            _FAILED_MESSAGES[reviewed.permanent]
            if reviewed.fate is Fate.FAILED
            else "record reviewed",
            extra={
                "message_id": one.message_id,
                "fate": reviewed.fate,
                "reason": reviewed.reason,
                "retry_after": reviewed.retry_after or None,
                "decision": decided.decision if decided else None,
                "outcome": decided.outcome if decided else None,
                "band": decided.band if decided else None,
                "decided_by": decided.decided_by.kind if decided else None,
                **one.ids,
            },
        )
    return batch.answer()
