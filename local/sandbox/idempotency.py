"""API v1.1's idempotency keys: a POST repeated with its `Idempotency-Key` gets its first answer.

    same key, same request (method, path, body)   the first answer again, not done again
                                                  (with `Idempotent-Replayed: true`)
    same key, another request                     422: a key names one request
    same key while the first is still running     409: retry once it has answered

An answer is kept for 24 hours, whatever it was (201, 400, 404, 409...) except a 5xx: a
failure may be retried with the same key. A request refused before it ran (401, 429, an
injected fault) is not remembered either. v1.0 ignores the header (the reference: "POST
endpoints aren't idempotent today").
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from starlette.responses import Response

from local.sandbox.errors import ConflictError, InvalidRequestError, UnprocessableError

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
KEEP_SECONDS = 24 * 3600.0


def fingerprint(method: str, path: str, body: bytes) -> str:
    """What a key's request is, for telling a repeat from another request."""
    return hashlib.sha256(f"{method} {path}\n".encode() + body).hexdigest()


@dataclass
class _Remembered:
    fingerprint: str
    at: float
    status: int | None = None
    """None while the first request is running."""
    body: bytes = b""


class IdempotencyKeys:
    """One tenant's keys and the answers they were given."""

    def __init__(self) -> None:
        self._keys: dict[str, _Remembered] = {}

    def begin(self, key: str, request: str) -> Response | None:
        """Start `request` (a fingerprint) under `key`: None to run it, else its answer."""
        if not 0 < len(key) <= MAX_KEY_LENGTH:
            raise InvalidRequestError(f"{HEADER}: must be 1 to {MAX_KEY_LENGTH} characters")
        now = time.monotonic()
        self._forget_before(now - KEEP_SECONDS)
        known = self._keys.get(key)
        if known is None:
            self._keys[key] = _Remembered(request, now)
            return None
        if known.fingerprint != request:
            raise UnprocessableError(
                f"{HEADER} {key!r} was used for another request (method, path or body "
                "differ); use a new key for a new request"
            )
        if known.status is None:
            raise ConflictError(
                f"the request with {HEADER} {key!r} is still being processed; retry shortly"
            )
        return Response(
            known.body,
            status_code=known.status,
            media_type="application/json",
            headers={REPLAYED_HEADER: "true"},
        )

    def finish(self, key: str, answer: Response) -> None:
        """Remember the answer `key`'s request got (forget the key after a 5xx)."""
        if answer.status_code >= 500:
            self.abandon(key)
            return
        remembered = self._keys[key]
        remembered.status, remembered.body = answer.status_code, bytes(answer.body)

    def abandon(self, key: str) -> None:
        """The request ended without an answer to keep: the key may be used again."""
        self._keys.pop(key, None)

    def _forget_before(self, oldest: float) -> None:
        expired = [key for key, known in self._keys.items() if known.at < oldest]
        for key in expired:
            del self._keys[key]
