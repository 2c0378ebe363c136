"""The Pay4Feedback webhook signature scheme: the one place in the project that knows it.

    P4F-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, f"{t}." + raw body)>[,v1=...]

Several `v1` entries may be present (the sender rotating its secret) and entries of other
schemes (`v0=...`) are ignored. A delivery is valid when any `v1` entry matches any
configured secret and `t` is within the tolerance of now. See ../shared/contract/webhooks.md.

    SignatureVerificationError      the delivery must be refused (401)
    ├── MissingSignatureError       no P4F-Signature header
    ├── MalformedSignatureError     the header cannot be parsed
    ├── NoV1SignatureError          no v1 entry in the header
    ├── TimestampToleranceError     t is too old (a replay?) or too far in the future
    └── SignatureMismatchError      no v1 entry matches any configured secret
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Sequence

SIGNATURE_HEADER = "P4F-Signature"
EVENT_ID_HEADER = "P4F-Event-Id"
EVENT_TYPE_HEADER = "P4F-Event-Type"
USER_AGENT = "Pay4Feedback-Webhooks/1.0"
SCHEME = "v1"
DEFAULT_TOLERANCE_SECONDS = 300
_MAX_HEADER_LENGTH = 4096


class SignatureVerificationError(Exception):
    """The delivery's signature does not prove it came from Pay4Feedback."""


class MissingSignatureError(SignatureVerificationError):
    """The P4F-Signature header is missing or empty."""


class MalformedSignatureError(SignatureVerificationError):
    """The P4F-Signature header is not `t=<unix seconds>,v1=<hex>`."""


class NoV1SignatureError(SignatureVerificationError):
    """The P4F-Signature header has no v1 signature."""


class TimestampToleranceError(SignatureVerificationError):
    """The signature's timestamp is outside the tolerance (stale, replayed, or future)."""


class SignatureMismatchError(SignatureVerificationError):
    """No v1 signature matches any configured secret."""


def _signature(payload: bytes, secret: str, timestamp: int) -> str:
    signed_payload = f"{timestamp}.".encode() + payload
    return hmac.new(secret.encode("utf-8"), signed_payload, hashlib.sha256).hexdigest()


def sign(payload: bytes, secret: str, timestamp: int) -> str:
    """The P4F-Signature header value for `payload` signed with `secret` at `timestamp`."""
    return f"t={timestamp},{SCHEME}={_signature(payload, secret, timestamp)}"


def delivery_headers(
    payload: bytes,
    secret: str,
    *,
    event_id: str,
    event_type: str,
    timestamp: int | None = None,
) -> dict[str, str]:
    """Every header of a webhook delivery, as Pay4Feedback sends it."""
    return {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": USER_AGENT,
        SIGNATURE_HEADER: sign(
            payload, secret, int(time.time()) if timestamp is None else timestamp
        ),
        EVENT_ID_HEADER: event_id,
        EVENT_TYPE_HEADER: event_type,
    }


def _parse_header(header: str) -> tuple[int, list[str]]:
    timestamps: list[str] = []
    signatures: list[str] = []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep or not key:
            raise MalformedSignatureError(
                f"P4F-Signature entry {item.strip()[:20]!r} is not key=value; "
                "expected t=<unix seconds>,v1=<hex>"
            )
        if key == "t":
            timestamps.append(value)
        elif key == SCHEME:
            signatures.append(value)
    if len(timestamps) != 1 or not (timestamps[0].isascii() and timestamps[0].isdigit()):
        raise MalformedSignatureError("P4F-Signature must carry exactly one t=<unix seconds> entry")
    if not signatures:
        raise NoV1SignatureError(f"P4F-Signature has no {SCHEME}= entry")
    return int(timestamps[0]), signatures


def verify(
    payload: bytes,
    header: str | None,
    secrets: Sequence[str],
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
    now: int | None = None,
) -> int:
    """Check a delivery's P4F-Signature header against the raw body; return its timestamp.

    `payload` must be the exact bytes received (base64-decoded if the platform encoded
    them), before any JSON parsing. Raises a `SignatureVerificationError` subclass naming
    the failure; a `ValueError` if no secret is configured (a deployment error, not the
    sender's).
    """
    if not secrets:
        raise ValueError("no webhook signing secret is configured; set one in the secret")
    if not header:
        raise MissingSignatureError(f"the {SIGNATURE_HEADER} header is missing")
    if len(header) > _MAX_HEADER_LENGTH:
        raise MalformedSignatureError(f"the {SIGNATURE_HEADER} header is too long")
    timestamp, signatures = _parse_header(header)
    now = int(time.time()) if now is None else now
    if abs(now - timestamp) > tolerance:
        raise TimestampToleranceError(
            f"the signature timestamp is {now - timestamp}s from now; "
            f"at most {tolerance}s is accepted (check the clocks, or a replay)"
        )
    expected = [_signature(payload, secret, timestamp) for secret in secrets]
    matched = False
    # Every pair is compared, so the time taken does not depend on where a match is.
    for candidate in signatures:
        for signature in expected:
            matched |= hmac.compare_digest(candidate.encode(), signature.encode())
    if not matched:
        raise SignatureMismatchError(
            "no v1 signature matches a configured secret (was the signing secret rotated?)"
        )
    return timestamp
