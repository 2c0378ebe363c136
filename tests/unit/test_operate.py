"""local.operate: the operating commands' parts, on moto in this process; the commands on
the running local stack are tests/integration/test_operating.py."""

from __future__ import annotations

import io
import json
import logging
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
from moto import mock_aws

from local.cli import main
from local.moto_sqs import make_sqs_redrive
from local.operate.dead_letters import Redrive, RedriveRefusedError, depth, peek
from local.operate.replay import Replayer, ReplayError, ReplayRequest, parse_moment
from local.operate.stack import (
    CloudWatchFunctionLogs,
    LocalFunctionLogs,
    LogLine,
    NotedFunction,
    OperatedStack,
    UnknownQueueError,
)
from tests.unit.test_local_cloudformation import deploy

make_sqs_redrive()
NOW = datetime(2026, 12, 2, 9, 30, tzinfo=UTC)


@pytest.fixture
def aws() -> Iterator[boto3.Session]:
    with mock_aws():
        yield boto3.Session(region_name="us-east-1")


def clients(aws: boto3.Session) -> Callable[[str], Any]:
    def client(service: str) -> Any:
        return aws.client(service)  # type: ignore[call-overload]

    return client


def operated(aws: boto3.Session, outputs: dict[str, str], **logs: NotedFunction) -> OperatedStack:
    return OperatedStack(
        name="p4f-test",
        parameters={},
        outputs=outputs,
        resources=lambda logical_id: logical_id,
        client=clients(aws),
        logs=LocalFunctionLogs(logs),
    )


def dead_letter_queue(aws: boto3.Session, name: str) -> dict[str, str]:
    sqs = aws.client("sqs")
    url = sqs.create_queue(QueueName=f"p4f-test-{name}DeadLetterQueue")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    return {f"{name}DeadLetterQueueUrl": url, f"{name}DeadLetterQueueArn": arn["QueueArn"]}


@pytest.mark.parametrize(
    ("text", "moment"),
    [
        ("now", NOW),
        ("90m", NOW - timedelta(minutes=90)),
        ("2h", NOW - timedelta(hours=2)),
        ("7d", NOW - timedelta(days=7)),
        ("2026-12-01T08:00:00Z", datetime(2026, 12, 1, 8, tzinfo=UTC)),
        ("2026-12-01T08:00:00", datetime(2026, 12, 1, 8, tzinfo=UTC)),
        ("2026-12-01", datetime(2026, 12, 1, tzinfo=UTC)),
        ("2026-12-01T09:00:00+01:00", datetime(2026, 12, 1, 8, tzinfo=UTC)),
    ],
)
def test_times_are_now_a_time_ago_or_iso_8601(text: str, moment: datetime) -> None:
    assert parse_moment(text, NOW) == moment


def test_a_time_that_is_none_says_what_a_time_is() -> None:
    with pytest.raises(ValueError, match=r"give `now`, a time ago \(90m, 2h, 7d\) or ISO 8601"):
        parse_moment("yesterday", NOW)


def test_two_ends_of_a_replays_window_are_refused_before_the_stack_is_read(
    capsys: pytest.CaptureFixture[str],
) -> None:
    command = ["replay", "--stack", "nowhere", "--from", "2h", "--to", "1h", "--to", "now"]

    assert main(command) == 2
    assert "give one end of the window" in capsys.readouterr().err


def test_a_stack_without_an_archive_has_nothing_to_replay(aws: boto3.Session) -> None:
    replayer = Replayer(operated(aws, {"EventBusName": "bus"}), say=print, now=lambda: NOW)

    with pytest.raises(ReplayError, match="deploy it with EventArchiveRetentionDays above 0"):
        replayer.run(ReplayRequest(NOW - timedelta(hours=1), NOW))


