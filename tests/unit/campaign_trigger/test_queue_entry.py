"""The campaign trigger's queue entry (CreateCampaign events on the bus -> SQS -> the
function, through local.sqs_poller), against the Pay4Feedback sandbox over real HTTP, with
AWS in moto; and the burst of 200."""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from trigger_body import TriggerBody

from local.event_catalogue import bus_schema
from local.sample_events import EVENTS_DIR
from local.sandbox import SandboxServer
from p4f.models import CampaignStatus
from tests.conftest import LoadFunction
from tests.unit.campaign_trigger.stack import (
    BUS,
    MAX_RECEIVES,
    Stack,
    trigger_body,
    trigger_stack,
)


def rate_limited(caplog: pytest.LogCaptureFixture) -> int:
    """How many 429s the client met and waited out (each one logged)."""
    return sum("rate limited" in record.getMessage() for record in caplog.records)


# --- EventBridge -> SQS -----------------------------------------------------------------


def test_a_create_campaign_event_creates_the_campaign_and_reports_success(stack: Stack) -> None:
    event_id = stack.put_event(trigger_body(activate=True, external_id="crm-1"))
    with stack.poller() as poller:
        poller.wait_until_idle(timeout=10)
    [campaign] = stack.campaigns()
    assert campaign.status is CampaignStatus.ACTIVE
    [outcome] = stack.outcomes()
    assert outcome["source"] == "p4f-bridge"
    assert outcome["detail-type"] == "CampaignTriggerSucceeded"
    assert outcome["detail"]["correlation_id"] == event_id
    assert outcome["detail"]["external_id"] == "crm-1"
    assert outcome["detail"]["campaign"]["id"] == campaign.id
    assert outcome["detail"]["campaign"]["status"] == "ACTIVE"
    jsonschema.validate(outcome, bus_schema("p4f-bridge", "CampaignTriggerSucceeded"))
    assert stack.dead_letters() == []


