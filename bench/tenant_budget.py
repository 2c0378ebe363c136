"""Figure (5): the tenant-wide API budget with several processes calling at once.

Each caller is a process of its own, as a Lambda container is: a Pay4FeedbackClient whose
budget is a `TenantBudget` on one DynamoDB table in moto_server (atomic), all of them
calling GET /me against one tenant of the sandbox, whose limit is Pay4Feedback's 60 per
window (a minute, compressed in time). They start at the same instant. Counted on the wire
(the time each request was sent, in each process): the requests in the first `windows`
windows as a share of the budget, the 429s the sandbox answered (its /_sandbox/stats), and
the DynamoDB calls the budget made per API call.

    python -m bench.tenant_budget --worker '{...}'    one caller (what `run_callers` starts)
"""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import boto3
import httpx
from pydantic import BaseModel

from bench.client_rate import CountingTransport
from bench.report import Row, Target
from local.moto_server import MotoServer
from local.sandbox import SandboxAdmin, running_sandbox
from local.template import Template
from p4f.budget import Priority, TenantBudget
from p4f.client import Pay4FeedbackClient
from p4f.errors import Pay4FeedbackError

if TYPE_CHECKING:
    from collections.abc import Sequence

FIGURE = "(5) tenant budget"
API_KEY = "p4f_test_bench_budget"
TABLE = "api-budget"
SANDBOX_LIMIT = 60
_START_DELAY_SECONDS = 3.0
"""Time for every process to start (import, connect) before the common start instant."""


class Caller(BaseModel, frozen=True):
    """What one caller process does."""

    priority: Priority = Priority.INTERACTIVE
    calls: int = 50
    max_wait: float | None = None
    """The deadline of each call (None: as long as it takes)."""
    pause: float = 0.0
    """Seconds between the end of a call and the next."""


class Worker(BaseModel):
    """A caller's whole assignment, as its process gets it."""

    caller: Caller
    sandbox_url: str
    aws_url: str
    api_key: str
    requests_per_window: int
    window_seconds: float
    start_at: float


class CallerResult(BaseModel):
    priority: Priority
    sent: list[float]
    """When each request was sent (epoch seconds)."""
    waits: list[float]
    """How long each call took, the wait for its slot included."""
    errors: list[str]
    dynamodb_calls: int


@dataclass
class BudgetRun:
    results: list[CallerResult]
    requests: int
    """What the sandbox answered, all callers together."""
    rate_limited: int
    """How many of those answers were 429s."""
    details: dict[str, object] = field(default_factory=dict)

    def sent(self, priority: Priority | None = None) -> list[float]:
        return sorted(at for r in self.results if priority in (None, r.priority) for at in r.sent)

    def in_windows(self, window: float, windows: int) -> int:
        """Requests sent in the first `windows` windows from the first one."""
        sent = self.sent()
        return sum(at < sent[0] + windows * window for at in sent) if sent else 0

    def dynamodb_calls_per_request(self) -> float:
        calls = sum(r.dynamodb_calls for r in self.results)
        return calls / max(1, len(self.sent()))


def create_budget_table(aws: MotoServer) -> None:
    aws.client("dynamodb").create_table(**Template.load().table_definition("ApiBudgetTable", TABLE))


def run_callers(
    callers: Sequence[Caller],
    *,
    sandbox_url: str,
    aws: MotoServer,
    api_key: str,
    requests_per_window: int,
    window_seconds: float,
) -> BudgetRun:
    """Start one process per caller, all calling from the same instant; what they did."""
    start_at = time.time() + _START_DELAY_SECONDS
    processes = [
        subprocess.Popen(  # noqa: S603 (our own module, our own interpreter)
            [sys.executable, "-m", "bench.tenant_budget", "--worker", worker.model_dump_json()],
            stdout=subprocess.PIPE,
            text=True,
            env=aws.environment(),
        )
        for worker in (
            Worker(
                caller=caller,
                sandbox_url=sandbox_url,
                aws_url=aws.url,
                api_key=api_key,
                requests_per_window=requests_per_window,
                window_seconds=window_seconds,
                start_at=start_at,
            )
            for caller in callers
        )
    ]
    results = []
    for process in processes:
        out, _ = process.communicate(timeout=600)
        if process.returncode != 0:
            raise RuntimeError(f"a caller process failed ({process.returncode})")
        results.append(CallerResult.model_validate_json(out.strip().splitlines()[-1]))
    stats = SandboxAdmin(sandbox_url, api_key).stats()
    return BudgetRun(results, stats.requests, stats.rate_limited)