def bus_with_rule(aws: boto3.Session, pattern: dict[str, Any]) -> OperatedStack:
    events = aws.client("events")
    bus = events.create_event_bus(Name="bus")["EventBusArn"]
    archive = events.create_archive(ArchiveName="archive", EventSourceArn=bus)["ArchiveArn"]
    events.put_rule(
        Name="p4f-test-SlackForwarderRule", EventBusName="bus", EventPattern=json.dumps(pattern)
    )
    outputs = {"EventBusName": "bus", "EventBusArn": bus, "EventArchiveArn": archive}
    return operated(aws, outputs)


def test_types_cannot_narrow_a_rule_that_matches_types_by_prefix(aws: boto3.Session) -> None:
    stack = bus_with_rule(aws, {"detail-type": [{"prefix": "payout_"}]})
    request = ReplayRequest(NOW - timedelta(hours=1), NOW, ("payout_failed",), ("slack",))

    with pytest.raises(ReplayError, match="which --types cannot narrow: replay to it without"):
        Replayer(stack, say=print, now=lambda: NOW).run(request)


def test_types_no_chosen_rule_takes_are_refused(aws: boto3.Session) -> None:
    stack = bus_with_rule(aws, {"detail-type": ["reward_approved"]})
    request = ReplayRequest(NOW - timedelta(hours=1), NOW, ("payout_failed",), ("slack",))

    with pytest.raises(ReplayError, match="none of the chosen rules takes events of type"):
        Replayer(stack, say=print, now=lambda: NOW).run(request)


def test_a_window_that_ends_before_it_starts_is_refused(aws: boto3.Session) -> None:
    stack = bus_with_rule(aws, {"source": ["pay4feedback"]})

    with pytest.raises(ReplayError, match="--from must be before --to"):
        Replayer(stack, say=print, now=lambda: NOW).run(ReplayRequest(NOW, NOW - timedelta(1)))


def test_dead_letter_queues_are_named_by_their_outputs(aws: boto3.Session) -> None:
    outputs = dead_letter_queue(aws, "SlackForwarder") | dead_letter_queue(aws, "CreateCampaign")
    stack = operated(aws, outputs | {"SlackForwarderQueueUrl": "https://queue"})

    names = [queue.name for queue in stack.dead_letter_queues()]
    assert names == ["slack-forwarder", "create-campaign"]
    slack = stack.dead_letter_queue("slack-forwarder")
    assert stack.dead_letter_queue(slack.url) == stack.dead_letter_queue(slack.arn) == slack
    assert stack.dead_letter_queue("p4f-test-SlackForwarderDeadLetterQueue") == slack
    assert list(stack.queues()) == [("slack-forwarder", "https://queue")]
    with pytest.raises(UnknownQueueError, match="slack-forwarder, create-campaign"):
        stack.dead_letter_queue("segment-forwarder")


def test_a_peek_leaves_the_messages_in_the_queue(aws: boto3.Session) -> None:
    stack = operated(aws, dead_letter_queue(aws, "SlackForwarder"))
    queue = stack.dead_letter_queue("slack-forwarder")
    event = {"detail-type": "payout_failed", "detail": {"id": "evt_1", "email": "a@b.c"}}
    aws.client("sqs").send_message(QueueUrl=queue.url, MessageBody=json.dumps(event))

    [peeked] = peek(stack, queue, 5)
    assert peeked.what == "payout_failed evt_1"  # never the content
    [again] = peek(stack, queue, 5)
    assert again.message_id == peeked.message_id
    assert again.receive_count == 2
    found = depth(stack, queue)
    assert (found.waiting, found.in_flight, found.oldest_at_least) == (1, 0, True)


def test_a_dead_letter_queue_of_no_queue_is_not_redriven(aws: boto3.Session) -> None:
    stack = operated(aws, dead_letter_queue(aws, "Warehouse"))
    queue = stack.dead_letter_queue("warehouse")
    aws.client("sqs").send_message(QueueUrl=queue.url, MessageBody="{}")

    with pytest.raises(RedriveRefusedError, match=r"\(or --local\) --from T --to warehouse"):
        Redrive(stack, say=print).run(queue)


