"""moto's EventBridge, as fast as it can be for the local stack.

For every event it hands a rule target, moto evaluates the target's input with JSON paths
(its default input template alone has eight) and builds a jsonpath_ng parser for each path
every time: about 4 ms a path, three quarters of a PutEvents call's time. The parsed paths
are the same every time, so they are kept:

    make_event_paths_cached()     # in this process (mock_aws); local.atomic_moto calls it too
"""

from __future__ import annotations

import functools
from typing import Any

import jsonpath_ng.ext

_CACHED = "_p4f_cached"


def make_event_paths_cached() -> None:
    """Parse each JSON path moto's EventBridge meets once (idempotent)."""
    module: Any = jsonpath_ng.ext  # moto imports `parse` from here, on every call
    if getattr(module.parse, _CACHED, False):
        return
    parse = functools.lru_cache(maxsize=4096)(module.parse)
    setattr(parse, _CACHED, True)
    module.parse = parse
