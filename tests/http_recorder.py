"""A recording HTTP server on 127.0.0.1 for tests: it keeps every request and answers from
a script (then 200), e.g. a webhook receiver or CloudFormation's response URL."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


@dataclass(frozen=True)
class Reply:
    status: int = 200
    delay: float = 0.0


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    """Header names in lower case."""
    body: bytes

    @property
    def event(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """Records every POST and PUT and answers from a script (then 200)."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self._script: deque[Reply] = deque()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self._record()

            def do_PUT(self) -> None:
                self._record()

            def _record(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {name.lower(): value for name, value in self.headers.items()}
                with receiver._lock:
                    receiver.received.append(Received(self.command, self.path, headers, body))
                    reply = receiver._script.popleft() if receiver._script else Reply()
                time.sleep(reply.delay)
                self.send_response(reply.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def script(self, *replies: Reply) -> None:
        with self._lock:
            self._script.extend(replies)

    def wait_for(self, count: int, event_type: str | None = None) -> list[Received]:
        """The first `count` requests (of one event type), once they have arrived."""

        def matching() -> list[Received]:
            with self._lock:
                return [
                    r
                    for r in self.received
                    if event_type is None or r.headers["p4f-event-type"] == event_type
                ]

        wait_until(lambda: len(matching()) >= count)
        return matching()[:count]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