def powertools_line(message: str, **fields: Any) -> str:
    """A line as a function's Powertools Logger writes it."""
    record = logging.LogRecord("p4f-bridge", logging.WARNING, __file__, 1, message, None, None)
    record.__dict__.update(fields)  # what `extra=` does
    return LambdaPowertoolsFormatter().format(record) + "\n"


def test_log_lines_are_powertools_json_and_nothing_else(tmp_path: Path) -> None:
    log = tmp_path / "f.log"
    log.write_text(
        "Traceback (most recent call last):\n"
        + powertools_line("event not forwarded", message_id="m-1", reason="Slack said no")
        + powertools_line("event not forwarded", message_id="m-2")
    )
    logs = LocalFunctionLogs({"f": NotedFunction(str(log), ["arn:aws:sqs:q"])})

    now = datetime.now(UTC)
    hour = timedelta(hours=1)
    [line] = logs.lines("f", containing="m-1", since=now - hour, until=now + hour)
    assert (line.level, line.message, line.fields["reason"]) == (
        "WARNING",
        "event not forwarded",
        "Slack said no",
    )
    assert logs.lines("f", containing="m-1", since=now + hour, until=now + 2 * hour) == []
    assert logs.lines("f", containing="m-1", since=now - 2 * hour, until=now - hour) == []
    assert logs.consumer("arn:aws:sqs:q") == "f"
    assert LogLine.parse("START RequestId: 1 Version: $LATEST") is None


def test_a_deployed_stacks_logs_are_found_through_lambda_and_cloudwatch(
    aws: boto3.Session,
) -> None:
    role = aws.client("iam").create_role(RoleName="r", AssumeRolePolicyDocument="{}")["Role"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("app.py", "def lambda_handler(event, context): pass")
    aws.client("lambda").create_function(
        FunctionName="p4f-test-SlackForwarderFunction",
        Runtime="python3.13",
        Role=role["Arn"],
        Handler="app.lambda_handler",
        Code={"ZipFile": code.getvalue()},
        LoggingConfig={"LogGroup": "/p4f-test/slack"},
    )
    sqs = aws.client("sqs")
    url = sqs.create_queue(QueueName="q")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    aws.client("lambda").create_event_source_mapping(
        EventSourceArn=arn["QueueArn"], FunctionName="p4f-test-SlackForwarderFunction"
    )
    logs = aws.client("logs")
    logs.create_log_group(logGroupName="/p4f-test/slack")
    logs.create_log_stream(logGroupName="/p4f-test/slack", logStreamName="s")
    written = [powertools_line("not forwarded", message_id=m) for m in ("m-1", "m-2")]
    logs.put_log_events(
        logGroupName="/p4f-test/slack",
        logStreamName="s",
        logEvents=[
            {"timestamp": int(datetime.now(UTC).timestamp() * 1000), "message": w} for w in written
        ],
    )
    moto_lambda = aws.client("lambda")

    class AwsLambda:
        """moto's Lambda, with the LoggingConfig AWS answers and moto leaves out."""

        def __getattr__(self, name: str) -> Any:
            return getattr(moto_lambda, name)

        def get_function_configuration(self, **call: Any) -> dict[str, Any]:
            answer: dict[str, Any] = moto_lambda.get_function_configuration(**call)
            return answer | {"LoggingConfig": {"LogGroup": "/p4f-test/slack"}}

    moto_clients = clients(aws)
    found = CloudWatchFunctionLogs(
        lambda service: AwsLambda() if service == "lambda" else moto_clients(service)
    )

    function = found.consumer(arn["QueueArn"])
    assert function == "p4f-test-SlackForwarderFunction"
    now, hour = datetime.now(UTC), timedelta(hours=1)
    [line] = found.lines(function, containing="m-2", since=now - hour, until=now + hour)
    assert line.fields["message_id"] == "m-2"


def test_the_archive_keeps_pay4feedbacks_events_and_not_campaign_requests(
    aws: boto3.Session,
) -> None:
    deployment = deploy(aws)
    outputs = {name: str(value) for name, value in deployment.outputs.items()}
    events: Any = aws.client("events")
    sqs = aws.client("sqs")
    bus = outputs["EventBusName"]
    consumer = sqs.create_queue(QueueName="everything")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=consumer, AttributeNames=["QueueArn"])["Attributes"]
    events.put_rule(Name="everything", EventBusName=bus, EventPattern='{"version": ["0"]}')
    target = {"Id": "q", "Arn": arn["QueueArn"]}
    events.put_targets(Rule="everything", EventBusName=bus, Targets=[target])
    sent = [("pay4feedback", "payout_failed"), ("zapier", "CreateCampaign")]
    events.put_events(
        Entries=[
            {"EventBusName": bus, "Source": source, "DetailType": kind, "Detail": '{"id": "1"}'}
            for source, kind in sent
        ]
    )
    sqs.purge_queue(QueueUrl=consumer)
    now = datetime.now(UTC)
    stack = operated(aws, outputs)

    outcome = Replayer(stack, say=print, poll_seconds=0).run(
        ReplayRequest(now - timedelta(minutes=5), now + timedelta(seconds=1), rules=("everything",))
    )

    assert outcome.ok
    replayed = sqs.receive_message(QueueUrl=consumer, MaxNumberOfMessages=10)["Messages"]
    assert [json.loads(m["Body"])["detail-type"] for m in replayed] == ["payout_failed"]


