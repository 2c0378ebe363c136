"""local.moto_server's process: in a session of its own (a terminal's Ctrl-C reaches the
stack first), it still ends with the process that started it, however that one ends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STARTER = """
import sys, time
from local.moto_server import MotoServer
server = MotoServer()
server.start()
print(server._process.pid, flush=True)
time.sleep(600)
"""


def running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by init) is gone too.
    status = Path(f"/proc/{pid}/status").read_text() if Path(f"/proc/{pid}").exists() else ""
    return "State:\tZ" not in status


@pytest.mark.timeout(120)
def test_moto_server_ends_when_the_process_that_started_it_is_killed() -> None:
    starter = subprocess.Popen(  # noqa: S603 (this interpreter, the code above)
        [sys.executable, "-c", STARTER],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "layers/p4f")])},
    )
    assert starter.stdout is not None
    moto_pid = int(starter.stdout.readline())
    assert running(moto_pid)
    starter.send_signal(signal.SIGKILL)  # no stop(), no clean-up of any kind
    starter.wait()
    deadline = time.monotonic() + 30
    while running(moto_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if running(moto_pid):
        os.kill(moto_pid, signal.SIGKILL)
        pytest.fail("moto_server outlived the process that started it")
