"""The review policy: which rewards are approved or rejected automatically, and which wait
for a person.

A JSON document in an SSM Parameter (template.yaml's RewardReviewPolicy; change it without a
deploy), read through Powertools Parameters (cached for POLICY_CACHE_SECONDS) and checked
here before any use:

    {
      "approve_at_or_above": 85,              score >= this: approve ...
      "approve_verdicts": ["high"],           ... if the verdict is one of these (optional)
      "approve_breakdown_at_least": {"relevance": 70},   ... and each dimension is (optional)
      "reject_below": 20,                     score < this: reject ...
      "reject_verdicts": ["low"],             ... if the verdict is one of these (optional)
      "reject_reason": "The answers do not meet the campaign's quality bar",
      "campaigns": {"<campaign id>": {"approve_at_or_above": 95}}   per-campaign overrides
    }

Between the bands, and wherever a condition does not hold (a dimension missing from the
breakdown fails its condition), a person decides. A policy that does not read (not JSON, an
unknown field, a band out of 0-100, reject_below above approve_at_or_above, in the document
or in a campaign's override) decides nothing automatically: every response waits for a person,
and the function reports `ReviewPolicyInvalid` (an alarm watches it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Self

from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from p4f.reviews import Decision

if TYPE_CHECKING:
    from collections.abc import Callable

    from p4f.models import Quality

POLICY_CACHE_SECONDS = 60
"""How long a read policy is used before the Parameter is read again."""
MAX_REASON_CHARS = 500

type Threshold = Annotated[int, Field(ge=0, le=101)]
"""A score threshold: 0-100, or 101 for "never" (approve_at_or_above: 101)."""
type Verdicts = Annotated[list[str], Field(min_length=1)]


class _Rules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    approve_at_or_above: Threshold | None = None
    approve_verdicts: Verdicts | None = None
    approve_breakdown_at_least: dict[str, Annotated[int, Field(ge=0, le=100)]] | None = None
    reject_below: Threshold | None = None
    reject_verdicts: Verdicts | None = None
    reject_reason: Annotated[str, Field(min_length=1, max_length=MAX_REASON_CHARS)] | None = None


class CampaignRules(_Rules):
    """A campaign's override: each field given replaces the policy's."""


class ReviewPolicy(_Rules):
    """The whole document; its top-level rules apply to every campaign without an override."""

    approve_at_or_above: Threshold
    reject_below: Threshold
    reject_reason: Annotated[str, Field(min_length=1, max_length=MAX_REASON_CHARS)]
    campaigns: dict[str, CampaignRules] = {}

    @model_validator(mode="after")
    def _bands_in_order(self) -> Self:
        for campaign_id in ["", *self.campaigns]:
            rules = self.rules_for(campaign_id)
            if rules.reject_below > rules.approve_at_or_above:
                where = f"campaigns.{campaign_id}: " if campaign_id else ""
                raise ValueError(
                    f"{where}reject_below ({rules.reject_below}) is above approve_at_or_above "
                    f"({rules.approve_at_or_above}): the bands would overlap"
                )
        return self

    def rules_for(self, campaign_id: str) -> ReviewPolicy:
        """The rules a campaign's responses are judged by (its override over the policy)."""
        override = self.campaigns.get(campaign_id)
        if override is None:
            return self
        return self.model_copy(update=override.model_dump(exclude_unset=True))


@dataclass(frozen=True)
class Judgement:
    """What the policy says of one response."""

    band: Decision
    reason: str
    reject_reason: str | None = None
    """The reason sent with a rejection."""


class InvalidPolicyError(ValueError):
    """The policy document cannot be used; the message says where it is wrong."""


def parse_policy(document: str) -> ReviewPolicy:
    """The policy a document holds; InvalidPolicyError saying what is wrong, if none."""
    try:
        return ReviewPolicy.model_validate_json(document)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'the document'}: {error['msg']}"
            for error in exc.errors(include_url=False, include_input=False)[:5]
        )
        raise InvalidPolicyError(f"the review policy is invalid: {problems}") from None


def judge(policy: ReviewPolicy, campaign_id: str, quality: Quality) -> Judgement:
    """The band a scored response falls in, and why."""
    rules = policy.rules_for(campaign_id)
    score, verdict = quality.score, str(quality.verdict)
    if score >= rules.approve_at_or_above:
        unmet = _unmet_for_approval(rules, verdict, quality.breakdown)
        if unmet:
            return Judgement(
                Decision.HUMAN_REVIEW, f"score {score} is in the approve band, but {unmet}"
            )
        return Judgement(Decision.APPROVE, f"score {score} >= {rules.approve_at_or_above}")
    if score < rules.reject_below:
        if rules.reject_verdicts is not None and verdict not in rules.reject_verdicts:
            return Judgement(
                Decision.HUMAN_REVIEW,
                f"score {score} is in the reject band, but the verdict {verdict!r} is not one "
                f"of {rules.reject_verdicts}",
            )
        return Judgement(
            Decision.REJECT, f"score {score} < {rules.reject_below}", rules.reject_reason
        )
    return Judgement(
        Decision.HUMAN_REVIEW,
        f"score {score} is between {rules.reject_below} and {rules.approve_at_or_above}",
    )


def _unmet_for_approval(
    rules: ReviewPolicy, verdict: str, breakdown: dict[str, int | float]
) -> str | None:
    if rules.approve_verdicts is not None and verdict not in rules.approve_verdicts:
        return f"the verdict {verdict!r} is not one of {rules.approve_verdicts}"
    for dimension, minimum in sorted((rules.approve_breakdown_at_least or {}).items()):
        value = breakdown.get(dimension)
        if value is None:
            return f"the breakdown has no {dimension!r}"
        if value < minimum:
            return f"{dimension} is {value}, under {minimum}"
    return None


class PolicyUnreadableError(RuntimeError):
    """The policy's Parameter cannot be read (SSM failed or refused): nothing is decided."""


class PolicySource:
    """The policy as the Parameter holds it now (cached by `read`), or why it cannot be used."""

    def __init__(self, read: Callable[[], str]) -> None:
        """`read`: the document, e.g. a Powertools SSMProvider's cached `get`. Its errors
        (the Parameter cannot be read) raise PolicyUnreadableError: they pass, an invalid
        document does not."""
        self._read = read

    def current(self) -> ReviewPolicy | InvalidPolicyError:
        try:
            return parse_policy(self._read())
        except InvalidPolicyError as exc:
            return exc
        except GetParameterError as exc:
            raise PolicyUnreadableError(
                f"the review policy Parameter cannot be read ({exc}); if this persists, check "
                "that the Parameter exists and the function may read it (ssm:GetParameter)"
            ) from exc
