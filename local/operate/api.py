"""The Pay4Feedback API as a stack's own functions reach it, from this machine: its API key
(the secret Parameter ApiKeySecretArn), its URL (Pay4FeedbackBaseUrl) and every request in
the stack's tenant-wide budget (resource ApiBudgetTable, Parameters ApiRequestsPerMinute and
ApiInteractiveReservePercent), so that a command run by hand never spends what the deployed
functions count on.

    api = operated_api(stack, caller="p4f-bridge status")     # an OperatedStack
    api.client.list_webhooks()                                # INTERACTIVE unless told
    api.budget.use()                                          # how full the budget is

The AWS credentials need secretsmanager:GetSecretValue on the API key's secret and
dynamodb:GetItem and UpdateItem on the budget table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from p4f.budget import BudgetSettings, TenantBudget
from p4f.client import DEFAULT_BASE_URL, Pay4FeedbackClient
from p4f.secrets import ApiKeySecret

if TYPE_CHECKING:
    from collections.abc import Mapping

    from local.operate.stack import OperatedStack

BUDGET_TABLE = "ApiBudgetTable"
"""The budget table's logical id in template.yaml."""


@dataclass(frozen=True)
class StackApi:
    """A client of the API with the stack's key, in the stack's budget."""

    client: Pay4FeedbackClient
    budget: TenantBudget


def budget_settings(
    parameters: Mapping[str, str], budget_table: str, *, caller: str
) -> BudgetSettings:
    """The budget as the stack's functions have it (their environment, from Globals)."""
    return BudgetSettings.from_env(
        {
            "API_BUDGET_TABLE": budget_table,
            "API_REQUESTS_PER_MINUTE": parameters.get("ApiRequestsPerMinute", ""),
            "API_INTERACTIVE_RESERVE_PERCENT": parameters.get("ApiInteractiveReservePercent", ""),
            "AWS_LAMBDA_FUNCTION_NAME": caller,
        }
    )


def operated_api(stack: OperatedStack, *, caller: str) -> StackApi:
    """The API of an operated stack (deployed or local), with its key, in its budget."""
    budget = TenantBudget.from_settings(
        budget_settings(stack.parameters, stack.resources(BUDGET_TABLE), caller=caller),
        stack.client("dynamodb"),
    )
    api = Pay4FeedbackClient(
        stack.parameters.get("Pay4FeedbackBaseUrl") or DEFAULT_BASE_URL,
        key_provider=ApiKeySecret(
            stack.parameters["ApiKeySecretArn"], boto3_client=stack.client("secretsmanager")
        ),
        budget=budget,
    )
    return StackApi(api, budget)
