"""p4f.signing: one test per failure, and properties over any payload and secret."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p4f.signing import (
    MalformedSignatureError,
    MissingSignatureError,
    NoV1SignatureError,
    SignatureMismatchError,
    TimestampToleranceError,
    delivery_headers,
    sign,
    verify,
)

SECRET = "whsec_test_secret"
PAYLOAD = b'{"id":"evt_1","type":"ping","data":{"webhook_id":"w1"}}'
NOW = 1_790_000_000


def generate_header(
    payload: bytes = PAYLOAD, secret: str = SECRET, timestamp: int = NOW, extra: str = ""
) -> str:
    return sign(payload, secret, timestamp) + extra


def test_the_signature_is_the_contracts_hmac() -> None:
    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + PAYLOAD, hashlib.sha256).hexdigest()
    assert sign(PAYLOAD, SECRET, NOW) == f"t={NOW},v1={expected}"


def test_a_valid_delivery_returns_its_timestamp() -> None:
    assert verify(PAYLOAD, generate_header(), [SECRET], now=NOW) == NOW


def test_missing_header() -> None:
    with pytest.raises(MissingSignatureError):
        verify(PAYLOAD, None, [SECRET], now=NOW)
    with pytest.raises(MissingSignatureError):
        verify(PAYLOAD, "", [SECRET], now=NOW)


@pytest.mark.parametrize(
    "header",
    ["garbage", "t=,v1=abc", "v1=abc", "t=1,t=2,v1=abc", "t=12a,v1=abc", "t=1,=x", "x" * 5000],
)
def test_malformed_header(header: str) -> None:
    with pytest.raises(MalformedSignatureError):
        verify(PAYLOAD, header, [SECRET], now=NOW)


def test_no_v1_entry() -> None:
    with pytest.raises(NoV1SignatureError):
        verify(PAYLOAD, f"t={NOW},v0=abcdef", [SECRET], now=NOW)


@pytest.mark.parametrize("offset", [301, -301, 100_000])
def test_timestamp_outside_tolerance(offset: int) -> None:
    header = generate_header(timestamp=NOW - offset)
    with pytest.raises(TimestampToleranceError):
        verify(PAYLOAD, header, [SECRET], now=NOW)


def test_tolerance_is_configurable() -> None:
    header = generate_header(timestamp=NOW - 301)
    assert verify(PAYLOAD, header, [SECRET], tolerance=600, now=NOW) == NOW - 301


def test_no_signature_matches() -> None:
    with pytest.raises(SignatureMismatchError):
        verify(PAYLOAD, generate_header(secret="whsec_other"), [SECRET], now=NOW)


def test_other_schemes_and_extra_v1_entries_are_tolerated() -> None:
    header = f"t={NOW},v0=deadbeef,v1=00ff," + generate_header().split(",", 1)[1]
    assert verify(PAYLOAD, header, [SECRET], now=NOW) == NOW


def test_no_configured_secret_is_a_deployment_error() -> None:
    with pytest.raises(ValueError, match="no webhook signing secret"):
        verify(PAYLOAD, generate_header(), [], now=NOW)


def test_delivery_headers_carry_the_contracts_headers() -> None:
    headers = delivery_headers(PAYLOAD, SECRET, event_id="evt_1", event_type="ping", timestamp=NOW)
    assert headers["P4F-Signature"] == generate_header()
    assert headers["P4F-Event-Id"] == "evt_1"
    assert headers["P4F-Event-Type"] == "ping"
    assert headers["User-Agent"] == "Pay4Feedback-Webhooks/1.0"


secrets = st.text(min_size=1, max_size=40)
payloads = st.binary(max_size=512)


@given(payload=payloads, secret=secrets, flip=st.integers(min_value=0))
def test_any_change_to_the_body_is_rejected(payload: bytes, secret: str, flip: int) -> None:
    header = sign(payload, secret, NOW)
    if payload:
        index = flip % len(payload)
        tampered = payload[:index] + bytes([payload[index] ^ 0x01]) + payload[index + 1 :]
    else:
        tampered = b" "
    with pytest.raises(SignatureMismatchError):
        verify(tampered, header, [secret], now=NOW)


@given(payload=payloads, secret=secrets, shift=st.integers(min_value=1, max_value=300))
def test_any_change_to_the_timestamp_is_rejected(payload: bytes, secret: str, shift: int) -> None:
    signature = sign(payload, secret, NOW).split(",", 1)[1]
    with pytest.raises(SignatureMismatchError):
        verify(payload, f"t={NOW + shift},{signature}", [secret], now=NOW)


@given(payload=payloads, secret=secrets, position=st.integers(min_value=0, max_value=63))
def test_any_change_to_the_signature_is_rejected(
    payload: bytes, secret: str, position: int
) -> None:
    header = sign(payload, secret, NOW)
    prefix, digest = header.split("v1=")
    changed = "0" if digest[position] != "0" else "1"
    tampered = f"{prefix}v1={digest[:position]}{changed}{digest[position + 1 :]}"
    with pytest.raises(SignatureMismatchError):
        verify(payload, tampered, [secret], now=NOW)


@given(
    payload=payloads,
    rotated=st.lists(secrets, min_size=1, max_size=5, unique=True),
    pick=st.integers(min_value=0),
)
def test_any_of_n_rotated_secrets_is_accepted(
    payload: bytes, rotated: list[str], pick: int
) -> None:
    signer = rotated[pick % len(rotated)]
    assert verify(payload, sign(payload, signer, NOW), rotated, now=NOW) == NOW


def test_a_non_ascii_digit_timestamp_is_malformed_not_a_crash() -> None:
    with pytest.raises(MalformedSignatureError):
        verify(PAYLOAD, "t=\u00b2,v1=abc", [SECRET], now=NOW)
