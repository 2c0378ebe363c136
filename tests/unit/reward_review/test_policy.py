"""The review policy as a table of cases: what each score, verdict and breakdown gets."""

from __future__ import annotations

import json

import pytest
from review_policy import InvalidPolicyError, PolicySource, judge, parse_policy

from local.reward_review import DEFAULT_POLICY
from p4f.models import Quality
from p4f.reviews import Decision

POLICY = parse_policy(
    json.dumps(
        {
            "approve_at_or_above": 80,
            "approve_verdicts": ["high"],
            "approve_breakdown_at_least": {"relevance": 60},
            "reject_below": 30,
            "reject_verdicts": ["low"],
            "reject_reason": "Off topic",
            "campaigns": {
                "strict": {"approve_at_or_above": 95, "approve_breakdown_at_least": {}},
                "lenient": {"reject_below": 0, "approve_verdicts": ["high", "medium"]},
            },
        }
    )
)

CASES = [
    # campaign, score, verdict, breakdown, band, reason contains
    ("any", 80, "high", {"relevance": 60}, Decision.APPROVE, "score 80 >= 80"),
    ("any", 100, "high", {"relevance": 99, "effort": 1}, Decision.APPROVE, ">= 80"),
    ("any", 79, "high", {"relevance": 90}, Decision.HUMAN_REVIEW, "between 30 and 80"),
    ("any", 90, "medium", {"relevance": 90}, Decision.HUMAN_REVIEW, "verdict 'medium'"),
    ("any", 90, "high", {"relevance": 59}, Decision.HUMAN_REVIEW, "relevance is 59, under 60"),
    ("any", 90, "high", {}, Decision.HUMAN_REVIEW, "no 'relevance'"),
    ("any", 90, "superb", {"relevance": 90}, Decision.HUMAN_REVIEW, "verdict 'superb'"),
    ("any", 29, "low", {}, Decision.REJECT, "score 29 < 30"),
    ("any", 0, "low", {}, Decision.REJECT, "score 0 < 30"),
    ("any", 29, "medium", {}, Decision.HUMAN_REVIEW, "reject band, but the verdict 'medium'"),
    ("any", 30, "low", {}, Decision.HUMAN_REVIEW, "between 30 and 80"),
    ("strict", 94, "high", {"relevance": 90}, Decision.HUMAN_REVIEW, "between 30 and 95"),
    ("strict", 95, "high", {}, Decision.APPROVE, ">= 95"),
    ("lenient", 85, "medium", {"relevance": 70}, Decision.APPROVE, ">= 80"),
    ("lenient", 1, "low", {}, Decision.HUMAN_REVIEW, "between 0 and 80"),
]


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}-{c[1]}-{c[2]}-{c[4]}" for c in CASES])
def test_the_policy_judges(case: tuple[str, int, str, dict[str, int], Decision, str]) -> None:
    campaign, score, verdict, breakdown, band, why = case
    judgement = judge(POLICY, campaign, Quality(score=score, verdict=verdict, breakdown=breakdown))
    assert judgement.band is band
    assert why in judgement.reason
    assert judgement.reject_reason == ("Off topic" if band is Decision.REJECT else None)


def test_the_templates_policy_reads() -> None:
    policy = parse_policy(DEFAULT_POLICY)
    assert (policy.approve_at_or_above, policy.reject_below) == (85, 20)


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ("[]", "the document"),
        ('{"approve_at_or_above": 80, "reject_below": 20}', "reject_reason: Field required"),
        (
            '{"approve_at_or_above": 102, "reject_below": 20, "reject_reason": "x"}',
            "approve_at_or_above: Input should be less than or equal to 101",
        ),
        (
            '{"approve_at_or_above": 80, "reject_below": 20, "reject_reason": "x", "mode": "on"}',
            "mode: Extra inputs are not permitted",
        ),
        (
            '{"approve_at_or_above": 80, "reject_below": 20, "reject_reason": "x",'
            ' "approve_verdicts": []}',
            "approve_verdicts",
        ),
        (
            '{"approve_at_or_above": 80, "reject_below": 20, "reject_reason": "x",'
            ' "campaigns": {"c1": {"approve_at_or_above": 10}}}',
            "campaigns.c1: reject_below (20) is above approve_at_or_above (10)",
        ),
    ],
)
def test_an_invalid_policy_says_where(document: str, problem: str) -> None:
    with pytest.raises(InvalidPolicyError, match="the review policy is invalid") as raised:
        parse_policy(document)
    assert problem in str(raised.value)
    assert isinstance(PolicySource(lambda: document).current(), InvalidPolicyError)
