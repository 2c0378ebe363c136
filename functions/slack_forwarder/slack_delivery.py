"""Delivering Slack messages: to an incoming webhook, or with chat.postMessage.

    SlackSecret     where messages go, from Secrets Manager: {"webhook_url": "..."} or
                    {"bot_token": "xoxb-...", "channel": "C..."}; never logged, never in a repr
    SlackForwarder  one message per event, in the batch's order, as Slack asks; a backlog
                    (a batch of more than `digest_above` events) in digests: the events of
                    one type in one message (slack_messages.digest, each event linked),
                    so that a burst shows within minutes at Slack's one message a second:
                    - each event is claimed in the Slack ledger (p4f.dedupe, the receiver's
                      claim protocol, in a table of its own) before its message (or the
                      digest it is in) goes, and completed once Slack took it: a redelivered
                      event is not posted again, nor listed in a digest again; one another
                      invocation is posting is deferred;
                    - requests at least `send_interval` apart, retries included (Slack allows
                      about one message a second per channel);
                    - a 429's Retry-After (1 s without one, as Slack advises) is waited out
                      while the invocation has time for the wait and one more attempt;
                      otherwise that record is deferred (sent to the queue again for after
                      the pause), and so is every record until the pause is over, unsent,
                      in this invocation and the next ones of the container (going on after
                      a 429 risks the app being disabled);
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
from slack_messages import (
    DEFAULT_DASHBOARD_URL,
    DashboardLinks,
    SectionBlock,
    SlackMessage,
    digest,
    digest_groups,
    digest_line,
    render,
)

from p4f import settings as env_readers
from p4f.dedupe import ClaimOutcome
from p4f.forwarding import (
    DeferrableError,
    ForwardingError,
    OutOfTimeError,
    Prepared,
    encode_json,
    read_secret,
)
from p4f.retries import SLACK_RETRY_AFTER_SECONDS, Deadline, RetryPolicy, retry_after
from p4f.secrets import CachedSecret, SecretFormatError

if TYPE_CHECKING:
    from p4f.dedupe import DeliveryLedger
    from p4f.forwarding import QueuedEvent

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
_REFUSED_HERE = frozenset(
    {"action_prohibited", "posting_to_general_channel_denied", "restricted_action"}
)
"""The workspace's settings keep the app from posting in the channel."""
_ADVICE: dict[tuple[str, bool], str] = {
    ("destination", True): (
        "the incoming webhook is no longer valid (removed, or its app uninstalled): create "
        "a new one in Slack and put its URL in the Slack secret's webhook_url"
    ),
    ("destination", False): (
        "put a valid bot token in the Slack secret's bot_token (this one was revoked, or "
        "its app uninstalled)"
    ),
    ("channel", True): (
        "the incoming webhook's channel was deleted or archived: create an incoming "
        "webhook for a channel that exists and put its URL in the Slack secret's webhook_url"
    ),
    ("channel", False): "fix the channel in the Slack secret, and invite the app to it",
    ("refused_here", True): (
        "the workspace does not let the app post in the webhook's channel: ask a Slack "
        "admin, or create the incoming webhook for another channel"
    ),
    ("refused_here", False): (
        "the workspace does not let the app post in this channel: ask a Slack admin, or "
        "put another channel in the Slack secret"
    ),
    ("missing_scope", False): (
        "give the app the chat:write scope, reinstall it, and put its new bot token in the "
        "Slack secret"
    ),
}
"""What to do about a refusal, by its kind and the destination (True: an incoming webhook)."""
DIGEST_ABOVE = 5
"""A batch of more events than this is a backlog: posted in digests (SLACK_DIGEST_ABOVE)."""
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
    digest_above: int = DIGEST_ABOVE
    """A batch of more events than this is posted in digests."""

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
            digest_above=env_readers.integer(env, "SLACK_DIGEST_ABOVE", DIGEST_ABOVE, minimum=0),
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

    def __init__(self, error: str, details: Sequence[str] = (), *, webhook: bool) -> None:
        self.error = error
        if error in _DESTINATION_ERRORS:
            kind = "destination"
        elif error in _CHANNEL_ERRORS:
            kind = "channel"
        elif error in _REFUSED_HERE:
            kind = "refused_here"
        else:
            kind = error
        todo = _ADVICE.get(
            (kind, webhook), "the message itself was refused: report this as a p4f-bridge bug"
        )
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


@dataclass(frozen=True)
class SlackContent:
    """What an event becomes for Slack: its own message, and its line in a digest."""

    message: SlackMessage
    line: SectionBlock


type Post = Sequence[Prepared[SlackContent]]
"""The events one message is for: one, or the events of a digest."""


