"""Lambda events as AWS builds them, for running handlers outside AWS (tests, local stack).

One owner for each shape: a function URL request (payload format 2.0), an SQS batch, an
EventBridge event as its rule targets receive it, and a CloudFormation custom resource
request.
"""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

if TYPE_CHECKING:
    from mypy_boto3_sqs.type_defs import MessageTypeDef

REGION = "us-east-1"
ACCOUNT = "123456789012"


def function_url_event(
    method: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    path: str = "/",
    query: str = "",
    base64_encoded: bool = False,
    source_ip: str = "127.0.0.1",
) -> dict[str, Any]:
    """The event a function URL hands its function for one HTTP request."""
    now = time.time()
    lower = {name.lower(): value for name, value in headers.items()}
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": lower,
        "queryStringParameters": dict(parse_qsl(query, keep_blank_values=True)) or None,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "p4fbridgelocal",
            "domainName": "p4fbridgelocal.lambda-url.us-east-1.on.aws",
            "domainPrefix": "p4fbridgelocal",
            "http": {
                "method": method.upper(),
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": lower.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "time": datetime.fromtimestamp(now, UTC).strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now * 1000),
        },
        "body": base64.b64encode(body).decode() if base64_encoded else body.decode("utf-8"),
        "isBase64Encoded": base64_encoded,
    }


def is_utf8(body: bytes) -> bool:
    """Whether `body` is text a function URL can hand over as it is (else it is base64)."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def sqs_record(
    body: str,
    *,
    queue_arn: str,
    message_id: str | None = None,
    receive_count: int = 1,
    attributes: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """One record of an SQS event, as the event source mapping delivers it."""
    return {
        "messageId": message_id or str(uuid.uuid4()),
        "receiptHandle": str(uuid.uuid4()),
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": str(receive_count),
            "SentTimestamp": str(int(time.time() * 1000)),
            "SenderId": ACCOUNT,
            "ApproximateFirstReceiveTimestamp": str(int(time.time() * 1000)),
        },
        "messageAttributes": {
            name: {"stringValue": value, "dataType": "String"}
            for name, value in (attributes or {}).items()
        },
        "md5OfBody": hashlib.md5(body.encode(), usedforsecurity=False).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    }


def sqs_record_from_message(message: MessageTypeDef, *, queue_arn: str) -> dict[str, Any]:
    """The record the event source mapping makes of a message it received from SQS
    (received with AttributeNames=["All"] and MessageAttributeNames=["All"])."""
    system = message.get("Attributes", {})
    record = sqs_record(
        message["Body"],
        queue_arn=queue_arn,
        message_id=message["MessageId"],
        receive_count=int(system.get("ApproximateReceiveCount", "1")),
        attributes={
            name: value["StringValue"]
            for name, value in message.get("MessageAttributes", {}).items()
            if "StringValue" in value
        },
    )
    record["receiptHandle"] = message["ReceiptHandle"]
    record["attributes"].update(
        {name: system[name] for name in _RECORD_SYSTEM_ATTRIBUTES if name in system}
    )
    return record


_RECORD_SYSTEM_ATTRIBUTES = ("SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp")


def sqs_event(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    return {"Records": list(records)}


def eventbridge_event(
    detail: Mapping[str, Any],
    *,
    detail_type: str,
    source: str,
    event_time: str,
    event_id: str | None = None,
) -> dict[str, Any]:
    """An EventBridge event as a rule's target receives it."""
    return {
        "version": "0",
        "id": event_id or str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": source,
        "account": ACCOUNT,
        "time": event_time,
        "region": REGION,
        "resources": [],
        "detail": dict(detail),
    }


def scheduled_event(rule_arn: str, event_time: str) -> dict[str, Any]:
    """What a schedule's rule sends its target function."""
    return eventbridge_event(
        {}, detail_type="Scheduled Event", source="aws.events", event_time=event_time
    ) | {"resources": [rule_arn]}


def custom_resource_request(
    request_type: str,
    properties: Mapping[str, Any],
    *,
    response_url: str,
    request_id: str,
    logical_resource_id: str = "WebhookSubscription",
    resource_type: str = "Custom::Pay4FeedbackWebhook",
    stack_name: str = "p4f-bridge",
    physical_resource_id: str | None = None,
    old_properties: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """What CloudFormation sends a custom resource's function (Create, Update or Delete)."""
    event: dict[str, Any] = {
        "RequestType": request_type,
        "ServiceToken": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{stack_name}-custom-resource",
        "ResponseURL": response_url,
        "StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{stack_name}/1",
        "RequestId": request_id,
        "LogicalResourceId": logical_resource_id,
        "ResourceType": resource_type,
        "ResourceProperties": dict(properties),
    }
    if physical_resource_id is not None:
        event["PhysicalResourceId"] = physical_resource_id
    if old_properties is not None:
        event["OldResourceProperties"] = dict(old_properties)
    return event


class LocalLambdaContext:
    """The context object Lambda passes a handler, for one invocation run locally."""

    def __init__(self, function_name: str, timeout_seconds: float, memory_mb: int = 256) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function_name}"
        self.memory_limit_in_mb = memory_mb
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))
