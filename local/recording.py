"""What the local stand-ins for Slack and Segment share: they record every request and can
be told to fail the next ones.

    receiver.inject(Fault(FaultKind.RATE_LIMITED, retry_after=3), times=2)  # 429, Retry-After: 3
    receiver.inject(Fault(FaultKind.SERVER_ERROR))                          # 500
    receiver.inject(Fault(FaultKind.HANG))     # no answer for `hang_seconds`, then 504
    receiver.inject(Fault(FaultKind.SLOW))     # taken as usual, answered after `hang_seconds`
    receiver.inject(Fault(FaultKind.SERVER_ERROR), after=2)   # the third request from now
    receiver.schedule([None, Fault(FaultKind.HANG), None])   # the next three, in turn

A service subclasses `RecordingReceiver` with its routes, its `answer` (validating what it
got the way the real service does) and the shape of its fault answers. Serve `receiver.app`
with `local.asgi_server.ThreadedAsgiServer`. A request is recorded before it is answered
(a hung one too), so a client that has its answer always finds its request in `requests`.
"""

from __future__ import annotations

import asyncio
import json
import threading
from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

if TYPE_CHECKING:
    from collections.abc import Sequence

    from starlette.requests import Request


class FaultKind(StrEnum):
    RATE_LIMITED = "rate_limited"
    """429 with Retry-After."""
    SERVER_ERROR = "server_error"
    """500."""
    HANG = "hang"
    """No answer until the client has given up."""
    SLOW = "slow"
    """The request is taken as usual (a message posted, events stored), but its answer
    comes only after the client has given up: an answer lost on the way."""


@dataclass(frozen=True)
class Fault:
    kind: FaultKind
    retry_after: int = 1
    """Seconds, for RATE_LIMITED."""


@dataclass(frozen=True)
class Answer:
    """A service's answer to one request, and what it found wrong with it."""

    response: Response
    problems: tuple[str, ...] = ()
    accepted: bool = False
    """True when the service took the request's content (a message posted, events stored)."""


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    """Lower-case names."""
    body: bytes
    status: int
    """The status the receiver answered (504 for a hang, which the client never sees)."""
    fault: FaultKind | None
    problems: tuple[str, ...]
    accepted: bool

    def json(self) -> Any:
        return json.loads(self.body)


class RecordingReceiver(ABC):
    """A local service that records its requests and answers injected faults first."""

    def __init__(self, *, hang_seconds: float = 2.0) -> None:
        self.hang_seconds = hang_seconds
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._faults: deque[Fault | None] = deque()
        self.app = Starlette(
            routes=[Route(path, self._handle, methods=["POST"]) for path in self.paths()]
            + self.other_routes()
        )

    @abstractmethod
    def paths(self) -> list[str]:
        """The Starlette route paths the service answers POSTs on."""

    def other_routes(self) -> list[Route]:
        """Routes of the service that are not recorded (a page to look at, say)."""
        return []

    @abstractmethod
    def answer(self, request: Request, body: bytes) -> Answer:
        """The service's answer to a request that no fault was injected for."""

    @abstractmethod
    def fault_answer(self, request: Request, fault: Fault) -> Response:
        """The service's 429 (with Retry-After) or 500."""

    def inject(self, fault: Fault, times: int = 1, *, after: int = 0) -> None:
        """Answer `times` requests with `fault`, once `after` more have been answered normally
        (counted from the faults already queued)."""
        with self._lock:
            self._faults.extend([None] * after + [fault] * times)

    def schedule(self, faults: Sequence[Fault | None]) -> None:
        """Answer the next requests in turn: with the fault, or normally (None)."""
        with self._lock:
            self._faults.extend(faults)

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request so far, faulted ones included, in arrival order."""
        with self._lock:
            return list(self._requests)

    def accepted(self) -> list[Any]:
        """The JSON bodies of the requests whose content the service took."""
        return [request.json() for request in self.requests if request.accepted]

    async def _handle(self, request: Request) -> Response:
        body = await request.body()
        with self._lock:
            fault = self._faults.popleft() if self._faults else None
        if fault is None or fault.kind is FaultKind.SLOW:
            answer = self.answer(request, body)
            self._record(
                request, body, answer.response.status_code, fault.kind if fault else None, answer
            )
            if fault is not None:
                await asyncio.sleep(self.hang_seconds)
            return answer.response
        if fault.kind is FaultKind.HANG:
            self._record(request, body, 504, fault.kind)
            await asyncio.sleep(self.hang_seconds)
            return Response(status_code=504)
        response = self.fault_answer(request, fault)
        self._record(request, body, response.status_code, fault.kind)
        return response

    def _record(
        self,
        request: Request,
        body: bytes,
        status: int,
        fault: FaultKind | None,
        answer: Answer | None = None,
    ) -> None:
        recorded = RecordedRequest(
            method=request.method,
            path=request.url.path,
            headers={name.lower(): value for name, value in request.headers.items()},
            body=body,
            status=status,
            fault=fault,
            problems=answer.problems if answer else (),
            accepted=answer.accepted if answer else False,
        )
        with self._lock:
            self._requests.append(recorded)
