"""Faults in AWS's answers, for the chaos suite: what the bridge's calls to AWS can meet.

    AwsFault.THROTTLE     the call fails with ThrottlingException, as after botocore's retries
    AwsFault.TIMEOUT      every attempt times out before AWS got it
    AwsFault.ANSWER_LOST  AWS does what the call asks, and the first attempt's answer is lost
                          (a time-out): botocore sends the call again
    AwsFault.KILL         the invocation dies just before the call (after the last one was
                          answered), as a time-out or an out-of-memory kills a Lambda

Two ways to meet them:

    with InProcessFaults() as faults:         # moto's mock_aws, this process's boto3 clients
        with faults.invocation(Planned(step=3, fault=AwsFault.ANSWER_LOST)) as calls:
            handler(event, context)           # its 3rd AWS call loses its answer
        calls                                 # the calls it made: [AwsCall(step, operation, body)]

    FaultProxy(moto_url, rate=0.05, seed=7)   # an HTTP server in front of a moto_server: a
                                              # share of the calls named in `faulted` meet a
                                              # fault at random (the local stack's soak)

Only the operations a function makes on its own behalf are faulted by the proxy: what
stands in for Lambda's event source mappings (ReceiveMessage, DeleteMessageBatch) and the
stack's own set-up are AWS itself, and AWS does not throttle itself.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Self

import boto3
import httpx
from botocore.exceptions import ClientError, ReadTimeoutError
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

if TYPE_CHECKING:
    from types import TracebackType

    from botocore.awsrequest import AWSPreparedRequest
    from starlette.requests import Request


class AwsFault(StrEnum):
    THROTTLE = "throttle"
    TIMEOUT = "time-out"
    ANSWER_LOST = "answer lost"
    KILL = "killed before"


class InvocationKilled(BaseException):
    """The invocation died here: a BaseException, so that no `except Exception` of the
    bridge's code (nor botocore's) can catch it, as none could catch a real kill."""


THROTTLE_BODY = json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded (chaos)"})
FUNCTION_OPERATIONS = frozenset(
    {
        "GetSecretValue",
        "UpdateItem",
        "TransactWriteItems",
        "PutItem",
        "GetItem",
        "DeleteItem",
        "PutEvents",
        "SendMessage",
        "SendMessageBatch",
    }
)
"""The calls the bridge's functions make to AWS (the proxy faults these only)."""


@dataclass(frozen=True)
class AwsCall:
    """One AWS call an invocation made (botocore's retries of it are the same call)."""

    step: int
    """Its place among the invocation's calls, from 1."""
    operation: str
    """service.Operation, e.g. dynamodb.UpdateItem."""
    body: bytes


@dataclass(frozen=True)
class Planned:
    """The fault the invocation's `step`-th call meets."""

    step: int
    fault: AwsFault


@dataclass
class _Invocation:
    plan: Planned | None
    calls: list[AwsCall] = field(default_factory=list)


