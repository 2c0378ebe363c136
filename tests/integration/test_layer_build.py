"""The layer's Makefile (what `sam build` runs for P4fLayer), built for this machine.

It must give a python/ folder with the p4f package and every dependency the runtime lacks,
none of what the runtime has (boto3 and its dependencies), and bytecode for python3.13
that Lambda uses without checking it against the sources.
"""

from __future__ import annotations

import importlib.util
import marshal
import platform
import subprocess
from pathlib import Path

import pytest

from bench.lambda_env import build_layer, interpreter, runtime_standin

RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six", "urllib3")
_UNCHECKED_HASH = 0b01  # PEP 552 flags: hash-based, source not checked


@pytest.fixture(scope="module")
def layer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_layer(tmp_path_factory.mktemp("layer"), platform.machine())


def test_it_holds_the_p4f_package_and_its_dependencies(layer: Path) -> None:
    assert (layer / "p4f" / "signing.py").is_file()
    for package in ("httpx", "pydantic", "pydantic_core", "aws_lambda_powertools"):
        assert (layer / package / "__init__.py").is_file(), package


def test_it_leaves_out_what_the_runtime_provides(layer: Path) -> None:
    shipped = [
        name
        for name in RUNTIME_PROVIDED
        if (layer / name).exists() or (layer / f"{name}.py").exists()
    ]
    assert shipped == []
    assert not list(layer.glob("botocore-*.dist-info"))
    assert not (layer / "bin").exists()


def test_every_module_has_unchecked_bytecode_for_python_3_13(layer: Path) -> None:
    sources = list(layer.rglob("*.py"))
    assert len(sources) > 500
    for source in sources:
        compiled = Path(importlib.util.cache_from_source(str(source)))
        assert compiled.name.endswith(".cpython-313.pyc"), compiled
        header = compiled.read_bytes()[:16]
        assert header[:4] == importlib.util.MAGIC_NUMBER, source
        assert int.from_bytes(header[4:8], "little") == _UNCHECKED_HASH, source


def test_the_bytecode_names_the_files_where_lambda_puts_them(layer: Path) -> None:
    compiled = Path(importlib.util.cache_from_source(str(layer / "p4f" / "signing.py")))
    code = marshal.loads(compiled.read_bytes()[16:])  # noqa: S302 (our own build)
    assert code.co_filename == "/opt/python/p4f/signing.py"


def test_it_imports_with_only_the_runtime_beside_it(layer: Path, tmp_path: Path) -> None:
    runtime = runtime_standin(tmp_path / "runtime")
    script = (
        "import sys; sys.path[:0] = sys.argv[1:]\n"
        "import p4f.client, p4f.secrets, p4f.fanout, p4f.dedupe\n"
        "from aws_lambda_powertools import Logger, Metrics\n"
        "import botocore; assert botocore.__file__.startswith(sys.argv[2]), botocore.__file__\n"
    )
    subprocess.run(  # noqa: S603 (our own interpreter)
        [str(interpreter()), "-I", "-S", "-B", "-c", script, str(layer), str(runtime)],
        check=True,
        capture_output=True,
    )
