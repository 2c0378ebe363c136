"""moto with DynamoDB requests atomic, as DynamoDB's are.

moto checks a ConditionExpression and then writes, in two steps and without a lock: two
concurrent conditional writes of one key can both pass the check (5 rounds in 100 of ten
concurrent claims had two winners). The bridge's exactly-once guarantees rest on those
writes being atomic, so everything here that stands in for AWS runs DynamoDB one request
at a time:

    python -m local.atomic_moto -H 127.0.0.1 -p 5000    # moto_server, atomic DynamoDB
    make_dynamodb_atomic()                              # the same in this process (mock_aws)

A request is the unit, as in DynamoDB: a condition, its write and the item it returns
(ReturnValues) see one state; a transaction's items are written together.
"""

from __future__ import annotations

import functools
import sys
import threading
from typing import Any

from moto.dynamodb.responses import DynamoHandler

_LOCK = threading.RLock()
_ATOMIC = "_p4f_atomic"


def make_dynamodb_atomic() -> None:
    """Serialise moto's DynamoDB requests in this process (idempotent)."""
    if getattr(DynamoHandler.call_action, _ATOMIC, False):
        return
    unlocked = DynamoHandler.call_action

    @functools.wraps(unlocked)
    def call_action(self: DynamoHandler) -> Any:
        with _LOCK:
            return unlocked(self)

    setattr(call_action, _ATOMIC, True)
    DynamoHandler.call_action = call_action  # type: ignore[method-assign]


def main() -> int:
    """moto_server's command line, with DynamoDB made atomic first (and Firehose writing
    S3 objects as Firehose does: local.moto_firehose; EventBridge's JSON paths parsed once:
    local.moto_events)."""
    from moto.server import main as moto_server

    from local.moto_events import make_event_paths_cached
    from local.moto_firehose import make_firehose_faithful

    make_dynamodb_atomic()
    make_firehose_faithful()
    make_event_paths_cached()
    sys.argv[0] = "moto_server"
    moto_server()
    return 0


if __name__ == "__main__":
    sys.exit(main())
