"""The Slack forwarder's X-Ray tracing never records an incoming webhook's URL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Run as Lambda would (tracing on), in a process of its own: patching is process-wide.
PROBE = """
import json
import sys
sys.path[:0] = ["functions/slack_forwarder", "layers/p4f"]
import app  # noqa: F401
from aws_xray_sdk.core import patcher
print(json.dumps(sorted(patcher._PATCHED_MODULES)))
"""


def test_tracing_patches_boto_calls_but_not_httpx() -> None:
    env = {
        "PATH": os.environ["PATH"],
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_LAMBDA_FUNCTION_NAME": "slack-forwarder",
        "LAMBDA_TASK_ROOT": str(ROOT),
        "POWERTOOLS_TRACE_DISABLED": "false",
        "POWERTOOLS_SERVICE_NAME": "p4f-bridge",
        "POWERTOOLS_METRICS_NAMESPACE": "P4fBridge",
        "AWS_XRAY_CONTEXT_MISSING": "IGNORE_ERROR",
        "SLACK_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:p4f/slack-AbCdEf",
        "SLACK_LEDGER_TABLE": "slack-ledger",
        "SLACK_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/slack-forwarder",
    }
    completed = subprocess.run(  # noqa: S603 (this interpreter, a fixed probe)
        [sys.executable, "-c", PROBE], env=env, cwd=ROOT, capture_output=True, text=True, check=True
    )
    patched = json.loads(completed.stdout.strip().splitlines()[-1])
    assert "botocore" in patched
    assert "httpx" not in patched