def test_only_create_campaign_events_of_other_sources_reach_the_trigger(stack: Stack) -> None:
    stack.put_event(trigger_body(), source="pay4feedback")
    stack.put_event(trigger_body(), source="p4f-bridge")
    stack.events.put_events(
        Entries=[
            {
                "EventBusName": BUS,
                "Source": "crm.example",
                "DetailType": "UpdateCampaign",
                "Detail": json.dumps(trigger_body()),
            }
        ]
    )
    attributes = stack.sqs.get_queue_attributes(
        QueueUrl=stack.queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "0"


def test_the_sample_batch_creates_its_campaign(stack: Stack) -> None:
    sample = json.loads((EVENTS_DIR / "campaign_trigger/sqs_batch.json").read_text())
    assert stack.invoke(sample) == {"batchItemFailures": []}
    [campaign] = stack.campaigns()
    [outcome] = stack.outcomes()
    assert outcome["detail"]["external_id"] == "crm-campaign-42"
    assert outcome["detail"]["campaign"]["id"] == campaign.id


def test_the_readmes_put_events_example_creates_its_campaign(stack: Stack) -> None:
    readme = (Path(__file__).parents[3] / "README.md").read_text()
    entries = readme.split("aws events put-events --entries '", 1)[1].split("'", 1)[0]
    [entry] = json.loads(entries.replace("<EventBusName>", BUS))
    event_id = stack.events.put_events(Entries=[entry])["Entries"][0]["EventId"]
    with stack.poller() as poller:
        poller.wait_until_idle(timeout=10)
    [outcome] = stack.outcomes()
    assert outcome["detail-type"] == "CampaignTriggerSucceeded"
    assert outcome["detail"]["correlation_id"] == event_id
    assert outcome["detail"]["external_id"] == "crm-42"
    assert outcome["detail"]["campaign"]["status"] == "ACTIVE"


def test_a_redelivered_event_makes_one_campaign(stack: Stack) -> None:
    stack.put_event(trigger_body())  # no external_id: the event id is the key
    [message] = stack.sqs.receive_message(QueueUrl=stack.queue_url)["Messages"]
    stack.sqs.send_message(QueueUrl=stack.queue_url, MessageBody=message["Body"])  # a duplicate
    stack.sqs.change_message_visibility(
        QueueUrl=stack.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
    )
    with stack.poller(batch_size=1, concurrency=1) as poller:
        poller.wait_until_idle(timeout=10)
    [campaign] = stack.campaigns()
    outcomes = stack.outcomes()
    assert [o["detail"]["campaign"]["id"] for o in outcomes] == [campaign.id, campaign.id]
    assert len(stack.created_events()) == 1


@pytest.mark.parametrize(
    ("detail", "message"),
    [
        (trigger_body(reward={"amount": "lots", "currency": "USD"}), "reward.amount: must be"),
        (trigger_body(reward={"amount": "5", "currency": "dollars"}), "reward.currency: must"),
    ],
)
def test_a_refused_trigger_reports_failure_and_is_not_retried(
    stack: Stack, detail: dict[str, Any], message: str
) -> None:
    event_id = stack.put_event(detail | {"external_id": 42})
    with stack.poller() as poller:
        poller.wait_until_idle(timeout=10)
    [outcome] = stack.outcomes()
    assert outcome["detail-type"] == "CampaignTriggerFailed"
    assert outcome["detail"]["correlation_id"] == event_id
    assert outcome["detail"]["external_id"] == "42"
    assert outcome["detail"]["error"]["status"] == 400
    assert outcome["detail"]["error"]["message"].startswith(message)
    jsonschema.validate(outcome, bus_schema("p4f-bridge", "CampaignTriggerFailed"))
    assert [len(i.message_ids) for i in poller.invocations] == [1]  # handled once
    assert stack.dead_letters() == []
    assert stack.campaigns() == []


def test_odd_details_in_a_batch_are_handled_each_and_the_good_ones_done(stack: Stack) -> None:
    # A nameless key (once a ValueError that failed the whole batch) is refused; half an
    # emoji (once misread as "not an EventBridge event") is text like any other.
    stack.put_event(trigger_body(external_id="good"))
    stack.put_event(trigger_body(external_id="dot") | {".": "x"})
    stack.put_event(trigger_body(name="Love it \ud83d", external_id="emoji"))
    with stack.poller(concurrency=1) as poller:
        poller.wait_until_idle(timeout=10)
    outcomes = {o["detail"]["external_id"]: o for o in stack.outcomes()}
    assert outcomes["dot"]["detail-type"] == "CampaignTriggerFailed"
    assert outcomes["dot"]["detail"]["error"]["message"].startswith(".: is not a field name")
    assert outcomes["good"]["detail-type"] == "CampaignTriggerSucceeded"
    assert outcomes["emoji"]["detail"]["campaign"]["name"] == "Love it \ufffd"
    assert sorted(c.name for c in stack.campaigns()) == ["Checkout feedback", "Love it \ufffd"]
    assert [len(i.message_ids) for i in poller.invocations] == [3]
    assert all(not i.failed_ids for i in poller.invocations)
    assert stack.dead_letters() == []


def test_a_transient_failure_is_retried_by_sqs_and_makes_one_campaign(
    load_function: LoadFunction, sandbox: SandboxServer
) -> None:
    # A visibility timeout longer than the client's own retries (four POSTs, four lookups and
    # their backoff: about 4 s at the background's pace, in a budget window of 6 s here): as
    # deployed, SQS retries the record only once the invocation that failed it is over.
    with (
        mock_aws(),
        trigger_stack(
            load_function, sandbox, visibility_timeout=8, API_BUDGET_WINDOW_SECONDS="6"
        ) as stack,
    ):
        stack.admin.arm_fault(method="POST", path="/api/v1/campaigns", status=502, times=4)
        stack.put_event(trigger_body())
        with stack.poller() as poller:
            poller.wait_until_idle(timeout=20)
        first, second = poller.invocations
        assert first.failed_ids == frozenset(first.message_ids)  # a batch item failure
        assert second.failed_ids == frozenset()
        [campaign] = stack.campaigns()
        [outcome] = stack.outcomes()  # no CampaignTriggerFailed for a transient failure
        assert outcome["detail"]["campaign"]["id"] == campaign.id
        assert stack.dead_letters() == []


def test_a_failure_that_persists_lands_in_the_dlq(
    load_function: LoadFunction, sandbox: SandboxServer
) -> None:
    # Failed records come back at once (one poller, so none is seen twice at a time).
    with (
        mock_aws(),
        trigger_stack(
            load_function, sandbox, api_key="p4f_test_revoked_key", visibility_timeout=0
        ) as stack,
    ):
        event_id = stack.put_event(trigger_body())
        with stack.poller(concurrency=1) as poller:
            poller.wait_until_idle(timeout=30)
        assert len(poller.invocations) == MAX_RECEIVES
        [dead] = stack.dead_letters()
        assert dead["id"] == event_id
        assert stack.outcomes() == []  # not a refusal: it may work once the key is fixed


def test_a_message_that_is_not_an_event_lands_in_the_dlq(
    load_function: LoadFunction, sandbox: SandboxServer
) -> None:
    with mock_aws(), trigger_stack(load_function, sandbox, visibility_timeout=0) as stack:
        stack.sqs.send_message(QueueUrl=stack.queue_url, MessageBody=json.dumps(trigger_body()))
        with stack.poller(concurrency=1) as poller:
            poller.wait_until_idle(timeout=30)
        assert len(poller.invocations) == MAX_RECEIVES
        assert len(stack.dead_letters()) == 1
        assert stack.campaigns() == []


def test_a_rate_limited_record_is_deferred_not_failed(stack: Stack) -> None:
    stack.admin.set_rate_limit(1, 12)
    stack.campaigns()  # the window's only request is used
    stack.put_event(trigger_body(name="First"))
    stack.put_event(trigger_body(name="Second"))
    with stack.poller(function_timeout=7, concurrency=1) as poller:
        # 7 s to live, 2 s margin: a 12 s Retry-After cannot be waited out.
        deadline = time.monotonic() + 10
        while not poller.invocations and time.monotonic() < deadline:
            time.sleep(0.05)
        [deferring] = poller.invocations
        assert deferring.failed_ids == frozenset()  # both acknowledged...
        attributes = stack.sqs.get_queue_attributes(
            QueueUrl=stack.queue_url, AttributeNames=["ApproximateNumberOfMessagesDelayed"]
        )["Attributes"]
        assert attributes["ApproximateNumberOfMessagesDelayed"] == "2"  # ...and sent again
        stack.admin.set_rate_limit(60, 60)
        poller.wait_until_idle(timeout=30)
    assert sorted(c.name for c in stack.campaigns()) == ["First", "Second"]
    assert stack.dead_letters() == []
    assert len(stack.outcomes()) == 2


def test_a_record_whose_key_is_busy_is_deferred_until_the_holder_lapses(stack: Stack) -> None:
    body = trigger_body(external_id="held")
    fingerprint = TriggerBody.model_validate(body).fingerprint()
    stack.app.trigger._ledger.claim("external_id:held", fingerprint, hold_seconds=2)
    stack.put_event(body)
    with stack.poller() as poller:
        poller.wait_until_idle(timeout=15)
    assert len(poller.invocations) == 2  # deferred once, then done
    assert len(stack.campaigns()) == 1
    assert stack.dead_letters() == []


def test_an_outcome_the_bus_refused_is_retried_and_published_once_accepted(
    load_function: LoadFunction, sandbox: SandboxServer
) -> None:
    with mock_aws(), trigger_stack(load_function, sandbox, visibility_timeout=1) as stack:
        _retry_a_refused_outcome(stack)


def _retry_a_refused_outcome(stack: Stack) -> None:
    real = stack.app.queue._events
    refused = ClientError({"Error": {"Code": "ThrottlingException"}}, "PutEvents")

    class ThrottledOnce:
        calls = 0

        def put_events(self, **kwargs: Any) -> Any:
            ThrottledOnce.calls += 1
            if ThrottledOnce.calls == 1:
                raise refused
            return real.put_events(**kwargs)

    stack.app.queue._events = ThrottledOnce()
    stack.put_event(trigger_body())
    with stack.poller() as poller:
        poller.wait_until_idle(timeout=15)
    assert len(poller.invocations) == 2  # retried: its outcome was not stored
    [campaign] = stack.campaigns()
    [outcome] = stack.outcomes()
    assert outcome["detail"]["campaign"]["id"] == campaign.id


# Containers share Powertools' metrics store in one process: one may flush another's.
# Containers share Powertools' metrics store in one process: one may flush another's.
@pytest.mark.filterwarnings("ignore:No application metrics to publish")
def test_a_burst_of_200_queued_triggers_makes_200_campaigns_none_twice_none_lost(
    load_function: LoadFunction,
    sandbox: SandboxServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    window = 2  # the tenant's 60 requests a minute, compressed to 60 in 2 s
    with (
        mock_aws(),
        trigger_stack(load_function, sandbox, API_BUDGET_WINDOW_SECONDS=str(window)) as stack,
    ):
        stack.admin.set_rate_limit(60, window)
        caplog.set_level(logging.INFO)
        names = [f"Burst campaign {n:03d}" for n in range(200)]
        burst = stack.burst(names, timeout=150)
        campaigns = stack.campaigns()
        assert Counter(c.name for c in campaigns) == Counter(names)  # 200, each once
        assert len(stack.created_events()) == 200  # no POST made a second one
        outcomes = stack.outcomes()
        assert Counter(o["detail"]["external_id"] for o in outcomes) == Counter(names)
        assert all(o["detail-type"] == "CampaignTriggerSucceeded" for o in outcomes)
        assert stack.dead_letters() == []
        assert rate_limited(caplog) == 0  # the tenant's limit was never reached
        handled = [r for r in caplog.records if r.getMessage() == "trigger handled"]
        deferred = sum(getattr(r, "outcome", "") == "deferred" for r in handled)
        print(
            f"\nburst: 200 campaigns in {burst.seconds:.1f}s = "
            f"{200 / burst.seconds * window:.1f} POSTs per {window}s window (budget 55, of "
            f"which background callers may use 75 %; tenant 60); {burst.batches} batches, "
            f"{deferred} deferrals, "
            f"{rate_limited(caplog)} 429s"
        )


@pytest.mark.filterwarnings("ignore:No application metrics to publish")
@pytest.mark.parametrize(("budget", "paced"), [(5, True), (60, False)])
def test_the_budget_keeps_a_burst_under_the_tenants_limit(
    load_function: LoadFunction,
    sandbox: SandboxServer,
    caplog: pytest.LogCaptureFixture,
    budget: int,
    paced: bool,
) -> None:
    # The tenant allows 6 requests a second. A budget of 5 keeps the trigger under it; one of
    # 60 (a wrong ApiRequestsPerMinute) lets it send more, and the sandbox answers 429 (there
    # the tenant allows 6 in 4 s: a loaded machine's burst still goes past that).
    with (
        mock_aws(),
        trigger_stack(
            load_function,
            sandbox,
            API_BUDGET_WINDOW_SECONDS="1",
            API_REQUESTS_PER_MINUTE=str(budget),  # per window: 1 s here
        ) as stack,
    ):
        stack.admin.set_rate_limit(6, 1 if paced else 4)
        caplog.set_level(logging.WARNING, logger="p4f.client")
        names = [f"Paced campaign {n:02d}" for n in range(20)]
        burst = stack.burst(names, timeout=90)
        assert Counter(c.name for c in stack.campaigns()) == Counter(names)
        assert stack.dead_letters() == []
        if paced:
            assert rate_limited(caplog) == 0
            # Background work at 75 % of 5 a second: 3.75 a second at most.
            assert burst.seconds >= 20 / (0.75 * budget) - 1
        else:
            assert rate_limited(caplog) > 0  # the sandbox said 429, and the client waited
