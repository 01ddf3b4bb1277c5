"""Regenerate the Python protobuf and gRPC modules under protos/gen.

Run: python protos/generate.py  (or `make protos`). With --check, regenerate into a temporary
folder and exit 1 if the committed code differs (CI uses this to catch stale code).
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

PROTO_ROOT = Path(__file__).resolve().parent
GEN_ROOT = PROTO_ROOT / "gen"
# The public API (csv_analyst.v1) and the internal runner API (csv_analyst.runner.v1).
PACKAGE_DIRS = (Path("csv_analyst") / "v1", Path("csv_analyst") / "runner" / "v1")


def generate(out_root: Path) -> None:
    """Compile every .proto of the packages into out_root.

    Args:
        out_root: Import root that receives csv_analyst/v1/ and csv_analyst/runner/v1/*_pb2*.py(i).

    Raises:
        RuntimeError: When protoc fails.
    """
    protos = sorted(str(p.relative_to(PROTO_ROOT)) for d in PACKAGE_DIRS for p in (PROTO_ROOT / d).glob("*.proto"))
    out_root.mkdir(parents=True, exist_ok=True)
    well_known = Path(protoc.__file__).parent / "_proto"
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{well_known}",
        f"--python_out={out_root}",
        f"--pyi_out={out_root}",
        f"--grpc_python_out={out_root}",
        *protos,
    ]
    if protoc.main(args) != 0:
        raise RuntimeError("protoc failed")
    for package in (out_root / "csv_analyst", out_root / "csv_analyst" / "runner", *(out_root / d for d in PACKAGE_DIRS)):
        (package / "__init__.py").touch()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if protos/gen is stale")
    options = parser.parse_args()
    if not options.check:
        if (GEN_ROOT / "csv_analyst").exists():
            shutil.rmtree(GEN_ROOT / "csv_analyst")
        generate(GEN_ROOT)
        return 0
    with tempfile.TemporaryDirectory() as scratch:
        fresh = Path(scratch)
        generate(fresh)
        stale = []
        for package in PACKAGE_DIRS:
            comparison = filecmp.dircmp(fresh / package, GEN_ROOT / package)
            names = comparison.diff_files + comparison.left_only + comparison.right_only
            names = [n for n in names if n in comparison.left_only + comparison.right_only
                     or not filecmp.cmp(fresh / package / n, GEN_ROOT / package / n, shallow=False)]
            stale += [str(package / n) for n in names if n != "__pycache__"]
        if stale:
            print(f"protos/gen is stale: {sorted(stale)}; run `make protos`", file=sys.stderr)
            return 1
    print("protos/gen is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
