"""Exactly once under concurrency, with real processes: the local stack (moto_server with
DynamoDB atomic, the sandbox), and more containers of the receiver and of the campaign
trigger, each a process of its own (local.lambda_host), as Lambda runs concurrent
invocations. Each event is delivered by every container at once, and each trigger key
posted by every container at once; each must land once."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from local.moto_server import free_port
from local.sample_events import catalogue_event
from local.stack import FunctionHost, LocalStack, RunningStack
from p4f.models import EventType
from p4f.signing import delivery_headers

CONTAINERS = 4
EVENTS = 60
TRIGGER_KEYS = 24
RETRY_SECONDS = 0.05


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    log_dir = tmp_path_factory.mktemp("exactly-once")
    # The trigger's whole budget for these bursts (the sandbox's limit is raised to match).
    with LocalStack(log_dir=log_dir, parameters={"TriggerRequestsPerMinute": "60"}) as running:
        running.admin().set_rate_limit(6_000, 60)
        yield running


@contextmanager
def containers(stack: RunningStack, logical_id: str, log_dir: Path) -> Iterator[list[str]]:
    """The function's URL in the stack and those of CONTAINERS - 1 more of its containers."""
    function = stack.deployment.functions[logical_id]
    hosts = []
    for n in range(1, CONTAINERS):
        config = replace(
            stack.functions.config(function),
            function_name=f"{function.name}-{n}",
            url_port=free_port(),
        )
        hosts.append(
            FunctionHost(config, log_dir=log_dir, environment=stack.functions.environment(function))
        )
    try:
        for host in hosts:
            host.start()
        for host in hosts:
            host.wait_ready()
        assert function.url is not None
        yield [function.url] + [f"http://127.0.0.1:{h.config.url_port}/" for h in hosts]
    finally:
        for host in hosts:
            host.stop()


def all_at_once(urls: list[str], send: Callable[[str], httpx.Response]) -> list[int]:
    """`send` to every URL at the same moment, each again until it succeeds (as its caller
    retries a 409 or a 5xx); the statuses of the successes."""
    start = threading.Barrier(len(urls))

    def until_done(url: str) -> int:
        start.wait()
        for _ in range(100):
            answer = send(url)
            if answer.status_code < 300:
                return answer.status_code
            assert answer.status_code in {409, 429, 503}, answer.text
            time.sleep(RETRY_SECONDS)
        raise AssertionError(f"{url} never succeeded")

    with ThreadPoolExecutor(len(urls)) as pool:
        return list(pool.map(until_done, urls))


def drain(stack: RunningStack, queue_url: str) -> list[dict[str, object]]:
    sqs = stack.aws.client("sqs")
    found = []
    quiet_since = time.monotonic()
    while time.monotonic() - quiet_since < 2:  # until nothing more comes for 2 s
        batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if batch:
            quiet_since = time.monotonic()
        for message in batch:
            found.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return found


@pytest.mark.timeout(240)
def test_every_container_delivering_every_event_at_once_publishes_each_once(
    stack: RunningStack, tmp_path: Path
) -> None:
    secret = stack.secret_value("WebhookSigningSecretArn")
    drain(stack, stack.consumer_queue_url)  # the subscription's ping
    drain(stack, stack.deployment.outputs["FanOutQueueUrl"])
    ids = [f"evt_concurrent_{n:03d}" for n in range(EVENTS)]
    with containers(stack, "WebhookReceiverFunction", tmp_path) as urls:
        for n, event_id in enumerate(ids):
            body = json.dumps(catalogue_event(list(EventType)[n % 11]) | {"id": event_id}).encode()

            def deliver(url: str, body: bytes = body, event_id: str = event_id) -> httpx.Response:
                event_type = json.loads(body)["type"]
                headers = delivery_headers(body, secret, event_id=event_id, event_type=event_type)
                return httpx.post(url, content=body, headers=headers, timeout=15)

            assert set(all_at_once(urls, deliver)) == {200}
    on_bus = Counter(
        str(event["detail"]["id"])  # type: ignore[index]
        for event in drain(stack, stack.consumer_queue_url)
        if event["source"] == "pay4feedback"
    )
    on_queue = Counter(
        str(event["id"]) for event in drain(stack, stack.deployment.outputs["FanOutQueueUrl"])
    )
    for arrived in (on_bus, on_queue):
        assert set(arrived) == set(ids)
        duplicates = sum(count - 1 for count in arrived.values())
        assert duplicates == 0, f"{duplicates} duplicates of {EVENTS} events"


@pytest.mark.timeout(240)
def test_every_container_posting_every_trigger_at_once_makes_one_campaign_each(
    stack: RunningStack, tmp_path: Path
) -> None:
    token = stack.secret_value("TriggerTokenSecretArn")
    keys = [f"concurrent-key-{n:03d}" for n in range(TRIGGER_KEYS)]
    with containers(stack, "CampaignTriggerFunction", tmp_path) as urls:
        for key in keys:
            body = {"name": f"Concurrent {key}", "reward": {"amount": "1.00", "currency": "USD"}}

            def post(url: str, key: str = key, body: dict[str, Any] = body) -> httpx.Response:
                return httpx.post(
                    f"{url.rstrip('/')}/triggers/campaigns",
                    json=body,
                    headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key},
                    timeout=30,
                )

            assert set(all_at_once(urls, post)) == {201}
    admin = stack.admin()
    made = Counter(
        str(event.data["name"])
        for event in admin.events()
        if event.type == EventType.CAMPAIGN_CREATED
    )
    admin.close()
    per_key = [made[f"Concurrent {key}"] for key in keys]
    assert per_key == [1] * TRIGGER_KEYS, f"{sum(per_key) - TRIGGER_KEYS} duplicates"
