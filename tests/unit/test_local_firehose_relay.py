"""local.firehose_relay when SQS does not answer: one line per outage, not a traceback per
retry."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from local.cloudformation import FirehoseTarget
from local.firehose_relay import FirehoseRelay
from local.input_transformer import TargetInput


class FlakySqs:
    """An SQS client whose queue is empty, or that cannot be reached while `down` is set."""

    def __init__(self) -> None:
        self.down = threading.Event()
        self.receives = 0

    def receive_message(self, **_: Any) -> dict[str, Any]:
        self.receives += 1
        if self.down.is_set():
            raise EndpointConnectionError(endpoint_url="http://127.0.0.1:1/")
        return {}


def wait_for_receives(sqs: FlakySqs, more: int) -> None:
    wanted = sqs.receives + more
    deadline = time.monotonic() + 10
    while sqs.receives < wanted:
        assert time.monotonic() < deadline, "the relay stopped polling"
        time.sleep(0.01)


def test_an_outage_is_logged_once_when_it_begins_and_once_when_it_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sqs = FlakySqs()
    target = FirehoseTarget("Rule", "http://127.0.0.1:1/queue", "stream", TargetInput())
    caplog.set_level(logging.INFO, logger="local.firehose_relay")
    with FirehoseRelay(sqs, firehose=None, targets=[target], idle_pause=0.01):
        sqs.down.set()
        wait_for_receives(sqs, 5)  # five failed retries
        sqs.down.clear()
        wait_for_receives(sqs, 2)
    lines = [(r.getMessage(), r.exc_info) for r in caplog.records]
    assert len(lines) == 2, lines
    assert "could not reach SQS or Firehose" in lines[0][0]
    assert "Could not connect to the endpoint URL" in lines[0][0]
    assert "answers again" in lines[1][0]
    assert all(exc_info is None for _, exc_info in lines)  # no tracebacks
