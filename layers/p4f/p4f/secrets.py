"""Secrets from AWS Secrets Manager, parsed, cached for a TTL, re-read on demand.

    CachedSecret[T]         fetch, parse (`_parse`), cache for `ttl` seconds; `refresh()`
    ├── KeySecret           one key: the key itself, or a JSON object {"<field>": "..."}
    │   └── ApiKeySecret    the Pay4Feedback API key: the key itself, or {"api_key": "..."}
    ├── SigningSecrets      webhook signing secrets: one secret, or a JSON array of them
    │                       while the sender rotates (old and new both valid for a while)
    └── TriggerToken        the bearer token callers of the campaign trigger present

    SecretError             the secret cannot be used
    ├── SecretNotFoundError the secret (or its value) does not exist
    ├── SecretAccessError   the function's role may not read it
    ├── SecretFormatError   its value is not in the expected form
    └── SecretsManagerUnavailableError  Secrets Manager did not answer (time-out, no
                            connection): a retry may work

Values never appear in a repr, a log line or an error message; only the secret's id does.
A function that reads secrets calls `keep_secret_values_out_of_logs()` at init, so that
libraries do not log them either, whatever the log level. boto3 is imported on first use
(it is the Lambda runtime's, and costs cold-start time).
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

DEFAULT_TTL_SECONDS = 300.0
MIN_TOKEN_LENGTH = 32
"""The shortest bearer token accepted: long enough that guessing it is hopeless."""
TOKEN_RECHECK_SECONDS = 60.0
"""A token that does not match is looked up again at most this often (it may have been
rotated), however many wrong tokens arrive."""


def keep_secret_values_out_of_logs() -> None:
    """Keep libraries from logging secret values at DEBUG: botocore logs each answer's body
    (a GetSecretValue answer holds the secret), httpx each request's URL at INFO (an
    incoming webhook's URL is its secret)."""
    logging.getLogger("botocore.parsers").setLevel(logging.INFO)
    logging.getLogger("httpx").setLevel(logging.WARNING)


class SecretError(Exception):
    """A secret cannot be used."""


class SecretNotFoundError(SecretError):
    """The secret, or a current value of it, does not exist."""


class SecretAccessError(SecretError):
    """The caller's IAM role may not read the secret."""


class SecretFormatError(SecretError):
    """The secret's value is not in the form the bridge expects."""


class SecretsManagerUnavailableError(SecretError):
    """Secrets Manager did not answer (a time-out, no connection): a retry may work."""


