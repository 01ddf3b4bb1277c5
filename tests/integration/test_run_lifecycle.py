"""Run lifecycle under pressure: caller deadlines reach the sandbox, StopRun cancels, a full
queue is explicit, and runs a crashed process left behind are recorded as failed."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import pytest

from analyst_service.capsules.sqlite import SqliteCapsuleStore
from csv_analyst.v1 import analyst_service_pb2 as api, analyst_service_pb2_grpc, run_pb2
from tests.conftest import start_stack, stop_stack

pytestmark = pytest.mark.bwrap
# Allowed by the policy, and slow enough at the test scale to need a kill.
SLOW_SQL = "SELECT count(*) AS n FROM sensors a, sensors b, sensors c WHERE a.temp + b.temp > c.temp"


@pytest.fixture(scope="module")
def tight_stack(datasets_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    running = start_stack(datasets_dir, tmp_path_factory.mktemp("lifecycle") / "capsules.sqlite3",
                          runner_overrides={"max_concurrency": 1, "max_queue": 1})
    yield running
    stop_stack(running)


def stub_for(target: str) -> tuple[grpc.Channel, analyst_service_pb2_grpc.AnalystServiceStub]:
    channel = grpc.insecure_channel(target)
    return channel, analyst_service_pb2_grpc.AnalystServiceStub(channel)


def test_caller_deadline_caps_the_sandbox_time_limit(tight_stack: Any) -> None:
    channel, stub = stub_for(tight_stack.analyst_target)
    with channel:
        started = time.monotonic()
        run = stub.SubmitRun(api.SubmitRunRequest(dataset_id="sensors", sql=SLOW_SQL), timeout=5.0).run
        elapsed = time.monotonic() - started
    assert run.state == run_pb2.RUN_STATE_FAILED and run.error.code == run_pb2.ERROR_CODE_RUNNER_TIMEOUT
    # The service's own limit is 10 s; the caller's 5 s deadline made it shorter.
    assert run.limits.timeout.ToMilliseconds() < 5000
    assert elapsed < 5.0


def test_stop_run_cancels_a_running_sandbox(tight_stack: Any) -> None:
    runs = tight_stack.stack.analyst.runs
    channel, stub = stub_for(tight_stack.analyst_target)
    with channel, ThreadPoolExecutor(1) as pool:
        pending = pool.submit(stub.SubmitRun, api.SubmitRunRequest(dataset_id="sensors", sql=SLOW_SQL), timeout=30)
        deadline = time.monotonic() + 15
        active: list[run_pb2.Run] = []
        while time.monotonic() < deadline and not active:
            active = [live.run for live in list(runs._live.values())  # noqa: SLF001
                      if live.run.state == run_pb2.RUN_STATE_RUNNING]
            time.sleep(0.05)
        assert active, "the slow run never reached a sandbox"
        stub.StopRun(api.StopRunRequest(name=active[0].name))
        run = pending.result().run
        assert run.state == run_pb2.RUN_STATE_CANCELLED and run.error.code == run_pb2.ERROR_CODE_CANCELLED
        capsule = stub.GetCapsule(api.GetCapsuleRequest(name=run.run_id)).capsule
        assert capsule.run.state == run_pb2.RUN_STATE_CANCELLED
        with pytest.raises(grpc.RpcError) as finished:
            stub.StopRun(api.StopRunRequest(name=run.run_id))
        assert finished.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        with pytest.raises(grpc.RpcError) as missing:
            stub.StopRun(api.StopRunRequest(name="runs/rnope"))
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND


def test_full_queue_is_explicit_and_recorded(tight_stack: Any) -> None:
    channel, stub = stub_for(tight_stack.analyst_target)
    with channel, ThreadPoolExecutor(6) as pool:
        futures = [pool.submit(stub.SubmitRun, api.SubmitRunRequest(dataset_id="sensors", sql=SLOW_SQL), timeout=40)
                   for _ in range(6)]
        runs = [f.result().run for f in futures]
    refused = [r for r in runs if r.error.status_code == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]]
    # One slot and one queue place: of six simultaneous runs at least four are refused explicitly.
    assert len(refused) >= 4
    assert all(r.state == run_pb2.RUN_STATE_FAILED and "queue is full" in r.error.message for r in refused)
    others = [r for r in runs if r not in refused]
    assert all(r.error.code == run_pb2.ERROR_CODE_RUNNER_TIMEOUT for r in others)
    with grpc.insecure_channel(tight_stack.analyst_target) as check:
        capsules = analyst_service_pb2_grpc.AnalystServiceStub(check)
        for run in refused:
            assert capsules.GetCapsule(api.GetCapsuleRequest(name=run.run_id)).capsule.run.state == run_pb2.RUN_STATE_FAILED


def test_runs_left_by_a_crashed_process_are_recorded_failed(datasets_dir: Path, tmp_path: Path) -> None:
    db = tmp_path / "capsules.sqlite3"
    store = SqliteCapsuleStore(db)
    store.begin(run_pb2.Run(name="runs/rcrashed", run_id="rcrashed", dataset_id="support", question="how many?",
                            state=run_pb2.RUN_STATE_RUNNING))
    store.close()
    running = start_stack(datasets_dir, db)
    try:
        channel, stub = stub_for(running.analyst_target)
        with channel:
            capsule = stub.GetCapsule(api.GetCapsuleRequest(name="rcrashed")).capsule
        assert capsule.run.state == run_pb2.RUN_STATE_FAILED
        assert "stopped before this run finished" in capsule.run.error.message
    finally:
        stop_stack(running)
