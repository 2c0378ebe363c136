"""Write the sample events in events/, for `sam local invoke -e` and for reading.

    python -m local.sample_events          # as committed: signed at a fixed time
    python -m local.sample_events --now    # signed now, so the receiver accepts it

The signed samples use SAMPLE_SECRET (documented in events/README.md): put it in the
signing secret (WEBHOOK_SECRET_ARN) to have them accepted. The campaign trigger's request
carries SAMPLE_TRIGGER_TOKEN: put it in the trigger token secret (TRIGGER_TOKEN_SECRET_ARN).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from local.lambda_events import (
    ACCOUNT,
    REGION,
    custom_resource_request,
    eventbridge_event,
    function_url_event,
    scheduled_event,
    sqs_event,
    sqs_record,
)
from local.template import Template
from p4f.changes import CHANGE_TIME_FIELDS
from p4f.envelope import utc_timestamp
from p4f.fanout import EVENT_SOURCE, ReceivedEvent, eventbridge_entry, sqs_message
from p4f.models import EventType
from p4f.signing import delivery_headers

EVENTS_DIR = Path(__file__).resolve().parent.parent / "events"
SAMPLE_SECRET = "whsec_sample_secret_for_events_only"  # noqa: S105 (public, for samples only)
SAMPLE_TIMESTAMP = 1776608571  # 2026-04-19T14:22:51Z, the event's created_at
STALE_SECONDS = 3600
SAMPLE_TRIGGER_TOKEN = "sample_trigger_token_for_events_only_0123"  # noqa: S105 (public, samples)
# The campaign trigger's path and event type (trigger_http.PATH, trigger_queue.CREATE_CAMPAIGN:
# not importable here, outside the function's folder; tests check they are the same).
TRIGGER_PATH = "/triggers/campaigns"
CREATE_CAMPAIGN = "CreateCampaign"

SAMPLE_TRIGGER: dict[str, Any] = {
    "name": "Checkout feedback",
    "description": "Why people leave the cart",
    "reward": {"amount": "5.00", "currency": "USD"},
    "max_responses": 100,
    "questions": [{"type": "text", "prompt": "What almost stopped you from buying?"}],
    "activate": True,
    "external_id": "crm-campaign-42",
}
"""A campaign trigger's body: of `POST /triggers/campaigns`, or a CreateCampaign event's detail."""

SAMPLE_EVENT: dict[str, Any] = {
    "id": "evt_6f1c2b0e9a3d4c52b8e7a1d0c4f9e2b3",
    "type": "reward_approved",
    "created_at": "2026-04-19T14:22:51Z",
    "tenant_id": "5b3a1f0c-2d4e-4f6a-9b8c-7d6e5f4a3b2c",
    "api_version": "v1",
    "data": {
        "id": "0c2d6f4e-8a1b-4c3d-9e5f-6a7b8c9d0e1f",
        "campaign_id": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
        "status": "APPROVED",
        "respondent": {"id": "resp_4b1e9c", "email": "ana@example.com"},
        "answers": [
            {
                "question_id": "q_1",
                "prompt": "What almost stopped you from signing up?",
                "value": "The pricing page did not say if the trial needs a card.",
            }
        ],
        "quality": {
            "score": 87,
            "verdict": "high",
            "breakdown": {"relevance": 92, "depth": 81, "clarity": 88},
        },
        "reward": {"amount": "5.00", "currency": "USD"},
        "rejection_reason": None,
        "submitted_at": "2026-04-19T14:02:10Z",
        "reviewed_at": "2026-04-19T14:22:51Z",
    },
}


SAMPLE_CAMPAIGN: dict[str, Any] = {
    "id": SAMPLE_EVENT["data"]["campaign_id"],
    "name": "Onboarding survey",
    "description": "Why new users stop before their first project.",
    "status": "ACTIVE",
    "reward": {"amount": "5.00", "currency": "USD"},
    "max_responses": 200,
    "questions": [
        {"id": "q_1", "type": "text", "prompt": "What almost stopped you from signing up?"}
    ],
    "created_at": "2026-04-18T09:00:00Z",
    "updated_at": "2026-04-19T14:22:51Z",
}

SAMPLE_PAYOUT: dict[str, Any] = {
    "id": "po_7d2c9e41",
    "response_id": SAMPLE_EVENT["data"]["id"],
    "campaign_id": SAMPLE_EVENT["data"]["campaign_id"],
    "respondent": SAMPLE_EVENT["data"]["respondent"],
    "amount": "5.00",
    "currency": "USD",
    "status": "COMPLETED",
    "failure_reason": None,
    "completed_at": "2026-04-19T15:02:10Z",
}


def _catalogue_data(event_type: EventType) -> dict[str, Any]:
    response = SAMPLE_EVENT["data"]
    pending = response | {"status": "PENDING", "reviewed_at": None}
    data: dict[EventType, dict[str, Any]] = {
        EventType.PING: {"webhook_id": "wh_3a9f0c52"},
        EventType.CAMPAIGN_CREATED: SAMPLE_CAMPAIGN | {"status": "DRAFT"},
        EventType.CAMPAIGN_UPDATED: SAMPLE_CAMPAIGN,
        EventType.CAMPAIGN_PAUSED: SAMPLE_CAMPAIGN | {"status": "PAUSED"},
        EventType.CAMPAIGN_RESUMED: SAMPLE_CAMPAIGN,
        EventType.RESPONSE_SUBMITTED: pending | {"quality": None},
        EventType.RESPONSE_SCORED: pending,
        EventType.REWARD_APPROVED: response,
        EventType.REWARD_REJECTED: response
        | {"status": "REJECTED", "rejection_reason": "The answer does not address the question."},
        EventType.PAYOUT_COMPLETED: SAMPLE_PAYOUT,
        EventType.PAYOUT_FAILED: SAMPLE_PAYOUT
        | {"status": "FAILED", "failure_reason": "The respondent's PayPal account is closed."},
    }
    return data[event_type]


def catalogue_event(event_type: EventType | str, **data: Any) -> dict[str, Any]:
    """A webhook event body of `event_type`: for a catalogue type, with the data Pay4Feedback
    would send (fields in `data` replacing its own); for any other type, `data` alone."""
    known = event_type in set(EventType)
    fields = _catalogue_data(EventType(event_type)) if known else {}
    digest = hashlib.sha256(str(event_type).encode()).hexdigest()[:32]
    return SAMPLE_EVENT | {"id": f"evt_{digest}", "type": str(event_type), "data": fields | data}


def forwarder_record(
    body: Mapping[str, Any], *, queue_arn: str, message_id: str | None = None
) -> dict[str, Any]:
    """The SQS record a forwarder's queue holds for a webhook event: the EventBridge event
    the bus rule delivered (p4f.fanout's mapping), whose id follows from the event's."""
    received = ReceivedEvent.parse(json.dumps(body).encode())
    entry = eventbridge_entry(received, "p4f-bridge-events")
    on_bus = eventbridge_event(
        json.loads(entry["Detail"]),
        detail_type=entry["DetailType"],
        source=entry["Source"],
        event_time=utc_timestamp(received.created_at),
        event_id=str(uuid.uuid5(uuid.NAMESPACE_URL, received.id)),
    )
    return sqs_record(json.dumps(on_bus), queue_arn=queue_arn, message_id=message_id)


FORWARDER_EVENT_TYPES = {
    "slack_forwarder": "SlackEventTypes",
    "segment_forwarder": "SegmentEventTypes",
}
"""Each forwarder, and the template Parameter whose default says which types it gets."""


RECONCILER_STATE_TYPES = sorted(CHANGE_TIME_FIELDS)
"""The types the reconciler's state rule takes: those with a change identity."""


def forwarder_batch(function: str) -> dict[str, Any]:
    """The SQS batch a forwarder gets: one event of each type its rule lets through by
    default (the template's Parameter), as its queue holds them."""
    queue_arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{function.replace('_', '-')}"
    types = Template.load().default(FORWARDER_EVENT_TYPES[function]).split(",")
    return sqs_event(
        [forwarder_record(catalogue_event(t), queue_arn=queue_arn, message_id=t) for t in types]
    )


def _delivery(body: bytes, secret: str, timestamp: int) -> dict[str, Any]:
    headers = delivery_headers(
        body,
        secret,
        event_id=SAMPLE_EVENT["id"],
        event_type=SAMPLE_EVENT["type"],
        timestamp=timestamp,
    )
    return function_url_event("POST", body, headers, source_ip="203.0.113.7")


def samples(timestamp: int) -> dict[str, dict[str, Any]]:
    """Every sample, by its path under events/."""
    create_campaign = eventbridge_event(
        SAMPLE_TRIGGER,
        detail_type=CREATE_CAMPAIGN,
        source="crm.example",
        event_time=SAMPLE_EVENT["created_at"],
        event_id="3c1f6e2a-9b4d-4f7e-8a5c-2d0b1e9f7a64",
    )
    return _webhook_samples(timestamp) | {
        "campaign_trigger/http_request.json": function_url_event(
            "POST",
            json.dumps(SAMPLE_TRIGGER, indent=2).encode(),
            {
                "Authorization": f"Bearer {SAMPLE_TRIGGER_TOKEN}",
                "Content-Type": "application/json",
                "Idempotency-Key": "zap-run-0001",
                "User-Agent": "Zapier",
            },
            path=TRIGGER_PATH,
            source_ip="203.0.113.7",
        ),
        "campaign_trigger/sqs_batch.json": sqs_event(
            [
                sqs_record(
                    json.dumps(create_campaign),
                    queue_arn="arn:aws:sqs:us-east-1:123456789012:create-campaign",
                )
            ]
        ),
        "event_bus/create_campaign.json": create_campaign,
        "reconciler/schedule.json": scheduled_event(
            f"arn:aws:events:{REGION}:{ACCOUNT}:rule/p4f-bridge-ReconcilerSchedule",
            SAMPLE_EVENT["created_at"],
        ),
        "reconciler/sqs_batch.json": sqs_event(
            [
                forwarder_record(
                    catalogue_event(t),
                    queue_arn=f"arn:aws:sqs:{REGION}:{ACCOUNT}:reconciler-state",
                    message_id=t,
                )
                for t in RECONCILER_STATE_TYPES
            ]
        ),
        "warehouse_backfill/create.json": custom_resource_request(
            "Create",
            {"ServiceToken": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:p4f-bridge-backfill"},
            response_url="https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com/sample",
            request_id="5f7a0c1e-3b2d-4e6f-9a8b-1c2d3e4f5a6b",
            logical_resource_id="WarehouseBackfill",
            resource_type="Custom::Pay4FeedbackMirrorBackfill",
        ),
    }


def _webhook_samples(timestamp: int) -> dict[str, dict[str, Any]]:
    body = json.dumps(SAMPLE_EVENT, separators=(",", ":")).encode()
    received = ReceivedEvent.parse(body)
    message = sqs_message(received, "https://sqs.us-east-1.amazonaws.com/123456789012/fan-out")
    attributes = {
        name: value["StringValue"] for name, value in message["MessageAttributes"].items()
    }
    return {
        "webhook_receiver/signed.json": _delivery(body, SAMPLE_SECRET, timestamp),
        "webhook_receiver/forged.json": _delivery(body, "whsec_not_the_secret", timestamp),
        "webhook_receiver/stale.json": _delivery(body, SAMPLE_SECRET, timestamp - STALE_SECONDS),
        "fanout_queue/sqs_batch.json": sqs_event(
            [
                sqs_record(
                    received.body,
                    queue_arn="arn:aws:sqs:us-east-1:123456789012:fan-out",
                    attributes=attributes,
                )
            ]
        ),
        **{
            f"{function}/sqs_batch.json": forwarder_batch(function)
            for function in FORWARDER_EVENT_TYPES
        },
        "event_bus/reward_approved.json": eventbridge_event(
            SAMPLE_EVENT,
            detail_type=received.type,
            source=EVENT_SOURCE,
            event_time=SAMPLE_EVENT["created_at"],
        ),
    }


def write(directory: Path, timestamp: int) -> list[Path]:
    written = []
    for name, event in samples(timestamp).items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(event, indent=2) + "\n")
        written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--now", action="store_true", help="sign with the current time")
    parser.add_argument("--dir", type=Path, default=EVENTS_DIR, help="where to write them")
    args = parser.parse_args()
    for path in write(args.dir, int(time.time()) if args.now else SAMPLE_TIMESTAMP):
        print(path)


if __name__ == "__main__":
    main()
