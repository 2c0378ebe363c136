"""Review actions: a reviewer's click on Approve or Reject, from Slack, onto the decision queue.

Slack POSTs an interaction payload (`application/x-www-form-urlencoded`, `payload=<JSON>`)
to the app's Interactivity Request URL (this function's URL) and waits at most 3 s. What
becomes of a request, in this order:

    405  not a POST
    401  X-Slack-Signature / X-Slack-Request-Timestamp missing, malformed, older than 5
         minutes, or not the body's signature with the app's signing secret: nothing else
         is read, nothing changes
    400  a signed body that is not an interaction payload
    200  not a click on Approve or Reject (another button, another kind of payload): ignored
    200  a click by a user not in RewardReviewers: an ephemeral "not allowed" for them only
    200  RewardReviewMode off: an ephemeral note, nothing queued
    200  the click queued (a SlackDecision): the reward reviewer applies it and updates the
         message through the click's response_url
    503  the queue did not take the click (Slack shows the clicker that it failed: click again)
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import httpx
from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ValidationError

from p4f import settings as env_readers
from p4f.function_url import error_answer
from p4f.reviews import ACTION_DECISIONS, ReviewMode, SlackDecision, ephemeral
from p4f.secrets import KeySecret, SecretError
from p4f.slack_signing import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SlackSignatureError,
    SlackSignatureMismatchError,
    verify,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from mypy_boto3_sqs import SQSClient

    from p4f.function_url import HttpRequest

logger = Logger(child=True)

SECRET_RECHECK_SECONDS = 60.0
"""A signature that matches no known secret has the secret read again at most this often
(it may have been rotated), however many forged requests arrive."""
NOTICE_TIMEOUT_SECONDS = 1.5
"""An ephemeral note must not keep Slack's 3 s waiting."""
_USER_ID = re.compile(r"[UW][A-Z0-9]{2,30}")


@dataclass(frozen=True)
class Settings:
    signing_secret_arn: str | None
    decision_queue_url: str
    reviewers: frozenset[str]
    mode: ReviewMode

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        reviewers = frozenset(
            user.strip() for user in (env.get("REWARD_REVIEWERS") or "").split(",") if user.strip()
        )
        wrong = sorted(user for user in reviewers if not _USER_ID.fullmatch(user))
        if wrong:
            raise env_readers.ConfigurationError(
                f"REWARD_REVIEWERS holds Slack user ids (U0123ABCD, comma-separated), not {wrong}"
            )
        mode = env_readers.optional(env, "REVIEW_MODE") or ReviewMode.DRY_RUN
        if mode not in set(ReviewMode):
            raise env_readers.ConfigurationError(f"REVIEW_MODE must be one of {list(ReviewMode)}")
        return cls(
            signing_secret_arn=env_readers.optional(env, "SLACK_SIGNING_SECRET_ARN"),
            decision_queue_url=env_readers.required(env, "DECISION_QUEUE_URL"),
            reviewers=reviewers,
            mode=ReviewMode(mode),
        )


class SlackSigningSecret(KeySecret):
    """The Slack app's signing secret: the secret itself, or {"signing_secret": "..."}."""

    field = "signing_secret"
    what = "the Slack app's signing secret"


class _User(BaseModel):
    id: str
    username: str | None = None
    name: str | None = None


class _Action(BaseModel):
    action_id: str
    value: str | None = None


class Interaction(BaseModel):
    """The parts of a block_actions payload the review reads (Slack sends many more)."""

    type: str
    user: _User
    actions: list[_Action] = []
    response_url: str | None = None


