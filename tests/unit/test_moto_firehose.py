"""moto's Firehose writes S3 objects as Firehose does: prefix expressions, delimiter, GZIP."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from datetime import UTC, datetime

import boto3
import pytest
from moto import mock_aws

from local.moto_firehose import evaluate_prefix, object_for

ARRIVED = datetime(2026, 4, 19, 14, 22, 51, tzinfo=UTC)
DELIMITED = {
    "CompressionFormat": "GZIP",
    "Prefix": "responses/dt=!{timestamp:yyyy-MM-dd}/",
    "ProcessingConfiguration": {
        "Enabled": True,
        "Processors": [{"Type": "AppendDelimiterToRecord"}],
    },
}


def test_a_prefix_with_a_timestamp_expression_is_evaluated_in_utc() -> None:
    assert evaluate_prefix("responses/dt=!{timestamp:yyyy-MM-dd}/", ARRIVED) == (
        "responses/dt=2026-04-19/"
    )
    assert evaluate_prefix("a/!{timestamp:yyyy}/!{timestamp:HH-mm-ss}/", ARRIVED) == (
        "a/2026/14-22-51/"
    )


def test_a_prefix_without_one_gets_firehoses_default_hour_folders() -> None:
    assert evaluate_prefix("raw/", ARRIVED) == "raw/2026/04/19/14/"
    assert evaluate_prefix("", ARRIVED) == "2026/04/19/14/"


def test_the_delimiter_processor_ends_each_record_and_gzip_names_the_object() -> None:
    key, body = object_for("stream", "1", DELIMITED, [b'{"a":1}', b'{"a":2}'], ARRIVED)
    assert key.startswith("responses/dt=2026-04-19/stream-1-2026-04-19-14-22-51-")
    assert key.endswith(".gz")
    assert gzip.decompress(body) == b'{"a":1}\n{"a":2}\n'


def test_without_them_records_are_joined_as_they_are() -> None:
    key, body = object_for("stream", "1", {"Prefix": "x/"}, [b"ab", b"cd"], ARRIVED)
    assert body == b"abcd"
    assert not key.endswith(".gz")


@pytest.fixture
def aws() -> Iterator[boto3.Session]:
    with mock_aws():
        yield boto3.Session(region_name="us-east-1")


def test_moto_delivers_a_batch_as_one_such_object(aws: boto3.Session) -> None:
    aws.client("s3").create_bucket(Bucket="mirror-bucket")
    firehose = aws.client("firehose")
    firehose.create_delivery_stream(
        DeliveryStreamName="rows",
        DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration={
            "RoleARN": "arn:aws:iam::123456789012:role/firehose",
            "BucketARN": "arn:aws:s3:::mirror-bucket",
            "ErrorOutputPrefix": "errors/!{firehose:error-output-type}/",
            **DELIMITED,
        },
    )
    before = datetime.now(UTC).strftime("%Y-%m-%d")
    firehose.put_record_batch(
        DeliveryStreamName="rows", Records=[{"Data": b'{"n":1}'}, {"Data": b'{"n":2}'}]
    )
    after = datetime.now(UTC).strftime("%Y-%m-%d")
    [item] = aws.client("s3").list_objects_v2(Bucket="mirror-bucket")["Contents"]
    assert item["Key"].split("/")[1] in {f"dt={before}", f"dt={after}"}
    assert item["Key"].split("/")[2].startswith("rows-1-")
    body = aws.client("s3").get_object(Bucket="mirror-bucket", Key=item["Key"])["Body"].read()
    assert gzip.decompress(body).splitlines() == [b'{"n":1}', b'{"n":2}']
