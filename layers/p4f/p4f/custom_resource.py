"""The CloudFormation custom resource protocol: read the request, always send one answer.

CloudFormation waits up to an hour for the answer PUT to the request's ResponseURL, so the
answer is sent whatever happens: the outcome of the work, the error it raised, or, when the
work is still running shortly before the function's time-out, a failure saying so. Only the
first answer counts; a later one is dropped.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

import httpx
from aws_lambda_powertools import Logger

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from contextlib import AbstractContextManager

logger = Logger(child=True)

_PUT_ATTEMPTS = 3
# CloudFormation shows at most ~4 KB of a reason.
_MAX_REASON = 1000


class RequestType(StrEnum):
    CREATE = "Create"
    UPDATE = "Update"
    DELETE = "Delete"


class Status(StrEnum):
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"


@dataclass(frozen=True)
class CustomResourceRequest:
    request_type: RequestType
    response_url: str
    stack_id: str
    request_id: str
    logical_resource_id: str
    properties: Mapping[str, Any]
    old_properties: Mapping[str, Any]
    physical_resource_id: str | None

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> CustomResourceRequest:
        return cls(
            request_type=RequestType(event["RequestType"]),
            response_url=event["ResponseURL"],
            stack_id=event["StackId"],
            request_id=event["RequestId"],
            logical_resource_id=event["LogicalResourceId"],
            properties=event.get("ResourceProperties", {}),
            old_properties=event.get("OldResourceProperties", {}),
            physical_resource_id=event.get("PhysicalResourceId"),
        )


@dataclass(frozen=True)
class Outcome:
    status: Status
    physical_resource_id: str
    reason: str = ""
    data: Mapping[str, str] = field(default_factory=dict)


class Responder:
    """Sends the one answer of a request to CloudFormation."""

    def __init__(
        self,
        request: CustomResourceRequest,
        http: httpx.Client,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._request = request
        self._http = http
        self._sleep = sleep
        self._lock = threading.Lock()
        self.sent: Outcome | None = None

    def send(self, outcome: Outcome) -> bool:
        """PUT `outcome` to the ResponseURL unless an answer went already; True if sent."""
        with self._lock:
            if self.sent is not None:
                return False
            self.sent = outcome
        body = {
            "Status": outcome.status,
            "Reason": outcome.reason[:_MAX_REASON],
            "PhysicalResourceId": outcome.physical_resource_id,
            "StackId": self._request.stack_id,
            "RequestId": self._request.request_id,
            "LogicalResourceId": self._request.logical_resource_id,
            "Data": dict(outcome.data),
        }
        content = json.dumps(body).encode()
        for attempt in range(1, _PUT_ATTEMPTS + 1):
            try:
                # The URL is pre-signed for a PUT without a content type.
                self._http.put(
                    self._request.response_url, content=content, headers={"content-type": ""}
                ).raise_for_status()
            except httpx.HTTPError:
                if attempt == _PUT_ATTEMPTS:
                    # Raised, the invocation fails and Lambda runs it again: the work is
                    # written to be repeated, so the answer gets another chance.
                    raise
                logger.warning("CloudFormation did not take the answer; sending it again")
                self._sleep(attempt)
            else:
                return True
        return False


def handle(
    request: CustomResourceRequest,
    work: Callable[[CustomResourceRequest], Outcome],
    responder: Responder,
    *,
    seconds_left: float,
    failed_physical_id: str,
) -> Outcome:
    """Run `work` and answer with its outcome; answer FAILED if it raises or runs too long.

    `seconds_left` is how long the function may still run; the watchdog answers shortly
    before. `failed_physical_id` is the id to answer when there is none yet (a failed
    Create must still name one).
    """
    physical_id = request.physical_resource_id or failed_physical_id
    watchdog = threading.Timer(
        max(0.0, seconds_left - 3),
        lambda: responder.send(
            Outcome(Status.FAILED, physical_id, "timed out before Pay4Feedback answered; retry")
        ),
    )
    watchdog.daemon = True
    watchdog.start()
    try:
        outcome = work(request)
    except Exception as exc:  # whatever failed, CloudFormation must hear of it
        logger.exception("the custom resource's work failed")
        outcome = Outcome(Status.FAILED, physical_id, f"{type(exc).__name__}: {exc}")
    finally:
        watchdog.cancel()
    responder.send(outcome)
    return responder.sent or outcome


class _Context(Protocol):
    def get_remaining_time_in_millis(self) -> int: ...


def serve(
    event: Mapping[str, Any],
    context: _Context,
    work: Callable[[CustomResourceRequest], Outcome],
    *,
    http: httpx.Client,
    deadline: Callable[[float], AbstractContextManager[None]],
    margin: float,
    failed_physical_id: Callable[[CustomResourceRequest], str],
    log: Logger,
) -> Outcome:
    """A custom resource function's handler body: read the request, run `work` within the
    API client's `deadline` (the function's time less `margin`, kept to answer), answer.

    `failed_physical_id` names the resource when the work fails before it has an id; `log`
    is the function's own logger (its records get the request's type and id).
    """
    request = CustomResourceRequest.from_event(event)
    log.append_keys(request_type=request.request_type, request_id=request.request_id)
    seconds_left = context.get_remaining_time_in_millis() / 1000
    with deadline(seconds_left - margin):
        outcome = handle(
            request,
            work,
            Responder(request, http),
            seconds_left=seconds_left,
            failed_physical_id=failed_physical_id(request),
        )
    log.info(
        "answered CloudFormation",
        extra={
            "status": outcome.status,
            "reason": outcome.reason,
            "physical_resource_id": outcome.physical_resource_id,
        },
    )
    return outcome
