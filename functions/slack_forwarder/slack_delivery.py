"""Delivering Slack messages: to an incoming webhook, or with chat.postMessage.

    SlackSecret     where messages go, from Secrets Manager: {"webhook_url": "..."} or
                    {"bot_token": "xoxb-...", "channel": "C..."}; never logged, never in a repr
    SlackForwarder  one message per event, in the batch's order, as Slack asks:
                    - each event is claimed in the Slack ledger (p4f.dedupe, the receiver's
                      claim protocol, in a table of its own) before its message goes, and
                      completed once Slack took it: a redelivered event is not posted again;
                      one another invocation is posting is deferred;
                    - requests at least `send_interval` apart, retries included (Slack allows
                      about one message a second per channel);
                    - a 429's Retry-After is waited out while the invocation has time for the
                      wait and one more attempt; otherwise that record is deferred (sent to
                      the queue again for after the pause), and so is every record until
                      the pause is over, unsent, in this invocation and the next ones of the
                      container (going on after a 429 risks the app being disabled);
                    - 5xx answers and requests that never left (no connection) are retried
                      with backoff, then the record fails;
                    - a request Slack got but did not answer in time may have been posted: it
                      is not sent again in this invocation; the record fails and SQS brings
                      it back (the one way a message can be posted twice);
                    - a destination Slack refuses (invalid_auth, no_service, ...) is read from
                      Secrets Manager again, once per message, in case it was rotated.
    Failed records come back from SQS; after the queue's maxReceiveCount they wait in its DLQ.

    SlackError (ForwardingError)   Slack did not post the message
    ├── SlackRateLimitedError      429 for longer than the invocation can wait (deferred)
    ├── SlackBusyError             another invocation is posting the event (deferred)
    ├── SlackUnavailableError      5xx, or no connection, after the retries
    ├── SlackAnswerLostError       Slack got the request but did not answer in time
    ├── SlackLedgerError           the Slack ledger (DynamoDB) did not answer
    └── SlackRejectedError         Slack refused the message or the destination (its error code)
    (and p4f.forwarding's SecretUnavailableError when the Slack secret cannot be used)

No message or log line contains the webhook URL or the bot token.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError
from slack_messages import DEFAULT_DASHBOARD_URL, DashboardLinks, SlackMessage, render

from p4f import settings as env_readers
from p4f.dedupe import ClaimOutcome
from p4f.forwarding import (
    DeferrableError,
    ForwardingError,
    OutOfTimeError,
    encode_json,
    read_secret,
)
from p4f.retries import Deadline, RetryPolicy, retry_after
from p4f.secrets import CachedSecret, SecretFormatError

if TYPE_CHECKING:
    from p4f.dedupe import DeliveryLedger
    from p4f.forwarding import Prepared, QueuedEvent

logger = Logger(child=True)

DEFAULT_API_URL = "https://slack.com/api"
DEFAULT_RECONCILED_MAX_AGE_MINUTES = 60
_ACCEPTED_FORMS = (
    '{"webhook_url": "https://hooks.slack.com/services/..."} or '
    '{"bot_token": "xoxb-...", "channel": "C0123456789"}'
)
_DESTINATION_ERRORS = frozenset(
    {
        "invalid_auth",
        "not_authed",
        "token_revoked",
        "token_expired",
        "account_inactive",
        "invalid_token",
        "no_service",
        "no_team",
        "team_disabled",
    }
)
"""Slack's answers that the webhook URL or the bot token is not (or no longer) valid."""
_CHANNEL_ERRORS = frozenset(
    {"channel_not_found", "not_in_channel", "channel_is_archived", "is_archived"}
)
_NOT_SENT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.WriteError,
    httpx.WriteTimeout,
    httpx.LocalProtocolError,
    httpx.UnsupportedProtocol,
    httpx.ProxyError,
)
"""Failures before Slack had the whole request: safe to send again at once."""
LEDGER_TARGET = "slack"
"""What the Slack ledger records as the target that took an event."""
LEDGER_TTL_SECONDS = 21 * 24 * 3600
"""How long the Slack ledger remembers an event: longer than a record can live in the queue
(4 days) and in its dead-letter queue (14 days) before it is moved back."""


