"""JSON as the services are sent it: the one encoder of request bodies (the API's, Slack's,
Segment's), light enough for every function's cold start."""

from __future__ import annotations

import json


def encode_json(value: object) -> bytes:
    """`value` as compact UTF-8 JSON, as the services are sent it. A lone surrogate in a
    string (half an emoji, which a webhook body may hold: README, "What the receiver
    refuses") cannot be UTF-8: it becomes U+FFFD, the replacement character."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    try:
        return text.encode()
    except UnicodeEncodeError:
        # Through UTF-16, which pairs what surrogates can be paired and replaces the rest.
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace").encode()
