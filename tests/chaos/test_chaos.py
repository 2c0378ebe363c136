"""The chaos suite's short run (`python -m chaos --short` runs the same; `make chaos` runs it
in full): nothing lost, duplicates only in the documented windows, only poison in a DLQ."""

from __future__ import annotations

import re

import pytest

from chaos.forwarders import SEGMENT, SLACK, Forwarder, run_forwarder
from chaos.receiver import TARGETS, run_matrix
from chaos.soak import run_soak
from local.aws_faults import AwsFault

# The duplicates a scenario may make, by its name's end: a side effect whose answer was
# lost, or after which the invocation died before recording it.
WINDOWS = {
    "both": {
        "answer lost PutEvents",
        "killed before record",
        "answer lost SendMessage",
        "killed before complete",
    },
    "eventbridge": {"answer lost PutEvents", "killed before complete"},
    "sqs": {"answer lost SendMessage", "killed before complete"},
}


@pytest.mark.timeout(300)
@pytest.mark.parametrize("targets", list(TARGETS))
def test_the_receiver_under_every_fault_at_every_step_loses_nothing(targets: str) -> None:
    result = run_matrix(2, targets=(targets,))
    assert [problem for tally in result.tallies.values() for problem in tally.problems()] == []
    steps = {"both": 6, "eventbridge": 4, "sqs": 4}[targets]
    assert result.scenarios == steps * len(AwsFault) + 1  # and the 2xx lost on its way back
    for tally in result.tallies.values():
        assert tally.acknowledged == tally.sent  # the sender got its 2xx for every event
    made = {
        re.sub(r"^\w+: (.*): \d+ of \d+ twice on the \w+$", r"\1", line) for line in result.windowed
    }
    assert made == WINDOWS[targets]  # each window opened, and nothing else duplicated


@pytest.mark.timeout(300)
@pytest.mark.parametrize("forwarder", [SLACK, SEGMENT], ids=["Slack", "Segment"])
def test_a_forwarder_under_429s_5xx_hangs_and_poison_loses_nothing(forwarder: Forwarder) -> None:
    result = run_forwarder(forwarder, 12)
    tally = result.tally
    assert tally.problems() == []
    assert tally.in_dlq == tally.poison != set()
    assert set(result.faults) == {"rate_limited", "server_error", "hang", "slow"}
    assert result.deferred > 0  # a 429 the invocation could not wait out deferred its record


@pytest.mark.timeout(400)
def test_the_soak_on_the_local_stack_loses_nothing() -> None:
    result = run_soak(1)
    assert [problem for tally in result.tallies for problem in tally.problems()] == []
    for tally in result.tallies:
        assert tally.delivered == tally.sent, tally.target
    met = sorted(result.faults)  # what it met, shown when the test fails
    assert sum(count for kind, count in result.faults.items() if kind.startswith("Slack")) > 0, met
    assert (
        sum(
            count
            for kind, count in result.faults.items()
            if "PutEvents" in kind or "UpdateItem" in kind
        )
        > 0
    ), met