def test_the_commands_read_a_deployed_stack_from_cloudformation(
    aws: boto3.Session, capsys: pytest.CaptureFixture[str]
) -> None:
    template = {
        "Resources": {
            "SlackForwarderDeadLetterQueue": {"Type": "AWS::SQS::Queue"},
            "SlackForwarderQueue": {
                "Type": "AWS::SQS::Queue",
                "Properties": {
                    "RedrivePolicy": {
                        "deadLetterTargetArn": {
                            "Fn::GetAtt": ["SlackForwarderDeadLetterQueue", "Arn"]
                        },
                        "maxReceiveCount": 5,
                    }
                },
            },
        },
        "Outputs": {
            "SlackForwarderQueueUrl": {"Value": {"Ref": "SlackForwarderQueue"}},
            "SlackForwarderDeadLetterQueueUrl": {"Value": {"Ref": "SlackForwarderDeadLetterQueue"}},
            "SlackForwarderDeadLetterQueueArn": {
                "Value": {"Fn::GetAtt": ["SlackForwarderDeadLetterQueue", "Arn"]}
            },
        },
    }
    cloudformation = aws.client("cloudformation")
    cloudformation.create_stack(StackName="p4f-bridge", TemplateBody=json.dumps(template))
    stack = OperatedStack.deployed("p4f-bridge", profile=None, region="us-east-1")
    queue = stack.dead_letter_queue("slack-forwarder")
    aws.client("sqs").send_message(QueueUrl=queue.url, MessageBody="{}")

    assert main(["dlq", "list", "--stack", "p4f-bridge", "--region", "us-east-1"]) == 1
    assert capsys.readouterr().out.splitlines()[1].split()[:2] == ["slack-forwarder", "1"]
    assert main(["dlq", "redrive", "--stack", "p4f-bridge", "--region", "us-east-1"]) == 0
    assert "1 of 1 moved back to its queue" in capsys.readouterr().out
    assert main(["dlq", "list", "--stack", "nowhere", "--region", "us-east-1"]) == 2
    assert "cannot read the stack 'nowhere'" in capsys.readouterr().err


