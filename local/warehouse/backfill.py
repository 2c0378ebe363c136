"""`p4f-bridge backfill --stack NAME`: the warehouse mirror of a deployed stack filled with
snapshots of what the API lists, from this machine, with a progress bar.

What it needs it reads from the stack (CloudFormation, local.operate.OperatedStack): its
Parameters (the API key's secret, the API's URL, the budget's Parameters), its bus (output
EventBusName) and its budget table (resource ApiBudgetTable). It calls the API through that
budget, as a background caller: the deployed functions keep their share. The AWS credentials it runs
with need cloudformation:DescribeStacks and DescribeStackResource on the stack,
secretsmanager:GetSecretValue on the API key, dynamodb:GetItem and UpdateItem on the
budget table and events:PutEvents on the bus.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, TextIO

from botocore.exceptions import ClientError

from local.operate.api import operated_api
from p4f.backfill import Backfill, Backfilled
from p4f.mirror import SNAPSHOT_TYPES

if TYPE_CHECKING:
    from collections.abc import Callable

    from local.operate import OperatedStack

_CALLER = "p4f-bridge backfill"
_SHOWN_PER_SECOND = 4


class StackNotReadyError(RuntimeError):
    """The stack is not there, or has no warehouse mirror."""


def backfill_of(stack: OperatedStack) -> Backfill:
    """The backfill of a deployed stack (StackNotReadyError when it cannot have one)."""
    if stack.parameters.get("EnableWarehouseMirror") != "true":
        raise StackNotReadyError(
            f"the stack {stack.name!r} has no warehouse mirror: deploy it with "
            "EnableWarehouseMirror=true first (README, Warehouse)"
        )
    try:
        api = operated_api(stack, caller=_CALLER)  # reads the stack's budget table
    except ClientError as exc:
        raise StackNotReadyError(f"cannot read the stack {stack.name!r}: {exc}") from exc
    return Backfill(api.client, stack.client("events"), stack.outputs["EventBusName"])


class ProgressBar:
    """The backfill's progress: one line redrawn in a terminal (counts, rate, time taken);
    elsewhere (a log, CI) a line every `every` snapshots."""

    def __init__(
        self,
        stream: TextIO,
        *,
        every: int = 1000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stream = stream
        self._every = every
        self._clock = clock
        self._started = clock()
        self._shown_at = -1.0
        self._shown_total = 0
        self._live = stream.isatty()

    def __call__(self, done: Backfilled) -> None:
        now, total = self._clock(), sum(done.published.values())
        if self._live and now - self._shown_at >= 1 / _SHOWN_PER_SECOND:
            self._stream.write(f"\r  {self._line(done, now)}")
        elif not self._live and total - self._shown_total >= self._every:
            self._stream.write(f"  {self._line(done, now)}\n")
        else:
            return
        self._shown_at, self._shown_total = now, total
        self._stream.flush()

    def finish(self, done: Backfilled) -> None:
        start = "\r" if self._live else ""
        self._stream.write(f"{start}  {self._line(done, self._clock())}\n")
        self._stream.flush()

    def _line(self, done: Backfilled, now: float) -> str:
        elapsed = max(now - self._started, 1e-9)
        counts = ", ".join(f"{done.published.get(kind, 0):,} {kind}" for kind in SNAPSHOT_TYPES)
        total = sum(done.published.values())
        minutes, seconds = divmod(int(elapsed), 60)
        return f"{counts} ({total / elapsed:,.1f}/s, {minutes}:{seconds:02d})"
