"""segment_delivery's parts: the write key's forms, the settings, and packing requests."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

import pytest
from segment_calls import SegmentCall, call_size
from segment_delivery import (
    MAX_REQUEST_BYTES,
    Request,
    Settings,
    WriteKeySecret,
    pack_requests,
    sent_at_now,
)

from p4f.json_text import encode_json
from p4f.secrets import SecretFormatError
from p4f.settings import ConfigurationError

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient


@pytest.mark.parametrize("value", ["wk_s3cr3t", '{"write_key": "wk_s3cr3t"}', " wk_s3cr3t\n"])
def test_the_write_key_is_the_value_or_its_write_key_field(
    secretsmanager: SecretsManagerClient, value: str
) -> None:
    secretsmanager.create_secret(Name="p4f/segment", SecretString=value)
    assert WriteKeySecret("p4f/segment", boto3_client=secretsmanager).get() == "wk_s3cr3t"


def test_a_write_key_in_another_form_says_which_form_works(
    secretsmanager: SecretsManagerClient,
) -> None:
    secretsmanager.create_secret(Name="p4f/segment", SecretString='{"key": "wk_s3cr3t"}')
    expected = 'the Segment write key itself or {"write_key": "..."}'
    with pytest.raises(SecretFormatError, match=re.escape(expected)) as raised:
        WriteKeySecret("p4f/segment", boto3_client=secretsmanager).get()
    assert "wk_s3cr3t" not in str(raised.value)


def test_the_settings_read_the_endpoint_and_the_personal_data_switch() -> None:
    env = {
        "SEGMENT_SECRET_ARN": "arn",
        "SEGMENT_QUEUE_URL": "q",
        "SEGMENT_ENDPOINT": "https://events.eu1.segmentapis.com/",
    }
    assert Settings.from_env(env) == Settings(
        "arn", "q", "https://events.eu1.segmentapis.com", False
    )
    allowed = Settings.from_env(env | {"SEGMENT_SEND_PERSONAL_DATA": "true"})
    assert allowed.send_personal_data is True
    with pytest.raises(ConfigurationError, match="SEGMENT_ENDPOINT is not set"):
        Settings.from_env({"SEGMENT_SECRET_ARN": "arn", "SEGMENT_QUEUE_URL": "q"})
    with pytest.raises(ConfigurationError, match="SEGMENT_QUEUE_URL is not set"):
        Settings.from_env({"SEGMENT_SECRET_ARN": "arn"})
    with pytest.raises(
        ConfigurationError, match="SEGMENT_SEND_PERSONAL_DATA must be true or false"
    ):
        Settings.from_env(env | {"SEGMENT_SEND_PERSONAL_DATA": "maybe"})


def call(size: int, name: str = "c") -> SegmentCall:
    """A call of exactly `size` bytes as analytics-python counts them."""
    padding = size - call_size({"n": name, "p": ""})
    value = {"n": name, "p": "x" * padding}
    assert call_size(value) == size
    return SegmentCall(encode_json(value), size)


def library_batch_size(request: Request) -> int:
    """The request's batch as analytics-python would count it."""
    return call_size(json.loads(request.body(sent_at_now())))


def test_a_batch_that_fits_is_one_request_in_order() -> None:
    records = [(f"m-{i}", [call(30_000)]) for i in range(10)]
    [request] = pack_requests(records)
    assert request.message_ids == [f"m-{i}" for i in range(10)]
    body = request.body(sent_at_now())
    assert len(body) <= library_batch_size(request) <= MAX_REQUEST_BYTES
    assert len(json.loads(body)["batch"]) == 10


def test_requests_are_split_at_the_limit_keeping_a_records_calls_together() -> None:
    records = [(f"m-{i}", [call(100, "identify"), call(300, "track")]) for i in range(7)]
    requests = pack_requests(records, max_bytes=1_000)
    assert [r.message_ids for r in requests] == [
        ["m-0", "m-1"],
        ["m-2", "m-3"],
        ["m-4", "m-5"],
        ["m-6"],
    ]
    for request in requests:
        assert library_batch_size(request) <= 1_000
        assert len(json.loads(request.body(sent_at_now()))["batch"]) == 2 * len(request.message_ids)


def test_the_limit_is_filled_to_the_byte_as_the_library_counts() -> None:
    [alone] = pack_requests([("a", [call(100)]), ("b", [call(100)])])
    exactly = library_batch_size(alone)
    assert len(pack_requests([("a", [call(100)]), ("b", [call(100)])], max_bytes=exactly)) == 1
    assert len(pack_requests([("a", [call(100)]), ("b", [call(100)])], max_bytes=exactly - 1)) == 2


def test_non_ascii_is_counted_escaped_so_a_request_never_exceeds_the_limit() -> None:
    text = {"p": "é漢😀" * 1_000}  # 9 bytes in UTF-8, 24 escaped
    emoji = SegmentCall(encode_json(text), call_size(text))
    assert emoji.size > len(emoji.encoded)
    requests = pack_requests([(f"m-{i}", [emoji]) for i in range(30)])
    assert [len(r.calls) for r in requests] == [20, 10]  # 21 x 24,009 is over 500,000
    assert all(library_batch_size(r) <= MAX_REQUEST_BYTES for r in requests)


def test_nothing_to_send_is_no_request() -> None:
    assert pack_requests([]) == []
