"""p4f-bridge: the bridge's command line.

p4f-bridge demo [--keep-running]      run the whole bridge locally and play a scenario
p4f-bridge local up [--parameter NAME=VALUE ...]
                                      run the whole bridge locally until Ctrl-C
p4f-bridge send-event TYPE --url URL --secret SECRET
                                      send a correctly signed sample event to a receiver
p4f-bridge verify --secret S --header H --body-file F
                                      check a captured delivery's signature offline
p4f-bridge query "SQL" [--files DIR]  query the warehouse mirror (of the running local stack,
                                      or files synced from a deployed one) with DuckDB
p4f-bridge backfill --stack NAME      fill a deployed stack's warehouse mirror with snapshots
p4f-bridge status --stack NAME | --local
                                      a stack's health on one screen
p4f-bridge reconcile                  one reconciler run against `p4f-bridge local up`
p4f-bridge replay --stack NAME|--local --from T [--to T] [--to RULE] [--types T,...]
                                      replay the bus's archive for a window of time
p4f-bridge dlq list|peek|redrive --stack NAME|--local [QUEUE]
                                      the dead-letter queues: depth, messages and why, redrive
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from local.operate.display import counted
from p4f.envelope import utc_timestamp
from p4f.models import EventType
from p4f.signing import (
    DEFAULT_TOLERANCE_SECONDS,
    SignatureVerificationError,
    delivery_headers,
    verify,
)

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from local.operate import DeadLetterQueue, OperatedStack
    from local.stack import RunningStack

_TYPES = ", ".join(t.value for t in EventType)
DEFAULT_LOG_DIR = Path(".local-stack")


def _progress(message: str) -> None:
    print(f"  {message}", flush=True)


def _show_access(stack: RunningStack) -> None:
    urls = stack.urls
    signing_secret = stack.secret_value("WebhookSigningSecretArn")
    token = stack.secret_value("TriggerTokenSecretArn")
    print(
        f"""
