"""An ASGI app served by uvicorn in a background thread: the sandbox, the local Slack and
Segment receivers and the local function URLs all run this way in tests and the local stack.

    with ThreadedAsgiServer(app) as server:
        httpx.get(f"{server.url}/...")

The listening socket is bound before the thread starts (port 0: the system picks a free
one), so the URL is known up front and no other process can take the port in between.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import TYPE_CHECKING

import uvicorn

from local.lifecycle import Started

if TYPE_CHECKING:
    from starlette.types import ASGIApp

STARTUP_TIMEOUT_SECONDS = 10.0


class ServerError(RuntimeError):
    """A local server did not start, or did not stop."""


class ThreadedAsgiServer(Started):
    """`app` listening on `host`:`port` (0: a free port) while started."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        name: str = "server",
        host: str = "127.0.0.1",
        port: int = 0,
        graceful_shutdown_seconds: int = 2,
    ) -> None:
        self.name = name
        # IPPROTO_TCP, not the default 0: asyncio sets TCP_NODELAY only on sockets that say
        # so, and without it every answer waits ~40 ms for the client's delayed ACK.
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._socket = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._socket.bind((host, port))
            # Listening now: a client that connects before uvicorn serves waits in the backlog.
            self._socket.listen()
        except OSError:
            self._socket.close()
            raise
        self.port: int = self._socket.getsockname()[1]
        self.url = f"http://{f'[{host}]' if ':' in host else host}:{self.port}"
        """The base URL, e.g. http://127.0.0.1:54321."""
        self._graceful_shutdown_seconds = graceful_shutdown_seconds
        self._server = uvicorn.Server(
            uvicorn.Config(
                app,
                lifespan="on",
                log_config=None,
                log_level="warning",
                access_log=False,
                timeout_graceful_shutdown=graceful_shutdown_seconds,
            )
        )
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._socket]},
            name=f"{name}-{self.port}",
            daemon=True,
        )

    def start(self) -> None:
        """Serve in the background; return once the server answers requests."""
        self._thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise ServerError(f"the {self.name} at {self.url} did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        """Stop serving and join the thread (forcing it after the graceful period)."""
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(self._graceful_shutdown_seconds + 3)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(3)
        self._socket.close()
        if self._thread.is_alive():
            raise ServerError(f"the {self.name} at {self.url} did not stop")
