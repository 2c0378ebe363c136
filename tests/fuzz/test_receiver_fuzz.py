"""The webhook receiver fuzzed (Hypothesis): bodies, headers, encodings, nesting, sizes.

Whatever comes, the handler answers (no exception escapes it), never with a 5xx while AWS
is healthy, accepts nothing forged or stale, and either publishes the exact bytes it got
to both targets or refuses them with a 4xx and stores nothing."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from hypothesis import given
from hypothesis import strategies as st
from moto import mock_aws

from local.lambda_events import LocalLambdaContext, is_utf8
from p4f.signing import sign
from tests.conftest import LoadFunction
from tests.fuzz.strategies import any_text, event_bodies, json_values
from tests.unit.test_webhook_receiver import Bridge, make_bridge


@pytest.fixture
def bridge(load_function: LoadFunction) -> Iterator[Bridge]:
    with mock_aws():
        yield make_bridge(load_function)


def forget_every_event(bridge: Bridge) -> None:
    """Empty the idempotency table: each example is a delivery of a new event."""
    dynamodb = boto3.client("dynamodb")
    for item in dynamodb.scan(TableName="idempotency")["Items"]:
        dynamodb.delete_item(TableName="idempotency", Key={"id": item["id"]})


@given(body=event_bodies(), base64_encoded=st.booleans())
def test_a_signed_body_is_published_as_sent_or_refused_with_a_4xx(
    bridge: Bridge, body: bytes, base64_encoded: bool
) -> None:
    forget_every_event(bridge)
    # A function URL hands a body that is not UTF-8 base64-encoded, whatever its type says.
    base64_encoded = base64_encoded or not is_utf8(body)
    status = bridge.deliver(body, base64_encoded=base64_encoded)["statusCode"]
    on_bus, on_queue = bridge.on_bus(), bridge.on_queue()
    assert status in {200, 400, 413, 422}
    if status == 200:
        assert [message["Body"].encode("utf-8", "surrogatepass") for message in on_queue] == [body]
        assert len(on_bus) == 1
    else:
        assert (on_bus, on_queue) == ([], [])


@given(
    body=event_bodies(),
    forgery=st.sampled_from(["another secret", "stale", "future", "header"]),
    header=any_text,
)
def test_a_forged_or_stale_delivery_is_never_accepted(
    bridge: Bridge, body: bytes, forgery: str, header: str
) -> None:
    now = int(time.time())
    if forgery == "another secret":
        answer = bridge.deliver(body, secret="whsec_attacker", base64_encoded=True)
    elif forgery in {"stale", "future"}:
        # Well past the 300 s of tolerance: a megabyte takes a while to sign and check.
        stamp = now - 400 if forgery == "stale" else now + 400
        answer = bridge.deliver(body, timestamp=stamp, base64_encoded=True)
    else:  # a header of its own, or a valid signature of other bytes
        forged = header if header.strip() else sign(body + b" ", "whsec_unit_test_secret", now)
        answer = bridge.deliver(body, headers={"P4F-Signature": forged}, base64_encoded=True)
    assert answer["statusCode"] in {401, 413}
    assert (bridge.on_bus(), bridge.on_queue()) == ([], [])


request_parts = st.fixed_dictionaries(
    {},
    optional={
        "body": st.one_of(json_values, any_text, st.binary().map(lambda b: b.hex())),
        "isBase64Encoded": json_values,
        "headers": st.dictionaries(any_text, json_values, max_size=4) | json_values,
        "requestContext": st.fixed_dictionaries(
            {}, optional={"http": st.fixed_dictionaries({}, optional={"method": json_values})}
        )
        | json_values,
        "rawPath": json_values,
        "queryStringParameters": json_values,
    },
)


@given(event=request_parts)
def test_any_event_is_answered_with_a_4xx_never_raised(bridge: Bridge, event: Any) -> None:
    answer = bridge.app.lambda_handler(event, LocalLambdaContext("webhook-receiver", 9))
    assert 400 <= answer["statusCode"] < 500
    assert (bridge.on_bus(), bridge.on_queue()) == ([], [])