The bridge runs locally (logs of each function in {stack.log_dir}/):
  Pay4Feedback sandbox   {urls.sandbox}    API key: {stack.api_key}
  webhook receiver       {urls.webhook}    signing secret: {signing_secret}
  campaign trigger       {urls.trigger}    token: {token}
  local Slack / Segment  {urls.slack}  /  {urls.segment}
  reward review          {urls.slack_page}    (the local Slack's page: messages, buttons to click)
  review actions         {urls.review_actions}    (Slack app Interactivity Request URL)
  AWS (moto_server)      {urls.aws}    (any credentials, region us-east-1)

Try:
  curl -H "Authorization: Bearer {stack.api_key}" {urls.sandbox}/api/v1/campaigns
  curl -X POST {urls.trigger} -H "Authorization: Bearer {token}" \\
       -H "Content-Type: application/json" \\
       -d '{{"name": "From curl", "reward": {{"amount": "2.00", "currency": "USD"}}}}'
  .venv/bin/p4f-bridge send-event payout_failed --url {urls.webhook} --secret {signing_secret}
Ctrl-C stops everything.""",
        flush=True,
    )


def _until_interrupted() -> None:
    while True:
        time.sleep(3600)


def demo(args: argparse.Namespace) -> int:
    from local.reconciling import dropped_stretch
    from local.scenario import DEMO_PARAMETERS, play
    from local.stack import LocalStack

    def say(line: str) -> None:
        print(line, flush=True)

    print("Starting the bridge on this machine:", flush=True)
    with LocalStack(log_dir=args.log_dir, progress=_progress, parameters=DEMO_PARAMETERS) as stack:
        ok = play(stack, say)
        say("\nA dropped stretch: webhooks lost, then the reconciler (p4f-bridge reconcile)")
        # Each response reviewed before the run: the reward reviewer has nothing to decide.
        stretch = dropped_stretch(stack, campaigns=1, responses_each=2, say=say)
        say(
            "Every change on the bus exactly once."
            if stretch.ok
            else f"NOT exactly once: {stretch}"
        )
        ok = ok and stretch.ok
        if args.keep_running:
            _show_access(stack)
            _until_interrupted()
    return 0 if ok else 1


def local_up(args: argparse.Namespace) -> int:
    from local.cloudformation import LocalDeployError
    from local.stack import LocalStack

    print("Starting the bridge on this machine:", flush=True)
    try:
        with LocalStack(
            log_dir=args.log_dir, progress=_progress, parameters=dict(args.parameters)
        ) as stack:
            _show_access(stack)
            _until_interrupted()
    except LocalDeployError as exc:  # a --parameter the template refuses, and why
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def send_event(args: argparse.Namespace) -> int:
    from local.sample_events import catalogue_event

    # A new id and time each send: a receiver would take a repeated id for a redelivery.
    fresh = {"id": f"evt_{uuid.uuid4().hex}", "created_at": utc_timestamp()}
    event = catalogue_event(EventType(args.type)) | fresh
    body = json.dumps(event, separators=(",", ":")).encode()
    headers = delivery_headers(body, args.secret, event_id=event["id"], event_type=event["type"])
    print(f"POST {args.url}  {event['type']} {event['id']}")
    try:
        answer = httpx.post(args.url, content=body, headers=headers, timeout=args.timeout)
    except httpx.HTTPError as exc:
        print(f"error: no answer from {args.url}: {exc}", file=sys.stderr)
        return 2
    print(f"{answer.status_code} {answer.reason_phrase}  {answer.text}")
    return 0 if answer.is_success else 1


def verify_delivery(args: argparse.Namespace) -> int:
    body = Path(args.body_file).read_bytes()
    # A delivery captured earlier is old by now: --ignore-age checks only the signature.
    tolerance = sys.maxsize if args.ignore_age else args.tolerance
    try:
        signed_at = verify(body, args.header, [args.secret], tolerance=tolerance)
    except SignatureVerificationError as exc:
        print(f"invalid: {exc}", file=sys.stderr)
        return 1
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(signed_at))
    print(f"valid: signed with this secret at {when}")
    return 0


def query_mirror(args: argparse.Namespace) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    from local.warehouse import LocalMirror, WarehouseNotEnabledError, format_table
    from local.warehouse.engine import MirrorDatabase, MirrorQueryError
    from p4f.mirror import MirrorKind

    folders = [kind.value for kind in MirrorKind]
    if args.files is not None and not any((args.files / name).is_dir() for name in folders):
        # A mistyped path would otherwise answer every query with no rows.
        print(
            f"error: {args.files} holds none of the mirror's folders ({', '.join(folders)}); "
            f"copy the mirror there first: aws s3 sync s3://<WarehouseBucketName>/ {args.files}",
            file=sys.stderr,
        )
        return 2
    try:
        if args.files is not None:
            with MirrorDatabase(args.files) as database:
                rows = database.query(args.sql)
        else:
            rows = LocalMirror.read(args.log_dir).query(args.sql)
    except WarehouseNotEnabledError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (BotoCoreError, ClientError) as exc:
        print(
            f"error: the local stack's AWS (moto) did not answer ({exc}); is it still running?",
            file=sys.stderr,
        )
        return 2
    except MirrorQueryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for line in format_table(rows):
        print(line)
    return 0


def backfill(args: argparse.Namespace) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    from local.operate import OperatedStack, StackNotFoundError
    from local.warehouse.backfill import ProgressBar, StackNotReadyError, backfill_of
    from p4f.backfill import BackfillError
    from p4f.budget import BudgetUnavailableError

    try:
        stack = OperatedStack.deployed(args.stack, profile=None, region=args.region)
        filling = backfill_of(stack)
    except (StackNotFoundError, StackNotReadyError, BotoCoreError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"Backfilling the warehouse mirror of {stack.name}:", flush=True)
    bar = ProgressBar(sys.stdout)
    try:
        done = filling.run(progress=bar)
    except (BackfillError, BudgetUnavailableError, BotoCoreError, ClientError) as exc:
        print(f"\nerror: {exc}", file=sys.stderr)
        return 1
    bar.finish(done)
    for resource_id, reason in done.refused.items():
        print(f"  refused: {resource_id}: {reason}", file=sys.stderr)
    if done.stopped:
        print(f"stopped early: {done.stopped}; run it again for the rest", file=sys.stderr)
    print(
        "Done: the rows appear once Firehose writes them (WarehouseBufferSeconds); a "
        "second run adds nothing to the current-state views."
        if done.complete
        else "Not complete: see above.",
        flush=True,
    )
    return 0 if done.complete else 1


def status(args: argparse.Namespace) -> int:
    from local.operate import StackNotFoundError
    from local.operate.status import read_status

    try:
        stack = _operated(args)
    except StackNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    report = read_status(stack)
    for line in report.lines():
        print(line)
    return report.exit_status


def reconcile(args: argparse.Namespace) -> int:
    from local.stack import RECONCILER, LocalStackError, invoke_running, reconcile_event

    try:
        report = invoke_running(args.log_dir, RECONCILER, reconcile_event())
    except LocalStackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for line in describe_run(report):
        print(line)
    return 1 if report["busy"] or report["failed"] or report["stopped"] else 0


def replay(args: argparse.Namespace) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    from local.operate import StackNotFoundError
    from local.operate.replay import Replayer, ReplayError, ReplayRequest, parse_moment

    try:
        start, ends, rules = _replay_window(args.since, args.to, parse_moment)
        stack = _operated(args)
        # Locally a replay is done at once and a rule matches as soon as it exists.
        replayer = (
            Replayer(stack, say=print, poll_seconds=0.2, rules_settle_seconds=0)
            if args.local
            else Replayer(stack, say=print)
        )
        outcome = replayer.run(ReplayRequest(start, ends, tuple(args.types or ()), rules))
    except (ValueError, StackNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (ReplayError, BotoCoreError, ClientError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    took = f"in {outcome.seconds:.0f}s"
    print(
        f"Replay {outcome.name}: {outcome.state} {took}"
        + (f": {outcome.reason}" if outcome.reason else "")
    )
    if outcome.ok:
        print(
            "Replayed events reach their consumers within minutes, in no particular order; "
            "each carries `replay-name`, and consumers drop those they already handled by "
            "detail.id."
        )
    return 0 if outcome.ok else 1


def _replay_window(
    since: str, to: list[str] | None, moment: Callable[[str], datetime]
) -> tuple[datetime, datetime, tuple[str, ...]]:
    """--from, and --to given as times (the window's end) or as where (rules or `all`)."""
    ends, rules = [], []
    for value in to or ():
        try:
            ends.append(moment(value))
        except ValueError:
            rules.append(value)
    if len(ends) > 1:
        raise ValueError("give one end of the window (--to TIME), and where with --to NAME")
    return moment(since), ends[0] if ends else moment("now"), tuple(rules)


def dead_letters(args: argparse.Namespace) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    from local.operate import StackNotFoundError
    from local.operate.stack import UnknownQueueError

    try:
        stack = _operated(args)
        queues = [stack.dead_letter_queue(args.queue)] if args.queue else stack.dead_letter_queues()
        return _DLQ_ACTIONS[args.action](stack, queues, args)
    except (StackNotFoundError, UnknownQueueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (BotoCoreError, ClientError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _dlq_list(stack: OperatedStack, queues: list[DeadLetterQueue], _: argparse.Namespace) -> int:
    from local.operate.dead_letters import depth
    from local.operate.display import age, table

    rows = [("dead-letter queue", "messages", "in flight", "oldest")]
    waiting = 0
    for queue in queues:
        found = depth(stack, queue)
        waiting += found.waiting
        oldest = age(found.oldest_seconds) if found.oldest_seconds is not None else "-"
        rows.append(
            (
                queue.name,
                str(found.waiting),
                str(found.in_flight),
                f">= {oldest}" if found.oldest_at_least else oldest,
            )
        )
    for line in table(rows, header=True):
        print(line)
    return 1 if waiting else 0


def _dlq_peek(stack: OperatedStack, queues: list[DeadLetterQueue], args: argparse.Namespace) -> int:
    from local.operate.dead_letters import peek
    from local.operate.display import age_of

    found = 0
    for queue in queues:
        messages = peek(stack, queue, args.count)
        if not messages and args.queue is None:
            continue
        print(f"{queue.name}: {counted(len(messages), 'message')} shown")
        for message in messages:
            found += 1
            print(
                f"  {message.message_id}  {message.what}  sent {age_of(message.sent_at)} ago, "
                f"received {counted(message.receive_count, 'time')}"
            )
            if message.delivery_error:
                print(f"    EventBridge could not deliver it: {message.delivery_error}")
            for line in message.logged[-args.log_lines :]:
                why = line.fields.get("reason") or line.fields.get("error") or ""
                print(
                    f"    {line.at:%H:%M:%S} {line.level} {line.message}"
                    + (f": {why}" if why else "")
                )
            if not message.logged and not message.delivery_error:
                print("    (no warning or error logged for it)")
    return 1 if found else 0


def _dlq_redrive(
    stack: OperatedStack, queues: list[DeadLetterQueue], args: argparse.Namespace
) -> int:
    from local.operate.dead_letters import Redrive, RedriveRefusedError, counts

    redrive = Redrive(stack, say=print, poll_seconds=0.2 if args.local else 2)
    failed = 0
    for queue in queues:
        if not counts(stack, queue.url)[0]:
            if args.queue is not None:
                print(f"{queue.name}: empty, nothing to redrive")
            continue
        try:
            outcome = redrive.run(queue)
        except RedriveRefusedError as exc:  # the others are still redriven
            print(f"error: {exc}", file=sys.stderr)
            failed += 1
            continue
        print(
            f"{queue.name}: {outcome.status.lower()}, {outcome.moved} of "
            f"{outcome.to_move} moved back to its queue"
            + (f" ({outcome.failure})" if outcome.failure else "")
        )
        failed += not outcome.ok
    return 1 if failed else 0


_DLQ_ACTIONS = {"list": _dlq_list, "peek": _dlq_peek, "redrive": _dlq_redrive}


def describe_run(report: dict[str, Any]) -> list[str]:
    """A reconciler run's report (functions/reconciler), in lines."""
    listed = ", ".join(
        counted(count, kind.removesuffix("s")) for kind, count in report["listed"].items()
    )
    lines = [
        f"Listed {listed or 'nothing'} ({counted(report['api_calls'], 'API call')}).",
        f"{counted(report['missing'], 'change')} the bridge had not seen: "
        f"{report['published']} published, {report['duplicates']} already brought by a "
        f"webhook, {report['busy'] + report['failed']} left for the next run.",
        *(f"  {change}" for change in report["changes"]),
        "Horizon (the oldest row each list shows): "
        + ", ".join(f"{kind} {at or '-'}" for kind, at in report["horizon"].items()),
        f"Webhook subscription: {report['subscription']}"
        + (f" (new id {report['repaired_webhook_id']})" if report["repaired_webhook_id"] else ""),
    ]
    if report["may_have_missed"]:
        lines.append(
            f"May have missed changes beyond the reach of: {', '.join(report['may_have_missed'])}"
        )
    if report["stopped"]:
        lines.append(f"Stopped early: {report['stopped']}")
    return lines


def _operated(args: argparse.Namespace) -> OperatedStack:
    """The stack `--stack NAME` (deployed) or `--local` names (raises StackNotFoundError)."""
    from local.operate import OperatedStack

    if args.local:
        return OperatedStack.running_locally(args.log_dir)
    return OperatedStack.deployed(args.stack, profile=args.profile, region=args.region)


def _add_stack_options(parser: argparse.ArgumentParser) -> None:
    """--stack NAME or --local: the stack an operating command works on."""
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--stack", metavar="NAME", help="a deployed stack's name")
    which.add_argument(
        "--local", action="store_true", help="the running local stack (p4f-bridge local up)"
    )
    parser.add_argument("--profile", help="the AWS profile to use (default: your configuration's)")
    parser.add_argument("--region", help="the stack's region (default: your configuration's)")
    parser.add_argument(
        "--log-dir",
        type=Path,
        default=DEFAULT_LOG_DIR,
        help="with --local: the running local stack's logs",
    )


def _between(least: int, most: int) -> Callable[[str], int]:
    """An argparse type: a whole number from `least` to `most`."""

    def whole(text: str) -> int:
        if not text.isdigit() or not least <= int(text) <= most:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number from {least} to {most}")
        return int(text)

    return whole


def _parameter(text: str) -> tuple[str, str]:
    name, equals, value = text.partition("=")
    if not equals or not name.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=VALUE")
    return name.strip(), value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="p4f-bridge", description=__doc__.splitlines()[0] if __doc__ else None
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    play = commands.add_parser(
        "demo",
        help="run the whole bridge locally and play a campaign's life through it",
        description="Start the local stack (moto_server, the Pay4Feedback sandbox, local Slack "
        "and Segment, every function of template.yaml), play a scenario and check that every "
        "event arrived exactly once. Exit status 0 when it did.",
    )
    play.add_argument(
        "--keep-running", action="store_true", help="stay up afterwards, until Ctrl-C"
    )
    play.add_argument("--log-dir", type=Path, default=DEFAULT_LOG_DIR, help="where logs go")
    play.set_defaults(run=demo)

    local = commands.add_parser(
        "local", help="the local stack", description="Run the whole bridge on this machine."
    )
    local_commands = local.add_subparsers(dest="local_command", required=True, metavar="COMMAND")
    up = local_commands.add_parser(
        "up",
        help="start the local stack and keep it up until Ctrl-C",
        description="Start the local stack and print its URLs, the sandbox's API key, the "
        "webhook signing secret and the trigger token, to play with it by hand.",
    )
    up.add_argument("--log-dir", type=Path, default=DEFAULT_LOG_DIR, help="where logs go")
    up.add_argument(
        "--parameter",
        dest="parameters",
        action="append",
        default=[],
        type=_parameter,
        metavar="NAME=VALUE",
        help="a template.yaml Parameter's value (repeat for more), e.g. LogLevel=DEBUG",
    )
    up.set_defaults(run=local_up)

    send = commands.add_parser(
        "send-event",
        help="send a correctly signed sample of a catalogue event to a webhook receiver",
        description="Send a correctly signed sample of a catalogue event, as Pay4Feedback "
        "would, to any receiver (local or deployed), and print its answer.",
    )
    send.add_argument("type", choices=[t.value for t in EventType], metavar="TYPE", help=_TYPES)
    send.add_argument("--url", required=True, help="the receiver's URL (stack output WebhookUrl)")
    send.add_argument("--secret", required=True, help="the signing secret to sign with")
    send.add_argument("--timeout", type=float, default=10, help="seconds to wait (default 10)")
    send.set_defaults(run=send_event)

    check = commands.add_parser(
        "verify",
        help="check a captured delivery's signature offline",
        description="Check the P4F-Signature header of a captured delivery against its raw body.",
    )
    check.add_argument("--secret", required=True, help="the signing secret")
    check.add_argument("--header", required=True, help="the P4F-Signature header's value")
    check.add_argument("--body-file", required=True, help="the raw body, byte for byte")
    check.add_argument(
        "--tolerance",
        type=int,
        default=DEFAULT_TOLERANCE_SECONDS,
        help=f"seconds a timestamp may be from now (default {DEFAULT_TOLERANCE_SECONDS})",
    )
    check.add_argument(
        "--ignore-age",
        action="store_true",
        help="accept an old timestamp: only whether the signature matches is checked",
    )
    check.set_defaults(run=verify_delivery)

    mirror = commands.add_parser(
        "query",
        help="query the warehouse mirror with DuckDB",
        description="Run SQL over the warehouse mirror in DuckDB, with Athena's tables "
        "(campaigns, responses, payouts) and views (campaigns_current, responses_current, "
        "payouts_current), and print the rows. By default the mirror of the local stack "
        "running with --log-dir; with --files, a folder of the mirror's files, e.g. "
        "`aws s3 sync s3://<WarehouseBucketName> DIR` of a deployed stack.",
    )
    mirror.add_argument("sql", metavar="SQL", help="one statement, e.g. 'SELECT * FROM payouts'")
    mirror.add_argument(
        "--log-dir", type=Path, default=DEFAULT_LOG_DIR, help="the running local stack's logs"
    )
    mirror.add_argument(
        "--files", type=Path, help="a folder with the mirror's files (<kind>/dt=.../*.gz)"
    )
    mirror.set_defaults(run=query_mirror)

    fill = commands.add_parser(
        "backfill",
        help="fill a deployed stack's warehouse mirror with snapshots of what the API lists",
        description="Put a snapshot of every campaign and response the Pay4Feedback API lists "
        "(every page in API v1.1, the newest 500 of each in v1.0) on the stack's bus, where "
        "the warehouse mirror's rules make rows of them; inside the background share of the "
        "stack's API budget. Payouts have no list in the API and cannot be backfilled. "
        "Uses your AWS credentials (README, Warehouse, says which permissions).",
    )
    fill.add_argument("--stack", required=True, help="the deployed stack's name")
    fill.add_argument("--region", help="its region (default: your AWS configuration's)")
    fill.set_defaults(run=backfill)

    health = commands.add_parser(
        "status",
        help="a stack's health on one screen: subscription, queues, alarms, events, API budget",
        description="Show on one screen: whether the stack's webhook subscription is registered "
        "at Pay4Feedback (asked through the stack's API budget, as an interactive caller); "
        "every queue and dead-letter queue with its messages, in flight and oldest age; the "
        "stack's alarms in ALARM and why; the last accepted event of each type (7 days) and "
        "the reconciler's last run; the API budget now and its use in the last hour; the "
        "webhook receiver's outcomes in the last hour. Nothing secret is shown. Exit status 0 "
        "when healthy, 1 when something needs attention (the subscription missing or unknown, "
        "a dead-letter queue with messages, an alarm in ALARM, a part that cannot be read), 2 "
        "when the stack cannot be read. With --stack it needs: "
        "cloudformation:DescribeStacks and DescribeStackResource on the stack; "
        "secretsmanager:GetSecretValue on the API key's secret; dynamodb:GetItem and "
        "UpdateItem on ApiBudgetTable; sqs:GetQueueAttributes on its queues; "
        "cloudwatch:DescribeAlarms, ListMetrics and GetMetricData; "
        "lambda:GetFunctionConfiguration and logs:StartQuery, GetQueryResults (and StopQuery) "
        "on the receiver's and the reconciler's log groups.",
    )
    _add_stack_options(health)
    health.set_defaults(run=status)

    run = commands.add_parser(
        "reconcile",
        help="one reconciler run against the running local stack; print what it found",
        description="Invoke the reconciler once, as its schedule would, against the local "
        "stack `p4f-bridge local up` runs with --log-dir: it lists the sandbox's campaigns and "
        "responses, publishes the state changes no webhook brought, checks the webhook "
        "subscription, and this prints its report. Exit status 1 when some change was left "
        "for the next run (being published by a webhook at the same moment, or failed) or the "
        "run stopped early (the API did not answer, its deadline), 2 when no local stack "
        "runs.",
    )
    run.add_argument(
        "--log-dir", type=Path, default=DEFAULT_LOG_DIR, help="the running local stack's logs"
    )
    run.set_defaults(run=reconcile)
    _add_operating_commands(commands)
    return parser


def _add_operating_commands(commands: argparse._SubParsersAction[Any]) -> None:
    """replay, dlq (and status): on a deployed stack or the running local stack."""
    from local.operate.dead_letters import PEEK_MOST

    again = commands.add_parser(
        "replay",
        help="send the archive's events of a window of time to the bus again",
        description="Start an EventBridge replay of the stack's archive (Parameter "
        "EventArchiveRetentionDays) for the window --from .. --to, to every rule of the bus or "
        "only to the ones named, optionally of some event types only, follow it and print its "
        "outcome. Times: `now`, a time ago (90m, 2h, 7d) or ISO 8601 (UTC unless it says). "
        "Replayed events arrive within minutes, in no particular order; consumers drop those "
        "they already handled by detail.id (README, Operating). Needs events:StartReplay, "
        "DescribeReplay, CancelReplay, ListRules; with --types also PutRule, PutTargets, "
        "ListTargetsByRule, RemoveTargets, DeleteRule (and iam:PassRole for a target's role).",
    )
    _add_stack_options(again)
    again.add_argument("--from", dest="since", required=True, metavar="TIME", help="the start")
    again.add_argument(
        "--to",
        action="append",
        metavar="TIME|NAME",
        help="a time: the window's end (default now); a name: a rule of the bus to replay to, "
        "or part of its name (slack-forwarder, segment-forwarder, reward-review, warehouse, "
        "your own rule's name; repeat for more), `all` (the default): every rule",
    )
    again.add_argument(
        "--types",
        type=lambda text: [one.strip() for one in text.split(",") if one.strip()],
        metavar="TYPE,...",
        help="only events of these types (detail-type), e.g. payout_failed,payout_completed",
    )
    again.set_defaults(run=replay)

    dlq = commands.add_parser(
        "dlq",
        help="the stack's dead-letter queues: list, peek, redrive",
        description="The stack's dead-letter queues. QUEUE: a name `dlq list` shows "
        "(slack-forwarder, ...), or the queue's name, URL or ARN; without it, every one. "
        "Exit status 1 when messages wait (list, peek) or a redrive did not complete, 2 when "
        "the stack or the queue is not found.",
    )
    dlq_actions = dlq.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action, summary, needs in (
        (
            "list",
            "each dead-letter queue's depth and the age of its oldest message",
            "sqs:GetQueueAttributes, cloudwatch:GetMetricData (and, for an age CloudWatch "
            "has not, sqs:ReceiveMessage and ChangeMessageVisibility)",
        ),
        (
            "peek",
            "the first messages (--count), each with the event it holds (type and id, never "
            "its content) and the warnings and errors the function that polls its source "
            "queue logged for it; the messages stay",
            "sqs:ReceiveMessage, ChangeMessageVisibility, GetQueueAttributes, "
            "ListDeadLetterSourceQueues, lambda:ListEventSourceMappings, "
            "GetFunctionConfiguration, logs:FilterLogEvents",
        ),
        (
            "redrive",
            "the messages back to the queue they came from (SQS's message move task), "
            "followed to the end, for the function to handle again",
            "sqs:GetQueueAttributes, ListDeadLetterSourceQueues, StartMessageMoveTask, "
            "ListMessageMoveTasks (and sqs:ReceiveMessage, DeleteMessage on it, SendMessage "
            "on the source queue)",
        ),
    ):
        one = dlq_actions.add_parser(
            action, help=summary, description=f"{summary[0].upper()}{summary[1:]}. Needs {needs}."
        )
        one.add_argument("queue", nargs="?", metavar="QUEUE", help="one dead-letter queue")
        _add_stack_options(one)
        one.set_defaults(run=dead_letters)
        if action == "peek":
            one.add_argument(
                "--count",
                type=_between(1, PEEK_MOST),
                default=5,
                help=f"how many messages (default 5, at most {PEEK_MOST})",
            )
            one.add_argument(
                "--log-lines",
                type=_between(1, 100),
                default=3,
                help="logged lines shown a message, the newest (default 3)",
            )


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        status: int = args.run(args)
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
        return 130
    return status


if __name__ == "__main__":
    sys.exit(main())
