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
p4f-bridge reconcile                  one reconciler run against `p4f-bridge local up`
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

from p4f.envelope import utc_timestamp
from p4f.models import EventType
from p4f.signing import (
    DEFAULT_TOLERANCE_SECONDS,
    SignatureVerificationError,
    delivery_headers,
    verify,
)

if TYPE_CHECKING:
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
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    from local.warehouse.backfill import DeployedStack, ProgressBar, StackNotReadyError, backfill_of
    from p4f.backfill import BackfillError
    from p4f.budget import BudgetUnavailableError

    session = boto3.Session(region_name=args.region)
    try:
        stack = DeployedStack.read(args.stack, session.client("cloudformation"))
    except (StackNotReadyError, BotoCoreError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"Backfilling the warehouse mirror of {stack.name}:", flush=True)
    bar = ProgressBar(sys.stdout)
    try:
        done = backfill_of(stack, session.client).run(progress=bar)
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


def describe_run(report: dict[str, Any]) -> list[str]:
    """A reconciler run's report (functions/reconciler), in lines."""
    listed = ", ".join(
        _counted(count, kind.removesuffix("s")) for kind, count in report["listed"].items()
    )
    lines = [
        f"Listed {listed or 'nothing'} ({_counted(report['api_calls'], 'API call')}).",
        f"{_counted(report['missing'], 'change')} the bridge had not seen: "
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


def _counted(count: int, thing: str) -> str:
    return f"{count} {thing}{'' if count == 1 else 's'}"


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
    return parser


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
