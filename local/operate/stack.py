"""The stack the operating commands work on, and where its functions log.

A deployed stack is read from CloudFormation (its Parameters, Outputs and resources) with
the user's AWS profile and region; the running local stack from the note it leaves in its
log folder (`LocalStackNote`, written by local.stack while it runs). Either way the commands
see the same things: the stack's Outputs (every queue's URL, every dead-letter queue's URL
and ARN, the bus and its archive), boto3 clients, and each function's log lines.
"""

from __future__ import annotations

import functools
import json
import re
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

LOCAL_STACK_FILE = "stack.json"
"""In a running local stack's log folder: what `--local` needs to reach it."""
_DEAD_LETTER_URL = "DeadLetterQueueUrl"
_QUEUE_URL = "QueueUrl"
_LOG_LINES_MOST = 500
"""The most log lines one search reads from CloudWatch Logs."""
_POWERTOOLS_TIME = "%Y-%m-%d %H:%M:%S,%f%z"
_INSIGHTS_TIME = "%Y-%m-%d %H:%M:%S.%f"
"""How CloudWatch Logs Insights answers a time (UTC)."""
_QUERY_SECONDS = 30.0
"""How long a Logs Insights query may take before it counts as failed."""
_QUERY_POLL_SECONDS = 0.5


class StackNotFoundError(RuntimeError):
    """No such stack (or it cannot be read), or no local stack runs."""


class UnknownQueueError(ValueError):
    """A queue name that is none of the stack's."""


class LogQueryError(RuntimeError):
    """A CloudWatch Logs Insights query failed or took too long."""


@dataclass(frozen=True)
class LogLine:
    """One line a function logged (Powertools Logger's JSON)."""

    at: datetime
    level: str
    message: str
    fields: Mapping[str, Any]

    @classmethod
    def parse(cls, text: str) -> LogLine | None:
        """A Powertools log line, or None for anything else (a traceback, a START line)."""
        start = text.find("{")
        if start < 0:
            return None
        try:
            fields = json.loads(text[start:])
            at = datetime.strptime(str(fields["timestamp"]), _POWERTOOLS_TIME)
        except (ValueError, KeyError, TypeError):
            return None
        if not isinstance(fields, dict):
            return None
        return cls(at, str(fields.get("level", "")), str(fields.get("message", "")), fields)


class FunctionLogs(Protocol):
    """Where a stack's functions log, and which function polls a queue."""

    def consumer(self, queue_arn: str) -> str | None:
        """The name of the function that polls the queue, if one does."""
        ...

    def lines(
        self, function: str, *, containing: str, since: datetime, until: datetime | None = None
    ) -> list[LogLine]:
        """The function's log lines from `since` to `until` (or now) whose text contains
        `containing`."""
        ...

    def last_seen(
        self,
        function: str,
        *,
        message: str,
        by: str,
        where: Mapping[str, Collection[str]],
        since: datetime,
    ) -> dict[str, datetime]:
        """When the function last logged `message` since `since`, per value of the line's
        field `by`, of the lines whose fields named in `where` have one of its values."""
        ...

    def newest(self, function: str, *, message: str, since: datetime) -> LogLine | None:
        """The function's newest line with `message` since `since`, if any."""
        ...


