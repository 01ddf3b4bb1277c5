"""Crash safety, proven with `kill -9`: a `serve` killed in the middle of runs leaves no sandbox
behind, and after a restart every run it had accepted has exactly one capsule, FAILED with a
reason the user can act on."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import pytest

from csv_analyst.v1 import analyst_service_pb2 as api, analyst_service_pb2_grpc, run_pb2
from tests.conftest import require_bwrap
from tests.integration.test_serve import free_port
from tests.security.harness import sandbox_processes

pytestmark = pytest.mark.bwrap
CLI = str(Path(sys.executable).parent / "csv-analyst")
# Slow on purpose: a cross join that runs until the run's time limit.
SLOW_SQL = "SELECT count(*) AS n FROM tickets a, tickets b, tickets c, tickets d"


def start_serve(datasets: Path, work: Path, port: int) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [CLI, "serve", "--no-ui", "--analyst-port", str(port), "--runner-port", "0", "--timeout", "60",
         "--datasets-dir", str(datasets), "--capsule-db", str(work / "capsules.sqlite3"),
         "--cache-dir", str(work / "cache"), "--upload-dir", str(work / "uploads"), "--pool-size", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        line = process.stdout.readline()  # type: ignore[union-attr]
        assert line, "serve exited early"
        if line.startswith("analyst service"):
            return process
    raise AssertionError("serve did not start")


def test_kill_9_mid_run_then_restart_accounts_for_every_run(datasets_dir: Path, tmp_path: Path) -> None:
    require_bwrap()
    datasets = tmp_path / "datasets"
    subprocess.run(["cp", "-r", str(datasets_dir), str(datasets)], check=True)
    port = free_port()
    server = start_serve(datasets, tmp_path, port)

    def run_slowly() -> None:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = analyst_service_pb2_grpc.AnalystServiceStub(channel)
            try:
                stub.SubmitRun(api.SubmitRunRequest(dataset_id="support", sql=SLOW_SQL), timeout=120)
            except grpc.RpcError:
                pass  # the server was killed under it

    workers = [threading.Thread(target=run_slowly, daemon=True) for _ in range(2)]
    for worker in workers:
        worker.start()
    # Wait until both runs are executing in their sandboxes, then kill the whole service.
    deadline = time.monotonic() + 60
    while (len(sandbox_processes(str(datasets))) < 2 or len(_in_flight_ids(tmp_path / "capsules.sqlite3")) < 2) \
            and time.monotonic() < deadline:
        time.sleep(0.1)
    in_flight = _in_flight_ids(tmp_path / "capsules.sqlite3")
    assert len(in_flight) == 2, "the runs were not in flight when the service was killed"
    os.kill(server.pid, signal.SIGKILL)
    server.wait(30)
    server.stdout.close()  # type: ignore[union-attr]
    # Sandboxes die with their parent (bubblewrap's --die-with-parent): none outlives the service.
    deadline = time.monotonic() + 15
    while sandbox_processes(str(datasets)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sandbox_processes(str(datasets)) == []

    restarted = start_serve(datasets, tmp_path, port)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = analyst_service_pb2_grpc.AnalystServiceStub(channel)
            for run_id in in_flight:
                run = stub.GetCapsule(api.GetCapsuleRequest(name=run_id), timeout=30).capsule.run
                assert run.state == run_pb2.RUN_STATE_FAILED and "ask again" in run.error.message, run.error
            # And the service answers normally again.
            fresh = stub.SubmitRun(api.SubmitRunRequest(dataset_id="support", sql="SELECT count(*) FROM tickets"),
                                   timeout=120).run
            assert fresh.state == run_pb2.RUN_STATE_SUCCEEDED
    finally:
        restarted.send_signal(signal.SIGTERM)
        restarted.communicate(timeout=60)
    with sqlite3.connect(tmp_path / "capsules.sqlite3") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        ids = [row[0] for row in db.execute("SELECT run_id FROM capsules")]
        assert len(ids) == len(set(ids)), "a run has two capsules"
        assert db.execute("SELECT count(*) FROM runs_in_flight").fetchone() == (0,)


def _in_flight_ids(db_path: Path) -> list[str]:
    with sqlite3.connect(db_path) as db:
        return [row[0] for row in db.execute("SELECT run_id FROM runs_in_flight")]
