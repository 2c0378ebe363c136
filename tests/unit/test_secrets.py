"""p4f.secrets against Secrets Manager in moto."""

from __future__ import annotations

import json
import logging
import re
from typing import TYPE_CHECKING

import pytest

from p4f.secrets import (
    ApiKeySecret,
    SecretAccessError,
    SecretFormatError,
    SecretNotFoundError,
    SecretsManagerUnavailableError,
    SigningSecrets,
    TriggerToken,
)

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    "value", ["p4f_live_abc", '{"api_key": "p4f_live_abc"}', " p4f_live_abc\n"]
)
def test_the_api_key_is_the_value_or_its_api_key_field(
    secretsmanager: SecretsManagerClient, value: str
) -> None:
    arn = secretsmanager.create_secret(Name="p4f/api-key", SecretString=value)["ARN"]
    assert ApiKeySecret(arn, boto3_client=secretsmanager).get_api_key() == "p4f_live_abc"


@pytest.mark.parametrize("value", ['{"key": "p4f_live_abc"}', '{"api_key": ""}', "[1, 2]"])
def test_a_malformed_api_key_secret_says_what_form_it_needs(
    secretsmanager: SecretsManagerClient, value: str
) -> None:
    secretsmanager.create_secret(Name="p4f/api-key", SecretString=value)
    with pytest.raises(
        SecretFormatError, match=re.escape('the API key itself or {"api_key": "..."}')
    ) as raised:
        ApiKeySecret("p4f/api-key", boto3_client=secretsmanager).get()
    assert "p4f_live_abc" not in str(raised.value)


def test_the_value_is_cached_for_the_ttl_and_refresh_rereads_it(
    secretsmanager: SecretsManagerClient,
) -> None:
    secretsmanager.create_secret(Name="p4f/api-key", SecretString="p4f_old")
    clock = Clock()
    key = ApiKeySecret("p4f/api-key", ttl=60, boto3_client=secretsmanager, clock=clock)
    assert key.get_api_key() == "p4f_old"
    secretsmanager.put_secret_value(SecretId="p4f/api-key", SecretString="p4f_new")
    clock.now = 59
    assert key.get_api_key() == "p4f_old"  # still cached
    assert key.refresh_api_key() == "p4f_new"  # after a 401
    secretsmanager.put_secret_value(SecretId="p4f/api-key", SecretString="p4f_newer")
    clock.now = 59 + 60
    assert key.get_api_key() == "p4f_newer"  # the TTL ran out


def test_a_missing_secret_names_it_and_how_to_fix_it(secretsmanager: SecretsManagerClient) -> None:
    with pytest.raises(SecretNotFoundError, match="'p4f/nope' does not exist"):
        ApiKeySecret("p4f/nope", boto3_client=secretsmanager).get()


def test_access_denied_says_which_permission_is_missing() -> None:
    class Denied:
        def get_secret_value(self, SecretId: str) -> None:
            from botocore.exceptions import ClientError

            raise ClientError({"Error": {"Code": "AccessDeniedException"}}, "GetSecretValue")

    with pytest.raises(SecretAccessError, match="secretsmanager:GetSecretValue"):
        ApiKeySecret("p4f/key", boto3_client=Denied()).get()  # type: ignore[arg-type]


def test_secrets_manager_not_answering_is_a_secret_error_to_retry() -> None:
    class TimingOut:
        def get_secret_value(self, SecretId: str) -> None:
            from botocore.exceptions import ReadTimeoutError

            raise ReadTimeoutError(endpoint_url="https://secretsmanager.us-east-1.amazonaws.com")

    with pytest.raises(SecretsManagerUnavailableError, match=r"\(ReadTimeoutError\); retry later"):
        SigningSecrets("p4f/signing", boto3_client=TimingOut()).get()  # type: ignore[arg-type]


def test_the_value_is_not_in_the_repr(secretsmanager: SecretsManagerClient) -> None:
    secretsmanager.create_secret(Name="p4f/api-key", SecretString="p4f_live_abc")
    key = ApiKeySecret("p4f/api-key", boto3_client=secretsmanager)
    key.get()
    assert repr(key) == "ApiKeySecret(secret_id='p4f/api-key')"


