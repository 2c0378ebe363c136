"""template.yaml deployed into moto: what `sam deploy` would create, read from the template
itself so the local stack cannot drift from it.

The deployer evaluates Parameters and Conditions, resolves the intrinsic functions the
template uses (Ref, GetAtt, Sub, If, Join, Select, Split, Equals, Not, And, Or, Base64),
creates the AWS resources moto can hold (buses and their archives, queues with their
redrive policies, tables with TTL, secrets, SSM parameters, rules and their targets, alarms
(named <stack>-<LogicalId>: CloudFormation adds a suffix) and dashboards; buckets, Firehose
streams, Glue databases and tables, Athena workgroups and named queries), deploys
nested applications whose template is a local file, and describes what moto cannot run: each
function (its merged Globals, environment and event sources, its function URL on a port
chosen up front), each custom resource (left to the local stack to invoke through its
function), and each rule target that is a Firehose stream (moto delivers nothing to those:
the target gets a stand-in queue, and the local stack hands what arrives there to Firehose,
transformed as the target says). Log groups, layers, policies and schema registries have
nothing to do locally; IAM is not enforced, so roles only get an ARN. Parameter values are
checked as CloudFormation checks them (AllowedValues and AllowedPattern, of each member of a
list too; MinValue and MaxValue), before anything is created.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from graphlib import TopologicalSorter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from local.input_transformer import TargetInput, TransformError
from local.lambda_events import ACCOUNT, REGION
from local.template import Template

if TYPE_CHECKING:
    ClientFactory = Callable[..., Any]
    """boto3.client, or one bound to moto_server's endpoint."""

_NO_VALUE = object()
"""AWS::NoValue: the property it stands in for is left out."""
_SKIPPED_TYPES = {
    "AWS::Lambda::Permission",
    "AWS::Logs::LogGroup",
    "AWS::Serverless::LayerVersion",
    "AWS::SQS::QueuePolicy",
    "AWS::S3::BucketPolicy",
    "AWS::Logs::LogStream",
    "AWS::EventSchemas::Registry",
    "AWS::EventSchemas::Schema",
}
_SUB_VARIABLE = re.compile(r"\$\{([^!}][^}]*)\}")
_PLAIN_FUNCTIONS: dict[str, Callable[[Any], Any]] = {
    "Join": lambda args: args[0].join(str(item) for item in args[1]),
    "Select": lambda args: args[1][int(args[0])],
    "Split": lambda args: args[1].split(args[0]),
    "Equals": lambda args: str(args[0]) == str(args[1]),  # CloudFormation compares text
    "Not": lambda args: not args[0],
    "And": all,
    "Or": any,
    "Base64": lambda text: base64.b64encode(str(text).encode()).decode(),
}
"""Intrinsic functions of already resolved arguments."""
_QUEUE_ATTRIBUTES = {
    "ContentBasedDeduplication",
    "DelaySeconds",
    "FifoQueue",
    "MessageRetentionPeriod",
    "RedrivePolicy",
    "SqsManagedSseEnabled",
    "VisibilityTimeout",
}
_ALARM_PROPERTIES = {
    "ActionsEnabled",
    "AlarmActions",
    "AlarmDescription",
    "ComparisonOperator",
    "DatapointsToAlarm",
    "Dimensions",
    "EvaluateLowSampleCountPercentile",
    "EvaluationPeriods",
    "ExtendedStatistic",
    "InsufficientDataActions",
    "MetricName",
    "Metrics",
    "Namespace",
    "OKActions",
    "Period",
    "Statistic",
    "Threshold",
    "ThresholdMetricId",
    "TreatMissingData",
    "Unit",
}
"""The properties of an AWS::CloudWatch::Alarm that are PutMetricAlarm's arguments too."""
_ALARM_INTEGERS = ("DatapointsToAlarm", "EvaluationPeriods", "Period")
_STAND_IN_RECEIVES = 3
"""Deliveries of an event a Firehose stand-in tries before its target's dead-letter queue."""
_STAND_IN_VISIBILITY_SECONDS = 1


class LocalDeployError(RuntimeError):
    """The template uses something the local deployer does not know how to create."""


@dataclass(frozen=True)
class SqsSource:
    """An SQS event source mapping of a function."""

    queue_url: str
    queue_arn: str
    batch_size: int
    report_batch_item_failures: bool
    maximum_concurrency: int | None
    batching_window: float = 0.0
    """MaximumBatchingWindowInSeconds."""


