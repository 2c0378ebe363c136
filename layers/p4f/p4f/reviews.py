"""Reward review: what its two functions say to each other and to the bus.

    review_actions --SlackDecision (SQS)--> reward_reviewer --RewardReviewDecided (bus)-->

`SlackDecision` is a click on Approve or Reject in Slack, checked (signature, allow-list) and
queued; `RewardReviewDecided` (source `p4f-bridge`) is what became of a response: every
decision, automatic or human, applied, reported (dry-run), sent to a person, or found
decided already. The event catalogue's schema of it is generated from this model
(`python -m local.event_catalogue`), so that consumers' rules cannot drift from it.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from p4f.models import Money, OpenEnum, Percent, ResponseStatus

BRIDGE_EVENT_SOURCE = "p4f-bridge"
REWARD_REVIEW_DECIDED = "RewardReviewDecided"
APPROVE_ACTION = "p4f_review_approve"
REJECT_ACTION = "p4f_review_reject"
ACTIONS_BLOCK = "p4f_review_actions"
"""The review message's buttons (reward_reviewer renders them, review_actions reads clicks)."""


class ReviewMode(StrEnum):
    OFF = "off"
    """Nothing is reviewed: no decision, no Slack message, clicks are refused."""
    DRY_RUN = "dry-run"
    """Decisions are reported (RewardReviewDecided, logs), nothing is applied or posted."""
    ON = "on"


class Decision(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    HUMAN_REVIEW = "human_review"
    """A person decides, in Slack."""


class ReviewOutcome(StrEnum):
    APPLIED = "applied"
    """This decision changed the response's status at Pay4Feedback."""
    DRY_RUN = "dry_run"
    """Reported only: RewardReviewMode is dry-run."""
    SENT_TO_REVIEW = "sent_to_review"
    """A Slack message with Approve and Reject waits for a person."""
    DECIDED_ELSEWHERE = "decided_elsewhere"
    """Pay4Feedback said the response was reviewed already (the dashboard, a script):
    `status` is what it is now."""


class DecidedBy(BaseModel):
    kind: Literal["policy", "slack"]
    user_id: str | None = None
    """The Slack user who clicked (kind slack)."""
    user_name: str | None = None


class RewardReviewDecided(BaseModel):
    """What became of one response's reward (detail of the `RewardReviewDecided` event)."""

    model_config = ConfigDict(extra="allow")

    response_id: str
    campaign_id: str
    decision: Decision
    outcome: ReviewOutcome
    decided_by: DecidedBy
    band: Decision
    """What the policy's score bands and conditions said, before caps: approve, reject, or
    human_review (also when the policy is invalid)."""
    reason: str = Field(description="Why, in words: the band and the rule that chose it.")
    score: Percent | None = None
    verdict: str | None = None
    amount: Money
    status: OpenEnum[ResponseStatus]
    """The response's status at Pay4Feedback after this decision."""
    mode: ReviewMode
    decided_at: datetime


class SlackDecision(BaseModel):
    """A reviewer's click in Slack, as review_actions queues it for the reward reviewer."""

    kind: Literal["slack_decision"] = "slack_decision"
    response_id: str = Field(min_length=1, max_length=128)
    decision: Literal[Decision.APPROVE, Decision.REJECT]
    user_id: str
    user_name: str | None = None
    response_url: str
    """Where the message is updated (Slack keeps it valid for 30 minutes, 5 uses)."""
    clicked_at: datetime


ACTION_DECISIONS = {APPROVE_ACTION: Decision.APPROVE, REJECT_ACTION: Decision.REJECT}
"""What a click on each button decides."""


def ephemeral(text: str) -> dict[str, object]:
    """A response_url message only the person who clicked sees; the review message stays."""
    return {"response_type": "ephemeral", "replace_original": False, "text": text}