@pytest.mark.parametrize(
    ("value", "secrets"),
    [
        ("whsec_one", ("whsec_one",)),
        (json.dumps(["whsec_new", "whsec_old"]), ("whsec_new", "whsec_old")),
    ],
)
def test_signing_secrets_are_one_or_a_json_array_while_rotating(
    secretsmanager: SecretsManagerClient, value: str, secrets: tuple[str, ...]
) -> None:
    secretsmanager.create_secret(Name="p4f/signing", SecretString=value)
    assert SigningSecrets("p4f/signing", boto3_client=secretsmanager).get() == secrets


@pytest.mark.parametrize("value", ["[]", '["whsec_a", 3]', '{"secret": "whsec_a"}', '[""]'])
def test_malformed_signing_secrets_are_refused(
    secretsmanager: SecretsManagerClient, value: str
) -> None:
    secretsmanager.create_secret(Name="p4f/signing", SecretString=value)
    with pytest.raises(SecretFormatError, match="JSON array"):
        SigningSecrets("p4f/signing", boto3_client=secretsmanager).get()


TOKEN = "a" * 48


@pytest.mark.parametrize("value", ["short", "a" * 31, "a" * 20 + " " + "a" * 20])
def test_a_weak_trigger_token_is_refused_with_how_to_make_one(
    secretsmanager: SecretsManagerClient, value: str
) -> None:
    secretsmanager.create_secret(Name="p4f/trigger-token", SecretString=value)
    with pytest.raises(SecretFormatError, match="openssl rand -hex 32") as raised:
        TriggerToken("p4f/trigger-token", boto3_client=secretsmanager).get()
    assert value not in str(raised.value)


def test_the_trigger_token_matches_only_itself(secretsmanager: SecretsManagerClient) -> None:
    secretsmanager.create_secret(Name="p4f/trigger-token", SecretString=TOKEN)
    token = TriggerToken("p4f/trigger-token", boto3_client=secretsmanager)
    assert token.matches(TOKEN)
    assert not token.matches(TOKEN[:-1])
    assert not token.matches(TOKEN + "a")
    assert not token.matches("")
    assert not token.matches("é" * 48)


def test_a_rotated_trigger_token_is_read_again_at_most_once_a_minute(
    secretsmanager: SecretsManagerClient,
) -> None:
    secretsmanager.create_secret(Name="p4f/trigger-token", SecretString=TOKEN)
    clock = Clock()
    token = TriggerToken("p4f/trigger-token", boto3_client=secretsmanager, clock=clock)
    assert token.matches(TOKEN)
    rotated = "b" * 48
    secretsmanager.put_secret_value(SecretId="p4f/trigger-token", SecretString=rotated)
    clock.now = 30
    assert not token.matches(rotated)  # read 30 s ago: not read again yet
    clock.now = 61
    assert token.matches(rotated)  # a mismatch a minute later reads the rotated token
    assert not token.matches(TOKEN)


def test_reading_a_secret_keeps_botocore_from_logging_its_value(
    secretsmanager: SecretsManagerClient, caplog: pytest.LogCaptureFixture
) -> None:
    secretsmanager.create_secret(Name="p4f/api-key", SecretString="p4f_live_never_logged")
    caplog.set_level(logging.DEBUG)
    ApiKeySecret("p4f/api-key", boto3_client=secretsmanager).get()
    assert "GetSecretValue" in caplog.text  # botocore did log the call at DEBUG
    assert "p4f_live_never_logged" not in caplog.text


def test_a_secret_stored_as_a_json_string_is_read_without_its_quotes(
    secretsmanager: SecretsManagerClient,
) -> None:
    # What `--secret-string '"whsec_new"'` stores: the README's rotation used to say so.
    secretsmanager.create_secret(Name="p4f/signing", SecretString='"whsec_new"')
    assert SigningSecrets("p4f/signing", boto3_client=secretsmanager).get() == ("whsec_new",)