@dataclass(frozen=True)
class Settings:
    slack_secret_arn: str
    ledger_table: str
    """The Slack ledger: which events were posted (key `id`, TTL `expires_at`)."""
    queue_url: str
    """The forwarder's own queue, where deferred records go."""
    slack_api_url: str
    dashboard_url: str
    containers: int
    """How many containers send to Slack at once (the event source's MaximumConcurrency)."""
    reconciled_max_age: timedelta
    """A reconciled event whose change is older than this is not announced."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        return cls(
            slack_secret_arn=env_readers.required(env, "SLACK_SECRET_ARN"),
            ledger_table=env_readers.required(env, "SLACK_LEDGER_TABLE"),
            queue_url=env_readers.required(env, "SLACK_QUEUE_URL"),
            slack_api_url=(env_readers.optional(env, "SLACK_API_URL") or DEFAULT_API_URL).rstrip(
                "/"
            ),
            dashboard_url=env_readers.optional(env, "P4F_DASHBOARD_URL") or DEFAULT_DASHBOARD_URL,
            containers=env_readers.integer(env, "SLACK_CONTAINERS", 1, minimum=1),
            reconciled_max_age=timedelta(
                minutes=env_readers.integer(
                    env, "RECONCILED_MAX_AGE_MINUTES", DEFAULT_RECONCILED_MAX_AGE_MINUTES
                )
            ),
        )


class SlackError(ForwardingError):
    """Slack did not post the message."""


class SlackRateLimitedError(SlackError, DeferrableError):
    """Slack answered 429 for longer than the invocation can wait: deferred."""


class SlackBusyError(SlackError, DeferrableError):
    """Another invocation is posting the event (it holds its claim): deferred."""


class SlackUnavailableError(SlackError):
    """Slack answered 5xx, or could not be reached, after the retries."""


class SlackAnswerLostError(SlackError):
    """Slack got the request and did not answer in time: the message may have been posted."""


class SlackLedgerError(SlackError):
    """The Slack ledger did not answer, so the event was not posted."""


class SlackRejectedError(SlackError):
    """Slack refused the message or its destination."""

    def __init__(self, error: str, details: Sequence[str] = ()) -> None:
        self.error = error
        if error in _DESTINATION_ERRORS:
            todo = "put a valid webhook URL or bot token in the Slack secret"
        elif error in _CHANNEL_ERRORS:
            todo = "fix the channel in the Slack secret, and invite the app to it"
        else:
            todo = "the message itself was refused: report this as a p4f-bridge bug"
        shown = f" ({'; '.join(details[:3])})" if details else ""
        super().__init__(f"Slack refused the message: {error}{shown}; {todo}")


@dataclass(frozen=True)
class IncomingWebhook:
    url: str = field(repr=False)


@dataclass(frozen=True)
class BotChannel:
    token: str = field(repr=False)
    channel: str


type SlackDestination = IncomingWebhook | BotChannel


class SlackSecret(CachedSecret[SlackDestination]):
    """Where Slack messages go: an incoming webhook, or a bot token and a channel."""

    def _parse(self, secret_string: str) -> SlackDestination:
        try:
            parsed: Any = json.loads(secret_string)
        except json.JSONDecodeError:
            parsed = None
        if isinstance(parsed, dict):
            url, token, channel = (
                _text(parsed.get(name)) for name in ("webhook_url", "bot_token", "channel")
            )
            if url and not token and urlsplit(url).scheme in {"https", "http"}:
                return IncomingWebhook(url)
            if token and channel and not url:
                return BotChannel(token, channel)
        raise SecretFormatError(f"secret {self.secret_id!r} must hold {_ACCEPTED_FORMS}")


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


_RETRIES = RetryPolicy(max_attempts=3, max_rate_limit_waits=2, base_delay=0.5, max_delay=4.0)


@dataclass(frozen=True)
class SlackTiming:
    request_timeout: float = 5.0
    send_interval: float = 1.0
    """Seconds between two messages of one container; Slack allows about one a second per
    channel, so with N containers sending at once each waits N seconds."""
    retry: RetryPolicy = _RETRIES


class SlackForwarder:
    """Posts one Slack message per event (see the module docstring for the rules)."""

    def __init__(
        self,
        secret: SlackSecret,
        http: httpx.Client,
        ledger: DeliveryLedger,
        *,
        api_url: str = DEFAULT_API_URL,
        links: DashboardLinks | None = None,
        timing: SlackTiming | None = None,
        reconciled_max_age: timedelta = timedelta(minutes=DEFAULT_RECONCILED_MAX_AGE_MINUTES),
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._secret = secret
        self._reconciled_max_age = reconciled_max_age
        self._now = now
        self._http = http
        self._ledger = ledger
        self._api_url = api_url
        self._links = links or DashboardLinks()
        self._timing = timing or SlackTiming()
        self._clock = clock
        self._sleep = sleep
        self._last_sent: float | None = None
        self._quiet_until = 0.0
        """After a 429: no request before this time (self._clock's)."""

    def prepare(self, queued: QueuedEvent) -> SlackMessage | None:
        """The event's message; None for a reconciled event of a change too old to announce
        (a first run of the reconciler would flood the channel with history)."""
        event = queued.event
        if event.reconciled_at is not None and event.created_at < self._now() - (
            self._reconciled_max_age
        ):
            logger.info(
                "reconciled event not announced: its change is older than the limit",
                extra={"event_id": event.id, "changed_at": event.created_at.isoformat()},
            )
            return None
        return render(queued, self._links)

    def forward(
        self, batch: Sequence[Prepared[SlackMessage | None]], seconds: float
    ) -> dict[str, ForwardingError]:
        """Post a message for each event within `seconds`; the failures by SQS message id."""
        deadline = Deadline(seconds, self._clock)
        failures: dict[str, ForwardingError] = {}
        for item in batch:
            if item.content is None:
                continue
            pause = max(0.0, self._quiet_until - self._clock())
            if pause and not deadline.allows(pause + self._timing.request_timeout):
                failures[item.message_id] = SlackRateLimitedError(
                    f"not sent: Slack asked for a pause after a 429 that lasts {pause:g}s more, "
                    "longer than this invocation can wait",
                    pause,
                )
                continue
            try:
                self._post_once(item.queued.event.id, item.content, deadline)
            except ForwardingError as exc:
                failures[item.message_id] = exc
        return failures

    def _post_once(self, event_id: str, message: SlackMessage, deadline: Deadline) -> None:
        """Post the event's message, unless the ledger says it was posted."""
        try:
            claim = self._ledger.claim(event_id, deadline.remaining())
        except (ClientError, BotoCoreError) as exc:
            raise SlackLedgerError(
                f"the Slack ledger did not answer ({type(exc).__name__}); not posted"
            ) from exc
        if claim.outcome is ClaimOutcome.DUPLICATE:
            logger.info("already posted to Slack: not posted again", extra={"event_id": event_id})
            return
        if claim.outcome is ClaimOutcome.BUSY:
            raise SlackBusyError(
                "another invocation is posting this event now", max(1.0, claim.retry_after)
            )
        try:
            self._deliver(message, deadline)
        except SlackAnswerLostError:
            # The claim is kept: it lapses when this invocation ends, so that no copy of the
            # event is posted in this one; SQS brings the record back later.
            raise
        except ForwardingError:
            self._release(event_id)
            raise
        try:
            self._ledger.complete(event_id, {LEDGER_TARGET}, deadline)
        except (ClientError, BotoCoreError):
            logger.exception(
                "posted, but not recorded in the Slack ledger: a redelivery would post it again",
                extra={"event_id": event_id},
            )

    def _release(self, event_id: str) -> None:
        try:
            self._ledger.release(event_id, ())
        except (ClientError, BotoCoreError):
            # The claim lapses when this invocation ends; the record comes back later.
            logger.exception("could not release the event's claim", extra={"event_id": event_id})

    def _deliver(self, message: SlackMessage, deadline: Deadline) -> None:
        failures = rate_limit_waits = 0
        destination = read_secret(self._secret)
        rechecked = False
        while True:
            self._pace(deadline)
            try:
                self._post(destination, message, deadline)
                return
            except SlackRateLimitedError as exc:
                self._quiet_until = self._clock() + exc.retry_after
                rate_limit_waits += 1
                if rate_limit_waits > self._timing.retry.max_rate_limit_waits:
                    raise
                self._wait(exc.retry_after, deadline, exc)
            except SlackUnavailableError as exc:
                failures += 1
                if failures >= self._timing.retry.max_attempts:
                    raise
                self._wait(self._timing.retry.backoff(failures), deadline, exc)
            except SlackRejectedError as exc:
                if exc.error not in _DESTINATION_ERRORS or rechecked:
                    raise
                rechecked = True
                fresh = read_secret(self._secret, fresh=True)
                if fresh == destination:
                    raise
                logger.info("the Slack secret changed since it was read; sending again")
                destination = fresh

    def _pace(self, deadline: Deadline) -> None:
        """Wait until the next request may go."""
        if self._until_next_send() > 0:
            self._wait(0.0, deadline, OutOfTimeError("no time was left to send the message"))

    def _until_next_send(self) -> float:
        """Seconds until a request may go: `send_interval` after the last one, and not
        before a 429's pause is over."""
        now = self._clock()
        paced = now if self._last_sent is None else self._last_sent + self._timing.send_interval
        return max(0.0, paced - now, self._quiet_until - now)

    def _wait(self, seconds: float, deadline: Deadline, cause: ForwardingError) -> None:
        """Sleep `seconds`, and at least until the next request is allowed; or raise `cause`
        if the wait and one more attempt would pass the deadline."""
        seconds = max(seconds, self._until_next_send())
        if not deadline.allows(seconds + self._timing.request_timeout):
            raise cause
        if not isinstance(cause, OutOfTimeError):
            logger.warning("%s; trying again in %.1fs", cause, seconds)
        self._sleep(seconds)

    def _post(
        self, destination: SlackDestination, message: SlackMessage, deadline: Deadline
    ) -> None:
        remaining = deadline.remaining()
        if remaining <= 0:
            raise OutOfTimeError("the invocation's time ran out before the message was sent")
        body: dict[str, Any] = {**message, "unfurl_links": False, "unfurl_media": False}
        headers = {"Content-Type": "application/json; charset=utf-8"}
        if isinstance(destination, IncomingWebhook):
            url = destination.url
        else:
            url = f"{self._api_url}/chat.postMessage"
            headers["Authorization"] = f"Bearer {destination.token}"
            body["channel"] = destination.channel
        timeout = min(self._timing.request_timeout, remaining)
        try:
            answer = self._http.post(
                url, content=encode_json(body), headers=headers, timeout=timeout
            )
        except _NOT_SENT as exc:
            raise SlackUnavailableError(f"could not reach Slack ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise SlackAnswerLostError(
                f"Slack did not answer within {timeout:.1f}s ({type(exc).__name__}); the "
                "message may have been posted, so it is not sent again in this invocation"
            ) from exc
        finally:
            self._last_sent = self._clock()
        check_answer(answer, webhook=isinstance(destination, IncomingWebhook))


def check_answer(answer: httpx.Response, *, webhook: bool) -> None:
    """Raise the SlackError Slack's answer means; return if the message was posted.

    An incoming webhook answers 200 "ok" or an error code as text; the Web API answers
    JSON, {"ok": false, "error": ...} with HTTP 200 for most errors.
    """
    status = answer.status_code
    if status == 429:
        wait = retry_after(answer)
        raise SlackRateLimitedError(f"Slack answered 429, Retry-After {wait:g}s", wait)
    if status >= 500:
        raise SlackUnavailableError(f"Slack answered HTTP {status}")
    if webhook:
        if status == 200:
            return
        raise SlackRejectedError(" ".join(answer.text.split())[:100] or f"HTTP {status}")
    try:
        payload: Any = answer.json()
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        raise SlackRejectedError(f"HTTP {status} without the Web API's JSON answer")
    if status == 200 and payload.get("ok") is True:
        return
    error = str(payload.get("error") or f"HTTP {status}")
    if error == "ratelimited":
        wait = retry_after(answer)
        raise SlackRateLimitedError(f"Slack answered ratelimited, Retry-After {wait:g}s", wait)
    metadata = payload.get("response_metadata")
    details = metadata.get("messages", []) if isinstance(metadata, dict) else []
    raise SlackRejectedError(error, [str(detail) for detail in details])
