"""local.sqs_poller against SQS in moto: it behaves like Lambda's SQS event source mapping."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError
from moto import mock_aws

import local.sqs_poller
from local.lambda_events import LocalLambdaContext
from local.sqs_poller import PollerError, SqsPoller, _TurnLock

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

MAX_RECEIVES = 2
Handler = Callable[[dict[str, Any], LocalLambdaContext], Any]


@dataclass
class Queues:
    sqs: SQSClient
    url: str
    arn: str
    dlq_url: str

    def send(self, *bodies: str) -> None:
        for body in bodies:
            self.sqs.send_message(QueueUrl=self.url, MessageBody=body)

    def dead_letters(self) -> list[str]:
        messages = self.sqs.receive_message(QueueUrl=self.dlq_url, MaxNumberOfMessages=10)
        return sorted(m["Body"] for m in messages.get("Messages", []))


@pytest.fixture
def queues() -> Iterator[Queues]:
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        dlq_url = sqs.create_queue(QueueName="work-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVES}
        url = sqs.create_queue(
            QueueName="work",
            Attributes={"VisibilityTimeout": "1", "RedrivePolicy": json.dumps(redrive)},
        )["QueueUrl"]
        yield Queues(sqs, url, "arn:aws:sqs:us-east-1:123456789012:work", dlq_url)


def short_polling(queues: Queues, handler: Handler, **options: Any) -> SqsPoller:
    """A poller of the work queue that stops in 50 ms instead of after a long poll."""
    return SqsPoller(queues.sqs, queues.url, handler, wait_seconds=0, **options)


@dataclass
class Recorder:
    """A handler that records what it was given and fails the bodies `fail` says to."""

    fail: Callable[[dict[str, Any]], bool] = lambda _record: False
    delay: float = 0.0
    records: list[dict[str, Any]] = field(default_factory=list)
    remaining_ms: list[int] = field(default_factory=list)
    function_names: set[str] = field(default_factory=set)
    running: int = 0
    most_running: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, event: dict[str, Any], context: LocalLambdaContext) -> dict[str, Any]:
        with self.lock:
            self.running += 1
            self.most_running = max(self.most_running, self.running)
            self.records.extend(event["Records"])
            self.remaining_ms.append(context.get_remaining_time_in_millis())
            self.function_names.add(context.function_name)
        time.sleep(self.delay)
        with self.lock:
            self.running -= 1
        failed = [r["messageId"] for r in event["Records"] if self.fail(r)]
        return {"batchItemFailures": [{"itemIdentifier": m} for m in failed]}

    def bodies(self) -> Counter[str]:
        return Counter(record["body"] for record in self.records)


def test_every_message_is_handed_over_once_and_deleted(queues: Queues) -> None:
    handler = Recorder()
    queues.send(*[f"m{n}" for n in range(25)])
    with short_polling(queues, handler, batch_size=10) as poller:
        poller.wait_until_idle(timeout=10)
    assert handler.bodies() == Counter(f"m{n}" for n in range(25))
    assert all(len(i.message_ids) <= 10 for i in poller.invocations)
    assert queues.dead_letters() == []


def test_a_batching_window_gathers_batches_of_up_to_batch_size(queues: Queues) -> None:
    handler = Recorder()
    queues.send(*[f"m{n}" for n in range(35)])
    started = time.monotonic()
    with short_polling(
        queues, handler, batch_size=30, batching_window=0.5, concurrency=1
    ) as poller:
        poller.wait_until_idle(timeout=20)
    sizes = [len(i.message_ids) for i in poller.invocations]
    # Batches of more than one receive's 10, never more than 30; on a quiet machine the
    # first has 30 (three receives in the window) and the window closes on the last five.
    assert sizes[0] > 10
    assert max(sizes) <= 30
    assert sum(sizes) == 35
    assert time.monotonic() - started >= 0.5  # the batch short of 30 waited out its window
    assert handler.bodies() == Counter(f"m{n}" for n in range(35))


def test_a_receive_that_fails_while_gathering_sends_the_batch_as_is_and_logs_the_outage(
    queues: Queues, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    receive = queues.sqs.receive_message
    calls = []

    def second_fails(**params: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:  # the first receive of the window's gathering
            raise EndpointConnectionError(endpoint_url="http://127.0.0.1:1/")
        return receive(**params)

    monkeypatch.setattr(queues.sqs, "receive_message", second_fails)
    queues.send(*[f"m{n}" for n in range(5)])
    caplog.set_level(logging.INFO, logger="local.sqs_poller")
    handler = Recorder()
    with short_polling(queues, handler, batch_size=30, batching_window=5, concurrency=1) as poller:
        poller.wait_until_idle(timeout=20)
    assert [len(i.message_ids) for i in poller.invocations] == [5]  # not held for the window
    lines = [(r.getMessage(), r.exc_info) for r in caplog.records]
    assert len(lines) == 2, lines
    assert "could not receive from" in lines[0][0]
    assert "answers again" in lines[1][0]
    assert all(exc_info is None for _, exc_info in lines)  # no tracebacks


def test_a_batch_gathers_no_more_than_lambdas_6_mb(queues: Queues) -> None:
    handler = Recorder()
    queues.send(*[f"{n:03d}" + "x" * 250_000 for n in range(26)])  # 6.5 MB
    with short_polling(
        queues, handler, batch_size=100, batching_window=0.4, concurrency=1
    ) as poller:
        poller.wait_until_idle(timeout=20)
    sizes = [len(i.message_ids) for i in poller.invocations]
    assert sum(sizes) == 26
    assert all(size * 250_003 <= 6 * 1024 * 1024 for size in sizes)
    assert sizes[0] > 10


def test_batches_over_ten_need_a_batching_window(queues: Queues) -> None:
    with pytest.raises(ValueError, match="1 to 10 without a batching window"):
        SqsPoller(queues.sqs, queues.url, Recorder(), batch_size=11)
    with pytest.raises(ValueError, match="1 to 10000"):
        SqsPoller(queues.sqs, queues.url, Recorder(), batch_size=10_001, batching_window=1)


def test_records_are_what_the_event_source_mapping_sends(queues: Queues) -> None:
    handler = Recorder()
    queues.sqs.send_message(
        QueueUrl=queues.url,
        MessageBody='{"hello": 1}',
        MessageAttributes={"kind": {"DataType": "String", "StringValue": "greeting"}},
    )
    with short_polling(queues, handler, function_name="my-fn", function_timeout=7) as poller:
        poller.wait_until_idle(timeout=10)
    [record] = handler.records
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == queues.arn
    assert record["body"] == '{"hello": 1}'
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert record["messageAttributes"]["kind"]["stringValue"] == "greeting"
    assert handler.function_names == {"my-fn"}
    [remaining] = handler.remaining_ms
    assert 6500 < remaining <= 7000


def test_reported_failures_come_back_after_the_visibility_timeout(queues: Queues) -> None:
    # "flaky" fails on its first receive only.
    handler = Recorder(
        fail=lambda r: r["body"] == "flaky" and r["attributes"]["ApproximateReceiveCount"] == "1"
    )
    queues.send("ok-1", "flaky", "ok-2")
    started = time.monotonic()
    with short_polling(queues, handler) as poller:
        poller.wait_until_idle(timeout=10)
    assert handler.bodies() == Counter({"ok-1": 1, "ok-2": 1, "flaky": 2})
    assert time.monotonic() - started >= 1  # the queue's visibility timeout
    retried = [r for r in handler.records if r["body"] == "flaky"]
    assert [r["attributes"]["ApproximateReceiveCount"] for r in retried] == ["1", "2"]
    assert queues.dead_letters() == []


def test_a_message_that_keeps_failing_lands_in_the_dlq_after_max_receive_count(
    queues: Queues,
) -> None:
    handler = Recorder(fail=lambda r: r["body"] == "poison")
    queues.send("poison", "fine")
    with short_polling(queues, handler) as poller:
        poller.wait_until_idle(timeout=10)
    assert handler.bodies() == Counter({"poison": MAX_RECEIVES, "fine": 1})
    assert queues.dead_letters() == ["poison"]


def test_a_handler_that_raises_leaves_the_whole_batch(queues: Queues) -> None:
    calls = 0

    def explode_once(event: dict[str, Any], context: LocalLambdaContext) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("boom")

    queues.send("a", "b")
    with short_polling(queues, explode_once, concurrency=1) as poller:
        poller.wait_until_idle(timeout=10)
    first, *rest = poller.invocations
    assert first.error == "RuntimeError: boom"
    assert first.failed_ids == frozenset(first.message_ids)
    assert sorted(i for later in rest for i in later.message_ids) == sorted(first.message_ids)
    assert queues.dead_letters() == []


@pytest.mark.parametrize(
    "answer",
    [
        {"batchItemFailures": [{"itemIdentifier": "not-in-the-batch"}]},
        {"batchItemFailures": [{"itemIdentifier": ""}]},
        {"batchItemFailures": [{"id": "wrong key"}]},
        "not an object",
    ],
)
def test_an_invalid_answer_fails_the_whole_batch(queues: Queues, answer: object) -> None:
    queues.send("a", "b")
    with short_polling(queues, lambda _event, _context: answer) as poller:
        deadline = time.monotonic() + 5
        while not poller.invocations and time.monotonic() < deadline:
            time.sleep(0.01)
    [invocation] = poller.invocations
    assert invocation.error
    assert invocation.failed_ids == frozenset(invocation.message_ids)
    in_flight = queues.sqs.get_queue_attributes(
        QueueUrl=queues.url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]["ApproximateNumberOfMessagesNotVisible"]
    assert in_flight == "2"  # not deleted: back after the visibility timeout


@pytest.mark.parametrize("answer", [None, {}, {"batchItemFailures": []}])
def test_an_empty_answer_means_the_whole_batch_succeeded(queues: Queues, answer: object) -> None:
    queues.send("a", "b")
    with short_polling(queues, lambda _event, _context: answer) as poller:
        poller.wait_until_idle(timeout=10)
    assert sum(len(i.message_ids) for i in poller.invocations) == 2
    assert queues.dead_letters() == []


def test_without_batch_item_failures_a_returned_batch_is_deleted_whole(queues: Queues) -> None:
    handler = Recorder(fail=lambda _record: True)
    queues.send("a")
    with short_polling(queues, handler, report_batch_item_failures=False) as poller:
        poller.wait_until_idle(timeout=10)
    assert handler.bodies() == Counter({"a": 1})


def test_a_batch_that_outruns_the_function_timeout_stays(queues: Queues) -> None:
    handler = Recorder(delay=0.3)
    queues.send("slow")
    with short_polling(queues, handler, function_timeout=0.1, concurrency=1) as poller:
        poller.wait_until_idle(timeout=10)
    assert handler.bodies() == Counter({"slow": MAX_RECEIVES})
    assert "timeout" in (poller.invocations[0].error or "")
    assert queues.dead_letters() == ["slow"]


def test_no_more_batches_run_at_once_than_the_concurrency(queues: Queues) -> None:
    handler = Recorder(delay=0.2)
    queues.send(*[f"m{n}" for n in range(12)])
    started = time.monotonic()
    with short_polling(queues, handler, batch_size=1, concurrency=3) as poller:
        poller.wait_until_idle(timeout=10)
    assert handler.most_running == 3
    assert len(handler.records) == 12
    assert time.monotonic() - started >= 12 / 3 * 0.2  # three at a time, not all at once


def test_stop_finishes_the_batch_in_hand_and_takes_no_more(queues: Queues) -> None:
    handler = Recorder(delay=0.5)
    queues.send(*[f"m{n}" for n in range(5)])
    poller = SqsPoller(queues.sqs, queues.url, handler, batch_size=1, concurrency=1)
    poller.start()
    time.sleep(0.2)  # the first batch is being handled
    started = time.monotonic()
    poller.stop()
    assert time.monotonic() - started < 2
    assert len(handler.records) == 1
    assert len(poller.invocations) == 1  # it was finished, and its message deleted
    remaining = queues.sqs.get_queue_attributes(
        QueueUrl=queues.url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]["ApproximateNumberOfMessages"]
    assert remaining == "4"


def test_an_outage_is_logged_once_when_it_begins_and_once_when_it_ends(
    queues: Queues, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(local.sqs_poller, "_RETRY_RECEIVE_SECONDS", 0.01)
    receive = queues.sqs.receive_message
    failures = []

    def unreachable(**_: Any) -> Any:
        failures.append(1)
        raise EndpointConnectionError(endpoint_url="http://127.0.0.1:1/")

    caplog.set_level(logging.INFO, logger="local.sqs_poller")
    with short_polling(queues, Recorder(), concurrency=2) as poller:
        monkeypatch.setattr(queues.sqs, "receive_message", unreachable)
        deadline = time.monotonic() + 10
        while len(failures) < 10:  # both pollers retried, several times
            assert time.monotonic() < deadline
            time.sleep(0.01)
        monkeypatch.setattr(queues.sqs, "receive_message", receive)
        queues.send("after")
        poller.wait_until_idle(timeout=10)
    lines = [(r.getMessage(), r.exc_info) for r in caplog.records]
    assert len(lines) == 2, lines
    assert "could not receive from" in lines[0][0]
    assert "Could not connect to the endpoint URL" in lines[0][0]
    assert "answers again" in lines[1][0]
    assert all(exc_info is None for _, exc_info in lines)  # no tracebacks


def test_wait_until_idle_gives_up_after_its_timeout(queues: Queues) -> None:
    queues.send("stuck")  # nobody polls
    poller = SqsPoller(queues.sqs, queues.url, Recorder())
    with pytest.raises(PollerError, match="still had messages"):
        poller.wait_until_idle(timeout=0.2)


def test_a_missing_queue_is_reported_at_start(queues: Queues) -> None:
    missing = queues.url.replace("/work", "/nope")
    with pytest.raises(PollerError, match="cannot poll"):
        SqsPoller(queues.sqs, missing, Recorder()).start()


def test_each_poller_can_be_a_container_of_its_own(queues: Queues) -> None:
    built: list[Recorder] = []

    def cold_start() -> Recorder:
        handler = Recorder(delay=0.05)
        built.append(handler)
        return handler

    queues.send(*[f"m{n}" for n in range(20)])
    with SqsPoller(
        queues.sqs, queues.url, new_container=cold_start, batch_size=1, concurrency=2
    ) as poller:
        poller.wait_until_idle(timeout=10)
    assert len(built) == 2  # one cold start per poller, kept for all its batches
    assert sum(len(handler.records) for handler in built) == 20
    by_container = Counter(i.container for i in poller.invocations)
    assert by_container == Counter({0: len(built[0].records), 1: len(built[1].records)})


def test_a_poller_needs_a_handler_or_a_container_factory(queues: Queues) -> None:
    with pytest.raises(ValueError, match="handler, or new_container"):
        SqsPoller(queues.sqs, queues.url)
    with pytest.raises(ValueError, match="handler, or new_container"):
        SqsPoller(queues.sqs, queues.url, Recorder(), new_container=Recorder)


def test_the_receive_lock_is_taken_in_turn() -> None:
    # A poller whose long poll came back empty asks for the lock again at once; the one
    # waiting (wait_until_idle, the other poller) must still get it next.
    lock = _TurnLock()
    stop = threading.Event()
    holds = 0

    def busy_poller() -> None:
        nonlocal holds
        while not stop.is_set():
            with lock:
                holds += 1
                time.sleep(0.01)

    poller = threading.Thread(target=busy_poller)
    poller.start()
    try:
        time.sleep(0.05)
        asked_at = holds
        with lock:
            waited_for = holds - asked_at
    finally:
        stop.set()
        poller.join()
    assert waited_for <= 1
