"""The campaign trigger's function URL entry (`POST /triggers/campaigns`), against the
Pay4Feedback sandbox over real HTTP, with AWS in moto."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from trigger_body import TriggerBody, field_paths

from local.sample_events import EVENTS_DIR, SAMPLE_TRIGGER_TOKEN
from local.sandbox import SandboxServer, running_sandbox
from local.sandbox.pages import ApiVersion
from p4f.budget import Priority
from p4f.models import CampaignStatus
from tests.conftest import LoadFunction
from tests.unit.campaign_trigger.stack import (
    KEYS,
    PATH,
    TOKEN,
    Stack,
    create_directly,
    data,
    error,
    trigger_body,
    trigger_stack,
)

# --- HTTP: creating ---------------------------------------------------------------------


def test_a_trigger_creates_a_draft_campaign(stack: Stack) -> None:
    answer = stack.post(trigger_body())
    assert answer["statusCode"] == 201
    created = data(answer)
    assert created["status"] == "DRAFT"
    assert created["reward"] == {"amount": "5.00", "currency": "USD"}
    assert created["questions"][0]["prompt"] == "What almost stopped you from buying?"
    [campaign] = stack.campaigns()
    assert campaign.id == created["id"]
    assert campaign.status is CampaignStatus.DRAFT
    assert campaign.description == "Why people leave the cart"


def test_activate_launches_the_campaign(stack: Stack) -> None:
    answer = stack.post(trigger_body(activate=True))
    assert answer["statusCode"] == 201
    assert data(answer)["status"] == "ACTIVE"
    [campaign] = stack.campaigns()
    assert campaign.status is CampaignStatus.ACTIVE


def test_half_an_emoji_makes_the_campaign_with_the_replacement_character(stack: Stack) -> None:
    # As a tool that cuts text sends it; it once raised in the client (a 502). The external
    # id makes the trigger fingerprint the body and claim its key, too.
    body = trigger_body(name="Love it \ud83d", external_id="crm-emoji")
    answer = stack.post(json.dumps(body).encode())
    assert answer["statusCode"] == 201, error(answer)
    assert data(answer)["name"] == "Love it \ufffd"
    again = stack.post(json.dumps(body).encode())
    assert (again["statusCode"], data(again)["id"]) == (201, data(answer)["id"])
    assert again["headers"]["Idempotent-Replayed"] == "true"


def test_what_zapier_sends_is_understood(stack: Stack) -> None:
    # Every value a string, and a mapped field with nothing in it as "".
    body = {
        "name": "Onboarding",
        "reward": {"amount": "2.50", "currency": "EUR"},
        "max_responses": "50",
        "activate": "true",
        "description": "",
        "questions": "",
    }
    answer = stack.post(body)
    assert answer["statusCode"] == 201
    created = data(answer)
    assert (created["status"], created["max_responses"]) == ("ACTIVE", 50)
    assert (created["description"], created["questions"]) == (None, [])


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (trigger_body() | {"name": None}, "name: must be a string"),
        ({"reward": {"amount": "5", "currency": "USD"}}, "name: is required"),
        (trigger_body(reward={"amount": "five", "currency": "USD"}), "reward.amount: must be"),
        (trigger_body(questions=[{"type": "text"}]), "questions[0].prompt: is required"),
        (trigger_body(activate="maybe"), "activate: must be true or false"),
        (trigger_body(external_id="  "), "external_id: must not be empty"),
        (trigger_body(zap_id="123"), "zap_id: is not a field of a campaign trigger"),
        (b"name=Checkout", "body: is not valid JSON (Expecting value at line 1, column 1)"),
        (b"[]", "body: is a list of 0 items; send one campaign per request"),
        # The API's own rules: its 400 is passed on, naming the field.
        (trigger_body(reward={"amount": "5", "currency": "dollars"}), "reward.currency: must be"),
        (trigger_body(name="   "), "name: must not be empty"),
    ],
)
def test_a_bad_body_is_refused_with_400_naming_the_field(
    stack: Stack, body: dict[str, Any] | bytes, message: str
) -> None:
    answer = stack.post(body)
    assert answer["statusCode"] == 400
    assert error(answer).startswith(message)
    assert stack.campaigns() == []


def test_without_a_key_every_call_creates_a_campaign(stack: Stack) -> None:
    first = data(stack.post(trigger_body()))
    second = data(stack.post(trigger_body()))
    assert first["id"] != second["id"]
    assert len(stack.campaigns()) == 2


# --- HTTP: who may call, and how --------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "challenge"),
    [
        ({}, 'Bearer realm="p4f-bridge"'),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, 'Bearer realm="p4f-bridge"'),
        ({"Authorization": "Bearer "}, 'Bearer realm="p4f-bridge"'),
        ({"Authorization": f"Bearer {TOKEN}x"}, 'Bearer realm="p4f-bridge", error="invalid_token"'),
        ({"Authorization": "Bearer p4f_test_trigger_000"}, 'error="invalid_token"'),
    ],
)
def test_a_missing_or_wrong_token_gets_401_and_creates_nothing(
    stack: Stack, headers: dict[str, str], challenge: str
) -> None:
    answer = stack.post(trigger_body(), token=None, headers=headers)
    assert answer["statusCode"] == 401
    assert challenge in answer["headers"]["WWW-Authenticate"]
    assert "token" in error(answer)
    assert stack.campaigns() == []


def test_the_token_scheme_is_case_insensitive(stack: Stack) -> None:
    answer = stack.post(trigger_body(), token=None, headers={"Authorization": f"bearer {TOKEN}"})
    assert answer["statusCode"] == 201


def test_an_unreadable_token_secret_is_500_not_401_and_says_why_in_the_log_only(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    boto3.client("secretsmanager", region_name="us-east-1").delete_secret(
        SecretId="p4f/trigger-token", ForceDeleteWithoutRecovery=True
    )
    answer = stack.post(trigger_body())
    assert answer["statusCode"] == 500
    assert error(answer) == "the trigger cannot check tokens now; tell its operator"
    [handled] = [r for r in caplog.records if r.getMessage() == "trigger handled"]
    assert "p4f/trigger-token" in handled.__dict__["error"]  # the operator learns which, and why
    assert stack.campaigns() == []


def test_other_paths_are_404_and_other_methods_405(stack: Stack) -> None:
    missing = stack.post(trigger_body(), path="/triggers/responses")
    assert missing["statusCode"] == 404
    assert PATH in error(missing)
    wrong = stack.post(b"", method="PUT")
    assert wrong["statusCode"] == 405
    assert wrong["headers"]["Allow"] == "GET, POST"
    assert stack.post(trigger_body(), path=PATH + "/")["statusCode"] == 201


def test_a_get_with_the_token_describes_what_the_trigger_accepts(stack: Stack) -> None:
    described = data(stack.post(b"", method="GET"))
    assert described["create"] == f"POST {PATH}"
    assert list(described["fields"]) == field_paths()
    assert "multipart/form-data" in described["content_types"]
    assert stack.post(b"", method="GET", token=None)["statusCode"] == 401  # the token first
    assert stack.campaigns() == []


def test_a_body_over_256_kb_is_413(stack: Stack) -> None:
    answer = stack.post(trigger_body(description="x" * 300_000))
    assert answer["statusCode"] == 413
    assert stack.campaigns() == []


# --- HTTP: exactly once -----------------------------------------------------------------


def test_a_repeated_idempotency_key_gets_the_same_campaign_and_answer(stack: Stack) -> None:
    headers = {"Idempotency-Key": "zap-run-42"}
    first = stack.post(trigger_body(activate=True), headers=headers)
    again = stack.post(trigger_body(activate=True), headers=headers)
    assert first["statusCode"] == again["statusCode"] == 201
    assert data(again) == data(first)
    assert again["headers"]["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first["headers"]
    [campaign] = stack.campaigns()
    assert campaign.status is CampaignStatus.ACTIVE
    assert len(stack.created_events()) == 1


@pytest.mark.parametrize(("api_version", "campaigns"), [("1.1", 1), ("1.0", 2)])
def test_the_keys_post_carries_an_idempotency_key_of_its_own_across_invocations(
    load_function: LoadFunction, api_version: ApiVersion, campaigns: int
) -> None:
    """Its ledger lost (restored from an old backup), the trigger posts a key's campaign
    again: API v1.1 knows the POST by its Idempotency-Key and makes no second campaign."""
    with (
        running_sandbox(KEYS[:1], api_version=api_version) as sandbox,
        mock_aws(),
        trigger_stack(load_function, sandbox) as stack,
    ):
        headers = {"Idempotency-Key": "zap-run-44"}
        first = data(stack.post(trigger_body(), headers=headers))
        boto3.client("dynamodb", region_name="us-east-1").delete_item(
            TableName="trigger", Key={"key": {"S": "idempotency_key:zap-run-44"}}
        )
        again = data(stack.post(trigger_body(), headers=headers))
        assert len(stack.created_events()) == campaigns
        assert (again["id"] == first["id"]) is (campaigns == 1)


def test_the_same_key_with_another_body_is_refused_with_422(stack: Stack) -> None:
    headers = {"Idempotency-Key": "zap-run-43"}
    assert stack.post(trigger_body(), headers=headers)["statusCode"] == 201
    answer = stack.post(trigger_body(name="Another campaign"), headers=headers)
    assert answer["statusCode"] == 422
    assert "Idempotency-Key reused with a different body" in error(answer)
    assert len(stack.campaigns()) == 1


def test_an_external_id_is_one_campaign_over_http_and_eventbridge(stack: Stack) -> None:
    body = trigger_body(external_id="crm-campaign-7")
    created = data(stack.post(body, headers={"Idempotency-Key": "ignored-when-external-id"}))
    assert data(stack.post(body))["id"] == created["id"]
    event_id = stack.put_event(body)
    with stack.poller() as poller:
        poller.wait_until_idle(timeout=10)
    [outcome] = stack.outcomes()
    assert outcome["detail"]["correlation_id"] == event_id
    assert outcome["detail"]["campaign"]["id"] == created["id"]
    assert len(stack.campaigns()) == 1


def test_a_bad_idempotency_key_is_400(stack: Stack) -> None:
    answer = stack.post(trigger_body(), headers={"Idempotency-Key": "k" * 256})
    assert answer["statusCode"] == 400
    assert error(answer).startswith("Idempotency-Key: must be 1 to 255 characters")


def test_a_post_whose_answer_is_lost_makes_one_campaign(
    load_function: LoadFunction, sandbox: SandboxServer
) -> None:
    with (
        mock_aws(),
        trigger_stack(load_function, sandbox, P4F_TIMEOUT_SECONDS="1") as stack,
    ):
        # The sandbox creates the campaign, then answers after the client gave up.
        stack.admin.arm_fault(method="POST", path="/api/v1/campaigns", delay=2)
        answer = stack.post(trigger_body(), headers={"Idempotency-Key": "lost-answer"})
        assert answer["statusCode"] == 201
        [campaign] = stack.campaigns()
        assert data(answer)["id"] == campaign.id
        assert stack.created_events() == [campaign.id]  # one POST made a campaign


def test_a_post_lost_when_the_invocation_ran_out_resolves_on_the_retry(
    load_function: LoadFunction, sandbox: SandboxServer
) -> None:
    with mock_aws(), trigger_stack(load_function, sandbox) as stack:
        stack.admin.arm_fault(method="POST", path="/api/v1/campaigns", delay=2)
        headers = {"Idempotency-Key": "out-of-time"}
        # 2.5 s of life, 2 s of margin: the POST's answer is not waited for.
        first = stack.post(trigger_body(), headers=headers, timeout=2.5)
        assert first["statusCode"] == 502
        time.sleep(2)  # the sandbox has made the campaign
        retry = stack.post(trigger_body(), headers=headers)
        assert retry["statusCode"] == 201
        [campaign] = stack.campaigns()
        assert data(retry)["id"] == campaign.id
        assert len(stack.created_events()) == 1


def test_a_claim_left_by_a_crashed_invocation_adopts_the_campaign_it_made(stack: Stack) -> None:
    body = trigger_body(name="Crashed after posting")
    ledger = stack.app.trigger._ledger
    fingerprint = TriggerBody.model_validate(body).fingerprint()
    ledger.claim("idempotency_key:crashed", fingerprint, hold_seconds=1)
    made = create_directly(stack, body)  # what the crashed invocation's POST made
    time.sleep(1.1)  # its claim has run out
    answer = stack.post(body, headers={"Idempotency-Key": "crashed"})
    assert answer["statusCode"] == 201
    assert data(answer)["id"] == made.id
    assert [c.id for c in stack.campaigns()] == [made.id]


def test_a_claim_left_by_an_invocation_that_crashed_before_posting_posts_once(
    stack: Stack,
) -> None:
    body = trigger_body(name="Crashed before posting")
    fingerprint = TriggerBody.model_validate(body).fingerprint()
    stack.app.trigger._ledger.claim("idempotency_key:early-crash", fingerprint, hold_seconds=1)
    time.sleep(1.1)
    answer = stack.post(body, headers={"Idempotency-Key": "early-crash"})
    assert answer["statusCode"] == 201
    assert [c.id for c in stack.campaigns()] == [data(answer)["id"]]


def test_a_crashed_claim_never_adopts_the_campaign_of_another_trigger_with_the_same_body(
    stack: Stack,
) -> None:
    body = trigger_body(name="Weekly NPS")
    fingerprint = TriggerBody.model_validate(body).fingerprint()
    ledger = stack.app.trigger._ledger
    ledger.claim("idempotency_key:week-1", fingerprint, hold_seconds=1)  # then crashed
    # Meanwhile another trigger with the very same body made its campaign.
    other = data(stack.post(body, headers={"Idempotency-Key": "week-2"}))
    time.sleep(1.1)
    answer = stack.post(body, headers={"Idempotency-Key": "week-1"})
    assert answer["statusCode"] == 201
    assert data(answer)["id"] != other["id"]  # it looked, found only week-2's, and posted
    assert len(stack.campaigns()) == 2


def test_a_key_held_by_a_running_invocation_gets_409_with_retry_after(stack: Stack) -> None:
    body = trigger_body()
    fingerprint = TriggerBody.model_validate(body).fingerprint()
    stack.app.trigger._ledger.claim("idempotency_key:busy", fingerprint, hold_seconds=20)
    answer = stack.post(body, headers={"Idempotency-Key": "busy"})
    assert answer["statusCode"] == 409
    assert answer["headers"]["Retry-After"] == "5"  # the holder usually finishes sooner
    assert "being processed" in error(answer)
    assert stack.campaigns() == []


def test_a_rate_limit_the_invocation_cannot_wait_out_is_429_with_retry_after(
    stack: Stack,
) -> None:
    stack.admin.set_rate_limit(1, 4)
    stack.campaigns()  # the customer's own script used the tenant's only request of the window
    headers = {"Idempotency-Key": "rate-limited"}
    # 5 s of life, 2 s of margin: the 4 s Pay4Feedback asks for cannot be waited out.
    answer = stack.post(trigger_body(), headers=headers, timeout=5)
    assert answer["statusCode"] == 429
    assert 3 <= int(answer["headers"]["Retry-After"]) <= 4
    assert error(answer).startswith("Pay4Feedback's rate limit is used up; retry in ")
    time.sleep(4)  # the window has passed, for the tenant and for the bridge's budget
    stack.cold_start()  # another container takes the retry
    retry = stack.post(trigger_body(), headers=headers)
    assert retry["statusCode"] == 201
    assert [c.id for c in stack.campaigns()] == [data(retry)["id"]]


def test_the_bridges_own_budget_answers_429_in_its_own_words(
    load_function: LoadFunction, sandbox: SandboxServer
) -> None:
    # A budget of 2 requests a minute (one every 30 s), which another function has just used.
    with mock_aws(), trigger_stack(load_function, sandbox, API_REQUESTS_PER_MINUTE="2") as stack:
        stack.app.client._budget.acquire(None, Priority.INTERACTIVE)
        requests = stack.admin.stats().requests
        answer = stack.post(trigger_body(), headers={"Idempotency-Key": "over-budget"})
        assert answer["statusCode"] == 429
        wait = int(answer["headers"]["Retry-After"])
        assert 25 <= wait <= 30
        assert error(answer) == (
            "the bridge's API budget is used up (all its functions share ApiRequestsPerMinute; "
            f"Pay4Feedback itself refused nothing); retry in {wait}s"
        )
        assert stack.admin.stats().requests == requests  # nothing reached Pay4Feedback


def test_a_persistent_5xx_is_502_and_the_retry_makes_one_campaign(stack: Stack) -> None:
    stack.admin.arm_fault(method="POST", path="/api/v1/campaigns", status=500, times=4)
    headers = {"Idempotency-Key": "server-error"}
    failed = stack.post(trigger_body(), headers=headers)
    assert failed["statusCode"] == 502
    assert "Pay4Feedback failed" in error(failed)
    retry = stack.post(trigger_body(), headers=headers)
    assert retry["statusCode"] == 201
    assert [c.id for c in stack.campaigns()] == [data(retry)["id"]]


def test_a_failed_launch_is_resumed_from_the_recorded_campaign(stack: Stack) -> None:
    stack.admin.arm_fault(method="PATCH", path="/api/v1/campaigns/", status=503, times=4)
    headers = {"Idempotency-Key": "launch-failed"}
    failed = stack.post(trigger_body(activate=True), headers=headers)
    assert failed["statusCode"] == 502
    [draft] = stack.campaigns()
    assert draft.status is CampaignStatus.DRAFT
    retry = stack.post(trigger_body(activate=True), headers=headers)
    assert retry["statusCode"] == 201
    assert data(retry)["id"] == draft.id
    assert data(retry)["status"] == "ACTIVE"
    assert len(stack.created_events()) == 1


def test_a_repeat_after_a_crash_past_the_launch_does_not_launch_again(stack: Stack) -> None:
    body = trigger_body(activate=True)
    ledger = stack.app.trigger._ledger
    claim = ledger.claim(
        "idempotency_key:launched", TriggerBody.model_validate(body).fingerprint(), 1
    )
    # The crashed invocation created, recorded and launched the campaign, then died.
    made = create_directly(stack, body)
    ledger.adopt(claim, made.id)
    with stack.api() as client:
        client.update_campaign(made.id, status=CampaignStatus.ACTIVE)
    time.sleep(1.1)
    answer = stack.post(body, headers={"Idempotency-Key": "launched"})
    assert answer["statusCode"] == 201  # not the API's 409 for launching an ACTIVE campaign
    assert (data(answer)["id"], data(answer)["status"]) == (made.id, "ACTIVE")


def test_a_refused_api_key_is_502_saying_what_to_fix(
    load_function: LoadFunction, sandbox: SandboxServer
) -> None:
    with (
        mock_aws(),
        trigger_stack(load_function, sandbox, api_key="p4f_test_not_a_tenant") as stack,
    ):
        answer = stack.post(trigger_body())
        assert answer["statusCode"] == 502
        assert "refused the bridge's API key" in error(answer)
        assert "Settings -> API Keys" in error(answer)


def test_logs_say_what_happened_but_never_the_token_the_api_key_or_the_body(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    # The function's own loggers at their most talkative. (botocore's DEBUG prints response
    # bodies, secrets included; it stays at the Lambda runtime's WARNING whatever LogLevel.)
    caplog.set_level(logging.INFO)
    for name in ("p4f-bridge", "p4f"):
        caplog.set_level(logging.DEBUG, logger=name)
    body = trigger_body(questions=[{"type": "text", "prompt": "Confidential roadmap question"}])
    stack.post(body, headers={"Idempotency-Key": "logged"})
    stack.post(body, token="wrong-token-" + "x" * 40)
    stack.admin.arm_fault(method="POST", path="/api/v1/campaigns", status=500, times=4)
    stack.post(trigger_body(name="Failing"))
    formatter = stack.app.logger.registered_formatter
    lines = [json.loads(formatter.format(record)) for record in caplog.records]
    handled = [line for line in lines if line["message"] == "trigger handled"]
    assert [(line["outcome"], line["status"]) for line in handled] == [
        ("created", 201),
        ("refused", 401),
        ("failed", 502),
    ]
    assert handled[0]["idempotency_key"] == "idempotency_key:logged"
    assert handled[0]["campaign_id"]
    logged = json.dumps(lines) + caplog.text
    for secret in (TOKEN, stack.api_key, "Confidential roadmap question", "wrong-token-"):
        assert secret not in logged


def test_the_sample_request_creates_its_campaign(
    load_function: LoadFunction, sandbox: SandboxServer
) -> None:
    sample = json.loads((EVENTS_DIR / "campaign_trigger/http_request.json").read_text())
    with mock_aws(), trigger_stack(load_function, sandbox, token=SAMPLE_TRIGGER_TOKEN) as stack:
        answer = stack.invoke(sample)
        assert answer["statusCode"] == 201
        assert data(answer)["status"] == "ACTIVE"
        assert [c.id for c in stack.campaigns()] == [data(answer)["id"]]


def test_the_readmes_request_creates_its_campaign(stack: Stack) -> None:
    readme = (Path(__file__).parents[3] / "README.md").read_text()
    request = readme.split("### The request", 1)[1].split("```", 2)[1]
    head, body = request.split("\n\n", 1)
    assert head.strip().splitlines()[0] == "POST <CampaignTriggerUrl>"
    answer = stack.post(body.encode(), headers={"Idempotency-Key": "readme"})
    assert answer["statusCode"] == 201
    assert data(answer)["status"] == "ACTIVE"