@dataclass(frozen=True)
class LocalFunction:
    logical_id: str
    name: str
    code_dir: Path
    handler: str
    timeout_seconds: float
    memory_mb: int
    environment: dict[str, str]
    url: str | None
    """The function URL (local), when the function has one."""
    sqs_sources: tuple[SqsSource, ...]


@dataclass(frozen=True)
class CustomResource:
    logical_id: str
    resource_type: str
    function_logical_id: str
    properties: dict[str, Any]


@dataclass(frozen=True)
class FirehoseTarget:
    """A rule target that is a Firehose stream: its events wait in a stand-in queue."""

    rule_logical_id: str
    stand_in_queue_url: str
    stream_name: str
    target_input: TargetInput
    """What the target hands the stream: the event, or its InputPath / InputTransformer."""


@dataclass
class Deployment:
    stack_name: str
    functions: dict[str, LocalFunction] = field(default_factory=dict)
    custom_resources: list[CustomResource] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    firehose_targets: list[FirehoseTarget] = field(default_factory=list)
    parameters: dict[str, str] = field(default_factory=dict)
    """Every Parameter's value as deployed (a list's joined by commas), as CloudFormation's
    DescribeStacks gives them."""
    resources: dict[str, str] = field(default_factory=dict)
    """The physical id of each resource created (or described), by logical id."""