def test_a_type_the_archive_does_not_keep_is_refused_with_those_it_keeps(
    aws: boto3.Session,
) -> None:
    stack = bus_with_rule(aws, {"source": ["pay4feedback"]})
    request = ReplayRequest(NOW - timedelta(hours=1), NOW, ("payout_faild",))

    with pytest.raises(ReplayError, match="no events of type payout_faild; it keeps ping, "):
        Replayer(stack, say=print, now=lambda: NOW).run(request)


class Interrupted:
    """moto's EventBridge, with Ctrl-C pressed while the replay is followed."""

    def __init__(self, events: Any) -> None:
        self._events = events
        self.cancelled: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._events, name)

    def describe_replay(self, **_: Any) -> dict[str, Any]:
        raise KeyboardInterrupt

    def cancel_replay(self, ReplayName: str) -> dict[str, Any]:
        self.cancelled.append(ReplayName)
        return {}


def with_events(stack: OperatedStack, events: Any) -> OperatedStack:
    moto = stack.client
    return replace(stack, client=lambda service: events if service == "events" else moto(service))


def replay_rules(aws: boto3.Session) -> list[str]:
    rules = aws.client("events").list_rules(EventBusName="bus")["Rules"]
    return [rule["Name"] for rule in rules if rule["Name"].startswith("p4f-replay-")]


def test_ctrl_c_cancels_the_replay_and_its_rules_go(aws: boto3.Session) -> None:
    stack = bus_with_rule(aws, {"detail-type": ["payout_failed"]})
    events = Interrupted(aws.client("events"))
    replayer = Replayer(
        with_events(stack, events), say=print, now=lambda: NOW, rules_settle_seconds=0
    )
    request = ReplayRequest(NOW - timedelta(hours=1), NOW, ("payout_failed",), ("slack",))

    with pytest.raises(KeyboardInterrupt):
        replayer.run(request)

    assert len(events.cancelled) == 1
    assert replay_rules(aws) == []


def test_the_rules_made_before_a_rule_that_cannot_be_narrowed_go(aws: boto3.Session) -> None:
    stack = bus_with_rule(aws, {"detail-type": ["payout_failed"]})
    events = aws.client("events")
    fancy = json.dumps({"detail-type": [{"prefix": "payout_"}]})
    events.put_rule(
        Name="p4f-test-SlackForwarderRuleByPrefix", EventBusName="bus", EventPattern=fancy
    )
    request = ReplayRequest(NOW - timedelta(hours=1), NOW, ("payout_failed",), ("slack",))

    with pytest.raises(ReplayError, match="cannot narrow"):
        Replayer(stack, say=print, now=lambda: NOW, rules_settle_seconds=0).run(request)

    assert replay_rules(aws) == []


def test_a_redrive_of_every_queue_goes_on_past_one_it_cannot_redrive(
    aws: boto3.Session, capsys: pytest.CaptureFixture[str]
) -> None:
    sqs = aws.client("sqs")
    outputs = dead_letter_queue(aws, "Warehouse") | dead_letter_queue(aws, "SlackForwarder")
    policy = {
        "deadLetterTargetArn": outputs["SlackForwarderDeadLetterQueueArn"],
        "maxReceiveCount": 5,
    }
    sqs.create_queue(QueueName="p4f-test-slack", Attributes={"RedrivePolicy": json.dumps(policy)})
    for url in (
        outputs["WarehouseDeadLetterQueueUrl"],
        outputs["SlackForwarderDeadLetterQueueUrl"],
    ):
        sqs.send_message(QueueUrl=url, MessageBody="{}")
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {name: {"Value": value} for name, value in outputs.items()},
    }
    aws.client("cloudformation").create_stack(
        StackName="p4f-test", TemplateBody=json.dumps(template)
    )

    assert main(["dlq", "redrive", "--stack", "p4f-test", "--region", "us-east-1"]) == 1

    out, err = capsys.readouterr()
    assert "warehouse is the dead-letter queue of no queue" in err
    assert "slack-forwarder: completed, 1 of 1 moved back to its queue" in out
