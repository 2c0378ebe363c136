"""`trigger.failure`, the one mapping of failures to outcomes and statuses; and the settings."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from trigger import CampaignTakenError, Outcome, Settings, failure
from trigger_ledger import ClaimLostError

from p4f.budget import BudgetExhaustedError, BudgetSettings, BudgetUnavailableError
from p4f.errors import (
    ApiConnectionError,
    AuthenticationError,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    Pay4FeedbackError,
    RateLimitError,
    ServerError,
)
from p4f.secrets import SecretAccessError
from p4f.settings import ConfigurationError


@pytest.mark.parametrize(
    ("exc", "outcome", "status", "says"),
    [
        (
            InvalidRequestError("reward.currency: must be a 3-letter code", status=400),
            Outcome.REFUSED,
            400,
            "reward.currency: must be a 3-letter code",
        ),
        (
            ConflictError("only a DRAFT campaign can be launched", status=409),
            Outcome.REFUSED,
            409,
            "only a DRAFT campaign can be launched",
        ),
        (
            AuthenticationError("Invalid API key", status=401),
            Outcome.FAILED,
            502,
            "refused the bridge's API key",
        ),
        (ServerError("Bad Gateway", status=502), Outcome.FAILED, 502, "Pay4Feedback failed"),
        (
            ApiConnectionError("no answer", request_sent=True),
            Outcome.FAILED,
            502,
            "Pay4Feedback failed",
        ),
        (NotFoundError("gone", status=404), Outcome.FAILED, 502, "Pay4Feedback failed"),
        (Pay4FeedbackError("teapot", status=418), Outcome.FAILED, 502, "Pay4Feedback failed"),
        (
            SecretAccessError("not allowed to read secret 'p4f/api-key'"),
            Outcome.FAILED,
            500,
            "not allowed to read secret",
        ),
        (ClaimLostError("taken over"), Outcome.FAILED, 503, "retry later"),
        (CampaignTakenError("adopted"), Outcome.FAILED, 503, "retry later"),
        (
            ClientError({"Error": {"Code": "ProvisionedThroughputExceeded"}}, "UpdateItem"),
            Outcome.FAILED,
            503,
            "the trigger table did not answer (ClientError)",
        ),
        (
            EndpointConnectionError(endpoint_url="https://dynamodb"),
            Outcome.FAILED,
            503,
            "the trigger table did not answer (EndpointConnectionError)",
        ),
    ],
)
def test_each_failure_has_its_outcome_and_status(
    exc: Exception, outcome: Outcome, status: int, says: str
) -> None:
    result = failure(exc)
    assert (result.outcome, result.status) == (outcome, status)
    assert result.error is not None
    assert says in result.error
    assert result.retry_after is None


@pytest.mark.parametrize(("retry_after", "seconds"), [(12.0, 12), (0.2, 1), (12.1, 13)])
def test_a_rate_limit_is_deferred_for_whole_seconds(retry_after: float, seconds: int) -> None:
    result = failure(RateLimitError("Rate limit exceeded.", retry_after=retry_after))
    assert (result.outcome, result.status, result.retry_after) == (Outcome.DEFERRED, 429, seconds)
    assert result.error == f"Pay4Feedback's rate limit is used up; retry in {seconds}s"


def test_the_budget_is_exhausted_in_the_bridges_words_never_pay4feedbacks() -> None:
    exhausted = BudgetExhaustedError("no free slot", retry_after=4.2)
    result = failure(exhausted)
    assert (result.outcome, result.status, result.retry_after) == (Outcome.DEFERRED, 429, 5)
    assert result.error is not None
    assert result.error.startswith("the bridge's API budget is used up")
    assert "Pay4Feedback itself refused nothing" in result.error
    assert "Rate limit exceeded" not in result.error


def test_an_unreachable_budget_table_is_a_503_to_retry() -> None:
    result = failure(BudgetUnavailableError("the bridge's API budget table did not answer"))
    assert (result.outcome, result.status) == (Outcome.FAILED, 503)


def test_the_settings_read_the_shared_budget() -> None:
    env = {
        "TRIGGER_TOKEN_SECRET_ARN": "arn:token",
        "P4F_API_KEY_SECRET_ARN": "arn:key",
        "TRIGGER_TABLE": "trigger",
        "EVENT_BUS_NAME": "bus",
        "TRIGGER_QUEUE_URL": "https://sqs/queue",
        "API_BUDGET_TABLE": "budget",
        "AWS_LAMBDA_FUNCTION_NAME": "p4f-campaign-trigger",
    }
    settings = Settings.from_env(env)
    assert settings.api.base_url == "https://app.pay4feedback.com"
    assert settings.api.budget == BudgetSettings(
        table_name="budget",
        requests_per_minute=55,
        interactive_reserve_percent=25,
        window_seconds=60,
        function_name="p4f-campaign-trigger",
    )
    with pytest.raises(ConfigurationError, match="API_BUDGET_TABLE"):
        Settings.from_env({k: v for k, v in env.items() if k != "API_BUDGET_TABLE"})
