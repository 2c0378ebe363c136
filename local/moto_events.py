"""moto's EventBridge, as fast as it can be for the local stack, and replaying as AWS does.

For every event it hands a rule target, moto evaluates the target's input with JSON paths
(its default input template alone has eight) and builds a jsonpath_ng parser for each path
every time: about 4 ms a path, three quarters of a PutEvents call's time. The parsed paths
are the same every time, so they are kept:

    make_event_paths_cached()     # in this process (mock_aws); local.atomic_moto calls it too

moto's replay of an archive sends every event the archive holds to every rule of the bus,
each target given the whole event. EventBridge replays only the events of the replay's
window (EventStartTime to EventEndTime), only to the rules of Destination.FilterArns when
it names some, and each replayed event carries `replay-name`, which rules' patterns can
match (the archive's own rule does not take it) and targets get:

    make_replays_faithful()       # the same; local.atomic_moto calls it too
"""

from __future__ import annotations

import functools
from typing import Any

import jsonpath_ng.ext
from moto.core.utils import unix_time
from moto.events.models import Archive, Replay, ReplayState, events_backends
from moto.moto_api._internal import mock_random

_CACHED = "_p4f_cached"
_FAITHFUL = "_p4f_faithful"


def make_event_paths_cached() -> None:
    """Parse each JSON path moto's EventBridge meets once (idempotent)."""
    module: Any = jsonpath_ng.ext  # moto imports `parse` from here, on every call
    if getattr(module.parse, _CACHED, False):
        return
    parse = functools.lru_cache(maxsize=4096)(module.parse)
    setattr(parse, _CACHED, True)
    module.parse = parse


def _replay_events(self: Replay, archive: Archive) -> None:
    bus_name = self.destination["Arn"].split("/")[-1]
    bus = events_backends[self.account_id][self.region].describe_event_bus(bus_name)
    chosen = set(self.destination.get("FilterArns") or [])
    rules = [rule for rule in bus.rules.values() if not chosen or rule.arn in chosen]
    start, end = float(self.event_start_time), float(self.event_end_time)
    for event in archive.events:
        if not start <= float(event["time"]) <= end:
            continue
        replayed: Any = dict(event, **{"id": str(mock_random.uuid4()), "replay-name": self.name})
        for rule in rules:
            # moto rebuilds an event it transforms without `replay-name`: only a target
            # with an input transformer of its own gets one.
            transformed = any("InputTransformer" in target for target in rule.targets)
            rule.send_to_targets(replayed, transform_input=transformed)
    self.state = ReplayState.COMPLETED
    self.end_time = unix_time()


def make_replays_faithful() -> None:
    """Replays of moto's archives as EventBridge makes them (idempotent)."""
    if getattr(Replay.replay_events, _FAITHFUL, False):
        return
    setattr(_replay_events, _FAITHFUL, True)
    Replay.replay_events = _replay_events  # type: ignore[method-assign]
