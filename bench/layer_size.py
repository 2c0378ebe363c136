"""Figure (5): the built layer's size, unzipped (what counts toward Lambda's 250 MB) and zipped.

Measured on `sam build`'s output for Lambda (arm64), zipped here the way a deployment
package is (deflate), in a temporary folder.
"""

from __future__ import annotations

import zipfile
from typing import TYPE_CHECKING

from bench.lambda_env import RUNTIME_DISTRIBUTIONS
from bench.report import Row, Target

if TYPE_CHECKING:
    from pathlib import Path

FIGURE = "(6) layer size"
MIB = 1024 * 1024
# Import names of what the runtime provides (RUNTIME_DISTRIBUTIONS, as folders or modules).
_RUNTIME_IMPORT_NAMES = (
    "boto3",
    "botocore",
    "s3transfer",
    "jmespath",
    "dateutil",
    "six",
    "urllib3",
)


def layer_size(built: Path, workdir: Path) -> list[Row]:
    files = sorted(path for path in built.rglob("*") if path.is_file())
    unzipped = sum(path.stat().st_size for path in files)
    bytecode = sum(path.stat().st_size for path in files if path.suffix == ".pyc")
    workdir.mkdir(parents=True, exist_ok=True)
    archive = workdir / "layer.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zipped:
        for path in files:
            zipped.write(path, path.relative_to(built))
    python = built / "python"
    shipped = [
        name
        for name in _RUNTIME_IMPORT_NAMES
        if (python / name).exists() or (python / f"{name}.py").exists()
    ]
    subject = "P4fLayer (arm64, sam build)"
    return [
        Row(
            FIGURE,
            subject,
            "unzipped",
            unzipped / MIB,
            "MiB",
            target=Target(15, text="<= 15 MiB"),
            details={"files": len(files), "bytes": unzipped},
        ),
        Row(FIGURE, subject, "of which .pyc (compiled for 3.13)", bytecode / MIB, "MiB"),
        Row(FIGURE, subject, "zipped", archive.stat().st_size / MIB, "MiB"),
        Row(
            FIGURE,
            subject,
            "packages the runtime provides, shipped",
            len(shipped),
            "",
            target=Target(0, text=f"0 of {len(RUNTIME_DISTRIBUTIONS)}"),
            details={"shipped": shipped},
        ),
    ]
