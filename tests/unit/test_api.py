"""p4f.api: every API caller's settings from the template's environment, and the one way a
function builds its client (its key from Secrets Manager, each request in the budget)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from local.sandbox import SandboxAdmin, running_sandbox
from local.template import Template
from p4f.api import ApiSettings, budgeted_client
from p4f.budget import BudgetSettings
from p4f.settings import ConfigurationError

API_KEY = "p4f_test_api_settings"
ENV = {
    "P4F_API_KEY_SECRET_ARN": "arn:key",
    "API_BUDGET_TABLE": "budget",
    "AWS_LAMBDA_FUNCTION_NAME": "p4f-reconciler",
}


def test_the_defaults_are_pay4feedback_and_the_shared_budget() -> None:
    assert ApiSettings.from_env(ENV) == ApiSettings(
        api_key_secret_arn="arn:key",
        base_url="https://app.pay4feedback.com",
        timeout_seconds=10,
        budget=BudgetSettings(
            table_name="budget",
            requests_per_minute=55,
            interactive_reserve_percent=25,
            window_seconds=60,
            function_name="p4f-reconciler",
        ),
    )


def test_the_environment_overrides_the_defaults() -> None:
    settings = ApiSettings.from_env(
        ENV | {"P4F_BASE_URL": "http://127.0.0.1:8080", "P4F_TIMEOUT_SECONDS": "3"}
    )
    assert (settings.base_url, settings.timeout_seconds) == ("http://127.0.0.1:8080", 3)


@pytest.mark.parametrize("missing", ["P4F_API_KEY_SECRET_ARN", "API_BUDGET_TABLE"])
def test_a_missing_variable_is_named(missing: str) -> None:
    with pytest.raises(ConfigurationError, match=missing):
        ApiSettings.from_env({k: v for k, v in ENV.items() if k != missing})


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


def test_the_client_reads_its_key_and_takes_a_budget_slot_per_request(
    aws: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "P4fBridge")
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    dynamodb.create_table(**Template.load().table_definition("ApiBudgetTable", "budget"))
    secretsmanager = boto3.client("secretsmanager", region_name="us-east-1")
    arn = secretsmanager.create_secret(Name="key", SecretString=json.dumps({"api_key": API_KEY}))[
        "ARN"
    ]
    with running_sandbox([API_KEY]) as sandbox:
        settings = ApiSettings.from_env(
            ENV | {"P4F_API_KEY_SECRET_ARN": arn, "P4F_BASE_URL": sandbox.url}
        )
        with budgeted_client(settings, dynamodb, secretsmanager=secretsmanager) as client:
            assert client.list_campaigns() == []
            client.list_campaigns()
        admin = SandboxAdmin(sandbox.url, API_KEY)
        assert admin.stats().requests == 2  # the sandbox knew the key from the secret
        admin.close()
    [item] = dynamodb.scan(TableName="budget")["Items"]
    assert float(item["tat"]["N"]) > 0  # the two requests took slots of the one budget
    used = [
        metric
        for line in capsys.readouterr().out.splitlines()
        if "ApiBudgetUsed" in line and (metric := json.loads(line))
    ]
    assert [m["function_name"] for m in used] == ["p4f-reconciler"] * 2  # in its metrics
