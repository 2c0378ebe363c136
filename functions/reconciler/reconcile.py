"""One reconciler run: what the API lists, against what the bridge saw; the missing changes
onto the bus, once; the horizon of what the lists show; the webhook subscription's health.

For each campaign and response listed, the changes its current state implies:

    campaign   campaign_created (created_at); if it changed since (a later updated_at, or
               a status other than DRAFT), the change to its current state:
               campaign_paused when it is PAUSED,
               campaign_resumed when it is ACTIVE and was seen PAUSED before, else
               campaign_updated (a launch, an edit, its end)
    response   response_submitted (submitted_at); response_scored (submitted_at) once it
               has a quality; reward_approved / reward_rejected (reviewed_at) once reviewed

Each change the state table has not seen is published as its webhook would have been
(`data` = the resource as listed, `created_at` = the change's own time, `reconciled_at` =
now, an id derived from the change) through p4f.publish_once, whose claim of the change
makes it a duplicate if a webhook brought it first, and every later webhook of it one too.
Only a resource's latest state is listed: a change a later one overwrote between two runs
(a campaign paused and resumed) is not visible (README, "The reconciler").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger
from reconciler_state import sighting_of, token

from p4f.budget import Priority
from p4f.changes import Change
from p4f.errors import Pay4FeedbackError
from p4f.fanout import ReceivedEvent
from p4f.models import (
    Campaign,
    CampaignStatus,
    EventType,
    Response,
    ResponseStatus,
    WebhookEvent,
)
from p4f.publish_once import Publication
from p4f.retries import Deadline

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

    from reconciler_state import StateStore

    from p4f.client import Pay4FeedbackClient
    from p4f.publish_once import OncePublisher
    from p4f.subscriptions import Subscription, SubscriptionManager

logger = Logger(child=True)

LIST_LIMIT = 500
"""The rows a v1.0 list returns at most (the newest): a list this long may hide older rows."""
_CLAIM_SECONDS = 30.0
"""How long one change's claim is held while it is published (a publish takes milliseconds)."""


class Kind(StrEnum):
    CAMPAIGNS = "campaigns"
    RESPONSES = "responses"


class SubscriptionState(StrEnum):
    HEALTHY = "healthy"
    MISSING = "missing"
    """Not at Pay4Feedback with the stack's URL and events: webhooks do not come."""
    REPAIRED = "repaired"
    """It was missing, and was registered again (RepairSubscription=true)."""
    UNKNOWN = "unknown"
    """The API did not answer the check."""


@dataclass
class RunReport:
    """What one run found and did."""

    started_at: str
    listed: dict[str, int] = field(default_factory=dict)
    missing: int = 0
    """Changes the bridge had not seen."""
    published: int = 0
    duplicates: int = 0
    """Of the missing, those another path had brought by the time of the claim."""
    busy: int = 0
    failed: int = 0
    horizon: dict[str, str | None] = field(default_factory=dict)
    """The oldest change each list showed (created_at, submitted_at)."""
    may_have_missed: list[str] = field(default_factory=list)
    """Lists whose horizon is newer than their previous complete listing: changes between
    may be lost."""
    subscription: str = SubscriptionState.UNKNOWN
    repaired_webhook_id: str | None = None
    api_calls: int = 0
    stopped: str | None = None
    """Why the listing stopped early (the budget, the API): the next run goes on."""
    changes: list[str] = field(default_factory=list)
    """`<event type> <resource id> <time>` of each change published."""


class SubscriptionCheck:
    """Is the stack's subscription at Pay4Feedback? Registers it again when told to."""

    def __init__(self, manager: SubscriptionManager, wanted: Subscription, *, repair: bool) -> None:
        self._manager = manager
        self._wanted = wanted
        self._repair = repair

    def run(self, report: RunReport) -> None:
        try:
            if self._manager.registered(self._wanted) is not None:
                report.subscription = SubscriptionState.HEALTHY
                return
            if not self._repair:
                report.subscription = SubscriptionState.MISSING
                return
            report.repaired_webhook_id, _ = self._manager.register(self._wanted)
            report.subscription = SubscriptionState.REPAIRED
        except Pay4FeedbackError as exc:
            logger.warning("the subscription could not be checked", extra={"reason": str(exc)})
            report.subscription = SubscriptionState.UNKNOWN


