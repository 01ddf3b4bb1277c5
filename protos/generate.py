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
PACKAGE_DIR = Path("csv_analyst") / "v1"


def generate(out_root: Path) -> None:
    """Compile every .proto of csv_analyst/v1 into out_root.

    Args:
        out_root: Import root that receives csv_analyst/v1/*_pb2*.py(i).

    Raises:
        RuntimeError: When protoc fails.
    """
    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in (PROTO_ROOT / PACKAGE_DIR).glob("*.proto"))
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
    for package in (out_root / "csv_analyst", out_root / PACKAGE_DIR):
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
        comparison = filecmp.dircmp(fresh / PACKAGE_DIR, GEN_ROOT / PACKAGE_DIR)
        stale = comparison.diff_files + comparison.left_only + comparison.right_only
        for name in comparison.diff_files:
            if filecmp.cmp(fresh / PACKAGE_DIR / name, GEN_ROOT / PACKAGE_DIR / name, shallow=False):
                stale.remove(name)
        if stale:
            print(f"protos/gen is stale: {sorted(stale)}; run `make protos`", file=sys.stderr)
            return 1
    print("protos/gen is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
