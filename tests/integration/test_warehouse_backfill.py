"""The backfill against the sandbox, into the mirror as template.yaml deploys it (in moto):
snapshots and live events give one current row per resource, however often it runs."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import boto3
import pytest

from local.lambda_events import LocalLambdaContext, custom_resource_request
from local.sandbox import SandboxAdmin, SandboxServer, running_sandbox
from p4f.backfill import Backfill
from p4f.client import Pay4FeedbackClient
from p4f.mirror import MirrorKind
from p4f.models import PayoutStatus
from tests.conftest import LoadFunction, api_budget
from tests.http_recorder import Receiver
from tests.integration.conftest import Mirror

KEY = "p4f_test_backfill"


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    with running_sandbox([KEY], api_version="1.1", page_size=3, rate_limit=6000) as server:
        yield server


def a_tenant_with_history(sandbox: SandboxServer) -> tuple[list[str], list[str]]:
    """Four campaigns (one paused), seven responses (two decided): their ids."""
    with (
        Pay4FeedbackClient(sandbox.url, api_key=KEY) as api,
        closing(SandboxAdmin(sandbox.url, KEY)) as admin,
    ):
        campaigns = []
        for n in range(4):
            campaign = api.create_campaign(
                name=f"C{n}", reward={"amount": "2.50", "currency": "EUR"}
            )
            api.update_campaign(campaign.id, status="ACTIVE")
            campaigns.append(campaign.id)
        responses = [admin.submit_response(campaigns[n % 4]).id for n in range(7)]
        api.pause_campaign(campaigns[0])
        admin.score(responses[0], 80)
        api.approve_response(responses[0])
        api.reject_response(responses[1], reason="Off topic")
    admin.close()
    return campaigns, responses


def run_backfill(sandbox: SandboxServer, mirror: Mirror) -> dict[MirrorKind, int]:
    with Pay4FeedbackClient(sandbox.url, api_key=KEY) as api:
        bus = mirror.deployment.outputs["EventBusName"]
        done = Backfill(api, mirror.session.client("events"), bus).run()
    assert done.complete
    return done.published


def test_every_page_is_backfilled_and_a_second_run_adds_no_current_row(
    sandbox: SandboxServer,
    mirror: Mirror,
) -> None:
    campaigns, responses = a_tenant_with_history(sandbox)
    assert run_backfill(sandbox, mirror) == {MirrorKind.CAMPAIGNS: 4, MirrorKind.RESPONSES: 7}
    assert run_backfill(sandbox, mirror) == {MirrorKind.CAMPAIGNS: 4, MirrorKind.RESPONSES: 7}
    with mirror.database() as database:
        assert database.query("SELECT count(*) AS n FROM responses") == [{"n": 14}]
        current = {r["id"]: r for r in database.query("SELECT * FROM responses_current")}
        assert set(current) == set(responses)
        assert current[responses[0]]["status"] == "APPROVED"
        assert current[responses[1]]["rejection_reason"] == "Off topic"
        assert {r["event_type"] for r in current.values()} == {"response_snapshot"}
        paused = database.query(f"SELECT status FROM campaigns_current WHERE id = '{campaigns[0]}'")
        assert paused == [{"status": "PAUSED"}]
        assert database.query("SELECT count(*) AS n FROM campaigns_current") == [{"n": 4}]


def test_live_events_after_a_backfill_give_one_current_row_each(
    sandbox: SandboxServer,
    mirror: Mirror,
) -> None:
    campaigns, responses = a_tenant_with_history(sandbox)
    run_backfill(sandbox, mirror)
    with (
        Pay4FeedbackClient(sandbox.url, api_key=KEY) as api,
        closing(SandboxAdmin(sandbox.url, KEY)) as admin,
    ):
        before = {e.id for e in admin.events()}
        api.resume_campaign(campaigns[0])
        admin.score(responses[2], 40)
        api.approve_response(responses[2])
        admin.pay_out(responses[2], PayoutStatus.COMPLETED)
        newer = admin.submit_response(campaigns[0]).id  # resumed, it takes responses again
        live = [e for e in reversed(admin.events()) if e.id not in before]
    admin.close()
    mirror.publish(*(event.model_dump(mode="json") for event in live))
    with mirror.database() as database:
        current = {r["id"]: r for r in database.query("SELECT id, status FROM responses_current")}
        assert set(current) == {*responses, newer}
        assert current[responses[2]]["status"] == "APPROVED"
        campaign_rows = database.query("SELECT id, status FROM campaigns_current")
        assert len(campaign_rows) == 4
        assert {r["id"]: r["status"] for r in campaign_rows}[campaigns[0]] == "ACTIVE"
        assert database.query("SELECT count(*) AS n FROM payouts_current") == [{"n": 1}]


def test_in_api_v1_0_the_newest_500_are_backfilled(mirror: Mirror) -> None:
    with running_sandbox([KEY], rate_limit=6000) as sandbox:
        admin = SandboxAdmin(sandbox.url, KEY)
        with Pay4FeedbackClient(sandbox.url, api_key=KEY) as api:
            campaign = api.create_campaign(name="Big", reward={"amount": "1.00", "currency": "USD"})
            api.update_campaign(campaign.id, status="ACTIVE")
            for _ in range(503):
                admin.submit_response(campaign.id)
        admin.close()
        assert run_backfill(sandbox, mirror) == {MirrorKind.CAMPAIGNS: 1, MirrorKind.RESPONSES: 500}


def test_the_first_deploy_backfills_through_the_custom_resource(
    sandbox: SandboxServer,
    mirror: Mirror,
    load_function: LoadFunction,
) -> None:
    a_tenant_with_history(sandbox)
    secrets = mirror.session.client("secretsmanager")
    key_arn = secrets.create_secret(Name="p4f/api-key-backfill", SecretString=KEY)["ARN"]
    app = load_function(
        "warehouse_backfill",
        {
            "P4F_API_KEY_SECRET_ARN": key_arn,
            "P4F_BASE_URL": sandbox.url,
            "EVENT_BUS_NAME": mirror.deployment.outputs["EventBusName"],
            "POWERTOOLS_TRACE_DISABLED": "true",
        }
        | api_budget(boto3.client("dynamodb", region_name="us-east-1")),
    )
    cloudformation = Receiver()
    try:
        answers = {}
        for request_type in ("Create", "Update", "Delete"):
            request_id = str(uuid.uuid4())
            event = custom_resource_request(
                request_type,
                {"ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:backfill"},
                response_url=f"{cloudformation.url}/cfn/{request_id}",
                request_id=request_id,
                logical_resource_id="WarehouseBackfill",
                resource_type="Custom::Pay4FeedbackMirrorBackfill",
                physical_resource_id=None if request_type == "Create" else "warehouse-backfill",
            )
            app.lambda_handler(event, LocalLambdaContext("backfill", 120))
            [answer] = [r.event for r in cloudformation.received if r.path.endswith(request_id)]
            answers[request_type] = answer
    finally:
        cloudformation.close()
    assert {a["Status"] for a in answers.values()} == {"SUCCESS"}
    assert {a["PhysicalResourceId"] for a in answers.values()} == {"warehouse-backfill"}
    assert answers["Create"]["Reason"] == "snapshots of 4 campaigns, 7 responses published"
    with mirror.database() as database:
        assert database.query("SELECT count(*) AS n FROM responses_current") == [{"n": 7}]


def test_a_backfill_that_cannot_reach_the_api_still_lets_the_deploy_go_on(
    mirror: Mirror,
    load_function: LoadFunction,
    tmp_path: Path,
) -> None:
    secrets = mirror.session.client("secretsmanager")
    key_arn = secrets.create_secret(Name="p4f/api-key-nowhere", SecretString=KEY)["ARN"]
    app = load_function(
        "warehouse_backfill",
        {
            "P4F_API_KEY_SECRET_ARN": key_arn,
            "P4F_BASE_URL": "http://127.0.0.1:9",  # nothing listens there
            "EVENT_BUS_NAME": mirror.deployment.outputs["EventBusName"],
            "POWERTOOLS_TRACE_DISABLED": "true",
        }
        | api_budget(boto3.client("dynamodb", region_name="us-east-1")),
    )
    cloudformation = Receiver()
    try:
        event = custom_resource_request(
            "Create",
            {},
            response_url=f"{cloudformation.url}/cfn/x",
            request_id="x",
            logical_resource_id="WarehouseBackfill",
            resource_type="Custom::Pay4FeedbackMirrorBackfill",
        )
        app.lambda_handler(event, LocalLambdaContext("backfill", 60))
        [answer] = [r.event for r in cloudformation.received]
    finally:
        cloudformation.close()
    assert answer["Status"] == "SUCCESS"
    assert "stopped early" in answer["Reason"]
    assert "p4f-bridge backfill --stack p4f-bridge" in answer["Reason"]
