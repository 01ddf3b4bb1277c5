"""Crash safety, proven with `kill -9` and real processes, with the SQLite store and with a real
PostgreSQL store:

- a `serve` killed in the middle of runs leaves no sandbox behind, and after a restart every run
  it had accepted has exactly one capsule, FAILED with a reason the user can act on;
- a runner service (run apart, as the Helm chart runs it) killed in the middle of runs gives each
  caller RUNNER_UNAVAILABLE at once (not a hang until the run's time limit), and once it is
  started again no sandbox process and no run cgroup of the killed one is left;
- PostgreSQL stopped (`pg_ctl stop -m immediate`) and started again under load: callers get
  UNAVAILABLE while it is away (never INTERNAL), the service reconnects by itself, and every run
  it accepted has its capsule.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import grpc
import pytest

from csv_analyst.v1 import analyst_service_pb2 as api, analyst_service_pb2_grpc, run_pb2
from runner_service.executors.cgroups import RunCgroup
from tests.conftest import require_bwrap
from tests.integration.crash_harness import (
    CLI,
    SLOW_SQL,
    bwrap_pids,
    check_store,
    in_flight_ids,
    living,
    run_cgroups_of,
    sandboxes,
    start_analyst_service,
    start_runner_service,
    wait_until,
)
from tests.integration.test_serve import free_port
from tests.postgres_server import PostgresServer, postgres_server  # noqa: F401 - a fixture

pytestmark = pytest.mark.bwrap


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """Where the services keep capsules: a SQLite file, or a fresh database on a real PostgreSQL."""
    if request.param == "sqlite":
        return tmp_path / "capsules.sqlite3"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.new_database()


def start_serve(datasets: Path, work: Path, port: int, store: Path | str,
                *extra: str) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [CLI, "serve", "--no-ui", "--analyst-port", str(port), "--runner-port", "0", "--timeout", "60",
         "--datasets-dir", str(datasets), "--capsule-db", str(store),
         "--cache-dir", str(work / "cache"), "--upload-dir", str(work / "uploads"), "--pool-size", "0", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        line = process.stdout.readline()  # type: ignore[union-attr]
        assert line, "serve exited early"
        if line.startswith("analyst service"):
            return process
    raise AssertionError("serve did not start")


def _copy_datasets(datasets_dir: Path, tmp_path: Path) -> Path:
    datasets = tmp_path / "datasets"
    subprocess.run(["cp", "-r", str(datasets_dir), str(datasets)], check=True)
    return datasets


def test_kill_9_of_serve_mid_run_then_restart_accounts_for_every_run(datasets_dir: Path, tmp_path: Path,
                                                                      store: Path | str) -> None:
    require_bwrap()
    datasets = _copy_datasets(datasets_dir, tmp_path)
    port = free_port()
    server = start_serve(datasets, tmp_path, port, store)

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
    wait_until(lambda: len(sandboxes(server.pid)) >= 2 and len(in_flight_ids(store)) >= 2, 60)
    in_flight = in_flight_ids(store)
    leftovers = bwrap_pids(server.pid)
    assert len(in_flight) == 2 and leftovers, "the runs were not in flight when the service was killed"
    os.kill(server.pid, signal.SIGKILL)
    server.wait(30)
    server.stdout.close()  # type: ignore[union-attr]
    # Sandboxes die with their parent (bubblewrap's --die-with-parent): none outlives the service.
    wait_until(lambda: not living(leftovers), 15)
    assert living(leftovers) == []

    restarted = start_serve(datasets, tmp_path, port, store)
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
    assert set(in_flight) <= set(check_store(store))


def test_kill_9_of_the_runner_service_mid_run_fails_runs_at_once_and_leaves_nothing(
        datasets_dir: Path, tmp_path: Path, store: Path | str) -> None:
    require_bwrap()
    datasets = _copy_datasets(datasets_dir, tmp_path)
    runner_port, analyst_port = free_port(), free_port()
    runner = start_runner_service(runner_port, datasets, tmp_path)
    analyst = start_analyst_service(analyst_port, runner_port, datasets, store, tmp_path)
    answers: list[run_pb2.Run | grpc.RpcError] = []
    try:
        def run_slowly() -> None:
            with grpc.insecure_channel(f"127.0.0.1:{analyst_port}") as channel:
                stub = analyst_service_pb2_grpc.AnalystServiceStub(channel)
                try:
                    # Run limits are 600 s and the call's deadline 300 s: only a prompt failure
                    # answers with RUNNER_UNAVAILABLE (a hang ends in RUNNER_TIMEOUT or DEADLINE_EXCEEDED).
                    answers.append(stub.SubmitRun(api.SubmitRunRequest(dataset_id="support", sql=SLOW_SQL),
                                                  timeout=300).run)
                except grpc.RpcError as error:
                    answers.append(error)

        workers = [threading.Thread(target=run_slowly, daemon=True) for _ in range(2)]
        for worker in workers:
            worker.start()
        wait_until(lambda: len(sandboxes(runner.pid)) >= 2 and len(in_flight_ids(store)) >= 2, 60)
        leftovers = bwrap_pids(runner.pid)
        cgroups = run_cgroups_of(runner.pid)
        assert len(in_flight_ids(store)) == 2 and leftovers, "the runs were not executing when the runner was killed"
        assert cgroups or not RunCgroup.available(), "the runs have no cgroups to check"
        dead_pid = runner.pid
        os.kill(runner.pid, signal.SIGKILL)
        runner.wait(30)
        for worker in workers:
            worker.join(60)
        assert not any(worker.is_alive() for worker in workers), "a caller is still waiting after the runner died"
        assert len(answers) == 2
        for answer in answers:
            assert isinstance(answer, run_pb2.Run), answer
            assert answer.state == run_pb2.RUN_STATE_FAILED, answer
            assert answer.error.code == run_pb2.ERROR_CODE_RUNNER_UNAVAILABLE, answer.error
            assert "try again" in answer.error.message and "127.0.0.1" not in answer.error.message

        # Started again: nothing of the killed runner is left, and runs go through again.
        runner = start_runner_service(runner_port, datasets, tmp_path)
        wait_until(lambda: not living(leftovers), 15)
        assert living(leftovers) == [], "a sandbox outlived its runner service"
        assert run_cgroups_of(dead_pid) == [], "run cgroups of the killed runner survived its restart"
        with grpc.insecure_channel(f"127.0.0.1:{analyst_port}") as channel:
            stub = analyst_service_pb2_grpc.AnalystServiceStub(channel)
            for answer in answers:
                assert isinstance(answer, run_pb2.Run)
                stored = stub.GetCapsule(api.GetCapsuleRequest(name=answer.run_id), timeout=30).capsule.run
                assert stored.error.code == run_pb2.ERROR_CODE_RUNNER_UNAVAILABLE
            fresh = None
            for _ in range(20):  # the analyst's channel reconnects with gRPC's backoff
                fresh = stub.SubmitRun(api.SubmitRunRequest(dataset_id="support", sql="SELECT count(*) FROM tickets"),
                                       timeout=120).run
                if fresh.state == run_pb2.RUN_STATE_SUCCEEDED:
                    break
                assert fresh.error.code == run_pb2.ERROR_CODE_RUNNER_UNAVAILABLE, fresh.error
                time.sleep(0.5)
            assert fresh is not None and fresh.state == run_pb2.RUN_STATE_SUCCEEDED
    finally:
        for process in (analyst, runner):
            process.send_signal(signal.SIGTERM)
            process.wait(60)
    check_store(store)


def test_postgres_restarted_under_load_loses_nothing_and_answers_unavailable_meanwhile(
        datasets_dir: Path, tmp_path: Path, postgres_server: PostgresServer) -> None:  # noqa: F811
    require_bwrap()
    store = postgres_server.new_database()
    port = free_port()
    server = start_serve(datasets_dir, tmp_path, port, store, "--no-cache")
    accepted: list[str] = []
    outcomes: Counter[str] = Counter()
    stop = threading.Event()

    def load(worker: int) -> None:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = analyst_service_pb2_grpc.AnalystServiceStub(channel)
            number = 0
            while not stop.is_set():
                number += 1
                sql = f"SELECT count(*) + {worker * 100000 + number} AS n FROM tickets"
                try:
                    run = stub.SubmitRun(api.SubmitRunRequest(dataset_id="support", sql=sql), timeout=120).run
                except grpc.RpcError as error:
                    outcomes[error.code().name] += 1
                    continue
                outcomes[run_pb2.RunState.Name(run.state)] += 1
                accepted.append(run.run_id)

    workers = [threading.Thread(target=load, args=(n,), daemon=True) for n in range(3)]
    try:
        for worker in workers:
            worker.start()
        wait_until(lambda: len(accepted) >= 6, 120)
        postgres_server.stop("immediate")
        try:
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = analyst_service_pb2_grpc.AnalystServiceStub(channel)
                # While it is away: typed UNAVAILABLE for a new run and for reading a capsule.
                with pytest.raises(grpc.RpcError) as refused:
                    stub.SubmitRun(api.SubmitRunRequest(dataset_id="support", sql="SELECT 1 AS one"), timeout=60)
                assert refused.value.code() == grpc.StatusCode.UNAVAILABLE, refused.value
                assert "capsule store" in refused.value.details() and "127.0.0.1" not in refused.value.details()
                with pytest.raises(grpc.RpcError) as unread:
                    stub.GetCapsule(api.GetCapsuleRequest(name=accepted[0]), timeout=60)
                assert unread.value.code() == grpc.StatusCode.UNAVAILABLE, unread.value
        finally:
            postgres_server.start_again()
        before = len(accepted)
        wait_until(lambda: len(accepted) >= before + 6, 120)
        assert len(accepted) >= before + 6, f"the service did not recover: {outcomes}"
    finally:
        stop.set()
        for worker in workers:
            worker.join(150)
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=60)
    assert set(outcomes) <= {"RUN_STATE_SUCCEEDED", "UNAVAILABLE"}, outcomes
    stored = check_store(store)
    assert set(accepted) <= set(stored), "an accepted run has no capsule"
    assert len(accepted) == len(set(accepted))
