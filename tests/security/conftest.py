"""Fixtures of the red-team suite: one real stack with tight limits (3 s runs, 256 MB), stubs for
both services, and checks that nothing leaked and no sandbox was left behind.

The stack is the real one: both gRPC services over loopback, bubblewrap sandboxes with seccomp
and cgroups, the offline planner and a SQLite capsule store.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from analyst_service.config import AnalystSettings
from csv_analyst_app.stack import start_local_stack
from csv_analyst.v1 import analyst_service_pb2 as api
from csv_analyst.v1 import analyst_service_pb2_grpc
from csv_analyst.runner.v1 import runner_dispatch_service_pb2_grpc
from runner_service.config import RunnerSettings
from tests.conftest import LoopThread, RunningStack, require_bwrap
from tests.security.harness import busy_cgroups, sandbox_processes

# Limits of the red-team stack: small enough that bombs end quickly.
RUN_TIMEOUT_SECONDS = 3.0
# Run limit of the stack for tests that are not about time limits.
ROOMY_RUN_TIMEOUT_SECONDS = 120.0
PYTHON_RUN_TIMEOUT_SECONDS = 15.0
RUN_MEMORY_BYTES = 256 << 20
MAX_ROWS = 500
RUNNER_CONCURRENCY = 2
# A secret planted in the service's environment: it must never reach a sandbox, answer or capsule.
PLANTED_SECRET = "csv-analyst-red-team-secret-7d1c"
PLANTED_ENV = "CSV_ANALYST_RED_TEAM_TOKEN"


def file_digests(root: Path) -> dict[str, str]:
    """SHA-256 of every CSV under root (to prove no run wrote to a dataset)."""
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*.csv"))}


@pytest.fixture(scope="package")
def security_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The one directory every red-team file lives under: sandboxes binding it are ours."""
    return tmp_path_factory.mktemp("red-team")


def _stack(datasets_dir: Path, security_root: Path, name: str, run_timeout_seconds: float,
           enable_python: bool = False) -> Iterator[RunningStack]:
    """A real stack with the red-team limits over a private copy of the demo datasets; the
    planted secret is in the process environment while it runs."""
    require_bwrap()
    datasets = security_root / f"datasets-{name}"
    shutil.copytree(datasets_dir, datasets)
    os.environ[PLANTED_ENV] = PLANTED_SECRET
    loop = LoopThread()
    capsule_db = security_root / f"capsules-{name}.sqlite3"
    analyst = AnalystSettings(port=0, datasets_dir=datasets, capsule_db=capsule_db,
                              run_timeout_seconds=run_timeout_seconds, run_memory_bytes=RUN_MEMORY_BYTES,
                              max_rows=MAX_ROWS, csv_roots=(security_root / "hostile", security_root / "injection",
                                                         security_root / "attacks"),
                              upload_dir=security_root / f"uploads-{name}", enable_python=enable_python,
                              result_cache_bytes=0)  # every case must meet the sandbox, not a cached answer
    # With a cache directory, as `serve` runs: the demo datasets are materialised before the
    # cases, so their SQL runs meet the native DuckDB CLI runner (executors/native_sql.py) when
    # duckdb-cli is installed; Python mode and raw CSV files meet the Python runner.
    runner = RunnerSettings(port=0, max_concurrency=RUNNER_CONCURRENCY, max_queue=64,
                            max_timeout_seconds=max(10.0, run_timeout_seconds),
                            default_timeout_seconds=run_timeout_seconds, default_memory_bytes=RUN_MEMORY_BYTES,
                            cache_dir=security_root / f"materialized-{name}")
    stack = loop.run(start_local_stack(analyst, runner))
    running = RunningStack(stack, loop, capsule_db, datasets)
    materialise_demo_datasets(running)
    digests = file_digests(datasets)
    yield running
    loop.run(stack.stop(grace=1.0))
    loop.close()
    os.environ.pop(PLANTED_ENV, None)
    assert file_digests(datasets) == digests, "a run changed a dataset file"
    # Warm sandboxes may idle while the stack runs; once it stopped, none may remain. The other
    # red-team stacks may still run theirs: only this stack's datasets folder marks its own.
    marker = str(datasets)
    deadline = time.monotonic() + 10
    while (sandbox_processes(marker) or busy_cgroups(marker)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sandbox_processes(marker) == [], "sandbox processes outlived the stack"
    assert busy_cgroups(marker) == [], "run cgroups still hold processes after the stack stopped"


def materialise_demo_datasets(running: RunningStack) -> None:
    """Run one query per demo dataset (which starts its materialisation) and wait for the
    builds, so later runs attach the materialised files."""
    registry = json.loads((running.datasets_dir / "registry.json").read_text())
    with grpc.insecure_channel(running.analyst_target) as channel:
        analyst = analyst_service_pb2_grpc.AnalystServiceStub(channel)
        for dataset in registry["datasets"]:
            table = dataset["tables"][0]["name"]
            # The build starts when the run reaches the runner, whatever the run's own outcome.
            analyst.SubmitRun(api.SubmitRunRequest(dataset_id=dataset["id"], sql=f"SELECT count(*) FROM {table}"),
                              timeout=120)
    materializer = running.stack.runner.materializer
    assert materializer is not None
    running.loop.run(materializer.wait_idle())
    built = list(materializer.path_for("x").parent.glob("*.duckdb"))
    assert len(built) >= len(registry["datasets"]), built


@pytest.fixture(scope="package")
def security_stack(datasets_dir: Path, security_root: Path) -> Iterator[RunningStack]:
    """The red-team stack: 3 s runs, so that bombs end quickly."""
    yield from _stack(datasets_dir, security_root, "tight", RUN_TIMEOUT_SECONDS)


@pytest.fixture(scope="package")
def roomy_stack(datasets_dir: Path, security_root: Path) -> Iterator[RunningStack]:
    """The same stack with a run limit no honest input comes near on a loaded machine (for the
    hostile CSV files: what they test is typed ingestion, not time limits)."""
    yield from _stack(datasets_dir, security_root, "roomy", ROOMY_RUN_TIMEOUT_SECONDS)


@pytest.fixture(scope="package")
def python_stack(datasets_dir: Path, security_root: Path) -> Iterator[RunningStack]:
    """The stack with restricted Python enabled; runs get room for pandas' import (about 1 s)."""
    yield from _stack(datasets_dir, security_root, "python", PYTHON_RUN_TIMEOUT_SECONDS, enable_python=True)


@pytest.fixture(scope="package")
def analyst(security_stack: RunningStack) -> Iterator[Any]:
    """An AnalystService stub on the red-team stack."""
    channel = grpc.insecure_channel(security_stack.analyst_target)
    yield analyst_service_pb2_grpc.AnalystServiceStub(channel)
    channel.close()


@pytest.fixture(scope="package")
def runner(security_stack: RunningStack) -> Iterator[Any]:
    """A RunnerService stub on the red-team stack (no SQL policy in front of it)."""
    channel = security_stack.runner_channel()
    yield runner_dispatch_service_pb2_grpc.RunnerServiceStub(channel)
    channel.close()
