"""AWS on this machine: `moto_server` in a process of its own, on a free 127.0.0.1 port,
with DynamoDB's requests atomic as in AWS (`local.atomic_moto`).

    with MotoServer() as aws:
        boto3.client("sqs", endpoint_url=aws.url)   # or set AWS_ENDPOINT_URL=aws.url

It keeps its state until `reset()` (moto's `POST /moto-api/reset`) or until it stops.
"""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import sys
import time
from typing import Any

import boto3
import httpx

from local.lambda_events import REGION
from local.lifecycle import Started
from local.processes import wait_or_kill

STARTUP_TIMEOUT_SECONDS = 20.0


class MotoServerError(RuntimeError):
    """moto_server did not start."""


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (the server binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def _moto_server_command() -> list[str]:
    if importlib.util.find_spec("flask") is None:  # what moto[server] adds to moto
        raise MotoServerError("moto[server] is not installed: run `make` to set up .venv")
    from local.atomic_moto import EXIT_WITH_STDIN

    return [sys.executable, "-m", "local.atomic_moto", EXIT_WITH_STDIN]


def moto_client(url: str, service_name: str) -> Any:
    """A boto3 client of the moto_server at `url` (e.g. another process's)."""
    return boto3.client(
        service_name,  # type: ignore[call-overload]
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 (moto takes any)
    )


class MotoServer(Started):
    """A moto_server process while started."""

    def __init__(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.port = port or free_port(host)
        self.url = f"http://{host}:{self.port}"
        self._host = host
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._process = subprocess.Popen(  # noqa: S603 (our own venv's moto_server)
            [*_moto_server_command(), "-H", self._host, "-p", str(self.port)],
            stdin=subprocess.PIPE,  # closed by stop(), or by this process's end, however it ends
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            # Its own session: a terminal's Ctrl-C reaches the stack, which stops what uses
            # AWS first and moto_server last.
            start_new_session=True,
        )
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise MotoServerError(f"moto_server exited with {self._process.returncode}")
            try:
                httpx.get(f"{self.url}/moto-api/", timeout=1)
            except httpx.TransportError:
                time.sleep(0.1)
            else:
                return
        self.stop()
        raise MotoServerError(f"moto_server did not answer on {self.url}")

    def client(self, service_name: str) -> Any:
        """A boto3 client of this moto_server."""
        return moto_client(self.url, service_name)

    def environment(self) -> dict[str, str]:
        """What a process needs in its environment for boto3 to talk to this moto_server."""
        return {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
        }

    def reset(self) -> None:
        """Forget every resource: what `POST /moto-api/reset` does."""
        httpx.post(f"{self.url}/moto-api/reset", timeout=10).raise_for_status()

    def stop(self) -> None:
        if self._process is None:
            return
        if self._process.stdin is not None:
            self._process.stdin.close()
        self._process.terminate()
        wait_or_kill(self._process, timeout=5)
        self._process = None