class ReviewActions:
    def __init__(
        self,
        settings: Settings,
        secret: SlackSigningSecret | None,
        sqs: SQSClient,
        http: httpx.Client,
        *,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._settings = settings
        self._secret = secret
        self._sqs = sqs
        self._http = http
        self._clock = clock

    def receive(self, request: HttpRequest) -> dict[str, Any]:
        """The function URL's answer to one request from Slack."""
        if request.method != "POST":
            return error_answer(405, "only POST is accepted", {"Allow": "POST"})
        refusal = self._unsigned(request)
        if refusal is not None:
            logger.warning("refused an unsigned request", extra={"reason": refusal})
            return error_answer(401, refusal)
        try:
            interaction = _interaction(request.body)
        except ValueError as exc:
            return error_answer(400, str(exc))
        action = next((a for a in interaction.actions if a.action_id in ACTION_DECISIONS), None)
        if interaction.type != "block_actions" or action is None or not action.value:
            return _ok()  # another button (the dashboard link), another kind of payload
        if not interaction.response_url:
            return error_answer(400, "the interaction has no response_url")
        return self._click(interaction, action, interaction.response_url)

    def _click(
        self, interaction: Interaction, action: _Action, response_url: str
    ) -> dict[str, Any]:
        where = {
            "slack_user": interaction.user.id,
            "action": action.action_id,
            "response_id": action.value,
        }
        if interaction.user.id not in self._settings.reviewers:
            logger.info("a click by a user not in RewardReviewers", extra=where)
            self._notify(
                response_url,
                "You are not allowed to decide rewards: ask whoever runs p4f-bridge to add your "
                f"Slack user id ({interaction.user.id}) to RewardReviewers. Nothing was changed.",
            )
            return _ok()
        if self._settings.mode is ReviewMode.OFF:
            self._notify(response_url, "Reward review is off: nothing was changed.")
            return _ok()
        decision = SlackDecision(
            response_id=str(action.value),
            decision=ACTION_DECISIONS[action.action_id],
            user_id=interaction.user.id,
            user_name=interaction.user.username or interaction.user.name,
            response_url=response_url,
            clicked_at=datetime.now(UTC),
        )
        try:
            self._sqs.send_message(
                QueueUrl=self._settings.decision_queue_url, MessageBody=decision.model_dump_json()
            )
        except (ClientError, BotoCoreError):
            logger.exception("the decision queue did not take the click", extra=where)
            return error_answer(503, "the decision could not be queued; click again")
        logger.info("click queued", extra=where | {"decision": decision.decision})
        return _ok()

    def _unsigned(self, request: HttpRequest) -> str | None:
        """Why the request is not Slack's, or None if it is."""
        if self._secret is None:
            return "no Slack signing secret is configured (SlackSigningSecretArn)"
        signature = request.header(SIGNATURE_HEADER)
        timestamp = request.header(TIMESTAMP_HEADER)
        now = self._clock() if self._clock else None
        try:
            secret = self._secret.get()
            try:
                verify(request.body, signature, timestamp, secret, now=now)
            except SlackSignatureMismatchError:
                fresh = self._secret.refresh(unless_younger_than=SECRET_RECHECK_SECONDS)
                if fresh == secret:
                    raise
                verify(request.body, signature, timestamp, fresh, now=now)
        except SlackSignatureError as exc:
            return str(exc)
        except SecretError as exc:
            logger.error("the signing secret cannot be read", extra={"reason": str(exc)})
            return "the Slack signing secret cannot be read"
        return None

    def _notify(self, response_url: str, text: str) -> None:
        if not response_url.startswith(("https://", "http://")):
            return
        try:
            self._http.post(response_url, json=ephemeral(text), timeout=NOTICE_TIMEOUT_SECONDS)
        except httpx.HTTPError as exc:
            logger.warning("could not tell the clicker", extra={"error": type(exc).__name__})


def _ok() -> dict[str, Any]:
    """What Slack wants for an interaction it should not show anything for: 200, empty."""
    return {"statusCode": 200, "headers": {"Content-Type": "text/plain"}, "body": ""}


def _interaction(body: bytes) -> Interaction:
    """The payload of a signed interactivity request; ValueError saying why if none."""
    try:
        form = parse_qs(body.decode("utf-8"), strict_parsing=True)
        payload = json.loads(form["payload"][0])
        return Interaction.model_validate(payload)
    except (UnicodeDecodeError, KeyError, IndexError, ValueError, ValidationError):
        raise ValueError(
            "the body is not a Slack interaction (a form with a JSON payload)"
        ) from None