class CloudWatchFunctionLogs:
    """A deployed stack's functions: Lambda's event source mappings, CloudWatch Logs."""

    def __init__(self, client: Callable[[str], Any]) -> None:
        self._client = client

    def consumer(self, queue_arn: str) -> str | None:
        mappings = self._client("lambda").list_event_source_mappings(EventSourceArn=queue_arn)
        for mapping in mappings.get("EventSourceMappings", []):
            return str(mapping["FunctionArn"]).rsplit(":", 1)[-1]
        return None

    def _group(self, function: str) -> str:
        configuration = self._client("lambda").get_function_configuration(FunctionName=function)
        group: str = configuration.get("LoggingConfig", {}).get(
            "LogGroup", f"/aws/lambda/{function}"
        )
        return group

    def lines(
        self, function: str, *, containing: str, since: datetime, until: datetime | None = None
    ) -> list[LogLine]:
        group = self._group(function)
        window = {"startTime": int(since.timestamp() * 1000)}
        if until is not None:
            window["endTime"] = int(until.timestamp() * 1000)
        pages = (
            self._client("logs")
            .get_paginator("filter_log_events")
            .paginate(
                logGroupName=group,
                filterPattern=json.dumps(containing),  # a quoted term: the text as it is
                **window,
                PaginationConfig={"MaxItems": _LOG_LINES_MOST},
            )
        )
        found = (LogLine.parse(event["message"]) for page in pages for event in page["events"])
        return [line for line in found if line is not None]

    def last_seen(
        self,
        function: str,
        *,
        message: str,
        by: str,
        where: Mapping[str, Collection[str]],
        since: datetime,
    ) -> dict[str, datetime]:
        # One Logs Insights query rather than every line: a busy receiver logs thousands.
        conditions = [f"message = {json.dumps(message)}"] + [
            f"{name} in {json.dumps(sorted(values))}" for name, values in where.items()
        ]
        rows = self._query(
            function,
            f"filter {' and '.join(conditions)} | stats max(@timestamp) as last_seen by {by}",
            since,
        )
        return {
            row[by]: _insights_time(row["last_seen"])
            for row in rows
            if row.get(by) and row.get("last_seen")
        }

    def newest(self, function: str, *, message: str, since: datetime) -> LogLine | None:
        rows = self._query(
            function,
            f"fields @timestamp, @message | filter message = {json.dumps(message)} "
            "| sort @timestamp desc | limit 1",
            since,
        )
        return next((line for row in rows if (line := LogLine.parse(row["@message"]))), None)

    def _query(self, function: str, query: str, since: datetime) -> list[dict[str, str]]:
        """The rows of a Logs Insights query over the function's log group since `since`."""
        logs = self._client("logs")
        started = logs.start_query(
            logGroupName=self._group(function),
            startTime=int(since.timestamp()),
            endTime=int(time.time()) + 1,
            queryString=query,
        )
        deadline = time.monotonic() + _QUERY_SECONDS
        while True:
            answer = logs.get_query_results(queryId=started["queryId"])
            if answer["status"] == "Complete":
                return [{cell["field"]: cell["value"] for cell in row} for row in answer["results"]]
            if answer["status"] not in {"Scheduled", "Running"}:
                raise LogQueryError(f"the Logs Insights query was {answer['status'].lower()}")
            if time.monotonic() > deadline:
                logs.stop_query(queryId=started["queryId"])
                raise LogQueryError(f"the Logs Insights query took over {_QUERY_SECONDS:g}s")
            time.sleep(_QUERY_POLL_SECONDS)


@dataclass(frozen=True)
class NotedFunction:
    """A local stack's function: its log file and the queues it polls."""

    log: str
    queue_arns: list[str] = field(default_factory=list)


class LocalFunctionLogs:
    """The local stack's functions: a log file each (local.stack)."""

    def __init__(self, functions: Mapping[str, NotedFunction]) -> None:
        self._functions = functions

    def consumer(self, queue_arn: str) -> str | None:
        for name, function in self._functions.items():
            if queue_arn in function.queue_arns:
                return name
        return None

    def lines(
        self, function: str, *, containing: str, since: datetime, until: datetime | None = None
    ) -> list[LogLine]:
        known = self._functions.get(function)
        path = Path(known.log) if known else None
        if path is None or not path.exists():
            return []
        with path.open(errors="replace") as log:
            found = (LogLine.parse(text) for text in log if containing in text)
            return [
                line
                for line in found
                if line is not None and since <= line.at and (until is None or line.at <= until)
            ]

    def last_seen(
        self,
        function: str,
        *,
        message: str,
        by: str,
        where: Mapping[str, Collection[str]],
        since: datetime,
    ) -> dict[str, datetime]:
        seen: dict[str, datetime] = {}
        for line in self.lines(function, containing=message, since=since):
            fields = line.fields
            if line.message != message or fields.get(by) in (None, ""):
                continue
            if all(str(fields.get(name)) in values for name, values in where.items()):
                key = str(fields[by])
                seen[key] = max(seen.get(key, line.at), line.at)
        return seen

    def newest(self, function: str, *, message: str, since: datetime) -> LogLine | None:
        found = [
            line
            for line in self.lines(function, containing=message, since=since)
            if line.message == message
        ]
        return max(found, key=lambda line: line.at, default=None)


@dataclass(frozen=True)
class DeadLetterQueue:
    """A dead-letter queue of the stack, as its Outputs name it."""

    name: str
    """Short and stable: `slack-forwarder` for the outputs SlackForwarderDeadLetterQueue*."""
    url: str
    arn: str


@dataclass(frozen=True)
class LocalStackNote:
    """What a running local stack tells the operating commands (in its log folder)."""

    name: str
    aws_url: str
    parameters: dict[str, str]
    outputs: dict[str, str]
    resources: dict[str, str]
    functions: dict[str, NotedFunction]

    def write(self, log_dir: Path) -> Path:
        path = log_dir / LOCAL_STACK_FILE
        path.write_text(json.dumps(asdict(self), indent=1))
        return path

    @classmethod
    def read(cls, log_dir: Path) -> LocalStackNote:
        path = log_dir / LOCAL_STACK_FILE
        if not path.exists():
            raise StackNotFoundError(
                f"no local stack runs with its logs in {log_dir}: start one with "
                "`p4f-bridge local up` (or `p4f-bridge demo --keep-running`)"
            )
        noted = json.loads(path.read_text())
        functions = {name: NotedFunction(**f) for name, f in noted.pop("functions").items()}
        return cls(**noted, functions=functions)


