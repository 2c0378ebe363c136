"""Write the sample events in events/, for `sam local invoke -e` and for reading.

    python -m local.sample_events          # as committed: signed at a fixed time
    python -m local.sample_events --now    # signed now, so the receiver accepts it

The signed samples use SAMPLE_SECRET (documented in events/README.md): put it in the
signing secret (WEBHOOK_SECRET_ARN) to have them accepted.
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from pathlib import Path
from typing import Any

from local.lambda_events import eventbridge_event, function_url_event, sqs_event, sqs_record
from p4f.envelope import utc_timestamp
from p4f.fanout import EVENT_SOURCE, ReceivedEvent, sqs_message
from p4f.models import EventType
from p4f.signing import delivery_headers

EVENTS_DIR = Path(__file__).resolve().parent.parent / "events"
SAMPLE_SECRET = "whsec_sample_secret_for_events_only"  # noqa: S105 (public, for samples only)
SAMPLE_TIMESTAMP = 1776608571  # 2026-04-19T14:22:51Z, the event's created_at
STALE_SECONDS = 3600

SAMPLE_TENANT = "5b3a1f0c-2d4e-4f6a-9b8c-7d6e5f4a3b2c"
_CAMPAIGN_ID = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
_RESPONSE_ID = "0c2d6f4e-8a1b-4c3d-9e5f-6a7b8c9d0e1f"
_RESPONDENT = {"id": "resp_4b1e9c", "email": "ana@example.com"}
_REWARD = {"amount": "5.00", "currency": "USD"}

_CAMPAIGN: dict[str, Any] = {
    "id": _CAMPAIGN_ID,
    "name": "Onboarding friction",
    "description": "Why people stop before their first project",
    "status": "ACTIVE",
    "reward": _REWARD,
    "max_responses": 200,
    "questions": [
        {"id": "q_1", "type": "text", "prompt": "What almost stopped you from signing up?"}
    ],
    "created_at": "2026-04-18T09:00:00Z",
    "updated_at": "2026-04-19T14:22:51Z",
}
_RESPONSE: dict[str, Any] = {
    "id": _RESPONSE_ID,
    "campaign_id": _CAMPAIGN_ID,
    "status": "APPROVED",
    "respondent": _RESPONDENT,
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
    "reward": _REWARD,
    "rejection_reason": None,
    "submitted_at": "2026-04-19T14:02:10Z",
    "reviewed_at": "2026-04-19T14:22:51Z",
}
_PAYOUT: dict[str, Any] = {
    "id": "2e4f6a8b-0c1d-4e3f-8a5b-7c9d1e3f5a7b",
    "response_id": _RESPONSE_ID,
    "campaign_id": _CAMPAIGN_ID,
    "respondent": _RESPONDENT,
    "amount": "5.00",
    "currency": "USD",
    "status": "COMPLETED",
    "failure_reason": None,
    "completed_at": "2026-04-19T14:22:51Z",
}
_DATA: dict[EventType, dict[str, Any]] = {
    EventType.PING: {"webhook_id": "7d3c1b2a-4e5f-4a6b-8c7d-9e0f1a2b3c4d"},
    EventType.CAMPAIGN_CREATED: _CAMPAIGN | {"status": "DRAFT"},
    EventType.CAMPAIGN_UPDATED: _CAMPAIGN,
    EventType.CAMPAIGN_PAUSED: _CAMPAIGN | {"status": "PAUSED"},
    EventType.CAMPAIGN_RESUMED: _CAMPAIGN,
    EventType.RESPONSE_SUBMITTED: _RESPONSE
    | {"status": "PENDING", "quality": None, "reviewed_at": None},
    EventType.RESPONSE_SCORED: _RESPONSE | {"status": "PENDING", "reviewed_at": None},
    EventType.REWARD_APPROVED: _RESPONSE,
    EventType.REWARD_REJECTED: _RESPONSE
    | {"status": "REJECTED", "rejection_reason": "The answer does not address the question."},
    EventType.PAYOUT_COMPLETED: _PAYOUT,
    EventType.PAYOUT_FAILED: _PAYOUT
    | {"status": "FAILED", "failure_reason": "The payment provider declined the transfer."},
}


def sample_event(
    event_type: EventType, *, event_id: str | None = None, created_at: str | None = None
) -> dict[str, Any]:
    """A realistic webhook event of a catalogue type, as Pay4Feedback sends it."""
    return {
        "id": event_id or f"evt_{uuid.uuid4().hex}",
        "type": event_type.value,
        "created_at": created_at or utc_timestamp(),
        "tenant_id": SAMPLE_TENANT,
        "api_version": "v1",
        "data": _DATA[event_type],
    }


SAMPLE_EVENT = sample_event(
    EventType.REWARD_APPROVED,
    event_id="evt_6f1c2b0e9a3d4c52b8e7a1d0c4f9e2b3",
    created_at="2026-04-19T14:22:51Z",
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
