"""The whole bridge on one machine, with no AWS account and no Docker.

    with LocalStack(log_dir=Path(".local-stack")) as stack:
        stack.urls            # the receiver's and the trigger's function URLs, the sandbox ...

    LocalStack(log_dir=..., parameters={"LogLevel": "DEBUG"})   # template.yaml's Parameters
    LocalStack(log_dir=..., aws_fault_rate=0.05, visibility_timeout=10)   # the chaos soak:
        # the functions' AWS calls through local.aws_faults.FaultProxy (armed by the caller:
        # stack.aws_faults.armed = True), and the queues' failed records back within seconds

What it starts, in order, and stops in reverse (also on Ctrl-C and on failure):

1. moto_server, standing in for AWS;
2. the Pay4Feedback sandbox, and local Slack and Segment receivers;
3. in moto, the secrets template.yaml expects to exist already (the API key; Slack's and
   Segment's), then every resource template.yaml declares (local.cloudformation);
4. one process per function (local.lambda_host), with the environment the template gives it
   and AWS pointed at moto: function URLs served over local HTTP, SQS-fed functions polled
   as Lambda's event source mapping would;
5. a consumer queue with a rule on the bridge's bus, standing in for your own consumers;
6. the hop moto does not make, from the bus's rules to their Firehose streams
   (local.firehose_relay: the warehouse mirror's rows, which moto's Firehose writes to S3);
7. each custom resource, invoked through its function as CloudFormation would: the
   subscription manager registers the receiver's URL at the sandbox (the deploy path).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from local.asgi_server import ThreadedAsgiServer
from local.aws_faults import FaultProxy
from local.cloudformation import CustomResource, Deployment, LocalDeployer, LocalFunction
from local.embedded_metrics import EmbeddedMetricPublisher, MetricSink
from local.firehose_relay import FirehoseRelay
from local.lambda_events import ACCOUNT, REGION, custom_resource_request, scheduled_event
from local.lambda_host import READY, RESULT, HostConfig, SqsSourceConfig
from local.moto_server import MotoServer, free_port, moto_client
from local.operate.stack import LocalStackNote, NotedFunction, StackNotFoundError
from local.processes import wait_or_kill
from local.sandbox import SandboxAdmin, SandboxServer, SandboxSettings
from local.segment_receiver import LocalSegment
from local.slack_receiver import LocalSlack
from local.template import Template
from local.warehouse import BUCKET_OUTPUT, LocalMirror

if TYPE_CHECKING:
    from types import TracebackType

    from starlette.types import ASGIApp

ROOT = Path(__file__).resolve().parent.parent
STACK_NAME = "p4f-local"
LOCAL_DEFAULTS = {
    "EnableSlackForwarder": "true",
    "EnableSegmentForwarder": "true",
    "EnableWarehouseMirror": "true",
    "SegmentBatchWindowSeconds": "2",
}
"""Parameters the local stack sets unless told otherwise: every part of the bridge runs, and
Segment's batches gather for 2 s rather than 20 (a demo shows its events soon)."""
STACK_OWNED = frozenset(
    {
        "ApiKeySecretArn",
        "SlackSecretArn",
        "SegmentSecretArn",
        "Pay4FeedbackBaseUrl",
        "RewardReviewSlackSecretArn",
        "SlackSigningSecretArn",
    }
)
"""Parameters that point at what the local stack itself starts: not for its user to set."""
HOST_START_SECONDS = 30.0
_LOG_TAIL_LINES = 20
RECONCILER = "ReconcilerFunction"
INVOCATIONS_FILE = "invocations.json"
"""In the log directory while a stack runs: how to invoke its functions from elsewhere."""


class LocalStackError(RuntimeError):
    """A part of the local stack did not start."""


Progress = Callable[[str], None]


