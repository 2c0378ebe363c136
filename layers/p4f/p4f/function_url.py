"""Lambda function URL requests and answers (payload format 2.0, as HTTP APIs send too).

The bridge's HTTP endpoints (the webhook receiver, the campaign trigger) read requests and
write answers through this module, so that every answer carries the API's own envelope
(`p4f.envelope`) and every request body is the exact bytes that were sent.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from p4f import envelope

_JSON = "application/json"


class BadRequestEncodingError(ValueError):
    """The event is not a request that can be read: a body that is not valid base64 or
    text, or a shape function URLs never send (answered 400, never raised further)."""


@dataclass(frozen=True)
class HttpRequest:
    """One HTTP request, as the handler needs it."""

    method: str
    path: str
    headers: Mapping[str, str]
    """Header names in lower case: function URLs and HTTP APIs lower-case them anyway."""
    body: bytes
    """The raw bytes the caller sent (base64-decoded when the platform encoded them)."""
    query: Mapping[str, str]

    @classmethod
    def from_event(cls, event: object) -> HttpRequest:
        """The request a function URL event carries, or BadRequestEncodingError."""
        if not isinstance(event, Mapping):
            raise BadRequestEncodingError("the event is not a function URL request")
        context = event.get("requestContext")
        http = context.get("http") if isinstance(context, Mapping) else None
        http = http if isinstance(http, Mapping) else {}
        raw = event.get("body") or ""
        if not isinstance(raw, str):
            raise BadRequestEncodingError("the request body is not text or base64")
        if event.get("isBase64Encoded"):
            try:
                body = base64.b64decode(raw, validate=True)
            except ValueError as exc:  # binascii.Error, or not even ASCII
                raise BadRequestEncodingError("the request body is not valid base64") from exc
        else:
            try:
                body = raw.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise BadRequestEncodingError("the request body is not valid text") from exc
        return cls(
            method=str(http.get("method", "")).upper(),
            path=str(http.get("path") or event.get("rawPath") or "/"),
            headers={k.lower(): v for k, v in _strings(event.get("headers"), "headers").items()},
            body=body,
            query=_strings(event.get("queryStringParameters"), "query parameters"),
        )

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


def _strings(value: object, what: str) -> dict[str, str]:
    """A map of strings from the event (absent: empty), or BadRequestEncodingError."""
    if value is None:
        return {}
    if isinstance(value, Mapping) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        return dict(value)
    raise BadRequestEncodingError(f"the request's {what} are not text")


def json_answer(
    status: int, body: Mapping[str, object], headers: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """A function URL answer with a JSON body."""
    return {
        "statusCode": status,
        "headers": {"Content-Type": _JSON, **(headers or {})},
        "body": json.dumps(body, separators=(",", ":")),
    }


def success_answer(
    status: int, data: Any, headers: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """A function URL answer carrying the API's success envelope around `data`."""
    return json_answer(status, envelope.success(data), headers)


def error_answer(
    status: int, message: str, headers: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """A function URL answer carrying the API's error envelope."""
    return json_answer(status, envelope.failure(message), headers)
