"""Lambda function URL requests and answers (payload format 2.0, as HTTP APIs send too).

The bridge's HTTP endpoints (the webhook receiver, the campaign trigger) read requests and
write answers through this module, so that every answer carries the API's own envelope
(`p4f.envelope`) and every request body is the exact bytes that were sent.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from p4f import envelope

_JSON = "application/json"


class BadRequestEncodingError(ValueError):
    """The platform said the body was base64, and it is not."""


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
    def from_event(cls, event: Mapping[str, Any]) -> HttpRequest:
        http = event.get("requestContext", {}).get("http", {})
        raw = event.get("body") or ""
        if event.get("isBase64Encoded"):
            try:
                body = base64.b64decode(raw, validate=True)
            except binascii.Error as exc:
                raise BadRequestEncodingError("the request body is not valid base64") from exc
        else:
            body = raw.encode("utf-8")
        return cls(
            method=str(http.get("method", "")).upper(),
            path=str(http.get("path") or event.get("rawPath") or "/"),
            headers={k.lower(): v for k, v in (event.get("headers") or {}).items()},
            body=body,
            query=dict(event.get("queryStringParameters") or {}),
        )

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


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