def _work(worker: Worker) -> CallerResult:
    caller = worker.caller
    transport = CountingTransport(httpx.HTTPTransport(), time.time)
    budget = TenantBudget(
        TABLE,
        boto3.client("dynamodb", endpoint_url=worker.aws_url),
        requests_per_window=worker.requests_per_window,
        window_seconds=worker.window_seconds,
    )
    waits, errors = [], []
    with Pay4FeedbackClient(
        worker.sandbox_url, api_key=worker.api_key, transport=transport, budget=budget
    ) as client:
        time.sleep(max(0.0, worker.start_at - time.time()))
        with client.priority(caller.priority):
            for _ in range(caller.calls):
                asked = time.time()
                try:
                    if caller.max_wait is None:
                        client.me()
                    else:
                        with client.deadline(caller.max_wait):
                            client.me()
                except Pay4FeedbackError as exc:
                    errors.append(f"{type(exc).__name__}: {exc.message}")
                waits.append(time.time() - asked)
                time.sleep(caller.pause)
    return CallerResult(
        priority=caller.priority,
        sent=transport.sent,
        waits=waits,
        errors=errors,
        dynamodb_calls=budget.stats.dynamodb_calls,
    )


def tenant_budget(*, callers: int, budget: int, window: float, windows: int) -> list[Row]:
    """The figure: `callers` interactive callers bursting at once, for `windows` windows."""
    calls = (budget * (windows + 1)) // callers + 1  # more than the budget lets through
    with (
        MotoServer() as aws,
        running_sandbox([API_KEY], rate_limit=SANDBOX_LIMIT, rate_window=window) as sandbox,
    ):
        create_budget_table(aws)
        run = run_callers(
            [Caller(calls=calls)] * callers,
            sandbox_url=sandbox.url,
            aws=aws,
            api_key=API_KEY,
            requests_per_window=budget,
            window_seconds=window,
        )
    counted = run.in_windows(window, windows)
    share = counted / (budget * windows) * 100
    setting = f"{callers} processes, budget {budget} of {SANDBOX_LIMIT} per {window:g} s"
    details = {
        "callers": callers,
        "budget": budget,
        "sandbox_limit": SANDBOX_LIMIT,
        "window_seconds": window,
        "windows_counted": windows,
        "requests_in_counted_windows": counted,
        "requests_in_total": run.requests,
        "errors": sum(len(r.errors) for r in run.results),
    }
    return [
        Row(
            FIGURE,
            setting,
            "requests on the wire, share of the budget",
            share,
            "%",
            target=Target(90, at_most=False, text=">= 90 %"),
            details=details,
        ),
        Row(FIGURE, setting, "as requests/minute at 60 s", share / 100 * budget, "req/min"),
        Row(
            FIGURE, setting, "429s answered by the sandbox", run.rate_limited, "", target=Target(0)
        ),
        Row(
            FIGURE,
            setting,
            "DynamoDB calls per API call",
            run.dynamodb_calls_per_request(),
            "",
            # One a call; each new container's first call may take one more, to learn the item.
            target=Target(1.05, text="1 (+ a container's first look)"),
        ),
    ]


def main(argv: Sequence[str]) -> int:
    if len(argv) != 2 or argv[0] != "--worker":
        print(__doc__, file=sys.stderr)
        return 2
    print(_work(Worker.model_validate_json(argv[1])).model_dump_json(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
