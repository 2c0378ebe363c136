"""p4f.function_url: requests read from function URL events, whatever shape they come in."""

from __future__ import annotations

from typing import Any

import pytest

from local.lambda_events import function_url_event
from p4f.function_url import BadRequestEncodingError, HttpRequest


def test_a_function_url_event_is_read_with_the_exact_body() -> None:
    event = function_url_event("post", b'{"a": 1}', {"X-Thing": "y"}, path="/p", query="q=1")
    request = HttpRequest.from_event(event)
    assert (request.method, request.path, request.body) == ("POST", "/p", b'{"a": 1}')
    assert request.header("x-thing") == "y"
    assert request.query == {"q": "1"}


def test_a_base64_body_is_decoded() -> None:
    event = function_url_event("POST", b"\xff\x00 raw", {}, base64_encoded=True)
    assert HttpRequest.from_event(event).body == b"\xff\x00 raw"


def test_an_event_without_the_optional_parts_is_an_empty_request() -> None:
    request = HttpRequest.from_event({})
    assert (request.method, request.path, request.body, dict(request.headers)) == ("", "/", b"", {})


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ("not an event", "not a function URL request"),
        ({"body": 12}, "not text or base64"),
        ({"body": ["a"]}, "not text or base64"),
        ({"body": "not base64!", "isBase64Encoded": True}, "not valid base64"),
        ({"body": "é", "isBase64Encoded": True}, "not valid base64"),
        ({"body": "half an emoji \ud83d"}, "not valid text"),
        ({"headers": ["a"]}, "headers are not text"),
        ({"headers": {"a": 1}}, "headers are not text"),
        ({"queryStringParameters": "a=b"}, "query parameters are not text"),
        ({"requestContext": "x", "headers": {"b": None}}, "headers are not text"),
    ],
)
def test_shapes_a_function_url_never_sends_are_a_bad_request(event: Any, expected: str) -> None:
    with pytest.raises(BadRequestEncodingError, match=expected):
        HttpRequest.from_event(event)


def test_an_odd_request_context_reads_as_no_method() -> None:
    assert HttpRequest.from_event({"requestContext": {"http": "GET"}}).method == ""