class LocalDeployer:
    """Creates a template's resources in the AWS that `client`'s clients talk to (moto)."""

    def __init__(
        self,
        template: Template,
        client: ClientFactory,
        *,
        stack_name: str,
        parameters: Mapping[str, str],
        function_urls: Mapping[str, str],
        root: Path,
    ) -> None:
        """`function_urls` gives each function with a FunctionUrlConfig its local URL."""
        self._body = template.body
        self._client = client
        self._stack_name = stack_name
        self._root = root
        self._function_urls = function_urls
        self._parameters = self._parameter_values(parameters)
        self._conditions: dict[str, bool] = {}
        self._ids: dict[str, Any] = {}
        self._attributes: dict[str, dict[str, Any]] = {}
        self._skipped: set[str] = set()

    # --- the template's logic -----------------------------------------------------------

    def _parameter_values(self, overrides: Mapping[str, str]) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, spec in self._body.get("Parameters", {}).items():
            raw = overrides.get(name, spec.get("Default"))
            if raw is None:
                raise LocalDeployError(f"parameter {name} has no default: give it a value")
            raw = str(raw)
            # CloudFormation trims each member of a list.
            values[name] = (
                [member.strip() for member in raw.split(",")]
                if spec["Type"] == "CommaDelimitedList"
                else raw
            )
            _check_parameter(name, spec, values[name])
        unknown = set(overrides) - set(values)
        if unknown:
            raise LocalDeployError(f"the template has no parameter {sorted(unknown)}")
        return values

    def _condition(self, name: str) -> bool:
        if name not in self._conditions:
            self._conditions[name] = bool(self._resolve(self._body["Conditions"][name]))
        return self._conditions[name]

    def _resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            return [v for v in (self._resolve(item) for item in node) if v is not _NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, value),) = node.items()
            if key == "Ref":
                return self._ref(value)
            if key == "Condition":
                return self._condition(value)
            if key.startswith("Fn::"):
                return self._function(key[4:], value)
        resolved = {k: self._resolve(v) for k, v in node.items()}
        return {k: v for k, v in resolved.items() if v is not _NO_VALUE}

    def _function(self, name: str, args: Any) -> Any:
        if name == "If":
            condition, then, otherwise = args
            return self._resolve(then if self._condition(condition) else otherwise)
        values = self._resolve(args)
        if name == "GetAtt":
            logical_id, attribute = values
            return self._attribute(logical_id, attribute)
        if name == "Sub":
            text, variables = (values, {}) if isinstance(values, str) else values
            return self._substitute(text, variables)
        if name not in _PLAIN_FUNCTIONS:
            raise LocalDeployError(f"Fn::{name} is not supported locally")
        return _PLAIN_FUNCTIONS[name](values)

    def _ref(self, name: str) -> Any:
        pseudo = {
            "AWS::NoValue": _NO_VALUE,
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::StackName": self._stack_name,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{self._stack_name}",
        }
        if name in pseudo:
            return pseudo[name]
        if name in self._parameters:
            return self._parameters[name]
        if name in self._ids:
            return self._ids[name]
        raise LocalDeployError(f"Ref {name}: no such parameter, or not created yet")

    def _attribute(self, logical_id: str, attribute: str) -> Any:
        if logical_id.endswith("Url") and attribute == "FunctionUrl":
            return self._function_urls[logical_id.removesuffix("Url")]
        if logical_id in self._skipped:
            return f"{self._stack_name}-{logical_id}-{attribute}"
        try:
            return self._attributes[logical_id][attribute]
        except KeyError:
            raise LocalDeployError(
                f"GetAtt {logical_id}.{attribute} is not known locally"
            ) from None

    def _substitute(self, text: str, variables: Mapping[str, Any]) -> str:
        def value(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(variables[name])
            if "." in name and not name.startswith("AWS::"):
                logical_id, attribute = name.split(".", 1)
                return str(self._attribute(logical_id, attribute))
            return str(self._ref(name))

        return _SUB_VARIABLE.sub(value, text).replace("${!", "${")

    # --- deployment -----------------------------------------------------------------------

    def deploy(self) -> Deployment:
        deployment = Deployment(self._stack_name)
        resources: dict[str, Any] = self._body["Resources"]
        order = TopologicalSorter(
            {
                logical_id: _dependencies(resource, resources)
                for logical_id, resource in resources.items()
            }
        )
        for logical_id in order.static_order():
            resource = resources[logical_id]
            if "Condition" in resource and not self._condition(resource["Condition"]):
                continue
            self._create(logical_id, resource, deployment)
        for name, output in self._body.get("Outputs", {}).items():
            if "Condition" not in output or self._condition(output["Condition"]):
                deployment.outputs[name] = self._resolve(output["Value"])
        deployment.parameters = {
            name: ",".join(value) if isinstance(value, list) else value
            for name, value in self._parameters.items()
        }
        deployment.resources = {
            logical_id: str(physical_id) for logical_id, physical_id in self._ids.items()
        }
        return deployment

    def _create(self, logical_id: str, resource: dict[str, Any], deployment: Deployment) -> None:
        kind = resource["Type"]
        if kind in _SKIPPED_TYPES:
            self._ids[logical_id] = f"{self._stack_name}-{logical_id}"
            self._skipped.add(logical_id)
            return
        properties = self._resolve(resource.get("Properties", {}))
        name = f"{self._stack_name}-{logical_id}"
        if kind == "AWS::Events::EventBus":
            self._create_bus(logical_id, properties.get("Name", name))
        elif kind == "AWS::SQS::Queue":
            self._create_queue(logical_id, properties, name)
        elif kind == "AWS::DynamoDB::Table":
            self._create_table(logical_id, properties, properties.get("TableName", name))
        elif kind == "AWS::SecretsManager::Secret":
            self._create_secret(logical_id, properties, properties.get("Name", name))
        elif kind == "AWS::Events::Rule":
            self._create_rule(logical_id, properties, properties.get("Name", name), deployment)
        elif kind in _CREATORS:
            _CREATORS[kind](self, logical_id, properties, name)
        elif kind == "AWS::Serverless::Application":
            self._deploy_nested(logical_id, properties, deployment)
        elif kind == "AWS::Serverless::Function":
            deployment.functions[logical_id] = self._describe_function(logical_id, properties, name)
        elif kind == "AWS::Lambda::EventSourceMapping":
            function = next(
                f for f in deployment.functions.values() if f.name == properties["FunctionName"]
            )
            source = self._sqs_source(properties, properties["EventSourceArn"])
            deployment.functions[function.logical_id] = replace(
                function, sqs_sources=(*function.sqs_sources, source)
            )
        elif kind.startswith("Custom::") or kind == "AWS::CloudFormation::CustomResource":
            token = resource["Properties"]["ServiceToken"]
            function_id = token["Fn::GetAtt"][0] if isinstance(token, dict) else str(token)
            deployment.custom_resources.append(
                CustomResource(logical_id, kind, function_id, properties)
            )
            self._ids[logical_id] = f"pending-{logical_id}"
        else:
            raise LocalDeployError(f"{logical_id}: {kind} is not supported locally")

    def _create_bus(self, logical_id: str, name: str) -> None:
        arn = self._client("events").create_event_bus(Name=name)["EventBusArn"]
        self._ids[logical_id] = name
        self._attributes[logical_id] = {"Arn": arn, "Name": name}

    def _create_queue(self, logical_id: str, properties: dict[str, Any], name: str) -> None:
        fifo = str(properties.get("FifoQueue", "false")).lower() == "true"
        queue_name = properties.get("QueueName") or (f"{name}.fifo" if fifo else name)
        attributes = {
            key: json.dumps(value) if isinstance(value, dict) else str(value).lower()
            for key, value in properties.items()
            if key in _QUEUE_ATTRIBUTES
        }
        sqs = self._client("sqs")
        url = sqs.create_queue(QueueName=queue_name, Attributes=attributes)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        self._ids[logical_id] = url
        self._attributes[logical_id] = {"Arn": arn, "QueueName": queue_name, "QueueUrl": url}

    def _create_table(self, logical_id: str, properties: dict[str, Any], name: str) -> None:
        dynamodb = self._client("dynamodb")
        answer = dynamodb.create_table(
            TableName=name,
            AttributeDefinitions=properties["AttributeDefinitions"],
            KeySchema=properties["KeySchema"],
            BillingMode=properties.get("BillingMode", "PAY_PER_REQUEST"),
        )
        ttl = properties.get("TimeToLiveSpecification", {})
        if str(ttl.get("Enabled", "false")).lower() == "true":
            dynamodb.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]},
            )
        self._ids[logical_id] = name
        self._attributes[logical_id] = {"Arn": answer["TableDescription"]["TableArn"]}

    def _create_secret(self, logical_id: str, properties: dict[str, Any], name: str) -> None:
        value = properties.get("SecretString") or _generated_secret(
            properties.get("GenerateSecretString", {})
        )
        arn = self._client("secretsmanager").create_secret(Name=name, SecretString=value)["ARN"]
        self._ids[logical_id] = arn
        self._attributes[logical_id] = {"Id": arn}

    def _create_rule(
        self, logical_id: str, properties: dict[str, Any], name: str, deployment: Deployment
    ) -> None:
        if "ScheduleExpression" in properties:
            # No scheduler here: the local stack invokes a scheduled function when asked
            # (`p4f-bridge reconcile`).
            self._ids[logical_id] = name
            self._attributes[logical_id] = {"Arn": f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{name}"}
            return
        events = self._client("events")
        bus = properties.get("EventBusName", "default")
        arn = events.put_rule(
            Name=name,
            EventBusName=bus,
            EventPattern=json.dumps(properties["EventPattern"]),
            State=properties.get("State", "ENABLED"),
        )["RuleArn"]
        targets = []
        for target in properties.get("Targets", []):
            if ":firehose:" in target["Arn"]:
                stand_in = self._firehose_stand_in(logical_id, name, target)
                deployment.firehose_targets.append(stand_in)
                queue_arn = self._queue_arn(stand_in.stand_in_queue_url)
                targets.append({"Id": target["Id"], "Arn": queue_arn})
            else:
                targets.append({"Id": target["Id"], "Arn": target["Arn"]})
        if targets:
            events.put_targets(Rule=name, EventBusName=bus, Targets=targets)
        self._ids[logical_id] = name
        self._attributes[logical_id] = {"Arn": arn}

    def _create_archive(self, logical_id: str, properties: dict[str, Any], name: str) -> None:
        archive = properties.get("ArchiveName", name[:48])  # EventBridge's longest name
        arn = self._client("events").create_archive(
            ArchiveName=archive,
            EventSourceArn=properties["SourceArn"],
            Description=properties.get("Description", ""),
            EventPattern=json.dumps(properties.get("EventPattern", {})),
            RetentionDays=int(properties.get("RetentionDays", 0)),
        )["ArchiveArn"]
        self._ids[logical_id] = archive
        self._attributes[logical_id] = {"Arn": arn}

    def _create_alarm(self, logical_id: str, properties: dict[str, Any], name: str) -> None:
        alarm = properties.get("AlarmName", name)
        arguments = {key: value for key, value in properties.items() if key in _ALARM_PROPERTIES}
        self._client("cloudwatch").put_metric_alarm(AlarmName=alarm, **_alarm_numbers(arguments))
        self._ids[logical_id] = alarm

    def _create_dashboard(self, logical_id: str, properties: dict[str, Any], name: str) -> None:
        dashboard = properties.get("DashboardName", name)
        self._client("cloudwatch").put_dashboard(
            DashboardName=dashboard, DashboardBody=properties["DashboardBody"]
        )
        self._ids[logical_id] = dashboard

    def _create_parameter(self, logical_id: str, properties: dict[str, Any], name: str) -> None:
        name = properties.get("Name", f"/{name}")
        self._client("ssm").put_parameter(
            Name=name, Value=str(properties["Value"]), Type=properties.get("Type", "String")
        )
        self._ids[logical_id] = name
        self._attributes[logical_id] = {
            "Type": properties.get("Type", "String"),
            "Value": properties["Value"],
        }

    def _firehose_stand_in(
        self, logical_id: str, rule_name: str, target: dict[str, Any]
    ) -> FirehoseTarget:
        """A queue that takes a Firehose target's events, as they match the rule."""
        try:
            target_input = TargetInput.of(target)
        except TransformError as exc:
            raise LocalDeployError(f"{logical_id}, target {target['Id']}: {exc}") from exc
        attributes = {"VisibilityTimeout": str(_STAND_IN_VISIBILITY_SECONDS)}
        dead_letters = target.get("DeadLetterConfig", {}).get("Arn")
        if dead_letters:
            attributes["RedrivePolicy"] = json.dumps(
                {"deadLetterTargetArn": dead_letters, "maxReceiveCount": _STAND_IN_RECEIVES}
            )
        queue = f"{rule_name}-{target['Id']}"[:80]
        url = self._client("sqs").create_queue(QueueName=queue, Attributes=attributes)["QueueUrl"]
        return FirehoseTarget(
            rule_logical_id=logical_id,
            stand_in_queue_url=url,
            stream_name=target["Arn"].rsplit("/", 1)[1],
            target_input=target_input,
        )

    def _queue_arn(self, url: str) -> str:
        arn: str = self._client("sqs").get_queue_attributes(
            QueueUrl=url, AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        return arn

    # --- the warehouse mirror's kinds of resource ------------------------------------------

    def _describe_role(self, logical_id: str, properties: dict[str, Any], name: str) -> None:
        """Only an ARN: IAM is not enforced locally."""
        role = properties.get("RoleName", name)
        self._ids[logical_id] = role
        self._attributes[logical_id] = {"Arn": f"arn:aws:iam::{ACCOUNT}:role/{role}"}

    def _create_bucket(self, logical_id: str, properties: dict[str, Any], name: str) -> None:
        bucket = properties.get("BucketName", name.lower())
        self._client("s3").create_bucket(Bucket=bucket)
        self._ids[logical_id] = bucket
        self._attributes[logical_id] = {
            "Arn": f"arn:aws:s3:::{bucket}",
            "DomainName": f"{bucket}.s3.amazonaws.com",
        }

    def _create_delivery_stream(
        self, logical_id: str, properties: dict[str, Any], name: str
    ) -> None:
        stream = properties.get("DeliveryStreamName", name)
        destination = dict(properties["ExtendedS3DestinationConfiguration"])
        # A Number parameter resolves to text; the API takes integers.
        destination["BufferingHints"] = {
            key: int(value) for key, value in destination.get("BufferingHints", {}).items()
        }
        arn = self._client("firehose").create_delivery_stream(
            DeliveryStreamName=stream,
            DeliveryStreamType=properties.get("DeliveryStreamType", "DirectPut"),
            ExtendedS3DestinationConfiguration=destination,
        )["DeliveryStreamARN"]
        self._ids[logical_id] = stream
        self._attributes[logical_id] = {"Arn": arn}

    def _create_glue_database(
        self, logical_id: str, properties: dict[str, Any], _name: str
    ) -> None:
        self._client("glue").create_database(DatabaseInput=properties["DatabaseInput"])
        self._ids[logical_id] = properties["DatabaseInput"]["Name"]

    def _create_glue_table(self, logical_id: str, properties: dict[str, Any], _name: str) -> None:
        self._client("glue").create_table(
            DatabaseName=properties["DatabaseName"], TableInput=properties["TableInput"]
        )
        self._ids[logical_id] = properties["TableInput"]["Name"]

    def _create_work_group(self, logical_id: str, properties: dict[str, Any], _name: str) -> None:
        configuration = dict(properties.get("WorkGroupConfiguration", {}))
        if "BytesScannedCutoffPerQuery" in configuration:
            configuration["BytesScannedCutoffPerQuery"] = int(
                configuration["BytesScannedCutoffPerQuery"]
            )
        self._client("athena").create_work_group(
            Name=properties["Name"],
            Description=properties.get("Description", ""),
            Configuration=configuration,
        )
        self._ids[logical_id] = properties["Name"]

    def _create_named_query(self, logical_id: str, properties: dict[str, Any], _name: str) -> None:
        self._ids[logical_id] = self._client("athena").create_named_query(
            Name=properties["Name"],
            Description=properties.get("Description", ""),
            Database=properties["Database"],
            QueryString=properties["QueryString"],
            WorkGroup=properties.get("WorkGroup", "primary"),
        )["NamedQueryId"]

    def _deploy_nested(
        self, logical_id: str, properties: dict[str, Any], deployment: Deployment
    ) -> None:
        """A nested application whose Location is a template of this repository."""
        location = properties["Location"]
        if not isinstance(location, str):
            raise LocalDeployError(f"{logical_id}: only a local template can be nested locally")
        path = (self._root / location).resolve()
        nested = LocalDeployer(
            Template.load(path),
            self._client,
            stack_name=f"{self._stack_name}-{logical_id}",
            parameters={
                key: ",".join(map(str, value)) if isinstance(value, list) else str(value)
                for key, value in properties.get("Parameters", {}).items()
            },
            function_urls=self._function_urls,
            root=path.parent,
        ).deploy()
        deployment.functions |= nested.functions
        deployment.custom_resources += nested.custom_resources
        deployment.firehose_targets += nested.firehose_targets
        self._ids[logical_id] = nested.stack_name
        self._attributes[logical_id] = {
            f"Outputs.{name}": value for name, value in nested.outputs.items()
        }

    def _describe_function(
        self, logical_id: str, properties: dict[str, Any], name: str
    ) -> LocalFunction:
        defaults = self._resolve(self._body.get("Globals", {}).get("Function", {}))
        variables = defaults.get("Environment", {}).get("Variables", {}) | properties.get(
            "Environment", {}
        ).get("Variables", {})
        sources = tuple(
            self._sqs_source(event["Properties"], event["Properties"]["Queue"])
            for event in properties.get("Events", {}).values()
            if event["Type"] == "SQS"
        )
        function_name = properties.get("FunctionName", name)
        self._ids[logical_id] = function_name
        self._attributes[logical_id] = {
            "Arn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function_name}"
        }
        return LocalFunction(
            logical_id=logical_id,
            name=function_name,
            code_dir=(self._root / properties["CodeUri"]).resolve(),
            handler=properties["Handler"],
            timeout_seconds=float(properties.get("Timeout", defaults.get("Timeout", 3))),
            memory_mb=int(properties.get("MemorySize", defaults.get("MemorySize", 128))),
            environment={k: str(v) for k, v in variables.items()},
            url=self._function_urls.get(logical_id) if "FunctionUrlConfig" in properties else None,
            sqs_sources=sources,
        )

    def _sqs_source(self, properties: dict[str, Any], arn: str) -> SqsSource:
        """A SAM SQS event's properties, or an AWS::Lambda::EventSourceMapping's."""
        url = next(
            attributes["QueueUrl"]
            for attributes in self._attributes.values()
            if attributes.get("Arn") == arn and "QueueUrl" in attributes
        )
        scaling = properties.get("ScalingConfig", {})
        return SqsSource(
            queue_url=url,
            queue_arn=arn,
            batch_size=int(properties.get("BatchSize", 10)),
            report_batch_item_failures="ReportBatchItemFailures"
            in properties.get("FunctionResponseTypes", []),
            maximum_concurrency=int(scaling["MaximumConcurrency"]) if scaling else None,
            batching_window=float(properties.get("MaximumBatchingWindowInSeconds", 0)),
        )


_CREATORS: dict[str, Callable[[LocalDeployer, str, dict[str, Any], str], None]] = {
    "AWS::SSM::Parameter": LocalDeployer._create_parameter,
    "AWS::Events::Archive": LocalDeployer._create_archive,
    "AWS::CloudWatch::Alarm": LocalDeployer._create_alarm,
    "AWS::CloudWatch::Dashboard": LocalDeployer._create_dashboard,
    "AWS::IAM::Role": LocalDeployer._describe_role,
    "AWS::S3::Bucket": LocalDeployer._create_bucket,
    "AWS::KinesisFirehose::DeliveryStream": LocalDeployer._create_delivery_stream,
    "AWS::Glue::Database": LocalDeployer._create_glue_database,
    "AWS::Glue::Table": LocalDeployer._create_glue_table,
    "AWS::Athena::WorkGroup": LocalDeployer._create_work_group,
    "AWS::Athena::NamedQuery": LocalDeployer._create_named_query,
}
"""How an SSM parameter, an archive, an alarm, a dashboard, a role and each kind of resource
the warehouse mirror declares are made (logical id, properties, default physical name)."""


def _check_parameter(name: str, spec: Mapping[str, Any], value: str | list[str]) -> None:
    """Refuse a value CloudFormation would refuse, with the template's ConstraintDescription."""
    values = value if isinstance(value, list) else [value]
    allowed = [str(item) for item in spec.get("AllowedValues", [])]
    refused = [item for item in values if allowed and item not in allowed]
    if refused:
        rule = spec.get("ConstraintDescription") or f"allowed: {', '.join(allowed)}"
        raise LocalDeployError(f"parameter {name}: {', '.join(refused)} is not allowed; {rule}")
    pattern = spec.get("AllowedPattern")
    unmatched = [item for item in values if pattern and not re.fullmatch(pattern, item)]
    if unmatched:
        rule = spec.get("ConstraintDescription") or f"it must match {pattern}"
        raise LocalDeployError(f"parameter {name}: {', '.join(unmatched)} is not allowed; {rule}")
    if spec["Type"] != "Number":
        return
    least, most = spec.get("MinValue", float("-inf")), spec.get("MaxValue", float("inf"))
    try:
        in_range = float(least) <= float(str(value)) <= float(most)
    except ValueError:
        in_range = False
    if not in_range:
        rule = spec.get("ConstraintDescription") or f"a number from {least} to {most}"
        raise LocalDeployError(f"parameter {name}: {value} is not allowed; {rule}")


def _alarm_numbers(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """PutMetricAlarm's arguments in the types its API takes (a Ref to a Number is text)."""
    typed: dict[str, Any] = {k: int(arguments[k]) for k in _ALARM_INTEGERS if k in arguments}
    if "Threshold" in arguments:
        typed["Threshold"] = float(arguments["Threshold"])
    if "Metrics" in arguments:
        typed["Metrics"] = [_metric_query(query) for query in arguments["Metrics"]]
    return {**arguments, **typed}


def _metric_query(query: Mapping[str, Any]) -> dict[str, Any]:
    """One of a metric-math alarm's Metrics, in the types the API takes."""
    typed: dict[str, Any] = {"ReturnData": str(query.get("ReturnData", True)).lower() == "true"}
    if "Period" in query:
        typed["Period"] = int(query["Period"])
    if "MetricStat" in query:
        typed["MetricStat"] = {**query["MetricStat"], "Period": int(query["MetricStat"]["Period"])}
    return {**query, **typed}


def _generated_secret(spec: Mapping[str, Any]) -> str:
    """A random secret as GenerateSecretString would make it (length and punctuation)."""
    alphabet = string.ascii_letters + string.digits
    if str(spec.get("ExcludePunctuation", "false")).lower() != "true":
        alphabet += "!#$%&()*+,-.:;<=>?@[]^_{|}~"
    length = int(spec.get("PasswordLength", 32))
    return "".join(secrets.choice(alphabet) for _ in range(length))


def _dependencies(resource: Mapping[str, Any], resources: Mapping[str, Any]) -> set[str]:
    """The resources `resource` refers to (Ref, GetAtt, Sub variables, DependsOn)."""
    found: set[str] = set()
    depends = resource.get("DependsOn", [])
    found.update([depends] if isinstance(depends, str) else depends)

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "Ref" and value in resources:
                    found.add(value)
                elif key == "Fn::GetAtt":
                    target = value[0] if isinstance(value, list) else str(value).split(".")[0]
                    found.add(target if target in resources else target.removesuffix("Url"))
                elif key == "Fn::Sub":
                    text = value if isinstance(value, str) else value[0]
                    for name in _SUB_VARIABLE.findall(text):
                        found.add(name.split(".")[0])
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(resource.get("Properties", {}))
    return {name for name in found if name in resources}