class InProcessFaults:
    """Every botocore client this process makes from boto3's default session, made to meet
    the planned fault of an invocation (under moto's mock_aws)."""

    def __init__(self) -> None:
        self._current: _Invocation | None = None
        self._lock = threading.Lock()
        self._session: boto3.Session | None = None

    def __enter__(self) -> Self:
        # Clients made from here on (the function's, at its import) pass through _before_send,
        # ahead of moto, which answers in the same event.
        boto3.setup_default_session()
        session = boto3.DEFAULT_SESSION
        if session is None:  # setup_default_session just made it
            raise RuntimeError("boto3 made no default session")
        session.events.register_first("before-send", self._before_send)
        self._session = session
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._session is not None:
            self._session.events.unregister("before-send", self._before_send)

    @contextmanager
    def invocation(self, plan: Planned | None = None) -> Iterator[list[AwsCall]]:
        """Count the calls made inside the block, and apply `plan` to them."""
        current = _Invocation(plan)
        with self._lock:
            self._current = current
        try:
            yield current.calls
        finally:
            with self._lock:
                self._current = None

    def _before_send(self, request: AWSPreparedRequest, event_name: str, **_: Any) -> None:
        current = self._current
        if current is None:
            return
        service, operation = event_name.split(".")[1:3]
        context: dict[str, Any] = getattr(request, "context", None) or {}
        attempt = context.get("retries", {}).get("attempt", 1)
        if attempt == 1:
            body = request.body if isinstance(request.body, bytes) else str(request.body).encode()
            current.calls.append(AwsCall(len(current.calls) + 1, f"{service}.{operation}", body))
        plan = current.plan
        if plan is None or plan.step != len(current.calls):
            return
        match plan.fault:
            case AwsFault.KILL:
                raise InvocationKilled(f"killed before call {plan.step} ({operation})")
            case AwsFault.THROTTLE:
                # Raised, not answered: moto's handler of the same event would still run.
                raise ClientError(
                    {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded (chaos)"}},
                    operation,
                )
            case AwsFault.TIMEOUT:
                raise ReadTimeoutError(endpoint_url=request.url)
            case AwsFault.ANSWER_LOST if attempt == 1:
                from moto.core.models import botocore_stubber

                botocore_stubber(event_name, request)  # AWS does it ...
                raise ReadTimeoutError(endpoint_url=request.url)  # ... and the answer is lost


@dataclass(frozen=True)
class ProxiedFault:
    """A fault the proxy applied: to which operation, and the body of the call."""

    fault: AwsFault
    operation: str
    body: bytes


@dataclass(frozen=True)
class LateAnswer:
    """A call moto answered after `seconds`: late enough that its caller may have given up
    and sent it again (a lost answer the proxy did not make: the machine was slow)."""

    operation: str
    body: bytes
    seconds: float


class FaultProxy:
    """An ASGI app in front of a moto_server: once `armed`, a share `rate` of the
    functions' calls (the operations in FUNCTION_OPERATIONS) meet THROTTLE, TIMEOUT or
    ANSWER_LOST at random, the rest pass through. `applied` lists what it did, `late` the
    calls moto itself answered after `late_seconds` or more."""

    def __init__(
        self,
        moto_url: str,
        *,
        rate: float,
        seed: int = 0,
        timeout_seconds: float = 2.5,
        late_seconds: float = 1.5,
        faults: tuple[AwsFault, ...] = (AwsFault.THROTTLE, AwsFault.TIMEOUT, AwsFault.ANSWER_LOST),
    ) -> None:
        self.rate = rate
        self.armed = False
        """Off while the stack starts: a deployment is not what the faults are for."""
        self.applied: list[ProxiedFault] = []
        self.late: list[LateAnswer] = []
        self._late_seconds = late_seconds
        self._moto = moto_url.rstrip("/")
        self._random = random.Random(seed)  # noqa: S311 (seeded draws of faults, nothing secret)
        self._timeout = timeout_seconds
        self._faults = faults
        self._lock = threading.Lock()
        self._http = httpx.AsyncClient(timeout=30, trust_env=False)
        self.app = Starlette(
            routes=[Route("/{path:path}", self._forward, methods=["GET", "POST", "PUT", "DELETE"])]
        )

    async def _forward(self, request: Request) -> Response:
        body = await request.body()
        operation = request.headers.get("x-amz-target", "").rsplit(".", 1)[-1]
        fault = self._draw(operation)
        if fault is not None:
            with self._lock:
                self.applied.append(ProxiedFault(fault, operation, body))
        if fault is AwsFault.THROTTLE:
            return Response(THROTTLE_BODY, 400, media_type="application/x-amz-json-1.0")
        if fault is AwsFault.TIMEOUT:
            await asyncio.sleep(self._timeout)  # longer than the functions' read time-outs
            return Response(status_code=504)
        sent = time.monotonic()
        answer = await self._http.request(
            request.method,
            f"{self._moto}{request.url.path}",
            params=request.query_params,
            headers={k: v for k, v in request.headers.items() if k.lower() != "host"},
            content=body,
        )
        took = time.monotonic() - sent
        if took >= self._late_seconds and operation in FUNCTION_OPERATIONS:
            with self._lock:
                self.late.append(LateAnswer(operation, body, took))
        if fault is AwsFault.ANSWER_LOST:
            # Done, and the caller cannot know: a 500 makes botocore send the call again.
            return Response(status_code=500)
        excluded = {"content-length", "content-encoding", "transfer-encoding", "connection"}
        headers = {k: v for k, v in answer.headers.items() if k.lower() not in excluded}
        return Response(answer.content, answer.status_code, headers)

    def _draw(self, operation: str) -> AwsFault | None:
        if not self.armed or operation not in FUNCTION_OPERATIONS:
            return None
        with self._lock:
            if self._random.random() >= self.rate:
                return None
            return self._random.choice(self._faults)
