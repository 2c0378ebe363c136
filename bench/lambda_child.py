"""One Lambda execution environment in a fresh interpreter: import a handler, handle events.

    python3.13 -I -S -B bench/lambda_child.py SPEC.json RESULT.json

Run by `bench.lambda_env`, never imported. The spec gives `path` (put first on sys.path:
the function's code, the layer, the runtime's boto3), `env`, `handler` ("module.function"),
`function_name`, `timeout`, `mode` and `events`.

    cold   handle the first event only. Until the handler's module is imported, nothing but
           the standard library modules a runtime needs is loaded, so every other import
           counted is the handler's own.
    warm   handle every event: `warmup` of them untimed after the first, then time each
           of the others. With `answers`, first make every boto3 client answer in-process
           (canned answers per operation; requests are still validated and serialized,
           nothing is sent).

The result holds monotonic times (comparable with the parent's `time.perf_counter()`),
the handler's answers and, for warm, the seconds each timed event took.
"""

import time

STARTED = time.perf_counter()

import importlib  # noqa: E402 (timed from the first line on purpose)
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
from typing import Any  # noqa: E402


class Context:
    """The attributes of Lambda's context object that handlers read.

    local.lambda_events.LocalLambdaContext's twin, written out: this process may import
    nothing of the project's beyond what it measures, or the cold start would count it.
    """

    def __init__(self, function_name: str, timeout_seconds: float) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = (
            f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        )
        self.memory_limit_in_mb = 256
        self.aws_request_id = os.urandom(16).hex()
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "bench"
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def answer_in_process(answers: dict[str, dict[str, Any]]) -> None:
    """Make every boto3 client built from now on answer `answers[operation]` at once."""
    import boto3
    from botocore.awsrequest import AWSResponse
    from botocore.compat import HTTPHeaders

    build_client = boto3.client

    def answer(model: Any, **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        return AWSResponse("https://aws.invalid/", 200, HTTPHeaders(), None), answers[model.name]

    def client(*args: Any, **kwargs: Any) -> Any:
        built = build_client(*args, **kwargs)
        # A response from a before-call handler takes the place of the HTTP request,
        # as in botocore.stub.Stubber.
        built.meta.events.register("before-call.*.*", answer)
        return built

    boto3.client = client


def main(spec_path: str, result_path: str) -> None:
    with open(spec_path, encoding="utf-8") as spec_file:
        spec: dict[str, Any] = json.load(spec_file)
    sys.path[:0] = spec["path"]
    os.environ.update(spec["env"])
    events: list[dict[str, Any]] = spec["events"]
    if spec["mode"] == "warm" and spec["answers"]:
        answer_in_process(spec["answers"])
    module_name, _, function_name = spec["handler"].rpartition(".")
    before_import = time.perf_counter()
    handler = getattr(importlib.import_module(module_name), function_name)
    imported = time.perf_counter()
    first = handler(events[0], Context(spec["function_name"], spec["timeout"]))
    answered = time.perf_counter()
    result: dict[str, Any] = {
        "started": STARTED,
        "before_import": before_import,
        "imported": imported,
        "answered": answered,
        "answers": [first],
        "modules": len(sys.modules),
    }
    if spec["mode"] == "warm":
        warmup = spec["warmup"]
        durations = []
        for number, event in enumerate(events[1:], start=1):
            context = Context(spec["function_name"], spec["timeout"])
            began = time.perf_counter()
            answer = handler(event, context)
            took = time.perf_counter() - began
            if number > warmup:
                durations.append(took)
            result["answers"].append(answer)
        result["durations"] = durations
    with open(result_path, "w", encoding="utf-8") as result_file:
        json.dump(result, result_file, default=str)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
