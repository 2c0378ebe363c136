"""One Lambda function in a process of its own, as a Lambda container runs it.

    python -m local.lambda_host CONFIG.json

The local stack writes the config: the function's code folder and handler, its environment
(resolved from template.yaml, AWS pointed at moto_server), and what invokes it — its
function URL on a port, its SQS event sources, or a single event (a custom resource
request). The process imports the handler the way Lambda does (code folder and layer on
sys.path, `app.lambda_handler`), prints `READY` once it serves, and runs until its stdin
closes (the local stack has gone, however it went) or it gets SIGTERM.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import sys
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    from local.lambda_events import LocalLambdaContext

    Handler = Callable[[dict[str, Any], LocalLambdaContext], Any]

READY = "READY"
RESULT = "RESULT "
"""The line a single invocation prints its result on (JSON after the prefix)."""
LAYER_DIR = Path(__file__).resolve().parent.parent / "layers" / "p4f"


@dataclass(frozen=True)
class SqsSourceConfig:
    queue_url: str
    batch_size: int
    maximum_concurrency: int
    report_batch_item_failures: bool
    batching_window: float = 0.0


@dataclass(frozen=True)
class HostConfig:
    function_name: str
    code_dir: str
    handler: str
    timeout_seconds: float
    memory_mb: int
    environment: dict[str, str]
    url_port: int | None = None
    sqs_sources: list[SqsSourceConfig] = field(default_factory=list)
    invoke_event: dict[str, Any] | None = None

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=1))

    @classmethod
    def read(cls, path: Path) -> HostConfig:
        return cls.from_dict(json.loads(path.read_text()))

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> HostConfig:
        sources = [SqsSourceConfig(**source) for source in raw["sqs_sources"]]
        return cls(**raw | {"sqs_sources": sources})


def load_handler(config: HostConfig) -> Handler:
    """Import the handler as Lambda does: environment first, then the module."""
    os.environ.update(config.environment)
    sys.path[:0] = [config.code_dir, str(LAYER_DIR)]
    module_name, function_name = config.handler.rsplit(".", 1)
    handler: Handler = getattr(importlib.import_module(module_name), function_name)
    return handler


def _stop_when_stdin_closes(stop: threading.Event) -> None:
    def watch() -> None:
        sys.stdin.read()
        stop.set()

    threading.Thread(target=watch, name="stdin-watch", daemon=True).start()


def serve(config: HostConfig) -> None:
    from local.asgi_server import ThreadedAsgiServer
    from local.function_url_server import function_url_app
    from local.lambda_events import LocalLambdaContext
    from local.sqs_poller import SqsPoller

    handler = load_handler(config)
    if config.invoke_event is not None:
        context = LocalLambdaContext(config.function_name, config.timeout_seconds)
        print(RESULT + json.dumps(handler(config.invoke_event, context)), flush=True)
        return

    import boto3

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    _stop_when_stdin_closes(stop)
    running: list[Any] = []
    try:
        if config.url_port is not None:
            app = function_url_app(
                handler,
                function_name=config.function_name,
                timeout_seconds=config.timeout_seconds,
            )
            running.append(ThreadedAsgiServer(app, name=config.function_name, port=config.url_port))
        sqs = boto3.client("sqs")
        running += [
            SqsPoller(
                sqs,
                source.queue_url,
                handler,
                function_name=config.function_name,
                batch_size=source.batch_size,
                concurrency=source.maximum_concurrency,
                function_timeout=config.timeout_seconds,
                report_batch_item_failures=source.report_batch_item_failures,
                batching_window=source.batching_window,
            )
            for source in config.sqs_sources
        ]
        for part in running:
            part.start()
        print(READY, flush=True)
        stop.wait()
    finally:
        for part in reversed(running):
            part.stop()


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: python -m local.lambda_host CONFIG.json")
    serve(HostConfig.read(Path(sys.argv[1])))


if __name__ == "__main__":
    main()
