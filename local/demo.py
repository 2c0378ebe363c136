"""A first look at the bridge's foundation: the API client against the local sandbox.

    make demo        (or: .venv/bin/python -m local.demo)

It starts a Pay4Feedback sandbox, then plays what a customer's code does with the client
while respondents, the AI scorer and the payment provider act through the sandbox, and
prints each step and the webhook events the sandbox emitted. Exit status 0 when every
step gave what it should.
"""

from __future__ import annotations

import sys

from local.sandbox import SandboxAdmin, running_sandbox
from p4f.client import Pay4FeedbackClient
from p4f.models import CampaignStatus, PayoutStatus, ResponseStatus

DEMO_KEY = "p4f_test_demo_key"


def step(text: str) -> None:
    print(f"  - {text}", flush=True)


def main() -> int:
    with running_sandbox([DEMO_KEY]) as sandbox:
        print(f"Pay4Feedback sandbox at {sandbox.url}")
        admin = SandboxAdmin(sandbox.url, DEMO_KEY)
        with Pay4FeedbackClient(sandbox.url, api_key=DEMO_KEY) as client:
            me = client.me()
            step(f"key {me.key_prefix}... belongs to {me.tenant_name}")
            campaign = client.create_campaign(
                name="Checkout feedback",
                reward={"amount": "5.00", "currency": "USD"},
                questions=[{"type": "text", "prompt": "What almost stopped you from buying?"}],
            )
            step(f"created campaign {campaign.id} ({campaign.status})")
            campaign = client.update_campaign(campaign.id, status=CampaignStatus.ACTIVE)
            step(f"launched it ({campaign.status})")
            good = admin.submit_response(campaign.id, respondent={"id": "resp_ana"})
            poor = admin.submit_response(campaign.id, respondent={"id": "resp_bo"})
            admin.score(good.id, 88)
            admin.score(poor.id, 12)
            step("two respondents answered; the AI scored them 88 and 12")
            approved = client.approve_response(good.id)
            rejected = client.reject_response(poor.id, reason="Answer is off topic")
            step(f"approved {approved.id[:8]} ({approved.status}), rejected {rejected.id[:8]}")
            payout = admin.pay_out(good.id, PayoutStatus.COMPLETED)
            step(f"paid {payout.amount} {payout.currency} to {payout.respondent.id}")
        events = list(reversed(admin.events()))
        admin.close()
    print("Webhook events emitted, oldest first:")
    for event in events:
        step(f"{event.created_at:%H:%M:%S} {event.type}")
    expected = [
        "campaign_created",
        "campaign_updated",
        "response_submitted",
        "response_submitted",
        "response_scored",
        "response_scored",
        "reward_approved",
        "reward_rejected",
        "payout_completed",
    ]
    ok = [e.type for e in events] == expected and (approved.status, rejected.status) == (
        ResponseStatus.APPROVED,
        ResponseStatus.REJECTED,
    )
    print("OK" if ok else "UNEXPECTED: see the steps above")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
