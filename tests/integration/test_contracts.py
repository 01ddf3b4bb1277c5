"""The contracts themselves: buf lint passes and the generated code is not stale."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.buf
def test_buf_lint_passes() -> None:
    result = subprocess.run([str(Path(sys.executable).parent / "buf"), "lint"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_generated_code_is_fresh() -> None:
    result = subprocess.run([sys.executable, "protos/generate.py", "--check"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