class FunctionHost:
    """One function's process (local.lambda_host), its output kept in a log file (and its
    embedded metrics put into CloudWatch, as Lambda does, when given `metrics`)."""

    def __init__(
        self,
        config: HostConfig,
        *,
        log_dir: Path,
        environment: dict[str, str],
        metrics: MetricSink | None = None,
    ) -> None:
        self.config = config
        self._metrics = metrics
        self.log_path = log_dir / f"{config.function_name}.log"
        self._config_path = log_dir / f"{config.function_name}.json"
        self._environment = environment
        self._process: subprocess.Popen[str] | None = None
        self._ready = threading.Event()

    def start(self) -> None:
        self.config.write(self._config_path)
        process = subprocess.Popen(  # noqa: S603 (our own module, our own interpreter)
            [sys.executable, "-m", "local.lambda_host", str(self._config_path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=ROOT,
            env=self._environment,
            # Its own session: Ctrl-C reaches the stack, which stops the hosts in order.
            start_new_session=True,
        )
        self._process = process
        threading.Thread(
            target=self._copy_output,
            args=(process.stdout,),
            name=f"log-{self.config.function_name}",
        ).start()

    def _copy_output(self, output: IO[str]) -> None:
        with self.log_path.open("a") as log:
            for line in output:
                if line.strip() == READY:
                    self._ready.set()
                log.write(line)
                log.flush()
                if self._metrics is not None:
                    self._metrics.offer(line)

    def wait_ready(self, timeout: float = HOST_START_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.05):
            exited = self._process is None or self._process.poll() is not None
            if exited or time.monotonic() > deadline:
                raise LocalStackError(
                    f"{self.config.function_name} did not start; the end of "
                    f"{self.log_path}:\n{self.log_tail()}"
                )

    def log_tail(self) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text().splitlines()[-_LOG_TAIL_LINES:])

    def stop(self) -> None:
        if self._process is None:
            return
        if self._process.stdin is not None:
            self._process.stdin.close()  # the host stops when its stdin closes
        wait_or_kill(self._process, timeout=10)
        self._process = None


class _CloudFormationResponses:
    """CloudFormation's side of custom resources: the URL their answers are PUT to."""

    def __init__(self) -> None:
        self.answers: dict[str, dict[str, Any]] = {}

        async def receive(request: Request) -> Response:
            self.answers[request.path_params["request_id"]] = json.loads(await request.body())
            return Response(status_code=200)

        self.app = Starlette(routes=[Route("/{request_id}", receive, methods=["PUT"])])


@dataclass(frozen=True)
class StackUrls:
    webhook: str
    trigger: str | None
    sandbox: str
    aws: str
    slack: str
    segment: str
    review_actions: str | None = None
    """The Slack app's Interactivity Request URL (Output ReviewActionsUrl)."""

    @property
    def slack_page(self) -> str:
        """The local Slack's page: its messages, their buttons clickable."""
        return f"{self.slack}/"


@dataclass(frozen=True)
class _Functions:
    """How the template's functions run here: their configs, environments and processes."""

    deployment: Deployment
    aws: MotoServer
    segment_url: str
    log_dir: Path
    aws_url: str
    """Where the functions reach AWS: moto_server, or a FaultProxy in front of it."""
    slack_api_url: str = ""
    """The local Slack's Web API, for the reward reviewer's bot (SLACK_API_URL)."""
    metrics: MetricSink | None = None
    """Where the functions' embedded metrics go (CloudWatch in moto), as Lambda sends them."""

    def hosted(self) -> list[LocalFunction]:
        """The functions something invokes all the time: a function URL or an SQS queue."""
        return [f for f in self.deployment.functions.values() if f.url or f.sqs_sources]

    def config(self, function: LocalFunction, **invocation: Any) -> HostConfig:
        environment = function.environment
        if "SEGMENT_ENDPOINT" in environment:  # the one address the template fixes
            environment = environment | {"SEGMENT_ENDPOINT": self.segment_url}
        if "REVIEW_SLACK_SECRET_ARN" in environment:  # Slack's Web API: the local one
            environment = environment | {"SLACK_API_URL": self.slack_api_url}
        return HostConfig(
            function_name=function.name,
            code_dir=str(function.code_dir),
            handler=function.handler,
            timeout_seconds=function.timeout_seconds,
            memory_mb=function.memory_mb,
            environment=environment,
            url_port=int(function.url.rstrip("/").rsplit(":", 1)[1]) if function.url else None,
            sqs_sources=[
                SqsSourceConfig(
                    queue_url=source.queue_url,
                    batch_size=source.batch_size,
                    maximum_concurrency=source.maximum_concurrency or 1,
                    report_batch_item_failures=source.report_batch_item_failures,
                    batching_window=source.batching_window,
                )
                for source in function.sqs_sources
            ],
            **invocation,
        )

    def environment(self, function: LocalFunction) -> dict[str, str]:
        """The process environment of a function's host (its own variables are in its config)."""
        return {
            "PATH": os.environ.get("PATH", ""),
            "PYTHONUNBUFFERED": "1",
            "AWS_LAMBDA_FUNCTION_NAME": function.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_mb),
            # No X-Ray daemon here: Powertools Tracer records nothing.
            "POWERTOOLS_TRACE_DISABLED": "true",
            **self.aws.environment(),
            "AWS_ENDPOINT_URL": self.aws_url,
        }

    def host(self, function: LocalFunction) -> FunctionHost:
        return FunctionHost(
            self.config(function),
            log_dir=self.log_dir,
            environment=self.environment(function),
            metrics=self.metrics,
        )

    def invoke(self, logical_id: str, event: dict[str, Any]) -> Any:
        """Invoke a function once, in a fresh process (as a cold Lambda would)."""
        function = self.deployment.functions[logical_id]
        return invoke_once(
            self.config(function, invoke_event=event),
            self.environment(function),
            self.log_dir,
            metrics=self.metrics,
        )

    def write_invocations(self) -> None:
        """Where another process finds how to invoke each function (`invoke_running`)."""
        invocations = {
            logical_id: {
                "config": asdict(self.config(function)),
                "environment": self.environment(function),
            }
            for logical_id, function in self.deployment.functions.items()
        }
        (self.log_dir / INVOCATIONS_FILE).write_text(json.dumps(invocations, indent=1))


