"""Slack's v0 request signature: one test per way a request is refused."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from p4f.slack_signing import (
    MalformedSlackSignatureError,
    MissingSlackSignatureError,
    SlackSignatureMismatchError,
    StaleSlackRequestError,
    sign,
    verify,
)

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
BODY = b"payload=%7B%22type%22%3A%22block_actions%22%7D"
NOW = 1_700_000_000


def headers(body: bytes = BODY, secret: str = SECRET, at: int = NOW) -> tuple[str, str]:
    signed = sign(body, secret, at)
    return signed["X-Slack-Signature"], signed["X-Slack-Request-Timestamp"]


def test_a_signature_is_slacks_documented_hmac() -> None:
    signature, timestamp = headers()
    digest = hmac.new(SECRET.encode(), f"v0:{NOW}:".encode() + BODY, hashlib.sha256).hexdigest()
    assert (signature, timestamp) == (f"v0={digest}", str(NOW))
    verify(BODY, signature, timestamp, SECRET, now=NOW)


@pytest.mark.parametrize("age", [-300, 300])
def test_five_minutes_either_way_is_accepted(age: int) -> None:
    verify(BODY, *headers(at=NOW - age), SECRET, now=NOW)


@pytest.mark.parametrize(
    ("signature", "timestamp", "error"),
    [
        (None, str(NOW), MissingSlackSignatureError),
        ("v0=" + "0" * 64, None, MissingSlackSignatureError),
        ("", "", MissingSlackSignatureError),
        ("v1=" + "0" * 64, str(NOW), MalformedSlackSignatureError),
        ("v0=xyz", str(NOW), MalformedSlackSignatureError),
        ("v0=" + "0" * 64, "1e9", MalformedSlackSignatureError),
        ("v0=" + "0" * 64, str(NOW), SlackSignatureMismatchError),
    ],
    ids=["no-signature", "no-timestamp", "empty", "other-version", "not-hex", "bad-time", "forged"],
)
def test_a_request_without_a_good_signature_is_refused(
    signature: str | None, timestamp: str | None, error: type[Exception]
) -> None:
    with pytest.raises(error):
        verify(BODY, signature, timestamp, SECRET, now=NOW)


@pytest.mark.parametrize("age", [-301, 301, 86_400])
def test_a_stale_or_future_request_is_refused(age: int) -> None:
    with pytest.raises(StaleSlackRequestError, match="at most 300s"):
        verify(BODY, *headers(at=NOW - age), SECRET, now=NOW)


def test_another_body_secret_or_time_does_not_match() -> None:
    signature, timestamp = headers()
    with pytest.raises(SlackSignatureMismatchError):
        verify(BODY + b"x", signature, timestamp, SECRET, now=NOW)
    with pytest.raises(SlackSignatureMismatchError):
        verify(BODY, signature, timestamp, SECRET + "x", now=NOW)
    with pytest.raises(SlackSignatureMismatchError):
        verify(BODY, signature, str(NOW + 1), SECRET, now=NOW)


def test_no_configured_secret_is_a_deployment_error() -> None:
    with pytest.raises(ValueError, match="no Slack signing secret"):
        verify(BODY, *headers(), "", now=NOW)