@dataclass(frozen=True)
class OperatedStack:
    """A stack of the bridge, deployed or local, as the operating commands see it."""

    name: str
    parameters: Mapping[str, str]
    outputs: Mapping[str, str]
    resources: Callable[[str], str]
    """The physical id of a resource of the stack, by logical id."""
    client: Callable[[str], Any]
    """A boto3 client of a service, where the stack is (the same one each time)."""
    logs: FunctionLogs
    local: bool = False

    @classmethod
    def deployed(cls, name: str, *, profile: str | None, region: str | None) -> OperatedStack:
        """The stack `name` in the account and region of the user's AWS configuration."""
        import boto3

        try:
            session = boto3.Session(profile_name=profile, region_name=region)
        except BotoCoreError as exc:
            raise StackNotFoundError(f"cannot use the AWS profile {profile!r}: {exc}") from exc
        try:
            cloudformation = session.client("cloudformation")
            [stack] = cloudformation.describe_stacks(StackName=name)["Stacks"]
        except (BotoCoreError, ClientError) as exc:
            raise StackNotFoundError(
                f"cannot read the stack {name!r} in {session.region_name or 'no region'}: "
                f"{exc} (is it in another region? --region)"
            ) from exc

        @functools.cache
        def client(service: str) -> Any:  # one a service: a client takes ~50 ms to make
            return session.client(service)  # type: ignore[call-overload]

        def resource(logical_id: str) -> str:
            detail = cloudformation.describe_stack_resource(
                StackName=name, LogicalResourceId=logical_id
            )["StackResourceDetail"]
            return str(detail["PhysicalResourceId"])

        return cls(
            name=name,
            parameters={
                p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])
            },
            outputs={o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])},
            resources=resource,
            client=client,
            logs=CloudWatchFunctionLogs(client),
        )

    @classmethod
    def running_locally(cls, log_dir: Path) -> OperatedStack:
        """The local stack running with its logs in `log_dir`."""
        from local.moto_server import moto_client

        note = LocalStackNote.read(log_dir)

        @functools.cache
        def client(service: str) -> Any:  # one a service, as for a deployed stack
            return moto_client(note.aws_url, service)

        def resource(logical_id: str) -> str:
            return note.resources[logical_id]

        return cls(
            name=note.name,
            parameters=note.parameters,
            outputs=note.outputs,
            resources=resource,
            client=client,
            logs=LocalFunctionLogs(note.functions),
            local=True,
        )

    def dead_letter_queues(self) -> list[DeadLetterQueue]:
        """Every dead-letter queue the stack's Outputs give, in their order."""
        return [
            DeadLetterQueue(
                _short_name(key.removesuffix(_DEAD_LETTER_URL)),
                url,
                self.outputs[key.removesuffix("Url") + "Arn"],
            )
            for key, url in self.outputs.items()
            if key.endswith(_DEAD_LETTER_URL) and key.removesuffix("Url") + "Arn" in self.outputs
        ]

    def dead_letter_queue(self, wanted: str) -> DeadLetterQueue:
        """A dead-letter queue by its short name (`slack-forwarder`), queue name, URL or ARN."""
        queues = self.dead_letter_queues()
        for queue in queues:
            if wanted in (queue.name, queue.url, queue.arn, queue.arn.rsplit(":", 1)[-1]):
                return queue
        known = ", ".join(queue.name for queue in queues) or "none"
        raise UnknownQueueError(f"{wanted!r} is none of the stack's dead-letter queues: {known}")

    def queues(self) -> Iterator[tuple[str, str]]:
        """The short name and URL of every queue the Outputs give that is not a DLQ."""
        for key, url in self.outputs.items():
            if key.endswith(_QUEUE_URL) and not key.endswith(_DEAD_LETTER_URL):
                yield _short_name(key.removesuffix(_QUEUE_URL)), url


def _insights_time(value: str) -> datetime:
    """A time in a Logs Insights answer: `2026-12-02 07:00:00.000` (UTC), or epoch ms."""
    if value.isdigit():
        return datetime.fromtimestamp(int(value) / 1000, UTC)
    return datetime.strptime(value, _INSIGHTS_TIME).replace(tzinfo=UTC)


def _short_name(output_prefix: str) -> str:
    """`SlackForwarder` -> `slack-forwarder`."""
    return re.sub(r"(?<!^)(?=[A-Z])", "-", output_prefix).lower()
