"""Reconciler: the state changes no webhook brought, found in the API and put on the bus once.

Two event sources, one state table (reconciler_state):

* its schedule (ReconcileEveryMinutes): one run (reconcile.Reconciler), a background
  caller of the tenant-wide API budget; the answer is the run's report;
* its SQS queue, fed by a rule on the bus with every change event (webhooks and its own):
  the state table learns what the bridge has seen (partial batch failures).

Clients are built once per container, at init.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from reconcile import Reconciler, RunReport, SubscriptionCheck, SubscriptionState
from reconciler_state import StateFeed, StateStore

from p4f import settings as env_readers
from p4f.api import ApiSettings, budgeted_client, tenant_budget
from p4f.changes import utc_time
from p4f.dedupe import DeliveryLedger
from p4f.fanout import FanOut
from p4f.forwarding import forward_batch
from p4f.publish_once import OncePublisher
from p4f.secrets import SigningSecrets
from p4f.subscriptions import Subscription, SubscriptionManager

if TYPE_CHECKING:
    from collections.abc import Mapping

    from aws_lambda_powertools.utilities.typing import LambdaContext

_ANSWER_MARGIN_SECONDS = 20
"""Time kept back from the function's timeout to publish what was found and answer."""


@dataclass(frozen=True)
class Settings:
    api: ApiSettings
    state_table: str
    idempotency_table: str
    event_bus_name: str | None
    fanout_queue_url: str | None
    webhook_url: str
    webhook_events: tuple[str, ...]
    webhook_secret_arn: str
    repair_subscription: bool

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        return cls(
            api=ApiSettings.from_env(env),
            state_table=env_readers.required(env, "RECONCILER_STATE_TABLE"),
            idempotency_table=env_readers.required(env, "IDEMPOTENCY_TABLE"),
            event_bus_name=env_readers.optional(env, "EVENT_BUS_NAME"),
            fanout_queue_url=env_readers.optional(env, "FANOUT_QUEUE_URL"),
            webhook_url=env_readers.required(env, "WEBHOOK_URL"),
            webhook_events=tuple(
                e.strip() for e in env_readers.required(env, "WEBHOOK_EVENTS").split(",")
            ),
            webhook_secret_arn=env_readers.required(env, "WEBHOOK_SECRET_ARN"),
            repair_subscription=env_readers.optional(env, "REPAIR_SUBSCRIPTION") == "true",
        )


logger = Logger()
metrics = Metrics()
tracer = Tracer()

settings = Settings.from_env(os.environ)
_dynamodb = boto3.client("dynamodb")
# A background caller of the API budget (reconcile.Reconciler asks for that priority); its
# slots counted for the run's report.
budget = tenant_budget(settings.api, _dynamodb)
client = budgeted_client(settings.api, _dynamodb, budget=budget)
store = StateStore(settings.state_table, _dynamodb)
signing_secrets = SigningSecrets(settings.webhook_secret_arn)
reconciler = Reconciler(
    client,
    store,
    OncePublisher(
        DeliveryLedger(settings.idempotency_table, _dynamodb),
        FanOut.to(bus_name=settings.event_bus_name, queue_url=settings.fanout_queue_url),
    ),
    SubscriptionCheck(
        # The newest signing secret comes first in the secret (README, rotation).
        SubscriptionManager(client, signing_secret=lambda: signing_secrets.refresh()[0]),
        Subscription(settings.webhook_url, settings.webhook_events, rotation=""),
        repair=settings.repair_subscription,
    ),
)
feed = StateFeed(store)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if "Records" in event:
        return dict(forward_batch(event, context, feed, metrics))
    calls_before = budget.stats.slots
    with client.deadline(context.get_remaining_time_in_millis() / 1000 - _ANSWER_MARGIN_SECONDS):
        report = reconciler.run()
    report.api_calls = budget.stats.slots - calls_before
    _measure(report)
    logger.info(
        "reconciler run", extra={"report": asdict(report) | {"changes": len(report.changes)}}
    )
    return asdict(report)


def _measure(report: RunReport) -> None:
    metrics.add_metric("ReconciledChanges", MetricUnit.Count, report.published)
    metrics.add_metric("ReconcilerDuplicates", MetricUnit.Count, report.duplicates)
    metrics.add_metric("ReconcilerFailures", MetricUnit.Count, report.failed)
    metrics.add_metric("ReconcilerApiCalls", MetricUnit.Count, report.api_calls)
    metrics.add_metric("ReconcilerMayHaveMissed", MetricUnit.Count, len(report.may_have_missed))
    unhealthy = report.subscription in {SubscriptionState.MISSING, SubscriptionState.REPAIRED}
    metrics.add_metric("WebhookSubscriptionMissing", MetricUnit.Count, int(unhealthy))
    # A run the API did not answer (a revoked key, an outage) or that ran out of time or
    # budget is blind to what it did not list: no other metric of it says so.
    incomplete = report.stopped is not None or report.subscription == SubscriptionState.UNKNOWN
    metrics.add_metric("ReconcilerIncomplete", MetricUnit.Count, int(incomplete))
    for kind, horizon in report.horizon.items():
        at = utc_time(horizon)
        if at is not None:
            age = (utc_time(report.started_at) or at) - at
            metrics.add_metric(
                f"{kind.capitalize()}HorizonAgeSeconds", MetricUnit.Seconds, age.total_seconds()
            )
