"""The yardstick: the least a webhook receiver can be. Not deployed; measured against.

Verifies the HMAC signature with the standard library, publishes to EventBridge with a
client built once per container, and nothing else: no validation, no dedupe, no Secrets
Manager, no logging or metrics. `bench` measures the real receiver as a ratio of this one,
and tests/unit/test_reference_receiver.py checks it against `p4f.signing.sign()`.
"""

import hashlib
import hmac
import json
import os
import time
from typing import Any

import boto3

SECRET = os.environ["WEBHOOK_SECRET"].encode()
BUS_NAME = os.environ["EVENT_BUS_NAME"]
events = boto3.client("events")


def lambda_handler(event: dict[str, Any], _context: object) -> dict[str, Any]:
    body = event["body"]
    fields = dict(item.split("=", 1) for item in event["headers"]["p4f-signature"].split(","))
    expected = hmac.new(SECRET, f"{fields['t']}.{body}".encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, fields["v1"]) or abs(time.time() - int(fields["t"])) > 300:
        return {"statusCode": 401, "body": "invalid signature"}
    detail = json.loads(body)
    events.put_events(
        Entries=[
            {
                "EventBusName": BUS_NAME,
                "Source": "pay4feedback",
                "DetailType": detail["type"],
                "Detail": body,
            }
        ]
    )
    return {"statusCode": 200, "body": "ok"}
