"""`python -m chaos [--short]`: every chaos run, then the accounting table (see `chaos`).

Exits 1 when a target lost an event, duplicated one outside the documented windows, or
has a healthy event in its dead-letter queue.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

from chaos.accounting import Tally, table
from chaos.forwarders import SEGMENT, SLACK, Forwarder, run_forwarder
from chaos.receiver import run_matrix
from chaos.soak import run_soak


@dataclass(frozen=True)
class Profile:
    receiver_events: int
    """Events per receiver scenario (3 choices of targets x about 20 scenarios each)."""
    forwarder_events: int
    soak_rounds: int
    """Campaign lives on the local stack, some 15 events each."""
    soak_poison: bool


PROFILES = {
    "short": Profile(receiver_events=2, forwarder_events=12, soak_rounds=1, soak_poison=False),
    "full": Profile(receiver_events=40, forwarder_events=60, soak_rounds=4, soak_poison=True),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__)
    parser.add_argument("--short", action="store_true", help="the run `make test` includes")
    args = parser.parse_args(argv)
    profile = PROFILES["short" if args.short else "full"]
    # An invocation killed before it added a metric flushes none: Powertools says so.
    warnings.filterwarnings("ignore", "No application metrics to publish")
    tallies: list[Tally] = []
    notes: list[str] = []

    def timed(what: str, run: Callable[[], list[Tally]]) -> None:
        started = time.monotonic()
        print(f"{what} ...", file=sys.stderr, flush=True)
        # The functions print their metrics (EMF) to stdout, as in Lambda: set them aside.
        with contextlib.redirect_stdout(io.StringIO()):
            found = run()
        tallies.extend(found)
        print(f"{what}: {time.monotonic() - started:.0f}s", file=sys.stderr, flush=True)

    def receiver() -> list[Tally]:
        result = run_matrix(profile.receiver_events)
        notes.append(
            f"receiver: {result.scenarios} scenarios, {result.deliveries} deliveries; "
            "duplicates made in the documented windows:"
        )
        notes.extend(f"  {line}" for line in result.windowed)
        return list(result.tallies.values())

    def forwarder(which: Forwarder) -> list[Tally]:
        result = run_forwarder(which, profile.forwarder_events)
        met = ", ".join(f"{kind} x{count}" for kind, count in sorted(result.faults.items()))
        notes.append(f"{which.name}: faults met: {met}; {result.deferred} deferred copies")
        return [result.tally]

    timed("the receiver, every fault at every step", receiver)
    timed("the Slack forwarder", lambda: forwarder(SLACK))
    timed("the Segment forwarder", lambda: forwarder(SEGMENT))

    def soak() -> list[Tally]:
        result = run_soak(profile.soak_rounds, poison=profile.soak_poison)
        met = ", ".join(f"{kind} x{count}" for kind, count in sorted(result.faults.items()))
        notes.append(f"soak: {profile.soak_rounds} campaign lives; faults met: {met}")
        return result.tallies

    timed("the soak on the local stack", soak)
    print("\n".join(notes))
    print()
    print(table(tallies))
    problems = [problem for tally in tallies for problem in tally.problems()]
    print()
    print("\n".join(problems) if problems else "OK: nothing lost, duplicates only in the windows")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