def reconcile_event() -> dict[str, Any]:
    """The event the reconciler's schedule (ReconcilerSchedule) sends it."""
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return scheduled_event(f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{STACK_NAME}-schedule", now)


def invoke_once(
    config: HostConfig,
    environment: dict[str, str],
    log_dir: Path,
    *,
    metrics: MetricSink | None = None,
) -> Any:
    """Invoke a function once with `config.invoke_event`, in a fresh process; its answer
    (its output in its log file, and its embedded metrics to `metrics`)."""
    config_path = log_dir / f"{config.function_name}-invoke-{uuid.uuid4().hex[:8]}.json"
    config.write(config_path)
    log_path = log_dir / f"{config.function_name}.log"
    with log_path.open("a") as log:
        completed = subprocess.run(  # noqa: S603 (our own module, our own interpreter)
            [sys.executable, "-m", "local.lambda_host", str(config_path)],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            cwd=ROOT,
            env=environment,
            timeout=config.timeout_seconds + 10,
            check=False,
        )
        log.write(completed.stdout)
    lines = completed.stdout.splitlines()
    if metrics is not None:
        for line in lines:
            metrics.offer(line)
    results = [line for line in lines if line.startswith(RESULT)]
    if completed.returncode != 0 or not results:
        raise LocalStackError(f"{config.function_name} failed; see {log_path}")
    return json.loads(results[-1].removeprefix(RESULT))


def invoke_running(log_dir: Path, logical_id: str, event: dict[str, Any]) -> Any:
    """Invoke a function of the local stack running with `log_dir` (in another process)."""
    path = log_dir / INVOCATIONS_FILE
    if not path.exists():
        raise LocalStackError(
            f"no local stack runs with --log-dir {log_dir}: start `p4f-bridge local up` first"
        )
    invocation = json.loads(path.read_text())[logical_id]
    config = HostConfig.from_dict(invocation["config"] | {"invoke_event": event})
    try:
        aws_url = LocalStackNote.read(log_dir).aws_url
    except StackNotFoundError:  # a stack from before the note: its metrics are not published
        return invoke_once(config, invocation["environment"], log_dir)
    with EmbeddedMetricPublisher(moto_client(aws_url, "cloudwatch")) as metrics:
        return invoke_once(config, invocation["environment"], log_dir, metrics=metrics)


@dataclass(frozen=True)
class RunningStack:
    """A started local stack: what its user needs."""

    api_key: str
    """The sandbox tenant's API key (also in the stack's API key secret)."""
    urls: StackUrls
    deployment: Deployment
    aws: MotoServer
    slack: LocalSlack
    segment: LocalSegment
    consumer_queue_url: str
    """A queue a rule on the bus fills with every event: your own consumer, here."""
    log_dir: Path
    functions: _Functions
    aws_faults: FaultProxy | None = None
    """What stands between the functions and AWS when the stack was asked for faults."""
    firehose: FirehoseRelay | None = None
    """What stands in for the bus rules' Firehose targets, when the template has any."""

    def admin(self) -> SandboxAdmin:
        """The sandbox's admin endpoints, for this stack's tenant."""
        return SandboxAdmin(self.urls.sandbox, self.api_key)

    def reconcile(self) -> dict[str, Any]:
        """One run of the reconciler, as its schedule starts it; the run's report."""
        report: dict[str, Any] = self.functions.invoke(RECONCILER, reconcile_event())
        return report

    def secret_value(self, output: str) -> str:
        """The value of the secret a stack output names (e.g. WebhookSigningSecretArn)."""
        value: str = self.aws.client("secretsmanager").get_secret_value(
            SecretId=self.deployment.outputs[output]
        )["SecretString"]
        return value


class LocalStack:
    """Every part of the bridge on this machine, while the `with` block runs."""

    def __init__(
        self,
        *,
        log_dir: Path,
        progress: Progress = lambda _: None,
        webhook_retry_base: float = 1.0,
        parameters: Mapping[str, str] | None = None,
        aws_fault_rate: float = 0.0,
        aws_fault_seed: int = 0,
        visibility_timeout: int | None = None,
    ) -> None:
        """`parameters`: values of template.yaml's Parameters, over `LOCAL_DEFAULTS`.
        `aws_fault_rate`: the share of the functions' AWS calls that meet a fault once
        `aws_faults.armed` is set. `visibility_timeout`: seconds, for every queue a
        function polls, instead of the template's."""
        owned = STACK_OWNED & set(parameters or {})
        if owned:
            raise ValueError(
                f"the local stack sets {sorted(owned)} itself (its sandbox, secrets in moto)"
            )
        self._parameters = LOCAL_DEFAULTS | dict(parameters or {})
        self._log_dir = log_dir
        self._progress = progress
        self._webhook_retry_base = webhook_retry_base
        self._aws_fault_rate = aws_fault_rate
        self._aws_fault_seed = aws_fault_seed
        self._visibility_timeout = visibility_timeout
        self._exit = ExitStack()

    def __enter__(self) -> RunningStack:
        self._log_dir.mkdir(parents=True, exist_ok=True)
        try:
            return self._start()
        except BaseException:
            self._exit.close()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._progress("stopping the local stack")
        self._exit.close()

    def _step[T](self, what: str, action: Callable[[], T]) -> T:
        started = time.monotonic()
        self._progress(f"starting {what} ...")
        result = action()
        self._progress(f"started {what} ({time.monotonic() - started:.1f}s)")
        return result

    def _serve(self, app: ASGIApp, name: str) -> str:
        return self._exit.enter_context(ThreadedAsgiServer(app, name=name)).url

    def _start(self) -> RunningStack:
        api_key = f"p4f_test_local_{secrets.token_hex(8)}"
        aws = self._step("moto_server (AWS)", lambda: self._exit.enter_context(MotoServer()))
        settings = SandboxSettings(api_keys=(api_key,), webhook_retry_base=self._webhook_retry_base)
        sandbox = self._step(
            "the Pay4Feedback sandbox", lambda: self._exit.enter_context(SandboxServer(settings))
        )
        slack, segment, cfn = LocalSlack(), LocalSegment(), _CloudFormationResponses()
        slack_url, segment_url, cfn_url = self._step(
            "local Slack and Segment",
            lambda: (
                self._serve(slack.app, "local Slack"),
                self._serve(segment.app, "local Segment"),
                self._serve(cfn.app, "CloudFormation responses"),
            ),
        )
        secrets_in_moto = {
            "ApiKeySecretArn": api_key,
            "SlackSecretArn": json.dumps({"webhook_url": f"{slack_url}{slack.webhook_path}"}),
            "SegmentSecretArn": segment.write_key,
            # The reward review's Slack app: its bot, and the secret that signs its clicks.
            "RewardReviewSlackSecretArn": json.dumps(
                {"bot_token": slack.bot_token, "channel": min(slack.channels)}
            ),
            "SlackSigningSecretArn": slack.signing_secret,
        }
        deployment = self._step(
            "template.yaml's resources in moto",
            lambda: _deploy(aws, sandbox.url, secrets_in_moto, self._parameters),
        )
        faults = self._aws_faults(aws)
        functions_aws = self._serve(faults.app, "AWS faults") if faults else aws.url
        # What Lambda does with the functions' embedded metric format (local.embedded_metrics).
        metrics = self._exit.enter_context(EmbeddedMetricPublisher(aws.client("cloudwatch")))
        slack.base_url = slack_url
        slack.interactivity_url = deployment.outputs.get("ReviewActionsUrl")
        functions = _Functions(
            deployment,
            aws,
            segment_url,
            self._log_dir,
            functions_aws,
            slack_api_url=f"{slack_url}/api",
            metrics=metrics,
        )
        if self._visibility_timeout is not None:
            _shorten_visibility(aws, deployment, self._visibility_timeout)
        self._step(
            f"{len(functions.hosted())} functions, a process each", lambda: self._host(functions)
        )
        functions.write_invocations()
        self._exit.callback((self._log_dir / INVOCATIONS_FILE).unlink, missing_ok=True)
        # Before the custom resource: the subscription's first event (ping) reaches it too.
        consumer = self._step(
            "a consumer of the bridge's bus", lambda: _add_bus_consumer(aws, deployment)
        )
        firehose = (
            self._step(
                f"the bus's {len(deployment.firehose_targets)} Firehose targets",
                lambda: self._relay_to_firehose(aws, deployment),
            )
            if deployment.firehose_targets
            else None
        )
        for resource in deployment.custom_resources:
            self._step(
                f"custom resource {resource.logical_id}",
                partial(self._create, resource, functions, cfn, cfn_url),
            )
        # Where `p4f-bridge replay|dlq|status --local`, in another process, find the stack
        # (its custom resources' physical ids included).
        self._exit.callback(_note(aws, deployment, self._log_dir).unlink, missing_ok=True)
        return RunningStack(
            api_key=api_key,
            urls=StackUrls(
                webhook=deployment.outputs["WebhookUrl"],
                trigger=deployment.outputs.get("CampaignTriggerUrl"),
                sandbox=sandbox.url,
                aws=aws.url,
                slack=slack_url,
                segment=segment_url,
                review_actions=deployment.outputs.get("ReviewActionsUrl"),
            ),
            deployment=deployment,
            aws=aws,
            slack=slack,
            segment=segment,
            consumer_queue_url=consumer,
            log_dir=self._log_dir,
            functions=functions,
            aws_faults=faults,
            firehose=firehose,
        )

    def _aws_faults(self, aws: MotoServer) -> FaultProxy | None:
        if not self._aws_fault_rate:
            return None
        return FaultProxy(aws.url, rate=self._aws_fault_rate, seed=self._aws_fault_seed)

    def _relay_to_firehose(self, aws: MotoServer, deployment: Deployment) -> FirehoseRelay:
        relay = self._exit.enter_context(
            FirehoseRelay(aws.client("sqs"), aws.client("firehose"), deployment.firehose_targets)
        )
        if BUCKET_OUTPUT in deployment.outputs:
            # Where `p4f-bridge query`, in another process, finds the mirror.
            mirror = LocalMirror.of(deployment.outputs, aws.url, self._log_dir)
            self._exit.callback(mirror.write(self._log_dir).unlink, missing_ok=True)
        return relay

    def _host(self, functions: _Functions) -> None:
        hosts = [functions.host(function) for function in functions.hosted()]
        for host in hosts:
            self._exit.callback(host.stop)
            host.start()
        for host in hosts:
            host.wait_ready()

    def _create(
        self,
        resource: CustomResource,
        functions: _Functions,
        cfn: _CloudFormationResponses,
        cfn_url: str,
    ) -> None:
        def request(request_type: str, physical_id: str | None = None) -> dict[str, Any]:
            request_id = str(uuid.uuid4())
            event = custom_resource_request(
                request_type,
                resource.properties,
                response_url=f"{cfn_url}/{request_id}",
                request_id=request_id,
                logical_resource_id=resource.logical_id,
                resource_type=resource.resource_type,
                stack_name=STACK_NAME,
                physical_resource_id=physical_id,
            )
            functions.invoke(resource.function_logical_id, event)
            if request_id not in cfn.answers:
                raise LocalStackError(f"{resource.logical_id} never answered CloudFormation")
            return cfn.answers[request_id]

        answer = request("Create")
        if answer["Status"] != "SUCCESS":
            raise LocalStackError(f"{resource.logical_id} failed: {answer['Reason']}")
        _created(functions.deployment, resource.logical_id, answer["PhysicalResourceId"])

        def delete() -> None:
            self._progress(f"deleting custom resource {resource.logical_id}")
            request("Delete", answer["PhysicalResourceId"])

        self._exit.callback(delete)


def _deploy(
    aws: MotoServer,
    sandbox_url: str,
    secret_values: dict[str, str],
    parameters: Mapping[str, str],
) -> Deployment:
    """template.yaml in moto with `parameters`, pointed at the sandbox and local receivers.

    The secrets a deployer creates before `sam deploy` (README, Deploy) are made first.
    """
    secretsmanager = aws.client("secretsmanager")
    secret_arns = {
        parameter: secretsmanager.create_secret(
            Name=f"{STACK_NAME}/{parameter}", SecretString=value
        )["ARN"]
        for parameter, value in secret_values.items()
    }
    template = Template.load()
    function_urls = {
        logical_id: f"http://127.0.0.1:{free_port()}/" for logical_id in template.url_functions()
    }
    return LocalDeployer(
        template,
        aws.client,
        stack_name=STACK_NAME,
        parameters={**parameters, **secret_arns, "Pay4FeedbackBaseUrl": sandbox_url},
        function_urls=function_urls,
        root=ROOT,
    ).deploy()


def _created(deployment: Deployment, logical_id: str, physical_id: str) -> None:
    """A custom resource's physical id, as CloudFormation knows it once it answered: in the
    resources, and in the Outputs that !Ref it (deployed before it, as `pending-...`)."""
    pending = deployment.resources.get(logical_id)
    deployment.resources[logical_id] = physical_id
    for name, value in deployment.outputs.items():
        if pending is not None and value == pending:
            deployment.outputs[name] = physical_id


def _note(aws: MotoServer, deployment: Deployment, log_dir: Path) -> Path:
    return LocalStackNote(
        name=STACK_NAME,
        aws_url=aws.url,
        parameters=deployment.parameters,
        outputs={name: str(value) for name, value in deployment.outputs.items()},
        resources=deployment.resources,
        functions={
            function.name: NotedFunction(
                log=str((log_dir / f"{function.name}.log").resolve()),
                queue_arns=[source.queue_arn for source in function.sqs_sources],
            )
            for function in deployment.functions.values()
        },
    ).write(log_dir)


def _shorten_visibility(aws: MotoServer, deployment: Deployment, seconds: int) -> None:
    """Every queue a function polls: its failed records visible again after `seconds`."""
    sqs = aws.client("sqs")
    for function in deployment.functions.values():
        for source in function.sqs_sources:
            sqs.set_queue_attributes(
                QueueUrl=source.queue_url, Attributes={"VisibilityTimeout": str(seconds)}
            )


def _add_bus_consumer(aws: MotoServer, deployment: Deployment) -> str:
    """A queue that a rule on the bus fills with every event the bridge publishes."""
    sqs, events = aws.client("sqs"), aws.client("events")
    name = f"{STACK_NAME}-your-consumer"
    url: str = sqs.create_queue(QueueName=name)["QueueUrl"]
    bus = deployment.outputs["EventBusName"]
    pattern = {"source": ["pay4feedback", "p4f-bridge"]}
    events.put_rule(Name="your-consumer", EventBusName=bus, EventPattern=json.dumps(pattern))
    events.put_targets(
        Rule="your-consumer",
        EventBusName=bus,
        Targets=[{"Id": "consumer", "Arn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"}],
    )
    return url
