"""Segment calls for every event type: Segment's spec (checked by the local Segment's own
validator), personal data only when allowed, and the 32 KB a call."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from segment_calls import (
    MAX_CALL_BYTES,
    SegmentCallTooLargeError,
    call_size,
    calls_for,
    event_name,
    message_id,
)

from local.sample_events import SAMPLE_EVENT, catalogue_event, forwarder_record
from local.segment_receiver import batch_problems
from p4f import __version__
from p4f.forwarding import QueuedEvent, read_record
from p4f.models import EventType
from tests.conftest import FORWARDER_QUEUE_ARN, queued_event

EMAIL = "ana@example.com"
ANSWER = "The pricing page did not say if the trial needs a card."
TENANT = SAMPLE_EVENT["tenant_id"]
CAMPAIGN_ID = SAMPLE_EVENT["data"]["campaign_id"]
RESPONSE_ID = SAMPLE_EVENT["data"]["id"]


def decoded(item: QueuedEvent, *, personal_data: bool = False) -> list[dict[str, Any]]:
    """The calls, after the local Segment found nothing to refuse in a batch of them."""
    encoded = [call.encoded for call in calls_for(item, personal_data=personal_data)]
    body = b'{"batch":[' + b",".join(encoded) + b"]}"
    auth = "Basic " + base64.b64encode(b"key:").decode()
    assert batch_problems(body, auth, "key") == []
    return [json.loads(call) for call in encoded]


@pytest.mark.parametrize(
    ("event_type", "name"),
    [
        ("ping", "Ping"),
        ("campaign_created", "Campaign Created"),
        ("reward_approved", "Reward Approved"),
        ("payout_completed", "Payout Completed"),
        ("respondent_banned", "Respondent Banned"),
        ("__odd__type", "Odd Type"),
    ],
)
def test_event_names_are_the_type_in_title_case(event_type: str, name: str) -> None:
    assert event_name(event_type) == name


RESPONSE_PROPERTIES = {
    "response_id": RESPONSE_ID,
    "campaign_id": CAMPAIGN_ID,
    "reward_amount": "5.00",
    "currency": "USD",
    "answer_count": 1,
    "submitted_at": "2026-04-19T14:02:10.000+00:00",
}
PAYOUT_PROPERTIES = {
    "payout_id": "po_7d2c9e41",
    "response_id": RESPONSE_ID,
    "campaign_id": CAMPAIGN_ID,
    "amount": "5.00",
    "currency": "USD",
    "completed_at": "2026-04-19T15:02:10.000+00:00",
}
SCORE = {
    "quality_score": 87,
    "quality_verdict": "high",
    "quality_breakdown": {"relevance": 92, "depth": 81, "clarity": 88},
}
CAMPAIGN_PROPERTIES = {
    "campaign_id": CAMPAIGN_ID,
    "campaign_name": "Onboarding survey",
    "reward_amount": "5.00",
    "currency": "USD",
    "max_responses": 200,
    "question_count": 1,
}
CASES: list[tuple[EventType, dict[str, str], dict[str, Any]]] = [
    (EventType.PING, {"anonymousId": TENANT}, {"webhook_id": "wh_3a9f0c52"}),
    (
        EventType.CAMPAIGN_CREATED,
        {"anonymousId": TENANT},
        CAMPAIGN_PROPERTIES | {"status": "DRAFT"},
    ),
    (
        EventType.CAMPAIGN_UPDATED,
        {"anonymousId": TENANT},
        CAMPAIGN_PROPERTIES | {"status": "ACTIVE"},
    ),
    (
        EventType.CAMPAIGN_PAUSED,
        {"anonymousId": TENANT},
        CAMPAIGN_PROPERTIES | {"status": "PAUSED"},
    ),
    (
        EventType.CAMPAIGN_RESUMED,
        {"anonymousId": TENANT},
        CAMPAIGN_PROPERTIES | {"status": "ACTIVE"},
    ),
    (
        EventType.RESPONSE_SUBMITTED,
        {"userId": "resp_4b1e9c"},
        RESPONSE_PROPERTIES | {"status": "PENDING"},
    ),
    (
        EventType.RESPONSE_SCORED,
        {"userId": "resp_4b1e9c"},
        RESPONSE_PROPERTIES | SCORE | {"status": "PENDING"},
    ),
    (
        EventType.REWARD_APPROVED,
        {"userId": "resp_4b1e9c"},
        RESPONSE_PROPERTIES
        | SCORE
        | {"status": "APPROVED", "reviewed_at": "2026-04-19T14:22:51.000+00:00"},
    ),
    (
        EventType.REWARD_REJECTED,
        {"userId": "resp_4b1e9c"},
        RESPONSE_PROPERTIES
        | SCORE
        | {
            "status": "REJECTED",
            "reviewed_at": "2026-04-19T14:22:51.000+00:00",
            "rejection_reason": "The answer does not address the question.",
        },
    ),
    (
        EventType.PAYOUT_COMPLETED,
        {"userId": "resp_4b1e9c"},
        PAYOUT_PROPERTIES | {"status": "COMPLETED"},
    ),
    (
        EventType.PAYOUT_FAILED,
        {"userId": "resp_4b1e9c"},
        PAYOUT_PROPERTIES
        | {"status": "FAILED", "failure_reason": "The respondent's PayPal account is closed."},
    ),
]


def test_the_cases_cover_the_whole_catalogue() -> None:
    assert {case[0] for case in CASES} == set(EventType)


@pytest.mark.parametrize(("event_type", "who", "properties"), CASES)
def test_each_event_is_one_track_call_by_segments_spec(
    event_type: EventType, who: dict[str, str], properties: dict[str, Any]
) -> None:
    item = queued_event(event_type)
    [track] = decoded(item)
    assert track == {
        "type": "track",
        "event": event_name(event_type),
        **who,
        "properties": properties,
        "messageId": item.event.id,
        "timestamp": "2026-04-19T14:22:51.000+00:00",
        "context": {"library": {"name": "p4f-bridge", "version": __version__}},
    }


@pytest.mark.parametrize("event_type", list(EventType))
def test_without_permission_no_email_and_no_answer_is_anywhere_in_the_calls(
    event_type: EventType,
) -> None:
    encoded = b"".join(c.encoded for c in calls_for(queued_event(event_type), personal_data=False))
    assert EMAIL.encode() not in encoded
    assert ANSWER.encode() not in encoded
    assert b"identify" not in encoded


def test_with_permission_an_identify_with_the_email_comes_first_and_answers_are_sent() -> None:
    item = queued_event(EventType.REWARD_APPROVED)
    identify, track = decoded(item, personal_data=True)
    assert identify == {
        "type": "identify",
        "userId": "resp_4b1e9c",
        "traits": {"email": EMAIL},
        "messageId": f"{item.event.id}:identify",
        "timestamp": "2026-04-19T14:22:51.000+00:00",
        "context": {"library": {"name": "p4f-bridge", "version": __version__}},
    }
    assert track["properties"]["answers"] == [
        {
            "question_id": "q_1",
            "prompt": "What almost stopped you from signing up?",
            "value": ANSWER,
        }
    ]


def test_with_permission_but_no_email_there_is_no_identify() -> None:
    respondent = {"id": "resp_4b1e9c", "email": None}
    [track] = decoded(
        queued_event(EventType.PAYOUT_COMPLETED, respondent=respondent), personal_data=True
    )
    assert track["type"] == "track"


def test_an_unknown_type_sends_ids_and_status_with_its_respondent_as_user() -> None:
    item = queued_event(
        "respondent_banned",
        respondent={"id": "resp_9", "email": EMAIL},
        status="BANNED",
        note="free text",
    )
    [track] = decoded(item)
    assert track["event"] == "Respondent Banned"
    assert track["userId"] == "resp_9"
    assert track["properties"] == {"status": "BANNED"}
    identify, _ = decoded(item, personal_data=True)
    assert identify["traits"] == {"email": EMAIL}


def test_an_unknown_type_with_a_respondent_id_uses_it_and_else_the_tenant() -> None:
    [track] = decoded(queued_event("respondent_banned", respondent_id="resp_7"))
    assert track["userId"] == "resp_7"
    [anonymous] = decoded(queued_event("respondent_banned", respondent="not an object"))
    assert anonymous["anonymousId"] == TENANT


def test_a_message_id_of_100_characters_or_more_becomes_a_stable_digest() -> None:
    long_id = "evt_" + "x" * 120
    assert message_id("evt_1") == "evt_1"
    assert message_id(long_id) == message_id(long_id)
    assert message_id(long_id) != message_id(long_id + "y")
    assert len(message_id(long_id)) < 100
    body = catalogue_event(EventType.REWARD_APPROVED) | {"id": long_id}
    item = read_record(SQSRecord(forwarder_record(body, queue_arn=FORWARDER_QUEUE_ARN)))
    identify, track = decoded(item, personal_data=True)
    assert track["messageId"] == message_id(long_id)
    assert identify["messageId"] == message_id(f"{long_id}:identify")


@pytest.mark.parametrize(
    ("event_type", "data", "anonymous"),
    [
        (EventType.RESPONSE_SUBMITTED, {"respondent": {"id": ""}}, f"response:{RESPONSE_ID}"),
        (
            EventType.REWARD_APPROVED,
            {"respondent": {"id": "  ", "email": EMAIL}},
            f"response:{RESPONSE_ID}",
        ),
        # A payout's is its response's: the same person as the response's events.
        (EventType.PAYOUT_COMPLETED, {"respondent": {"id": ""}}, f"response:{RESPONSE_ID}"),
        ("respondent_banned", {"respondent_id": "", "response_id": "rsp_1"}, "response:rsp_1"),
        ("respondent_banned", {"respondent": {"id": ""}}, TENANT),
    ],
)
def test_a_respondent_without_an_id_is_a_stable_anonymous_id_never_an_empty_user_id(
    event_type: EventType | str, data: dict[str, Any], anonymous: str
) -> None:
    item = queued_event(event_type, **data)
    calls = decoded(item, personal_data=True)
    assert [call["type"] for call in calls] == ["track"]  # no identify without a user id
    [track] = calls
    assert "userId" not in track
    assert track["anonymousId"] == anonymous
    assert decoded(queued_event(event_type, **data), personal_data=True) == calls  # stable


def test_an_event_without_a_tenant_or_respondent_is_anonymous_by_its_event_id() -> None:
    body = catalogue_event(EventType.CAMPAIGN_CREATED) | {"tenant_id": ""}
    item = read_record(SQSRecord(forwarder_record(body, queue_arn=FORWARDER_QUEUE_ARN)))
    [track] = decoded(item)
    assert track["anonymousId"] == f"event:{item.event.id}"


def answers_of(count: int, chars: int, char: str = "w") -> list[dict[str, Any]]:
    return [
        {"question_id": f"q_{n}", "prompt": f"Question {n}?", "value": char * chars}
        for n in range(count)
    ]


def test_oversized_answers_keep_as_many_as_fit_and_say_how_many_were_cut() -> None:
    answers = answers_of(40, 1_500)  # about 62 KB of answers: about 20 fit
    item = queued_event(EventType.RESPONSE_SUBMITTED, answers=answers)
    [_, track_call] = calls_for(item, personal_data=True)
    assert track_call.size <= MAX_CALL_BYTES
    assert track_call.size == call_size(json.loads(track_call.encoded))
    _, track = decoded(item, personal_data=True)
    properties = track["properties"]
    kept = properties["answers"]
    assert 0 < len(kept) < 40
    assert kept == [
        {"question_id": a["question_id"], "prompt": a["prompt"], "value": a["value"]}
        for a in answers[: len(kept)]
    ]
    assert properties["truncated"] is True
    assert properties["truncated_items"] == {"answers": 40 - len(kept)}
    assert "truncated_properties" not in properties
    assert properties["answer_count"] == 40
    assert dict(track_call.cut_items) == {"answers": 40 - len(kept)}
    # One answer more would not fit, as the library counts.
    one_more = track | {
        "properties": properties
        | {"answers": [*kept, answers[len(kept)]], "truncated_items": {"answers": 39 - len(kept)}}
    }
    assert call_size(one_more) > MAX_CALL_BYTES


def test_non_ascii_answers_are_counted_as_the_library_escapes_them() -> None:
    item = queued_event(EventType.RESPONSE_SUBMITTED, answers=answers_of(30, 500, "\u00e9"))
    [_, track_call] = calls_for(item, personal_data=True)
    # 30 answers of 1,000 bytes in UTF-8 would fit in 32 KB; escaped, 3,000 bytes each do not.
    assert len(track_call.encoded) < track_call.size <= MAX_CALL_BYTES
    assert 0 < 30 - track_call.cut_items["answers"] < 11


def test_the_largest_property_goes_first_and_a_cut_list_takes_back_what_then_fits() -> None:
    answers = [{"question_id": "q", "prompt": "Why?", "value": "a" * 40_000}]
    item = queued_event(EventType.REWARD_REJECTED, answers=answers, rejection_reason="r" * 20_000)
    _, track = decoded(item, personal_data=True)
    properties = track["properties"]
    assert properties["truncated"] is True
    assert properties["truncated_items"] == {"answers": 1}  # the largest went first, item by item
    assert properties["answers"] == []
    assert properties["rejection_reason"] == "r" * 20_000  # what fits without it stays
    assert properties["response_id"] == RESPONSE_ID
    many = answers_of(10, 1_000)
    item = queued_event(EventType.REWARD_REJECTED, answers=many, rejection_reason="r" * 40_000)
    _, track = decoded(item, personal_data=True)
    assert track["properties"]["truncated_properties"] == ["rejection_reason"]
    assert track["properties"]["answers"] == [  # never cut: the reason alone was too large
        {"question_id": a["question_id"], "prompt": a["prompt"], "value": a["value"]} for a in many
    ]
    assert "truncated_items" not in track["properties"]


def test_ids_and_status_are_never_dropped_and_a_call_too_large_with_them_fails() -> None:
    item = queued_event(EventType.PAYOUT_FAILED, id="p" * 40_000, failure_reason="x" * 1_000)
    with pytest.raises(
        SegmentCallTooLargeError, match="more than the 32768 Segment takes"
    ) as raised:
        calls_for(item, personal_data=False)
    assert "track call for event evt_" in str(raised.value)
