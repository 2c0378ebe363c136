"""One container of the reward reviewer in a process of its own, for the race tests:

    python -m tests.integration.review_worker '{"environment": {...}, "records": [...], ...}'

It imports the function as Lambda does (local.lambda_host), waits for the common start
instant, handles its records as one SQS batch, and prints the batch's answer as JSON.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from local.lambda_events import LocalLambdaContext, sqs_event
from local.lambda_host import HostConfig, load_handler

ROOT = Path(__file__).resolve().parents[2]
START_DELAY_SECONDS = 8.0
"""Time for every process to import the function before the common start instant."""


class Work(BaseModel):
    environment: dict[str, str]
    records: list[dict[str, Any]]
    start_at: float


def run_containers(
    batches: list[list[dict[str, Any]]], environment: dict[str, str]
) -> list[dict[str, Any]]:
    """One process per batch, all handling their batch from the same instant; the answers."""
    start_at = time.time() + START_DELAY_SECONDS
    processes = [
        subprocess.Popen(  # noqa: S603 (our own module, our own interpreter)
            [
                sys.executable,
                "-m",
                "tests.integration.review_worker",
                Work(environment=environment, records=records, start_at=start_at).model_dump_json(),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=environment,
        )
        for records in batches
    ]
    answers = []
    for process in processes:
        out, err = process.communicate(timeout=120)
        if process.returncode != 0:
            tail = "\n".join(err.splitlines()[-15:])
            raise RuntimeError(f"a reviewer process failed ({process.returncode}):\n{tail}")
        answers.append(json.loads(out.strip().splitlines()[-1]))
        if answers[-1] != {"batchItemFailures": []}:  # say why, in the test's output
            print(err[-3000:], file=sys.stderr)
    return answers


def main(argv: list[str]) -> int:
    work = Work.model_validate_json(argv[0])
    handler = load_handler(
        HostConfig(
            function_name="reward-reviewer",
            code_dir=str(ROOT / "functions" / "reward_reviewer"),
            handler="app.lambda_handler",
            timeout_seconds=30,
            memory_mb=256,
            environment=work.environment,
        )
    )
    time.sleep(max(0.0, work.start_at - time.time()))
    answer = handler(sqs_event(work.records), LocalLambdaContext("reward-reviewer", 30))
    print(json.dumps(answer), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
