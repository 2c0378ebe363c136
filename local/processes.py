"""Ending the processes the local stack starts."""

from __future__ import annotations

import subprocess


def wait_or_kill(process: subprocess.Popen[str] | subprocess.Popen[bytes], timeout: float) -> None:
    """Give a process that was asked to stop `timeout` seconds, then kill it; reap it."""
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
