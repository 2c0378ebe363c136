"""How a function reaches Pay4Feedback: the API key's secret, the base URL, the time-out and
its share of the tenant-wide API budget, as the template gives them to every API caller.

A function keeps an `ApiSettings` in its own settings and builds its one client at init with
`budgeted_client`: every request then takes a slot of the one budget (p4f.budget) and the
function's metrics show what it used and waited.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from p4f import settings as env_readers
from p4f.budget import BudgetMetrics, BudgetSettings, TenantBudget
from p4f.client import DEFAULT_BASE_URL, DEFAULT_TIMEOUT_SECONDS, Pay4FeedbackClient
from p4f.secrets import ApiKeySecret

if TYPE_CHECKING:
    from collections.abc import Mapping

    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_secretsmanager import SecretsManagerClient


@dataclass(frozen=True)
class ApiSettings:
    api_key_secret_arn: str
    base_url: str
    timeout_seconds: int
    budget: BudgetSettings
    """The tenant-wide API budget this function shares with the bridge's others."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ApiSettings:
        return cls(
            api_key_secret_arn=env_readers.required(env, "P4F_API_KEY_SECRET_ARN"),
            base_url=env_readers.optional(env, "P4F_BASE_URL") or DEFAULT_BASE_URL,
            timeout_seconds=env_readers.integer(
                env, "P4F_TIMEOUT_SECONDS", int(DEFAULT_TIMEOUT_SECONDS), minimum=1
            ),
            budget=BudgetSettings.from_env(env),
        )


def tenant_budget(settings: ApiSettings, dynamodb: DynamoDBClient) -> TenantBudget:
    """The function's handle on the tenant-wide budget, its metrics on."""
    return TenantBudget.from_settings(
        settings.budget, dynamodb, observer=BudgetMetrics(settings.budget.function_name)
    )


def budgeted_client(
    settings: ApiSettings,
    dynamodb: DynamoDBClient,
    *,
    secretsmanager: SecretsManagerClient | None = None,
    budget: TenantBudget | None = None,
) -> Pay4FeedbackClient:
    """The function's client: its key from Secrets Manager, every request in the budget
    (`budget`: a handle of `tenant_budget` the function keeps, e.g. to count its slots)."""
    return Pay4FeedbackClient(
        settings.base_url,
        key_provider=ApiKeySecret(settings.api_key_secret_arn, boto3_client=secretsmanager),
        timeout=settings.timeout_seconds,
        budget=budget or tenant_budget(settings, dynamodb),
    )
