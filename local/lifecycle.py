"""What the local stack's servers, pollers and relays have in common: `start()` and
`stop()`, a `with` block that starts one and stops it when the block ends, and `Outage`,
how their retry loops report what they cannot reach."""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Self

if TYPE_CHECKING:
    import logging
    from types import TracebackType


class Started(ABC):
    @abstractmethod
    def start(self) -> None: ...

    @abstractmethod
    def stop(self) -> None: ...

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


class Outage:
    """What a retry loop says about a service it cannot reach: one line when the calls start
    failing and one when they work again, not a traceback per retry (moto_server that stopped
    would fill the terminal)."""

    def __init__(self, logger: logging.Logger, what: str) -> None:
        self._logger = logger
        self._what = what
        self._lock = threading.Lock()  # a poller's threads share one
        self._since: float | None = None

    def failed(self, error: Exception) -> None:
        with self._lock:
            if self._since is None:
                self._since = time.monotonic()
                self._logger.warning("%s: %s; retrying until it answers", self._what, error)

    def ended(self) -> None:
        with self._lock:
            if self._since is not None:
                lasted = time.monotonic() - self._since
                self._since = None
                self._logger.warning("%s: answers again after %.1fs", self._what, lasted)
