"""moto's DynamoDB, made atomic (local.atomic_moto): of concurrent conditional writes of one
key, exactly one wins, over moto_server as in process, as in DynamoDB."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from threading import Barrier
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto import mock_aws

from local.atomic_moto import make_dynamodb_atomic
from local.moto_server import MotoServer

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

ROUNDS = 100
CONTENDERS = 10
TABLE = "claims"


def create_table(dynamodb: DynamoDBClient) -> None:
    dynamodb.create_table(
        TableName=TABLE,
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )


def claim(dynamodb: DynamoDBClient, key: str, start: Barrier) -> bool:
    """Take `key` if nobody has; False if somebody had (any other error is raised)."""
    start.wait()
    try:
        dynamodb.update_item(
            TableName=TABLE,
            Key={"id": {"S": key}},
            UpdateExpression="SET #s = :taken",
            ConditionExpression="attribute_not_exists(id)",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":taken": {"S": "IN_PROGRESS"}},
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise
        return False
    return True


def winners_per_round(new_client: Callable[[], DynamoDBClient]) -> list[int]:
    """How many of CONTENDERS concurrent claims of a fresh key won, for each round."""
    clients = [new_client() for _ in range(CONTENDERS)]
    create_table(clients[0])
    counts = []
    with ThreadPoolExecutor(CONTENDERS) as pool:
        for round_number in range(ROUNDS):
            start = Barrier(CONTENDERS)
            key = f"event-{round_number}"
            claims = [pool.submit(claim, dynamodb, key, start) for dynamodb in clients]
            counts.append(sum(future.result() for future in claims))
    return counts


@pytest.fixture(scope="module")
def aws() -> Iterator[MotoServer]:
    with MotoServer() as server:
        yield server


@pytest.mark.timeout(300)
def test_over_moto_server_one_claim_of_ten_wins(aws: MotoServer) -> None:
    config = Config(max_pool_connections=CONTENDERS)

    def new_client() -> Any:
        return boto3.client(
            "dynamodb",
            endpoint_url=aws.url,
            region_name="us-east-1",
            config=config,
        )

    assert winners_per_round(new_client) == [1] * ROUNDS


@pytest.mark.timeout(300)
def test_in_process_one_claim_of_ten_wins() -> None:
    make_dynamodb_atomic()
    with mock_aws():
        counts = winners_per_round(lambda: boto3.client("dynamodb", region_name="us-east-1"))
    assert counts == [1] * ROUNDS
