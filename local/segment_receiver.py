"""A local Segment HTTP Tracking API: POST /v1/batch, checked against Segment's limits,
answered as Segment does, recording what it got.

    segment = LocalSegment()
    with ThreadedAsgiServer(segment.app, name="segment") as server:
        endpoint = server.url                   # SEGMENT_ENDPOINT, with segment.write_key

200 {"success": true} when the batch is acceptable; 400 {"success": false, "error"} when it
is not: over 500 KB, not JSON, no batch, a call over 32 KB (sizes counted as Segment's
analytics-python counts them: `library_size`), a messageId of 100 characters
or more, a call type other than track or identify, a track without an event name, a call
with neither userId nor anonymousId, a timestamp that is not ISO 8601, or basic auth that
is not the write key (the real Segment answers 200 and drops the data; a loud 400 is what
a test needs). 429 with Retry-After when a fault is injected. A request's KB is read as
1,000 bytes, the stricter reading; a call's 32 KB is the library's 32 << 10.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from datetime import datetime
from typing import TYPE_CHECKING, Any, override

from starlette.responses import JSONResponse, PlainTextResponse, Response

from local.recording import Answer, Fault, FaultKind, RecordingReceiver

if TYPE_CHECKING:
    from starlette.requests import Request

MAX_REQUEST_BYTES = 500_000
MAX_CALL_BYTES = 32 << 10
"""analytics-python's MAX_MSG_SIZE."""
MAX_MESSAGE_ID_CHARS = 99
"""messageId must be under 100 characters."""
CALL_TYPES = frozenset({"track", "identify"})


def library_size(value: object) -> int:
    """The bytes of `value` as analytics-python counts them: json.dumps' defaults (every
    non-ASCII character escaped, ", " and ": " between items), more than the wire's bytes."""
    return len(json.dumps(value).encode())


def batch_problems(body: bytes, authorization: str | None, write_key: str) -> list[str]:
    """What Segment would refuse in a /v1/batch request; [] if nothing."""
    if len(body) > MAX_REQUEST_BYTES:
        return [f"the request has {len(body)} bytes, more than {MAX_REQUEST_BYTES}"]
    if not _is_write_key(authorization, write_key):
        return ["basic auth does not carry the write key (user: the key, password: empty)"]
    try:
        payload = json.loads(body)
    except ValueError:
        return ["the body is not JSON"]
    calls = payload.get("batch") if isinstance(payload, dict) else None
    if not isinstance(calls, list) or not calls:
        return ["the body has no batch of calls"]
    if (size := library_size(payload)) > MAX_REQUEST_BYTES:
        return [f"the batch counts {size} bytes, more than {MAX_REQUEST_BYTES}"]
    return [
        f"batch[{index}]: {problem}"
        for index, call in enumerate(calls)
        for problem in _call_problems(call)
    ]


def _is_write_key(authorization: str | None, write_key: str) -> bool:
    scheme, _, encoded = (authorization or "").partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        decoded = base64.b64decode(encoded, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return False
    return secrets.compare_digest(decoded, f"{write_key}:")


def _call_problems(call: object) -> list[str]:
    if not isinstance(call, dict):
        return ["a call is not a JSON object"]
    problems = []
    if (size := library_size(call)) > MAX_CALL_BYTES:
        problems.append(f"the call has {size} bytes, more than {MAX_CALL_BYTES}")
    if call.get("type") not in CALL_TYPES:
        problems.append(f"type {call.get('type')!r} is not one of {sorted(CALL_TYPES)}")
    if call.get("type") == "track" and not (isinstance(call.get("event"), str) and call["event"]):
        problems.append("a track call needs an event name")
    if not (call.get("userId") or call.get("anonymousId")):
        problems.append("a call needs a userId or an anonymousId")
    message_id = call.get("messageId")
    if message_id is not None and (
        not isinstance(message_id, str) or len(message_id) > MAX_MESSAGE_ID_CHARS
    ):
        problems.append(f"messageId must be a string under {MAX_MESSAGE_ID_CHARS + 1} characters")
    timestamp = call.get("timestamp")
    if timestamp is not None and not _is_iso_8601(timestamp):
        problems.append(f"timestamp {timestamp!r} is not ISO 8601")
    return problems


def _is_iso_8601(value: object) -> bool:
    try:
        datetime.fromisoformat(str(value))
    except ValueError:
        return False
    return True


class LocalSegment(RecordingReceiver):
    """Segment's /v1/batch, on 127.0.0.1."""

    def __init__(self, *, write_key: str | None = None, hang_seconds: float = 2.0) -> None:
        self.write_key = write_key or f"local-write-key-{secrets.token_hex(12)}"
        super().__init__(hang_seconds=hang_seconds)

    @override
    def paths(self) -> list[str]:
        return ["/v1/batch"]

    def calls(self) -> list[dict[str, Any]]:
        """Every call Segment took, in order, across requests."""
        return [call for batch in self.accepted() for call in batch["batch"]]

    @override
    def answer(self, request: Request, body: bytes) -> Answer:
        problems = batch_problems(body, request.headers.get("authorization"), self.write_key)
        if problems:
            return Answer(
                JSONResponse({"success": False, "error": "; ".join(problems[:5])}, 400),
                tuple(problems),
            )
        return Answer(JSONResponse({"success": True}), accepted=True)

    @override
    def fault_answer(self, request: Request, fault: Fault) -> Response:
        if fault.kind is FaultKind.RATE_LIMITED:
            headers = {"Retry-After": str(fault.retry_after)}
            return PlainTextResponse("Too Many Requests", 429, headers)
        return PlainTextResponse("Internal Server Error", 500)
