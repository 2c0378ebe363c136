"""The subscription custom resource against the sandbox, with CloudFormation's response URL
served locally: every request gets exactly one answer, whatever happens."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local.lambda_events import LocalLambdaContext, custom_resource_request
from local.sandbox import SandboxAdmin, SandboxServer, running_sandbox
from p4f.client import Pay4FeedbackClient
from p4f.signing import SIGNATURE_HEADER, verify
from tests.conftest import LoadFunction, api_budget
from tests.http_recorder import Receiver, Reply, wait_until

KEYS = [f"p4f_test_subscriptions_{n:02d}" for n in range(20)]
SIGNING_SECRET = "whsec_stack_generated_secret"
ALL_EVENTS = ["reward_approved", "payout_completed", "payout_failed"]


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    with running_sandbox(KEYS, webhook_retry_base=0.05, webhook_retry_for=1) as server:
        yield server


_keys = iter(KEYS)


@dataclass
class CloudFormation:
    """Sends custom resource requests to the handler and reads the answers it PUT back."""

    app: ModuleType
    key: str
    responses: Receiver
    receiver: Receiver
    api: Pay4FeedbackClient
    admin: SandboxAdmin
    timeout: float = 60

    def send(
        self,
        request_type: str,
        properties: dict[str, Any] | None = None,
        *,
        old: dict[str, Any] | None = None,
        physical_id: str | None = None,
    ) -> dict[str, Any]:
        """One request; returns the single answer CloudFormation received for it."""
        request_id = str(uuid.uuid4())
        event = custom_resource_request(
            request_type,
            properties or self.properties(),
            response_url=f"{self.responses.url}/cfn/{request_id}",
            request_id=request_id,
            physical_resource_id=physical_id,
            old_properties=old,
        )
        self.app.lambda_handler(event, LocalLambdaContext("subscriptions", self.timeout))
        answers = [r for r in self.responses.received if r.path == f"/cfn/{request_id}"]
        assert len(answers) == 1, "CloudFormation must get exactly one answer"
        assert answers[0].method == "PUT"
        answer: dict[str, Any] = answers[0].event
        assert answer["RequestId"] == request_id
        assert answer["LogicalResourceId"] == "WebhookSubscription"
        assert answer["StackId"] == event["StackId"]
        return answer

    def properties(self, events: list[str] | None = None, rotation: str = "1") -> dict[str, Any]:
        return {
            "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:subscriptions",
            "WebhookUrl": self.receiver.url,
            "Events": events or ALL_EVENTS,
            "SecretRotation": rotation,
        }

    def registered(self) -> dict[str, list[str]]:
        return {w.id: sorted(w.events) for w in self.api.list_webhooks()}


@pytest.fixture
def cfn(sandbox: SandboxServer, load_function: LoadFunction) -> Iterator[CloudFormation]:
    key = next(_keys)
    responses, receiver = Receiver(), Receiver()
    with mock_aws():
        secrets = boto3.client("secretsmanager", region_name="us-east-1")
        api_key_arn = secrets.create_secret(Name="p4f/api-key", SecretString=key)["ARN"]
        signing_arn = secrets.create_secret(Name="p4f/signing", SecretString=SIGNING_SECRET)["ARN"]
        app = load_function(
            "subscription_manager",
            {
                "P4F_API_KEY_SECRET_ARN": api_key_arn,
                "WEBHOOK_SECRET_ARN": signing_arn,
                "P4F_BASE_URL": sandbox.url,
                "POWERTOOLS_TRACE_DISABLED": "true",
            }
            | api_budget(boto3.client("dynamodb", region_name="us-east-1")),
        )
        with Pay4FeedbackClient(sandbox.url, api_key=key) as api:
            admin = SandboxAdmin(sandbox.url, key)
            yield CloudFormation(app, key, responses, receiver, api, admin)
    responses.close()
    receiver.close()


def test_create_registers_the_receiver_with_the_signing_secret(cfn: CloudFormation) -> None:
    answer = cfn.send("Create")
    assert answer["Status"] == "SUCCESS"
    webhook_id = answer["PhysicalResourceId"]
    assert answer["Data"] == {"WebhookId": webhook_id}
    assert cfn.registered() == {webhook_id: sorted(ALL_EVENTS)}
    # Pay4Feedback's test delivery is signed with the stack's secret.
    wait_until(lambda: bool(cfn.receiver.received))
    ping = cfn.receiver.received[0]
    assert ping.event["type"] == "ping"
    verify(ping.body, ping.headers[SIGNATURE_HEADER.lower()], [SIGNING_SECRET])


def test_an_update_that_changes_nothing_keeps_the_subscription(cfn: CloudFormation) -> None:
    created = cfn.send("Create")["PhysicalResourceId"]
    answer = cfn.send("Update", cfn.properties(), old=cfn.properties(), physical_id=created)
    assert answer["Status"] == "SUCCESS"
    assert answer["PhysicalResourceId"] == created
    assert list(cfn.registered()) == [created]


def test_an_update_registers_the_new_subscription_before_the_old_goes(cfn: CloudFormation) -> None:
    old_id = cfn.send("Create")["PhysicalResourceId"]
    new = cfn.properties(events=["payout_failed"])
    answer = cfn.send("Update", new, old=cfn.properties(), physical_id=old_id)
    new_id = answer["PhysicalResourceId"]
    assert answer["Status"] == "SUCCESS"
    assert new_id != old_id
    assert cfn.registered() == {old_id: sorted(ALL_EVENTS), new_id: ["payout_failed"]}
    # CloudFormation then deletes the resource by its old physical id.
    assert cfn.send("Delete", new, physical_id=old_id)["Status"] == "SUCCESS"
    assert cfn.registered() == {new_id: ["payout_failed"]}


def test_a_rotation_registers_the_newest_signing_secret(cfn: CloudFormation) -> None:
    old_id = cfn.send("Create")["PhysicalResourceId"]
    boto3.client("secretsmanager", region_name="us-east-1").put_secret_value(
        SecretId="p4f/signing", SecretString=json.dumps(["whsec_rotated", SIGNING_SECRET])
    )
    rotated = cfn.properties(rotation="2")
    new_id = cfn.send("Update", rotated, old=cfn.properties(), physical_id=old_id)[
        "PhysicalResourceId"
    ]
    wait_until(lambda: len(cfn.receiver.received) == 2)
    pings = {r.event["data"]["webhook_id"]: r for r in cfn.receiver.received}
    verify(pings[new_id].body, pings[new_id].headers["p4f-signature"], ["whsec_rotated"])


def test_delete_removes_the_subscription_and_a_404_counts_as_done(cfn: CloudFormation) -> None:
    created = cfn.send("Create")["PhysicalResourceId"]
    assert cfn.send("Delete", physical_id=created)["Status"] == "SUCCESS"
    assert cfn.registered() == {}
    again = cfn.send("Delete", physical_id=created)
    assert again["Status"] == "SUCCESS"
    assert "already deleted" in again["Reason"]


def test_a_failed_create_answers_failed_with_the_apis_reason(cfn: CloudFormation) -> None:
    answer = cfn.send("Create", cfn.properties() | {"WebhookUrl": "ftp://not-http"})
    assert answer["Status"] == "FAILED"
    assert "url: must be an http(s) URL" in answer["Reason"]
    assert answer["PhysicalResourceId"].startswith("not-created-")
    # ... and deleting that resource (a rollback) does nothing and succeeds.
    deleted = cfn.send("Delete", physical_id=answer["PhysicalResourceId"])
    assert deleted["Status"] == "SUCCESS"


def test_missing_properties_are_a_failed_answer_not_a_hang(cfn: CloudFormation) -> None:
    answer = cfn.send("Create", {"ServiceToken": "x"})
    assert answer["Status"] == "FAILED"
    assert "WebhookUrl" in answer["Reason"]


def test_pay4feedback_answering_too_late_still_gets_cloudformation_an_answer(
    cfn: CloudFormation,
) -> None:
    cfn.admin.arm_fault(method="POST", path="/api/v1/webhooks", delay=8)
    cfn.timeout = 6  # the function's time runs out before the sandbox answers
    answer = cfn.send("Create")
    assert answer["Status"] == "FAILED"
    assert answer["Reason"]


def test_delete_with_a_revoked_key_does_not_block_the_stack(cfn: CloudFormation) -> None:
    created = cfn.send("Create")["PhysicalResourceId"]
    cfn.admin.revoke_key(cfn.key)
    answer = cfn.send("Delete", physical_id=created)
    assert answer["Status"] == "SUCCESS"
    assert created in answer["Reason"]
    assert "dashboard" in answer["Reason"]


def test_an_answer_cloudformation_refused_once_is_sent_again(cfn: CloudFormation) -> None:
    cfn.responses.script(Reply(status=503))
    request_id = "retried-answer"
    event = custom_resource_request(
        "Create",
        cfn.properties(),
        response_url=f"{cfn.responses.url}/cfn/{request_id}",
        request_id=request_id,
    )
    cfn.app.lambda_handler(event, LocalLambdaContext("subscriptions", 60))
    puts = [r for r in cfn.responses.received if r.path == f"/cfn/{request_id}"]
    assert len(puts) == 2
    assert puts[0].body == puts[1].body
    assert puts[1].event["Status"] == "SUCCESS"


def test_a_create_run_twice_keeps_the_first_subscription(cfn: CloudFormation) -> None:
    # Lambda runs an invocation again when it failed, e.g. after its answer was refused.
    first = cfn.send("Create")["PhysicalResourceId"]
    again = cfn.send("Create")
    assert again["Status"] == "SUCCESS"
    assert again["PhysicalResourceId"] == first
    assert list(cfn.registered()) == [first]
