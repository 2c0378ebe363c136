"""moto's DynamoDB, made atomic (local.atomic_moto): of concurrent conditional writes of one
key, exactly one wins, over moto_server as in process, as in DynamoDB; and of concurrent
transactions that claim one state change for different events (p4f.dedupe), exactly one."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from threading import Barrier
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto import mock_aws

from local.atomic_moto import make_dynamodb_atomic
from local.moto_server import MotoServer
from p4f.changes import Change
from p4f.dedupe import ClaimOutcome, DeliveryLedger

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

ROUNDS = 100
TRANSACTION_ROUNDS = 30
"""Fewer: moto copies the whole table for each transaction (to roll it back). Without
local.atomic_moto, concurrent transactions fail there outright (RuntimeError: dictionary
changed size during iteration, a 500) or let two claims win."""
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


def claim_change(dynamodb: DynamoDBClient, key: str, start: Barrier) -> bool:
    """Claim the change `key` names as the reconciler does (a transaction of the event's
    item and the change's), as several runs at once would."""
    change = Change(key, "reward_approved", datetime(2026, 4, 19, tzinfo=UTC))
    ledger = DeliveryLedger(TABLE, dynamodb)
    start.wait()
    return ledger.claim(change.event_id, 5, change).outcome is ClaimOutcome.NEW


type Contender = Callable[[DynamoDBClient, str, Barrier], bool]


def winners_per_round(
    new_client: Callable[[], DynamoDBClient], contend: Contender = claim, rounds: int = ROUNDS
) -> list[int]:
    """How many of CONTENDERS concurrent claims of a fresh key won, for each round."""
    clients = [new_client() for _ in range(CONTENDERS)]
    create_table(clients[0])
    counts = []
    with ThreadPoolExecutor(CONTENDERS) as pool:
        for round_number in range(rounds):
            start = Barrier(CONTENDERS)
            key = f"event-{round_number}"
            claims = [pool.submit(contend, dynamodb, key, start) for dynamodb in clients]
            counts.append(sum(future.result() for future in claims))
    return counts


@pytest.fixture(scope="module")
def aws() -> Iterator[MotoServer]:
    with MotoServer() as server:
        yield server


def server_client(aws: MotoServer) -> Callable[[], Any]:
    config = Config(max_pool_connections=CONTENDERS)

    def new_client() -> Any:
        return boto3.client(
            "dynamodb",
            endpoint_url=aws.url,
            region_name="us-east-1",
            config=config,
        )

    return new_client


@pytest.mark.timeout(300)
def test_over_moto_server_one_claim_of_ten_wins(aws: MotoServer) -> None:
    assert winners_per_round(server_client(aws)) == [1] * ROUNDS


@pytest.mark.timeout(300)
def test_over_moto_server_one_transaction_of_ten_claiming_a_change_wins() -> None:
    with MotoServer() as aws:  # a fresh table of its own
        counts = winners_per_round(server_client(aws), claim_change, TRANSACTION_ROUNDS)
    assert counts == [1] * TRANSACTION_ROUNDS


@pytest.mark.timeout(300)
def test_in_process_one_claim_of_ten_wins() -> None:
    make_dynamodb_atomic()
    with mock_aws():
        counts = winners_per_round(lambda: boto3.client("dynamodb", region_name="us-east-1"))
    assert counts == [1] * ROUNDS


@pytest.mark.timeout(300)
def test_in_process_one_transaction_of_ten_claiming_a_change_wins() -> None:
    make_dynamodb_atomic()
    with mock_aws():
        new_client = lambda: boto3.client("dynamodb", region_name="us-east-1")  # noqa: E731
        counts = winners_per_round(new_client, claim_change, TRANSACTION_ROUNDS)
    assert counts == [1] * TRANSACTION_ROUNDS