class SlackForwarder:
    """Posts one Slack message per event, or digests for a backlog (see the module
    docstring for the rules)."""

    def __init__(
        self,
        secret: SlackSecret,
        http: httpx.Client,
        ledger: DeliveryLedger,
        *,
        api_url: str = DEFAULT_API_URL,
        links: DashboardLinks | None = None,
        timing: SlackTiming | None = None,
        digest_above: int = DIGEST_ABOVE,
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
        self._digest_above = digest_above
        self._clock = clock
        self._sleep = sleep
        self._last_sent: float | None = None
        self._quiet_until = 0.0
        """After a 429: no request before this time (self._clock's)."""

    def prepare(self, queued: QueuedEvent) -> SlackContent | None:
        """The event's message, and its line in a digest; None for a reconciled event of a
        change too old to announce (a first run of the reconciler would flood the channel
        with history)."""
        event = queued.event
        if event.reconciled_at is not None and event.created_at < self._now() - (
            self._reconciled_max_age
        ):
            logger.info(
                "reconciled event not announced: its change is older than the limit",
                extra={"event_id": event.id, "changed_at": event.created_at.isoformat()},
            )
            return None
        return SlackContent(render(queued, self._links), digest_line(queued, self._links))

    def forward(
        self, batch: Sequence[Prepared[SlackContent | None]], seconds: float
    ) -> dict[str, ForwardingError]:
        """Post the batch's messages within `seconds`; the failures by SQS message id."""
        deadline = Deadline(seconds, self._clock)
        failures: dict[str, ForwardingError] = {}
        announced = [
            Prepared(item.queued, item.content) for item in batch if item.content is not None
        ]
        for post in self._posts(announced):
            pause = max(0.0, self._quiet_until - self._clock())
            if pause and not deadline.allows(pause + self._timing.request_timeout):
                error = SlackRateLimitedError(
                    f"not sent: Slack asked for a pause after a 429 that lasts {pause:g}s more, "
                    "longer than this invocation can wait",
                    pause,
                )
                failures |= dict.fromkeys((item.message_id for item in post), error)
                continue
            failures |= self._post_once(post, deadline)
        return failures

    def _posts(self, batch: Sequence[Prepared[SlackContent]]) -> list[Post]:
        """The messages the batch becomes, in order: one per event; for a backlog, one per
        run of events of a type that fits a digest (a type with one event keeps its own)."""
        if len(batch) <= self._digest_above:
            return [[item] for item in batch]
        by_type: dict[str, list[Prepared[SlackContent]]] = {}
        for item in batch:
            by_type.setdefault(str(item.queued.event.type), []).append(item)
        return [
            run
            for items in by_type.values()
            for run in digest_groups(items, lambda item: item.content.line)
        ]

    def _post_once(self, post: Post, deadline: Deadline) -> dict[str, ForwardingError]:
        """Post the message for the events of `post` that the ledger does not know as
        posted (the event's own, or a digest of them); the failures by SQS message id."""
        failures: dict[str, ForwardingError] = {}
        claimed: dict[str, list[Prepared[SlackContent]]] = {}
        """The records of each event this invocation claimed (copies share a claim)."""
        for item in post:
            event_id = item.queued.event.id
            if event_id in claimed:
                claimed[event_id].append(item)
                continue
            try:
                if self._claim(event_id, deadline):
                    claimed[event_id] = [item]
            except ForwardingError as exc:
                failures[item.message_id] = exc
        if not claimed:
            return failures
        firsts = [records[0] for records in claimed.values()]
        if len(firsts) == 1:
            message = firsts[0].content.message
        else:
            message = digest([(item.queued.event, item.content.line) for item in firsts])
            logger.info(
                "posting a digest",
                extra={"event_type": str(firsts[0].queued.event.type), "events": len(firsts)},
            )
        try:
            self._deliver(message, deadline)
        except SlackAnswerLostError as exc:
            # The claims are kept: they lapse when this invocation ends, so that no copy of
            # these events is posted in this one; SQS brings the records back later.
            error: ForwardingError = exc
        except ForwardingError as exc:
            for event_id in claimed:
                self._release(event_id)
            error = exc
        else:
            for event_id in claimed:
                self._complete(event_id, deadline)
            return failures
        return failures | {
            item.message_id: error for records in claimed.values() for item in records
        }

    def _claim(self, event_id: str, deadline: Deadline) -> bool:
        """Take the event for this invocation; False if it was posted already."""
        try:
            claim = self._ledger.claim(event_id, deadline.remaining())
        except (ClientError, BotoCoreError) as exc:
            raise SlackLedgerError(
                f"the Slack ledger did not answer ({type(exc).__name__}); not posted"
            ) from exc
        if claim.outcome is ClaimOutcome.DUPLICATE:
            logger.info("already posted to Slack: not posted again", extra={"event_id": event_id})
            return False
        if claim.outcome is ClaimOutcome.BUSY:
            raise SlackBusyError(
                "another invocation is posting this event now", max(1.0, claim.retry_after)
            )
        return True

    def _complete(self, event_id: str, deadline: Deadline) -> None:
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
        wait = retry_after(answer, SLACK_RETRY_AFTER_SECONDS)
        raise SlackRateLimitedError(f"Slack answered 429, Retry-After {wait:g}s", wait)
    if status >= 500:
        raise SlackUnavailableError(f"Slack answered HTTP {status}")
    if webhook:
        if status == 200:
            return
        error = " ".join(answer.text.split())[:100] or f"HTTP {status}"
        raise SlackRejectedError(error, webhook=True)
    try:
        payload: Any = answer.json()
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        raise SlackRejectedError(f"HTTP {status} without the Web API's JSON answer", webhook=False)
    if status == 200 and payload.get("ok") is True:
        return
    error = str(payload.get("error") or f"HTTP {status}")
    if error == "ratelimited":
        wait = retry_after(answer, SLACK_RETRY_AFTER_SECONDS)
        raise SlackRateLimitedError(f"Slack answered ratelimited, Retry-After {wait:g}s", wait)
    metadata = payload.get("response_metadata")
    details = metadata.get("messages", []) if isinstance(metadata, dict) else []
    raise SlackRejectedError(error, [str(detail) for detail in details], webhook=False)
