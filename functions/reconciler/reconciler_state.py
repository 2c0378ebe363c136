"""What the bridge has seen of each campaign and response: the reconciler's state table.

One item per resource, fed by the events on the bus (the reconciler's own rule and queue:
webhooks and the reconciler's events alike) and by the reconciler's runs:

    {"id": <resource id>, "seen": {"<event type>|<time>", ...},     the changes seen
     "status": ..., "status_at": <time of that status>}            the newest status seen

and one item of the reconciler's runs, {"id": "reconciler-runs", "<kind>_listed_at": ...}:
when a run last listed each list (campaigns, responses) completely, what the next run
compares that list's horizon with. Updates only add what was seen and move a status forward
in time, so they may come in any order, and twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from p4f.changes import Change, change_of, utc_time
from p4f.forwarding import ForwardingError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from mypy_boto3_dynamodb import DynamoDBClient

    from p4f.forwarding import Prepared, QueuedEvent

RUNS_ITEM_ID = "reconciler-runs"
_LISTED_AT = "_listed_at"
_BATCH_GET = 100
"""DynamoDB's most keys in a BatchGetItem."""


@dataclass(frozen=True)
class Seen:
    """What the bridge has seen of one resource."""

    changes: frozenset[str]
    """`token(change)` of each change seen."""
    status: str | None = None
    status_at: datetime | None = None


def token(change: Change) -> str:
    return f"{change.event_type}|{change.at.isoformat(timespec='microseconds')}"


@dataclass(frozen=True)
class Sighting:
    """A change seen, with the resource's status at that time."""

    change: Change
    status: str | None


class StateStore:
    def __init__(self, table_name: str, dynamodb: DynamoDBClient) -> None:
        self._table = table_name
        self._dynamodb = dynamodb

    def seen(self, resource_ids: Sequence[str]) -> dict[str, Seen]:
        """What was seen of each of `resource_ids` (absent: nothing)."""
        found: dict[str, Seen] = {}
        for start in range(0, len(resource_ids), _BATCH_GET):
            keys = [
                {"id": {"S": i}} for i in dict.fromkeys(resource_ids[start : start + _BATCH_GET])
            ]
            request: Mapping[str, dict[str, object]] = {self._table: {"Keys": keys}}
            while request:
                answer = self._dynamodb.batch_get_item(RequestItems=request)  # type: ignore[arg-type]
                for item in answer.get("Responses", {}).get(self._table, []):
                    found[item["id"]["S"]] = Seen(
                        frozenset(item.get("seen", {}).get("SS", [])),
                        item.get("status", {}).get("S"),
                        utc_time(item.get("status_at", {}).get("S")),
                    )
                request = answer.get("UnprocessedKeys") or {}  # type: ignore[assignment]
        return found

    def record(self, sightings: Iterable[Sighting]) -> None:
        """Remember each change as seen, and its status unless a newer one is known."""
        for sighting in sightings:
            change = sighting.change
            values: dict[str, object] = {":seen": {"SS": [token(change)]}}
            if sighting.status is None:
                self._update(change.resource_id, "ADD seen :seen", values)
                continue
            values |= {
                ":status": {"S": sighting.status},
                ":at": {"S": change.at.isoformat(timespec="microseconds")},
            }
            try:
                self._update(
                    change.resource_id,
                    "ADD seen :seen SET #status = :status, status_at = :at",
                    values,
                    "attribute_not_exists(status_at) OR status_at <= :at",
                )
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                    raise
                # A newer status is known: only the change is new.
                self._update(change.resource_id, "ADD seen :seen", {":seen": values[":seen"]})

    def listed_at(self) -> dict[str, datetime]:
        """When each list was last listed completely, by its name (absent: never)."""
        answer = self._dynamodb.get_item(
            TableName=self._table, Key={"id": {"S": RUNS_ITEM_ID}}, ConsistentRead=True
        )
        return {
            name.removesuffix(_LISTED_AT): datetime.fromisoformat(value["S"])
            for name, value in answer.get("Item", {}).items()
            if name.endswith(_LISTED_AT) and "S" in value
        }

    def remember_listed(self, lists: Sequence[str], at: datetime) -> None:
        """`lists` were listed completely by the run that started `at`; the others keep
        their previous time."""
        if not lists:
            return
        names = {f"#list{i}": f"{name}{_LISTED_AT}" for i, name in enumerate(lists)}
        self._dynamodb.update_item(
            TableName=self._table,
            Key={"id": {"S": RUNS_ITEM_ID}},
            UpdateExpression="SET " + ", ".join(f"{n} = :at" for n in names),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues={":at": {"S": at.isoformat()}},
        )

    def _update(
        self, resource_id: str, update: str, values: dict[str, object], condition: str = ""
    ) -> None:
        request: dict[str, object] = {
            "TableName": self._table,
            "Key": {"id": {"S": resource_id}},
            "UpdateExpression": update,
            "ExpressionAttributeValues": values,
        }
        if "#status" in update:
            request["ExpressionAttributeNames"] = {"#status": "status"}
        if condition:
            request["ConditionExpression"] = condition
        self._dynamodb.update_item(**request)  # type: ignore[arg-type]


def sighting_of(event_type: str, data: Mapping[str, object]) -> Sighting | None:
    """What an event on the bus tells of its resource; None for events about no change."""
    change = change_of(event_type, data)
    if change is None:
        return None
    status = data.get("status")
    # A campaign's status is dated by updated_at; a response's only moves out of PENDING.
    dated = change.event_type.startswith("campaign_") or change.event_type.startswith("reward_")
    return Sighting(change, str(status) if dated and isinstance(status, str) else None)


class StateFeed:
    """The state table's feed from the bus: a Forwarder (p4f.forwarding) to the table."""

    def __init__(self, store: StateStore) -> None:
        self._store = store

    def prepare(self, queued: QueuedEvent) -> Sighting | None:
        return sighting_of(str(queued.event.type), queued.event.data)

    def forward(
        self,
        batch: Sequence[Prepared[Sighting | None]],
        seconds: float,  # noqa: ARG002 (one small write a record)
    ) -> Mapping[str, ForwardingError]:
        failures: dict[str, ForwardingError] = {}
        for prepared in batch:
            if prepared.content is None:
                continue
            try:
                self._store.record([prepared.content])
            except ClientError as exc:
                failures[prepared.message_id] = ForwardingError(f"the state table: {exc}")
        return failures
