"""One event of each catalogue type, as the sandbox sends them: a campaign's whole life."""

from __future__ import annotations

from local.sandbox import SandboxAdmin, running_sandbox
from p4f.client import Pay4FeedbackClient
from p4f.models import EventType, PayoutStatus, WebhookEvent


def every_event_type(
    key: str, *, campaign_name: str = "All", rejection_reason: str = "Spam"
) -> list[WebhookEvent]:
    """The sandbox's events (oldest last) of a campaign that goes through every state."""
    with running_sandbox([key]) as sandbox, Pay4FeedbackClient(sandbox.url, api_key=key) as api:
        admin = SandboxAdmin(sandbox.url, key)
        api.create_webhook("http://127.0.0.1:9/nowhere", list(EventType), "whsec_x")
        campaign = api.create_campaign(
            name=campaign_name, reward={"amount": "5.00", "currency": "USD"}
        )
        api.update_campaign(campaign.id, status="ACTIVE")
        api.pause_campaign(campaign.id)
        api.resume_campaign(campaign.id)
        good, bad = admin.submit_response(campaign.id), admin.submit_response(campaign.id)
        admin.score(good.id, 30)
        api.approve_response(good.id)
        api.reject_response(bad.id, reason=rejection_reason)
        admin.pay_out(good.id, PayoutStatus.FAILED, "Card declined")
        admin.pay_out(good.id, PayoutStatus.COMPLETED)
        events = admin.events()
        admin.close()
    assert {e.type for e in events} == set(EventType)
    return events
