"""Lambda-like processes on this machine: built code, the built layer and the runtime's boto3.

In Lambda a python3.13 function's sys.path is its code (/var/task), then its layers
(/opt/python), then the runtime's own folder (/var/runtime: boto3 and what boto3 needs),
then the standard library; the code and layer folders are read-only, so Python cannot
write bytecode there. `launch()` reproduces that with `python3.13 -I -S -B`: isolated
from this machine's site-packages and environment variables, writing no bytecode, with
sys.path set from the built artifacts (`sam build`'s output) and a stand-in for
/var/runtime that links this environment's boto3 and its dependencies.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CHILD = Path(__file__).resolve().parent / "lambda_child.py"
LAYER_MAKEFILE = ROOT / "layers" / "p4f" / "Makefile"
LAMBDA_ARCH = "aarch64"

RUNTIME_DISTRIBUTIONS = (
    "boto3",
    "botocore",
    "s3transfer",
    "jmespath",
    "python-dateutil",
    "six",
    "urllib3",
)
"""What the Lambda python3.13 runtime ships for its boto3 (the layer Makefile leaves them out)."""

CHILD_TIMEOUT_SECONDS = 120


class LaunchError(RuntimeError):
    """A child process failed, or its handler did not succeed."""


def interpreter() -> Path:
    """This environment's base python3.13: the interpreter, without the virtualenv."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    found = Path(sys.base_prefix) / "bin" / version
    if not found.exists():
        raise LaunchError(f"no {version} in {sys.base_prefix}/bin")
    return found


def runtime_standin(into: Path) -> Path:
    """A folder standing in for /var/runtime: boto3 and its dependencies, linked from here.

    Their bytecode comes along (the runtime's image has its own), so only our code's
    bytecode, or its absence, makes a difference between subjects.
    """
    into.mkdir(parents=True, exist_ok=True)
    for name in RUNTIME_DISTRIBUTIONS:
        distribution = importlib.metadata.distribution(name)
        for file in distribution.files or ():
            top = file.parts[0]
            located = Path(str(distribution.locate_file(top)))
            if top in {"..", "__pycache__"} or not located.exists():
                continue
            link = into / top
            if not link.exists():
                link.symlink_to(located)
            if located.suffix == ".py":  # a single-module distribution, e.g. six
                _link_bytecode(located, into)
    return into


def _link_bytecode(module: Path, into: Path) -> None:
    compiled = Path(importlib.util.cache_from_source(str(module)))
    if compiled.exists():
        cache = into / "__pycache__"
        cache.mkdir(exist_ok=True)
        link = cache / compiled.name
        if not link.exists():
            link.symlink_to(compiled)


def build_layer(into: Path, arch: str) -> Path:
    """Run the layer's Makefile (what `sam build` runs) for `arch`; return its python/."""
    subprocess.run(  # noqa: S603 (make and our own Makefile)
        [
            shutil.which("make") or "make",
            "--silent",
            "-f",
            str(LAYER_MAKEFILE),
            "build-P4fLayer",
            f"ARTIFACTS_DIR={into}",
            f"ARCH={arch}",
            f"PYTHON={interpreter()}",
        ],
        check=True,
        capture_output=True,
    )
    return into / "python"


def importable_layer(built: Path, workdir: Path) -> Path:
    """The built layer's python/ if this machine can import it, else the same build for it.

    sam build makes the layer for Lambda's arm64; on another machine its compiled
    extensions (pydantic_core) cannot load, so the Makefile runs again for this machine's
    architecture: the same packages, files and bytecode, only the extensions differ.
    """
    arch = platform.machine()
    if arch == LAMBDA_ARCH:
        return built / "python"
    return build_layer(workdir / f"layer-{arch}", arch)


def without_bytecode(tree: Path, into: Path) -> Path:
    """A copy of `tree` with no .pyc: what a layer without compiled bytecode would be."""
    shutil.copytree(tree, into, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return into


def function_code(code: Path, into: Path) -> Path:
    """A function's code folder as Lambda gets it from sam build: sources, no bytecode."""
    if code.is_dir():
        return without_bytecode(code, into)
    into.mkdir(parents=True)
    shutil.copy2(code, into / code.name)
    return into


@dataclass(frozen=True)
class Launch:
    """One function's execution environment: its sys.path entries, settings and handler."""

    function_name: str
    path: tuple[Path, ...]
    env: dict[str, str]
    handler: str
    timeout: float
    """Seconds each invocation may run (the context's remaining time counts them down)."""


@dataclass(frozen=True)
class ChildRun:
    """What one child process measured (seconds, on this machine's monotonic clock)."""

    launched: float
    started: float
    before_import: float
    imported: float
    answered: float
    answers: list[Any]
    """What the handler returned, event by event."""
    modules: int
    output: str
    """What it printed (the function's logs), for when it did not succeed."""
    durations: list[float] = field(default_factory=list)

    @property
    def cold_start(self) -> float:
        """From the process's start to the first event's answer."""
        return self.answered - self.launched

    @property
    def init(self) -> float:
        """Importing the handler's module: its imports and its module-level setup."""
        return self.imported - self.before_import

    @property
    def first_event(self) -> float:
        return self.answered - self.imported


def launch(
    target: Launch,
    events: list[dict[str, Any]],
    workdir: Path,
    *,
    mode: str = "cold",
    answers: dict[str, dict[str, Any]] | None = None,
    warmup: int = 0,
) -> ChildRun:
    """Run `target` on `events` in a fresh interpreter (see bench/lambda_child.py)."""
    workdir.mkdir(parents=True, exist_ok=True)
    spec_path, result_path = workdir / "spec.json", workdir / "result.json"
    result_path.unlink(missing_ok=True)
    spec = {
        "path": [str(entry) for entry in target.path],
        "env": target.env,
        "handler": target.handler,
        "function_name": target.function_name,
        "timeout": target.timeout,
        "mode": mode,
        "events": events,
        "answers": answers or {},
        "warmup": warmup,
    }
    spec_path.write_text(json.dumps(spec))
    command = [str(interpreter()), "-I", "-S", "-B", str(CHILD), str(spec_path), str(result_path)]
    # Like Lambda's runtime: a clean environment, the function's variables only.
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
    launched = time.perf_counter()
    finished = subprocess.run(  # noqa: S603 (our own interpreter and script)
        command,
        env=env,
        capture_output=True,
        timeout=CHILD_TIMEOUT_SECONDS,
        check=False,
        cwd=workdir,
    )
    if finished.returncode != 0 or not result_path.exists():
        raise LaunchError(
            f"{target.function_name} exited with {finished.returncode}:\n"
            + finished.stderr.decode(errors="replace")[-3000:]
        )
    result = json.loads(result_path.read_text())
    return ChildRun(launched=launched, output=finished.stdout.decode(errors="replace"), **result)
