"""The Pay4Feedback webhook subscription as a CloudFormation resource.

    Create   register the receiver's URL for the events, signed with the signing secret
             (or keep the subscription a first run of the same Create registered)
    Update   URL, events or rotation changed: register a new subscription and answer its
             id; CloudFormation then deletes the old one (new before old: no gap)
    Delete   remove the subscription; a 404 counts as done

The physical resource id is the subscription's id at Pay4Feedback. The reconciler checks
the subscription on each run and re-creates it with the same code (`registered`, `register`):
one owner of what the stack's subscription is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger

from p4f.custom_resource import CustomResourceRequest, Outcome, RequestType, Status
from p4f.errors import AuthenticationError, NotFoundError
from p4f.secrets import SecretError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any

    from p4f.client import Pay4FeedbackClient

logger = Logger(child=True)

NOT_CREATED_PREFIX = "not-created-"
"""Physical id of a Create that failed: there is nothing to delete for it."""


class InvalidPropertiesError(ValueError):
    """The custom resource's properties in template.yaml are incomplete."""


@dataclass(frozen=True)
class Subscription:
    """What the stack wants registered at Pay4Feedback."""

    url: str
    events: tuple[str, ...]
    rotation: str
    """Changing it (a Parameter) re-registers with the signing secret's newest value."""

    @classmethod
    def from_properties(cls, properties: Mapping[str, Any]) -> Subscription:
        url = str(properties.get("WebhookUrl", "")).strip()
        events = tuple(str(e).strip() for e in properties.get("Events", []) if str(e).strip())
        if not url or not events:
            raise InvalidPropertiesError(
                "the subscription needs WebhookUrl and at least one of Events in template.yaml"
            )
        return cls(url, events, str(properties.get("SecretRotation", "")))


class SubscriptionManager:
    def __init__(self, client: Pay4FeedbackClient, signing_secret: Callable[[], str]) -> None:
        self._client = client
        self._signing_secret = signing_secret

    def apply(self, request: CustomResourceRequest) -> Outcome:
        if request.request_type is RequestType.DELETE:
            return self._delete(request.physical_resource_id or "")
        wanted = Subscription.from_properties(request.properties)
        if request.request_type is RequestType.UPDATE and request.physical_resource_id:
            try:
                current = Subscription.from_properties(request.old_properties)
            except InvalidPropertiesError:
                current = None
            if current == wanted:
                return _registered(request.physical_resource_id, "nothing to change")
        elif existing := self.registered(wanted):
            # A Create run again (Lambda retries a failed invocation): keep the first one.
            return _registered(existing, f"{wanted.url} was registered already")
        return _registered(*self.register(wanted))

    def registered(self, wanted: Subscription) -> str | None:
        """The id of a subscription at Pay4Feedback with `wanted`'s URL and events, if any."""
        for webhook in self._client.list_webhooks():
            if webhook.url == wanted.url and set(webhook.events) == set(wanted.events):
                return webhook.id
        return None

    def register(self, wanted: Subscription) -> tuple[str, str]:
        """A new subscription for `wanted`, signed with the signing secret's newest value:
        its id, and what was done."""
        webhook = self._client.create_webhook(wanted.url, wanted.events, self._signing_secret())
        logger.info("subscription registered", extra={"webhook_id": webhook.id})
        return webhook.id, f"registered {wanted.url} for {len(wanted.events)} events"

    def _delete(self, webhook_id: str) -> Outcome:
        if not webhook_id or webhook_id.startswith(NOT_CREATED_PREFIX):
            return Outcome(Status.SUCCESS, webhook_id, "nothing was registered")
        try:
            self._client.delete_webhook(webhook_id)
        except NotFoundError:
            return Outcome(Status.SUCCESS, webhook_id, "already deleted at Pay4Feedback")
        except (AuthenticationError, SecretError) as exc:
            # Failing here would leave the stack undeletable while the key is unusable.
            logger.warning("subscription left in place: no usable API key", exc_info=exc)
            return Outcome(
                Status.SUCCESS,
                webhook_id,
                f"no usable API key ({type(exc).__name__}): delete subscription "
                f"{webhook_id} in the Pay4Feedback dashboard",
            )
        logger.info("subscription deleted", extra={"webhook_id": webhook_id})
        return Outcome(Status.SUCCESS, webhook_id, "deleted at Pay4Feedback")


def _registered(webhook_id: str, reason: str) -> Outcome:
    return Outcome(Status.SUCCESS, webhook_id, reason, {"WebhookId": webhook_id})