class Reconciler:
    def __init__(
        self,
        api: Pay4FeedbackClient,
        store: StateStore,
        publisher: OncePublisher,
        subscription: SubscriptionCheck | None = None,
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._api = api
        self._store = store
        self._publisher = publisher
        self._subscription = subscription
        self._now = now

    def run(self) -> RunReport:
        started = self._now()
        report = RunReport(started_at=started.isoformat())
        previous = self._store.listed_at()
        with self._api.priority(Priority.BACKGROUND):
            if self._subscription is not None:
                self._subscription.run(report)
            try:
                tenant_id = self._api.me().tenant_id
            except Pay4FeedbackError as exc:
                report.stopped = f"{type(exc).__name__}: {exc}"
                return report
            campaigns, campaigns_complete = self._listed(
                Kind.CAMPAIGNS, self._api.iter_campaigns, report
            )
            responses, responses_complete = self._listed(
                Kind.RESPONSES, self._api.iter_responses, report
            )
        self._horizon(Kind.CAMPAIGNS, [c.created_at for c in campaigns], previous, report)
        self._horizon(Kind.RESPONSES, [r.submitted_at for r in responses], previous, report)
        found = self._missing(campaigns, responses)
        report.missing = len(found)
        for change, resource in sorted(found, key=lambda pair: pair[0].at):
            self._publish(change, resource, tenant_id, report)
        # Only a complete listing is what the next run's horizon may be compared with: after
        # a failed one, the rows created since the last complete listing are still unseen.
        complete = {Kind.CAMPAIGNS: campaigns_complete, Kind.RESPONSES: responses_complete}
        self._store.remember_listed([kind for kind, done in complete.items() if done], started)
        return report

    @staticmethod
    def _listed[R: (Campaign, Response)](
        kind: Kind, listing: Callable[[], Iterator[R]], report: RunReport
    ) -> tuple[list[R], bool]:
        """The rows listed, and whether that is the whole list."""
        rows: list[R] = []
        complete = True
        try:
            rows.extend(listing())
        except Pay4FeedbackError as exc:
            report.stopped = report.stopped or f"listing {kind}: {type(exc).__name__}: {exc}"
            complete = False
        report.listed[kind] = len(rows)
        return rows, complete

    @staticmethod
    def _horizon(
        kind: Kind, times: list[datetime], previous: Mapping[str, datetime], report: RunReport
    ) -> None:
        horizon = min(times, default=None)
        report.horizon[kind] = horizon.isoformat() if horizon else None
        listed_at = previous.get(kind)
        if horizon is None or len(times) < LIST_LIMIT or listed_at is None:
            return
        if horizon > listed_at:
            report.may_have_missed.append(kind)
            logger.warning(
                "may have missed changes: the list's oldest row is newer than its previous "
                "complete listing, so rows created between them are beyond its reach",
                extra={
                    "list": kind,
                    "horizon": horizon.isoformat(),
                    "previous_listing": listed_at.isoformat(),
                },
            )

    def _missing(
        self, campaigns: list[Campaign], responses: list[Response]
    ) -> list[tuple[Change, Campaign | Response]]:
        seen = self._store.seen([c.id for c in campaigns] + [r.id for r in responses])
        found: list[tuple[Change, Campaign | Response]] = []
        for campaign in campaigns:
            before = seen.get(campaign.id)
            known = before.changes if before else frozenset()
            previous_status = before.status if before else None
            for change in campaign_changes(campaign, previous_status):
                if token(change) not in known:
                    found.append((change, campaign))
        for response in responses:
            before = seen.get(response.id)
            known = before.changes if before else frozenset()
            found.extend((c, response) for c in response_changes(response) if token(c) not in known)
        return found

    def _publish(
        self, change: Change, resource: Campaign | Response, tenant_id: str, report: RunReport
    ) -> None:
        event = WebhookEvent(
            id=change.event_id,
            type=EventType(change.event_type),
            created_at=change.at,
            tenant_id=tenant_id,
            data=resource.model_dump(mode="json"),
            reconciled_at=self._now(),
        )
        received = ReceivedEvent.parse(event.model_dump_json().encode())
        published = self._publisher.publish(received, _CLAIM_SECONDS, Deadline(_CLAIM_SECONDS))
        if published.outcome is Publication.PUBLISHED:
            report.published += 1
            report.changes.append(f"{change.event_type} {change.resource_id} {change.at}")
        elif published.outcome is Publication.DUPLICATE:
            report.duplicates += 1
        elif published.outcome is Publication.BUSY:
            report.busy += 1
            return  # the other path is publishing it: the next run looks again
        else:
            report.failed += 1
            logger.warning(
                "a missing change was not published; the next run tries again",
                extra={"event_id": change.event_id, "reason": published.detail},
            )
            return
        sighting = sighting_of(change.event_type, event.data)
        if sighting is not None:
            self._store.record([sighting])


def campaign_changes(campaign: Campaign, seen_status: str | None) -> list[Change]:
    """The changes a campaign's current state implies (`seen_status`: its newest status the
    bridge saw before, if any)."""
    changes = [Change(campaign.id, EventType.CAMPAIGN_CREATED, campaign.created_at)]
    # Times are to the second: a campaign launched in the second it was created has
    # updated_at == created_at, but no longer its first status.
    if campaign.updated_at > campaign.created_at or campaign.status != CampaignStatus.DRAFT:
        changes.append(
            Change(campaign.id, _last_change(campaign, seen_status), campaign.updated_at)
        )
    return changes


def _last_change(campaign: Campaign, seen_status: str | None) -> EventType:
    if campaign.status == CampaignStatus.PAUSED:
        return EventType.CAMPAIGN_PAUSED
    if campaign.status == CampaignStatus.ACTIVE and seen_status == CampaignStatus.PAUSED:
        return EventType.CAMPAIGN_RESUMED
    return EventType.CAMPAIGN_UPDATED


def response_changes(response: Response) -> list[Change]:
    """The changes a response's current state implies."""
    changes = [Change(response.id, EventType.RESPONSE_SUBMITTED, response.submitted_at)]
    if response.quality is not None:
        changes.append(Change(response.id, EventType.RESPONSE_SCORED, response.submitted_at))
    if response.reviewed_at is not None:
        if response.status == ResponseStatus.APPROVED:
            changes.append(Change(response.id, EventType.REWARD_APPROVED, response.reviewed_at))
        elif response.status == ResponseStatus.REJECTED:
            changes.append(Change(response.id, EventType.REWARD_REJECTED, response.reviewed_at))
    return changes
