"""Slack's request signature (the v0 scheme): the one place in the project that knows it.

    X-Slack-Request-Timestamp: <unix seconds>
    X-Slack-Signature: v0=<hex HMAC-SHA256(signing secret, f"v0:{timestamp}:" + raw body)>

Slack signs every request it sends an app (interactivity payloads included) with the app's
signing secret (Basic Information -> App Credentials). A request is genuine when the
signature matches and the timestamp is within five minutes of now (an older one may be a
replay). Verify against the raw body bytes, before any parsing; compare in constant time.
The review_actions function verifies with `verify`, the local Slack signs with `sign`.

    SlackSignatureError             the request must be refused (401)
    ├── MissingSlackSignatureError  a header is missing or empty
    ├── MalformedSlackSignatureError  a header cannot be read (not v0=<hex>, not a number)
    ├── StaleSlackRequestError      the timestamp is more than the tolerance from now
    └── SlackSignatureMismatchError the signature is not the body's with the signing secret
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time

SIGNATURE_HEADER = "X-Slack-Signature"
TIMESTAMP_HEADER = "X-Slack-Request-Timestamp"
VERSION = "v0"
TOLERANCE_SECONDS = 300
"""Slack's own advice: refuse a request whose timestamp is more than five minutes away."""
_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")


class SlackSignatureError(Exception):
    """The request's signature does not prove it came from Slack."""


class MissingSlackSignatureError(SlackSignatureError):
    """X-Slack-Signature or X-Slack-Request-Timestamp is missing or empty."""


class MalformedSlackSignatureError(SlackSignatureError):
    """A signature header is not in Slack's form."""


class StaleSlackRequestError(SlackSignatureError):
    """The timestamp is too far from now: a replayed request, or a clock that is off."""


class SlackSignatureMismatchError(SlackSignatureError):
    """The signature does not match the body and the signing secret."""


def _signature(body: bytes, secret: str, timestamp: int) -> str:
    base = f"{VERSION}:{timestamp}:".encode() + body
    digest = hmac.new(secret.encode("utf-8"), base, hashlib.sha256).hexdigest()
    return f"{VERSION}={digest}"


def sign(body: bytes, secret: str, timestamp: int | None = None) -> dict[str, str]:
    """The two headers Slack sends with `body`, signed with `secret` at `timestamp`."""
    at = int(time.time()) if timestamp is None else timestamp
    return {TIMESTAMP_HEADER: str(at), SIGNATURE_HEADER: _signature(body, secret, at)}


def verify(
    body: bytes,
    signature: str | None,
    timestamp: str | None,
    secret: str,
    *,
    tolerance: int = TOLERANCE_SECONDS,
    now: float | None = None,
) -> None:
    """Return if Slack signed `body` (the raw bytes received); else a SlackSignatureError.

    A `ValueError` if no signing secret is configured (a deployment error, not Slack's).
    """
    if not secret:
        raise ValueError("no Slack signing secret is configured; put it in its secret")
    if not signature or not timestamp:
        raise MissingSlackSignatureError(
            f"the {SIGNATURE_HEADER} or {TIMESTAMP_HEADER} header is missing"
        )
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        raise MalformedSlackSignatureError(f"{TIMESTAMP_HEADER} is not a number of seconds")
    if not _SIGNATURE.fullmatch(signature):
        raise MalformedSlackSignatureError(f"{SIGNATURE_HEADER} is not v0=<64 hex digits>")
    at = int(timestamp)
    age = (time.time() if now is None else now) - at
    if abs(age) > tolerance:
        raise StaleSlackRequestError(
            f"the request was signed {age:.0f}s from now; at most {tolerance}s is accepted "
            "(a replay, or a clock that is off)"
        )
    expected = _signature(body, secret, at)
    if not hmac.compare_digest(signature.encode(), expected.encode()):
        raise SlackSignatureMismatchError(
            "the signature does not match: was the Slack app's signing secret changed?"
        )
