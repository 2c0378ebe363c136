"""The trigger's Parameters can only take values its settings accept."""

from __future__ import annotations

from trigger import Settings

from local.template import Template

PARAMETERS = Template.load().body["Parameters"]


def test_every_allowed_budget_covers_every_allowed_concurrency() -> None:
    budget, concurrency = (
        PARAMETERS["TriggerRequestsPerMinute"],
        PARAMETERS["TriggerQueueConcurrency"],
    )
    env = {
        "TRIGGER_TOKEN_SECRET_ARN": "arn",
        "P4F_API_KEY_SECRET_ARN": "arn",
        "TRIGGER_TABLE": "triggers",
        "EVENT_BUS_NAME": "bus",
        "TRIGGER_QUEUE_URL": "https://sqs.example/queue",
    }
    # The tightest pair the template lets a deployer choose must still start.
    tightest = Settings.from_env(
        env
        | {
            "TRIGGER_REQUESTS_PER_MINUTE": str(budget["MinValue"]),
            "TRIGGER_CONCURRENCY": str(concurrency["MaxValue"]),
        }
    )
    assert tightest.requests_per_container >= 1
