"""The sandbox's drop_deliveries fault: while armed, webhooks are neither delivered nor
retried, their events are recorded; released, they are delivered late."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from local.sandbox import SandboxAdmin, SandboxAdminError, running_sandbox
from p4f.client import MoneyFields, Pay4FeedbackClient
from p4f.models import EventType

KEY = "p4f_test_sandbox_drops"
REWARD: MoneyFields = {"amount": "1.00", "currency": "USD"}


@pytest.fixture
def sandbox() -> Iterator[tuple[Pay4FeedbackClient, SandboxAdmin]]:
    with (
        running_sandbox([KEY], webhook_retry_base=0.05) as server,
        Pay4FeedbackClient(server.url, api_key=KEY) as api,
    ):
        admin = SandboxAdmin(server.url, KEY)
        # A receiver that is never there: every attempt fails, and shows in deliveries().
        api.create_webhook("http://127.0.0.1:9/receiver", [EventType.CAMPAIGN_CREATED], "whsec_x")
        yield api, admin
        admin.close()


def attempted(admin: SandboxAdmin, event_id: str) -> bool:
    return any(a.event_id == event_id for a in admin.deliveries())


def test_dropped_deliveries_are_never_attempted_until_released(
    sandbox: tuple[Pay4FeedbackClient, SandboxAdmin],
) -> None:
    api, admin = sandbox
    admin.arm_fault(drop_deliveries=True)
    dropped = api.create_campaign(name="Dropped", reward=REWARD)  # the API works as usual
    (event,) = [e for e in admin.events() if e.data.get("id") == dropped.id]
    admin.clear_faults()
    delivered = api.create_campaign(name="Delivered", reward=REWARD)
    (later,) = [e for e in admin.events() if e.data.get("id") == delivered.id]
    deadline = time.monotonic() + 10
    while not attempted(admin, later.id):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert not attempted(admin, event.id)

    # The campaign's event, and the subscription's ping when one of its retries (to a receiver
    # that is never there) fell in the armed window: an armed drop holds retries too.
    assert admin.release_dropped() in {1, 2}
    while not attempted(admin, event.id):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert admin.release_dropped() == 0


def test_drop_deliveries_is_armed_alone(sandbox: tuple[Pay4FeedbackClient, SandboxAdmin]) -> None:
    _, admin = sandbox
    with pytest.raises(SandboxAdminError, match="drop_deliveries"):
        admin.arm_fault(drop_deliveries=True, status=500)


def attempts(admin: SandboxAdmin, event_id: str) -> int:
    return sum(a.event_id == event_id for a in admin.deliveries())


def test_a_delivery_in_its_retries_is_held_back_when_drops_are_armed(
    sandbox: tuple[Pay4FeedbackClient, SandboxAdmin],
) -> None:
    api, admin = sandbox
    campaign = api.create_campaign(name="Retrying", reward=REWARD)
    (event,) = [e for e in admin.events() if e.data.get("id") == campaign.id]
    deadline = time.monotonic() + 10
    while attempts(admin, event.id) < 2:  # failed, and retried
        assert time.monotonic() < deadline
        time.sleep(0.01)
    admin.arm_fault(drop_deliveries=True)
    armed_at = attempts(admin, event.id)
    time.sleep(2)  # retries 0.2, 0.4 and 0.8 s apart would have come by now
    assert attempts(admin, event.id) <= armed_at + 1  # at most the one under way when armed
    admin.clear_faults()
    held = attempts(admin, event.id)
    assert admin.release_dropped() == 2  # with the subscription's ping: held back, not lost
    while attempts(admin, event.id) == held:
        assert time.monotonic() < deadline + 5
        time.sleep(0.05)
