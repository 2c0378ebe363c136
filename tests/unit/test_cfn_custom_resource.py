"""The custom resource protocol answers once, also when the work outlives the function."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx
import pytest

from local.lambda_events import custom_resource_request
from p4f.custom_resource import (
    CustomResourceRequest,
    Outcome,
    Responder,
    Status,
    handle,
)

REQUEST = CustomResourceRequest.from_event(
    custom_resource_request(
        "Create",
        {},
        response_url="https://cloudformation-custom-resource-response.example/answer",
        request_id="request-1",
        logical_resource_id="Subscription",
    )
)


class CloudFormation:
    def __init__(self) -> None:
        self.answers: list[dict[str, Any]] = []
        self.headers: list[httpx.Headers] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.answers.append(json.loads(request.content))
        self.headers.append(request.headers)
        return httpx.Response(200)


@pytest.fixture
def cloudformation() -> CloudFormation:
    return CloudFormation()


def respond(cloudformation: CloudFormation) -> Responder:
    return Responder(REQUEST, httpx.Client(transport=httpx.MockTransport(cloudformation)))


def test_the_outcome_is_put_once_without_a_content_type(cloudformation: CloudFormation) -> None:
    outcome = handle(
        REQUEST,
        lambda _: Outcome(Status.SUCCESS, "wh_1", "done", {"WebhookId": "wh_1"}),
        respond(cloudformation),
        seconds_left=30,
        failed_physical_id="not-created",
    )
    assert outcome.physical_resource_id == "wh_1"
    assert cloudformation.answers == [
        {
            "Status": "SUCCESS",
            "Reason": "done",
            "PhysicalResourceId": "wh_1",
            "StackId": REQUEST.stack_id,
            "RequestId": "request-1",
            "LogicalResourceId": "Subscription",
            "Data": {"WebhookId": "wh_1"},
        }
    ]
    assert cloudformation.headers[0]["content-type"] == ""


def test_an_exception_is_a_failed_answer_naming_it(cloudformation: CloudFormation) -> None:
    def boom(_: CustomResourceRequest) -> Outcome:
        raise RuntimeError("Pay4Feedback is down")

    handle(REQUEST, boom, respond(cloudformation), seconds_left=30, failed_physical_id="nc-1")
    [answer] = cloudformation.answers
    assert answer["Status"] == "FAILED"
    assert answer["Reason"] == "RuntimeError: Pay4Feedback is down"
    assert answer["PhysicalResourceId"] == "nc-1"


def test_work_that_outlives_the_function_is_answered_by_the_watchdog(
    cloudformation: CloudFormation,
) -> None:
    finished = threading.Event()

    def slow(_: CustomResourceRequest) -> Outcome:
        time.sleep(4)
        finished.set()
        return Outcome(Status.SUCCESS, "wh_late")

    started = time.monotonic()
    outcome = handle(
        REQUEST, slow, respond(cloudformation), seconds_left=3.5, failed_physical_id="nc-2"
    )
    assert finished.is_set()
    [answer] = cloudformation.answers  # the late success was not sent a second time
    assert answer["Status"] == "FAILED"
    assert "timed out" in answer["Reason"]
    assert outcome.status is Status.FAILED  # what CloudFormation was told
    assert time.monotonic() - started < 5


def test_an_answer_cloudformation_never_takes_fails_the_invocation() -> None:
    refused: list[httpx.Request] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        refused.append(request)
        return httpx.Response(403)

    responder = Responder(
        REQUEST, httpx.Client(transport=httpx.MockTransport(refuse)), sleep=lambda _: None
    )
    with pytest.raises(httpx.HTTPStatusError):
        handle(
            REQUEST,
            lambda _: Outcome(Status.SUCCESS, "wh_1"),
            responder,
            seconds_left=30,
            failed_physical_id="nc",
        )
    assert len(refused) == 3  # Lambda then runs the invocation again
