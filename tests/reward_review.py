"""What the reward review's tests share beyond local.reward_review: the reviewer who may
click, and the decision queue's records of clicks."""

from __future__ import annotations

from typing import Any

from local.lambda_events import sqs_record
from p4f.envelope import utc_timestamp
from p4f.reviews import Decision, SlackDecision

DECISION_QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:decision-queue"
REVIEWER = "U0123"


def click_record(
    response_id: str, decision: Decision, response_url: str, user_id: str = REVIEWER
) -> dict[str, Any]:
    """The decision queue's record of a click, as review_actions queues it."""
    click = SlackDecision(
        response_id=response_id,
        decision=decision,
        user_id=user_id,
        user_name="ana",
        response_url=response_url,
        clicked_at=utc_timestamp(),
    )
    return sqs_record(click.model_dump_json(), queue_arn=DECISION_QUEUE_ARN)
