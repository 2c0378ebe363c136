"""moto with DynamoDB requests atomic, as DynamoDB's are.

moto checks a ConditionExpression and then writes, in two steps and without a lock: two
concurrent conditional writes of one key can both pass the check (5 rounds in 100 of ten
concurrent claims had two winners). The bridge's exactly-once guarantees rest on those
writes being atomic, so everything here that stands in for AWS runs DynamoDB one request
at a time:

    python -m local.atomic_moto -H 127.0.0.1 -p 5000    # moto_server, atomic DynamoDB
    make_dynamodb_atomic()                              # the same in this process (mock_aws)

A request is the unit, as in DynamoDB: a condition, its write and the item it returns
(ReturnValues) see one state; a transaction's items are written together. (moto's
TransactWriteItems also fails outright when two run at once: it deep-copies the tables to
roll back while another request changes them.)

Under the lock a transaction needs no copy of its tables: `make_dynamodb_atomic` has it
check every condition first and write only when all hold, as DynamoDB does, instead of
moto's writing as it goes and restoring a deep copy of each table it touched (a cost that
grows with the table: 0.25 s a transaction at a thousand items).
"""

from __future__ import annotations

import functools
import os
import sys
import threading
from typing import Any

from moto.dynamodb.comparisons import get_filter_expression
from moto.dynamodb.exceptions import (
    ConditionalCheckFailed,
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.models import DynamoDBBackend
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
    DynamoDBBackend.transact_write_items = _checked_then_written  # type: ignore[method-assign]


_OPERATIONS = frozenset({"ConditionCheck", "Put", "Delete", "Update"})


def _checked_then_written(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    """moto's TransactWriteItems, conditions first: nothing is written unless all hold
    (run under the lock, so that no request comes between the checks and the writes)."""
    if len(transact_items) > 100:
        raise TooManyTransactionsException
    targets: set[tuple[str, str]] = set()
    errors: list[tuple[str | None, str | None, dict[str, Any] | None]] = []
    writes: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    for entry in transact_items:
        if len(entry) > 1:
            raise TransactWriteSingleOpException
        kind, operation = next(iter(entry.items()))
        if kind not in _OPERATIONS:
            errors.append(("ValueError", "Unsupported transaction operation", None))
            continue
        table_name = operation["TableName"]
        key = _key(self, kind, operation)
        target = (str(table_name), str(dict(sorted(key.items()))))
        if target in targets:
            raise MultipleTransactionsException
        targets.add(target)
        current = self.get_item(table_name, key)
        condition = operation.get("ConditionExpression")
        if condition is not None and not get_filter_expression(
            condition,
            operation.get("ExpressionAttributeNames"),
            operation.get("ExpressionAttributeValues"),
        ).expr(current):
            old = None
            if operation.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                old = current.to_json()["Attributes"]
            errors.append(("ConditionalCheckFailed", ConditionalCheckFailed().message, old))
            continue
        errors.append((None, None, None))
        writes.append((kind, operation, key))
    if any(code is not None for code, _, _ in errors):
        raise TransactionCanceledException(errors)
    for kind, operation, key in writes:  # the conditions held: plain writes
        names = operation.get("ExpressionAttributeNames") or {}
        values = operation.get("ExpressionAttributeValues") or {}
        if kind == "Put":
            self.put_item(operation["TableName"], operation["Item"])
        elif kind == "Delete":
            self.delete_item(operation["TableName"], key)
        elif kind == "Update":
            self.update_item(
                operation["TableName"],
                key,
                update_expression=operation["UpdateExpression"],
                expression_attribute_names=names,
                expression_attribute_values=values,
            )


def _key(backend: DynamoDBBackend, kind: str, operation: dict[str, Any]) -> dict[str, Any]:
    if kind != "Put":
        key: dict[str, Any] = operation["Key"]
        return key
    table = backend.get_table(operation["TableName"])
    item = operation["Item"]
    found = {table.hash_key_attr: item[table.hash_key_attr]}
    if table.range_key_attr is not None:
        found[table.range_key_attr] = item[table.range_key_attr]
    return found


EXIT_WITH_STDIN = "--exit-when-stdin-closes"
"""Stop when stdin closes: when the process that started this one is gone, however it went
(local.moto_server runs it in a session of its own, which no Ctrl-C or kill of the
starter's process group reaches)."""


def _exit_when_stdin_closes() -> None:
    def watch() -> None:
        sys.stdin.read()
        os._exit(0)  # nothing to flush: moto keeps its state in memory

    threading.Thread(target=watch, name="stdin-watch", daemon=True).start()


def main() -> int:
    """moto_server's command line, with DynamoDB made atomic first (and Firehose writing
    S3 objects as Firehose does: local.moto_firehose; EventBridge's JSON paths parsed once
    and its replays made as EventBridge makes them: local.moto_events; SQS's dead-letter
    queue redrive: local.moto_sqs); and EXIT_WITH_STDIN."""
    from moto.server import main as moto_server

    from local.moto_events import make_event_paths_cached, make_replays_faithful
    from local.moto_firehose import make_firehose_faithful
    from local.moto_sqs import make_sqs_redrive

    if EXIT_WITH_STDIN in sys.argv:
        sys.argv.remove(EXIT_WITH_STDIN)
        _exit_when_stdin_closes()
    make_dynamodb_atomic()
    make_firehose_faithful()
    make_event_paths_cached()
    make_replays_faithful()
    make_sqs_redrive()
    sys.argv[0] = "moto_server"
    moto_server()
    return 0


if __name__ == "__main__":
    sys.exit(main())
