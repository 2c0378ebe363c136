"""What the chaos runs share: the bridge's functions loaded in this process as a Lambda
container loads them (the environment first, then `functions/<name>/app.py` imported
afresh: a cold start), and reading a queue to the end."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
POWERTOOLS = {"POWERTOOLS_SERVICE_NAME": "p4f-bridge", "POWERTOOLS_METRICS_NAMESPACE": "P4fBridge"}
"""What template.yaml's Globals give every function. Their logs and metrics go to stdout as
in Lambda (pytest captures it; `python -m chaos` sets it aside while it runs)."""
FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
"""Credentials that reach nothing but moto."""


@contextmanager
def environment(env: Mapping[str, str]) -> Iterator[None]:
    """`env` (over POWERTOOLS and FAKE_AWS) in os.environ while the block runs, and the layer and
    the function folders importable (pyproject's pythonpath, outside pytest too)."""
    for folder in [ROOT / "layers" / "p4f", *sorted((ROOT / "functions").iterdir())]:
        if str(folder) not in sys.path:
            sys.path.append(str(folder))
    wanted = {**FAKE_AWS, **POWERTOOLS, **env}
    before = {name: os.environ.get(name) for name in [*wanted, "AWS_ENDPOINT_URL"]}
    os.environ.pop("AWS_ENDPOINT_URL", None)  # moto in this process, not a server
    os.environ.update(wanted)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def load(function: str) -> ModuleType:
    """`functions/<function>/app.py` imported afresh under the current environment."""
    name = f"functions.{function}.app"
    sys.modules.pop(name, None)
    return importlib.import_module(name)


def cold_starts(function: str, env: Mapping[str, str]) -> Callable[[], Callable[..., Any]]:
    """A `new_container` for SqsPoller: each call loads the function afresh under `env` (a
    container's cold start) and gives its handler."""

    def container() -> Callable[..., Any]:
        with environment(env):
            handler: Callable[..., Any] = load(function).lambda_handler
        return handler

    return container


def drain(sqs: Any, queue_url: str) -> list[str]:
    """The bodies of every message the queue holds now, which it then no longer holds."""
    bodies: list[str] = []
    while batch := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get(
        "Messages", []
    ):
        bodies.extend(message["Body"] for message in batch)
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(batch)
            ],
        )
    return bodies
