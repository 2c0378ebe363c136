"""The sandbox served by uvicorn in a background thread, for tests and the local stack.

with running_sandbox(["p4f_test_key_1", "p4f_test_key_2"]) as sandbox:
    httpx.get(f"{sandbox.url}/api/v1/me", headers={"X-API-Key": "p4f_test_key_1"})
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING

from local.asgi_server import ThreadedAsgiServer
from local.sandbox.app import create_app
from local.sandbox.settings import THREE_DAYS, SandboxSettings

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from local.sandbox.pages import ApiVersion


class SandboxServer(ThreadedAsgiServer):
    """A sandbox listening on `host`:`port` (0: a free port) while started.

    Stopping it cancels pending webhook deliveries; answers held back by a `delay` fault
    are waited for two seconds, then dropped.
    """

    def __init__(
        self, settings: SandboxSettings, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        super().__init__(create_app(settings), name="Pay4Feedback sandbox", host=host, port=port)
        self.settings = settings


@contextmanager
def running_sandbox(
    api_keys: Sequence[str],
    *,
    api_version: ApiVersion = "1.0",
    page_size: int = 100,
    rate_limit: int = 60,
    rate_window: float = 60.0,
    webhook_retry_base: float = 1.0,
    webhook_retry_for: float = THREE_DAYS,
    webhook_timeout: float = 10.0,
    host: str = "127.0.0.1",
    port: int = 0,
) -> Iterator[SandboxServer]:
    """A started sandbox with one tenant per key, stopped when the block ends."""
    settings = SandboxSettings(
        api_keys=tuple(api_keys),
        api_version=api_version,
        page_size=page_size,
        rate_limit=rate_limit,
        rate_window=rate_window,
        webhook_retry_base=webhook_retry_base,
        webhook_retry_for=webhook_retry_for,
        webhook_timeout=webhook_timeout,
    )
    with SandboxServer(settings, host=host, port=port) as server:
        yield server
