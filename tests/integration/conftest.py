"""The warehouse mirror as template.yaml deploys it, in moto: for the mirror's tests."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local.cloudformation import Deployment
from local.firehose_relay import FirehoseRelay
from local.warehouse.engine import MirrorDatabase, sync_from_s3
from p4f.fanout import ReceivedEvent, eventbridge_entry
from tests.unit.test_local_cloudformation import deploy


@dataclass
class Mirror:
    session: boto3.Session
    deployment: Deployment
    relay: FirehoseRelay
    files: Path

    def publish(self, *bodies: dict[str, Any]) -> None:
        """Put webhook bodies on the bus as the receiver does."""
        entries = [
            eventbridge_entry(
                ReceivedEvent.parse(json.dumps(body).encode()),
                self.deployment.outputs["EventBusName"],
            )
            for body in bodies
        ]
        for start in range(0, len(entries), 10):
            answer = self.session.client("events").put_events(Entries=entries[start : start + 10])
            assert answer["FailedEntryCount"] == 0

    def database(self) -> MirrorDatabase:
        self.relay.wait_until_idle(timeout=15)
        sync_from_s3(
            self.session.client("s3"), self.deployment.outputs["WarehouseBucketName"], self.files
        )
        return MirrorDatabase(self.files)


@pytest.fixture
def mirror(tmp_path: Path) -> Iterator[Mirror]:
    with mock_aws():
        session = boto3.Session(region_name="us-east-1")
        deployment = deploy(session, EnableWarehouseMirror="true")
        targets = deployment.firehose_targets
        with FirehoseRelay(session.client("sqs"), session.client("firehose"), targets) as relay:
            yield Mirror(session, deployment, relay, tmp_path)