class CachedSecret[T]:
    """A Secrets Manager secret, parsed by `_parse` and cached for `ttl` seconds."""

    def __init__(
        self,
        secret_id: str,
        *,
        ttl: float = DEFAULT_TTL_SECONDS,
        boto3_client: SecretsManagerClient | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not secret_id:
            raise ValueError(f"{type(self).__name__} needs the secret's ARN or name")
        # Whoever reads a secret is protected from libraries that would log it.
        keep_secret_values_out_of_logs()
        self.secret_id = secret_id
        self._ttl = ttl
        self._client = boto3_client
        self._clock = clock
        self._value: T | None = None
        self._fetched_at = 0.0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(secret_id={self.secret_id!r})"

    def get(self) -> T:
        """The cached value, fetched again once it is older than the TTL."""
        return self.refresh(unless_younger_than=self._ttl)

    def refresh(self, *, unless_younger_than: float = 0.0) -> T:
        """The value fetched afresh (a key rotated, a signature that no longer matches).

        `unless_younger_than` keeps a value fetched that recently, so that a flood of
        forged requests cannot turn into a flood of Secrets Manager calls.
        """
        with self._lock:
            fresh_enough = self._clock() - self._fetched_at < unless_younger_than
            if self._value is None or not fresh_enough:
                self._value = self._fetch()
                self._fetched_at = self._clock()
            return self._value

    def _parse(self, secret_string: str) -> T:
        raise NotImplementedError

    def _fetch(self) -> T:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            answer = self._secretsmanager().get_secret_value(SecretId=self.secret_id)
        except BotoCoreError as exc:
            raise SecretsManagerUnavailableError(
                f"Secrets Manager did not answer for secret {self.secret_id!r} "
                f"({type(exc).__name__}); retry later"
            ) from exc
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code == "ResourceNotFoundException":
                raise SecretNotFoundError(
                    f"secret {self.secret_id!r} does not exist or has no current value; "
                    "create it (see README, 'Deploy') or fix the ARN in the function's settings"
                ) from exc
            if code in {"AccessDeniedException", "AccessDenied"}:
                raise SecretAccessError(
                    f"not allowed to read secret {self.secret_id!r}; grant "
                    "secretsmanager:GetSecretValue on it to the function's role"
                ) from exc
            raise SecretError(f"could not read secret {self.secret_id!r}: {code}") from exc
        secret_string = answer.get("SecretString")
        if not secret_string:
            raise SecretFormatError(
                f"secret {self.secret_id!r} has no SecretString (binary secrets are not used)"
            )
        return self._parse(_unquoted(secret_string.strip()))

    def _secretsmanager(self) -> SecretsManagerClient:
        if self._client is None:
            self._client = secretsmanager_client()
        return self._client


def secretsmanager_client() -> SecretsManagerClient:
    """A Secrets Manager client with short time-outs and a few retries; build it at init
    and pass it as `boto3_client=` to have it ready before the first invocation."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "secretsmanager",
        config=Config(
            connect_timeout=2, read_timeout=3, retries={"max_attempts": 3, "mode": "standard"}
        ),
    )


def _unquoted(secret_string: str) -> str:
    """The value of a secret stored as a JSON string (`'"whsec_..."'` from a shell), as it is
    meant; any other value unchanged."""
    if len(secret_string) >= 2 and secret_string[0] == secret_string[-1] == '"':
        try:
            decoded = json.loads(secret_string)
        except json.JSONDecodeError:
            return secret_string
        if isinstance(decoded, str):
            return decoded.strip()
    return secret_string


def _json_or_none(secret_string: str) -> Any:
    if not secret_string.startswith(("{", "[")):
        return None
    try:
        return json.loads(secret_string)
    except json.JSONDecodeError:
        return None


class KeySecret(CachedSecret[str]):
    """One key: the secret's whole value, or the `field` of a JSON object."""

    field: ClassVar[str]
    """The JSON field that holds the key, e.g. "api_key"."""
    what: ClassVar[str]
    """What the key is, for error messages, e.g. "the API key"."""

    def _parse(self, secret_string: str) -> str:
        parsed = _json_or_none(secret_string)
        if parsed is None:
            return secret_string
        if isinstance(parsed, dict) and isinstance(parsed.get(self.field), str):
            key: str = parsed[self.field].strip()
            if key:
                return key
        raise SecretFormatError(
            f'secret {self.secret_id!r} must hold {self.what} itself or {{"{self.field}": "..."}}'
        )


class ApiKeySecret(KeySecret):
    """The Pay4Feedback API key; a `p4f.client.ApiKeyProvider`."""

    field = "api_key"
    what = "the API key"

    def get_api_key(self) -> str:
        return self.get()

    def refresh_api_key(self) -> str:
        return self.refresh()


class SigningSecrets(CachedSecret[tuple[str, ...]]):
    """The webhook signing secrets currently valid (several while rotating)."""

    def _parse(self, secret_string: str) -> tuple[str, ...]:
        parsed = _json_or_none(secret_string)
        if parsed is None:
            return (secret_string,)
        if (
            isinstance(parsed, list)
            and parsed
            and all(isinstance(item, str) and item.strip() for item in parsed)
        ):
            return tuple(item.strip() for item in parsed)
        raise SecretFormatError(
            f"secret {self.secret_id!r} must hold one signing secret, or a JSON array of "
            'them while rotating: ["whsec_new", "whsec_old"]'
        )


class TriggerToken(CachedSecret[str]):
    """The bearer token of the campaign trigger (generated by Secrets Manager at deploy)."""

    def _parse(self, secret_string: str) -> str:
        if len(secret_string) < MIN_TOKEN_LENGTH or any(c.isspace() for c in secret_string):
            raise SecretFormatError(
                f"secret {self.secret_id!r} must hold one token of at least {MIN_TOKEN_LENGTH} "
                "characters without spaces; generate one with `openssl rand -hex 32`"
            )
        return secret_string

    def matches(self, presented: str) -> bool:
        """Whether `presented` is the token, compared in constant time.

        A mismatch reads the secret again (at most every TOKEN_RECHECK_SECONDS), so that a
        rotated token is accepted without waiting for the cache to expire.
        """
        if _same(presented, self.get()):
            return True
        return _same(presented, self.refresh(unless_younger_than=TOKEN_RECHECK_SECONDS))


def _same(presented: str, token: str) -> bool:
    return hmac.compare_digest(presented.encode("utf-8"), token.encode("utf-8"))
