"""Helpers of the crash-safety tests: real service processes (`serve`, or the runner and analyst
services run apart like the Helm chart runs them), the store they write (SQLite or PostgreSQL),
and what a killed service may leave behind (sandbox processes, run cgroups)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from runner_service.executors.cgroups import CGROUP_ROOT, GROUP

CLI = str(Path(sys.executable).parent / "csv-analyst")
# Slow on purpose: a cross join that runs until the run's time limit.
SLOW_SQL = "SELECT count(*) AS n FROM tickets a, tickets b, tickets c, tickets d"
CREDENTIAL = "crash-test-credential-0123456789abcdef"


def wait_serving(port: int, process: subprocess.Popen[bytes] | subprocess.Popen[str], seconds: float = 90) -> None:
    """Wait until the gRPC server on port answers health SERVING (fails if the process exits)."""
    deadline = time.monotonic() + seconds
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            assert process.poll() is None, f"the service on port {port} exited with {process.returncode}"
            try:
                if stub.Check(health_pb2.HealthCheckRequest(), timeout=2).status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.2)
    raise AssertionError(f"the service on port {port} did not start")


def _start_service(module: str, port: int, environ: dict[str, str]) -> subprocess.Popen[bytes]:
    process = subprocess.Popen([sys.executable, "-m", module], env={**os.environ, **environ},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_serving(port, process)
    return process


def start_runner_service(port: int, datasets: Path, work: Path) -> subprocess.Popen[bytes]:
    """`python -m runner_service` alone (bwrap, no warm pool, long run limits)."""
    return _start_service("runner_service", port, {
        "CSV_ANALYST_RUNNER_PORT": str(port), "CSV_ANALYST_RUNNER_CREDENTIAL": CREDENTIAL,
        "CSV_ANALYST_RUNNER_DATA_ROOTS": str(datasets), "CSV_ANALYST_RUNNER_CACHE_DIR": str(work / "cache"),
        "CSV_ANALYST_RUNNER_POOL_SIZE": "0", "CSV_ANALYST_RUNNER_MAX_TIMEOUT_SECONDS": "600"})


def start_analyst_service(port: int, runner_port: int, datasets: Path, store: Path | str,
                          work: Path) -> subprocess.Popen[bytes]:
    """`python -m analyst_service` alone, calling the runner service on runner_port."""
    return _start_service("analyst_service", port, {
        "CSV_ANALYST_ANALYST_PORT": str(port), "CSV_ANALYST_ANALYST_RUNNER_TARGET": f"127.0.0.1:{runner_port}",
        "CSV_ANALYST_RUNNER_CREDENTIAL": CREDENTIAL, "CSV_ANALYST_ANALYST_DATASETS_DIR": str(datasets),
        "CSV_ANALYST_ANALYST_CAPSULE_DB": str(store), "CSV_ANALYST_ANALYST_UPLOAD_DIR": str(work / "uploads"),
        "CSV_ANALYST_ANALYST_RUN_TIMEOUT_SECONDS": "600", "CSV_ANALYST_ANALYST_RESULT_CACHE_BYTES": "0"})


def in_flight_ids(store: Path | str) -> list[str]:
    """Run ids with an in-flight record in the store."""
    return [row[0] for row in _query(store, "SELECT run_id FROM runs_in_flight")]


def check_store(store: Path | str) -> list[str]:
    """The store's integrity: passes its own check, no run twice, nothing left in flight.
    Returns every stored run id."""
    if isinstance(store, Path):
        assert _query(store, "PRAGMA integrity_check") == [("ok",)]
    ids = [row[0] for row in _query(store, "SELECT run_id FROM capsules")]
    assert len(ids) == len(set(ids)), "a run has two capsules"
    assert in_flight_ids(store) == [], "a run is still in flight after the restart"
    return ids


def _query(store: Path | str, sql: str) -> list[tuple[object, ...]]:
    if isinstance(store, Path):
        with sqlite3.connect(store) as db:
            return db.execute(sql).fetchall()
    import psycopg

    with psycopg.connect(store) as db:
        return db.execute(sql).fetchall()  # type: ignore[arg-type]


def descendants(root: int) -> list[int]:
    """Pids of every living process under root (from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2:].split()
            if fields[0] != "Z":
                parents[int(entry.name)] = int(fields[1])
    found: list[int] = []
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent]
        found += children
        frontier += children
    return found


def sandboxes(root: int) -> list[int]:
    """The outermost bubblewrap process of each sandbox under root."""
    found = []
    for pid in descendants(root):
        try:
            if Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].endswith(b"bwrap"):
                found.append(pid)
        except OSError:
            continue
    inner = {child for pid in found for child in descendants(pid)}
    return sorted(set(found) - inner)


def bwrap_pids(root: int) -> list[int]:
    """Every process of every sandbox under root."""
    outer = sandboxes(root)
    return sorted({*outer, *(child for pid in outer for child in descendants(pid))})


def living(pids: list[int]) -> list[int]:
    """The pids still alive (a zombie counts as dead)."""
    alive = []
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        if stat[stat.rindex(")") + 2:].split()[0] != "Z":
            alive.append(pid)
    return alive


def run_cgroups_of(pid: int) -> list[Path]:
    """The run cgroups (memory and pids) that the process pid made (see owned_cgroup_name)."""
    return sorted(group for controller in ("memory", "pids")
                  for group in (CGROUP_ROOT / controller / GROUP).glob(f"o{pid}-*") if group.is_dir())


def wait_until(condition: object, seconds: float = 30.0) -> None:
    """Poll condition() until true or the time is up (no assertion on how long it took)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.1)
