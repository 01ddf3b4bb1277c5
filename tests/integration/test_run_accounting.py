"""Every run accounted for, through the real services and sandboxes: a caller that disconnects or
whose deadline passes leaves a CANCELLED capsule with the cause; a second client follows a run
with WatchRun and stops it; Ask detaches; shutdown records runs in flight; two processes share
a capsule store without touching each other's runs; ListRuns filters and pages."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import pytest

from analyst_service.capsules.owners import Owner
from analyst_service.capsules.sqlite import SqliteCapsuleStore
from csv_analyst.v1 import analyst_service_pb2 as api, analyst_service_pb2_grpc, capsule_pb2, run_pb2
from tests.conftest import RunningStack, start_stack, stop_stack

pytestmark = [pytest.mark.bwrap, pytest.mark.timeout(240)]
# Allowed by the policy, and slow enough at the test scale to run until it is stopped (the
# stack's run limit is 60 s; every test stops it long before).
SLOW_SQL = "SELECT count(*) AS n FROM sensors a, sensors b, sensors c, sensors d WHERE a.temp + b.temp > c.temp + d.temp"
CLI = str(Path(sys.executable).parent / "csv-analyst")
WAIT_SECONDS = 60.0


@pytest.fixture(scope="module")
def stack(datasets_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    running = start_stack(datasets_dir, tmp_path_factory.mktemp("accounting") / "capsules.sqlite3",
                          runner_overrides={"max_concurrency": 1, "max_queue": 8, "max_timeout_seconds": 60.0},
                          run_timeout_seconds=60.0)
    yield running
    stop_stack(running)


def stub_for(target: str) -> tuple[grpc.Channel, Any]:
    channel = grpc.insecure_channel(target)
    return channel, analyst_service_pb2_grpc.AnalystServiceStub(channel)


def wait_for(condition: Any, what: str) -> Any:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def running_run(stub: Any, exclude: set[str] = frozenset()) -> run_pb2.Run:  # type: ignore[assignment]
    """The newest run in state RUNNING (found through ListRuns, as any client would)."""
    def find() -> run_pb2.Run | None:
        runs = stub.ListRuns(api.ListRunsRequest(states=[run_pb2.RUN_STATE_RUNNING]), timeout=10).runs
        return next((r for r in runs if r.run_id not in exclude), None)
    return wait_for(find, "a run in a sandbox")


def capsule_of(stub: Any, run_id: str) -> Any:
    def find() -> Any:
        try:
            return stub.GetCapsule(api.GetCapsuleRequest(name=run_id), timeout=10).capsule
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.NOT_FOUND, error
            return None
    return wait_for(find, f"the capsule of {run_id}")


def no_sandbox_running(stack: RunningStack) -> None:
    wait_for(lambda: stack.stack.executor.running() == [], "the sandbox to be killed")


def test_a_submit_run_caller_that_disconnects_leaves_a_cancelled_capsule(stack: RunningStack) -> None:
    caller, caller_stub = stub_for(stack.analyst_target)
    observer, stub = stub_for(stack.analyst_target)
    with observer:
        pending: Future[Any] = caller_stub.SubmitRun.future(api.SubmitRunRequest(dataset_id="sensors", sql=SLOW_SQL),
                                                            timeout=120)
        run = running_run(stub)
        caller.close()  # the client goes away mid-run
        with pytest.raises(grpc.RpcError):
            pending.result()
        capsule = capsule_of(stub, run.run_id)
        assert capsule.run.state == run_pb2.RUN_STATE_CANCELLED
        assert capsule.run.error.code == run_pb2.ERROR_CODE_CANCELLED
        assert capsule.run.error.metadata["cause"] == "caller_cancelled"
        assert stub.GetRun(api.GetRunRequest(name=run.name), timeout=10).run.state == run_pb2.RUN_STATE_CANCELLED
        with pytest.raises(grpc.RpcError) as finished:
            stub.StopRun(api.StopRunRequest(name=run.name), timeout=10)
        assert finished.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert capsule.events[-1].stage == run_pb2.STAGE_DONE
    no_sandbox_running(stack)


def test_a_deadline_passing_in_the_queue_leaves_a_cancelled_capsule(stack: RunningStack) -> None:
    channel, stub = stub_for(stack.analyst_target)
    with channel:
        slow = stub.SubmitRun.future(api.SubmitRunRequest(dataset_id="sensors", sql=SLOW_SQL), timeout=120)
        busy = running_run(stub)  # the only sandbox slot is taken: the next run waits in the queue
        with pytest.raises(grpc.RpcError) as late:
            stub.SubmitRun(api.SubmitRunRequest(dataset_id="sensors", sql="SELECT count(*) AS n FROM sensors"),
                           timeout=1.5)
        assert late.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED

        def cancelled_by_deadline() -> list[run_pb2.Run]:
            runs = stub.ListRuns(api.ListRunsRequest(states=[run_pb2.RUN_STATE_CANCELLED], dataset_id="sensors"),
                                 timeout=10).runs
            return [r for r in runs if r.error.metadata.get("cause") == "caller_deadline"]

        expired = wait_for(cancelled_by_deadline, "the run whose deadline passed")[0]
        assert not expired.HasField("start_time"), "it never reached a sandbox"
        stub.StopRun(api.StopRunRequest(name=busy.name), timeout=10)
        stopped = slow.result().run
        assert stopped.state == run_pb2.RUN_STATE_CANCELLED and stopped.error.metadata["cause"] == "stop_run"
    no_sandbox_running(stack)


def test_a_second_client_watches_a_run_live_and_stops_it(stack: RunningStack) -> None:
    first, owner = stub_for(stack.analyst_target)
    second, watcher = stub_for(stack.analyst_target)
    with first, second:
        pending = owner.SubmitRun.future(api.SubmitRunRequest(dataset_id="sensors", sql=SLOW_SQL), timeout=120)
        run = running_run(watcher)
        stream = watcher.WatchRun(api.WatchRunRequest(name=run.name), timeout=60)
        seen = []
        for response in stream:
            seen.append(response.event)
            if response.event.stage == run_pb2.STAGE_EXECUTING:
                watcher.StopRun(api.StopRunRequest(name=run.name), timeout=10)
        assert [e.sequence for e in seen] == list(range(1, len(seen) + 1))
        assert [e.stage for e in seen][-2:] == [run_pb2.STAGE_EXECUTING, run_pb2.STAGE_DONE]
        assert seen[-1].run.state == run_pb2.RUN_STATE_CANCELLED
        finished = pending.result().run
        assert finished.state == run_pb2.RUN_STATE_CANCELLED and finished.error.metadata["cause"] == "stop_run"
        # A finished run replays from its capsule, after any sequence number, and ends.
        replay = [r.event for r in watcher.WatchRun(api.WatchRunRequest(name=run.run_id, after_sequence=1), timeout=30)]
        assert [e.sequence for e in replay] == [e.sequence for e in seen[1:]]
        assert replay[-1].run.state == run_pb2.RUN_STATE_CANCELLED
        with pytest.raises(grpc.RpcError) as missing:
            list(watcher.WatchRun(api.WatchRunRequest(name="runs/rnope"), timeout=10))
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    no_sandbox_running(stack)


def test_ask_detaches_when_its_caller_leaves(stack: RunningStack) -> None:
    caller, asker = stub_for(stack.analyst_target)
    observer, stub = stub_for(stack.analyst_target)
    with observer:
        stream = asker.Ask(api.AskRequest(dataset_id="support", question="How many tickets are there per priority?"),
                           timeout=60)
        first = next(stream).event
        caller.close()  # the asker leaves after the first event
        events = [r.event for r in stub.WatchRun(api.WatchRunRequest(name=first.run_id), timeout=60)]
        assert events[0] == first
        assert events[-1].stage == run_pb2.STAGE_DONE and events[-1].run.state == run_pb2.RUN_STATE_SUCCEEDED
        assert capsule_of(stub, first.run_id).run.state == run_pb2.RUN_STATE_SUCCEEDED


def test_list_runs_filters_and_pages(stack: RunningStack) -> None:
    channel, stub = stub_for(stack.analyst_target)
    with channel:
        started = time.time()
        for _ in range(3):
            run = stub.SubmitRun(api.SubmitRunRequest(dataset_id="ecommerce", sql="SELECT 1 AS one"), timeout=60).run
            assert run.state == run_pb2.RUN_STATE_SUCCEEDED, run.error
        request = api.ListRunsRequest(page_size=2, dataset_id="ecommerce", states=[run_pb2.RUN_STATE_SUCCEEDED])
        request.min_create_time.FromSeconds(int(started) - 1)
        first = stub.ListRuns(request, timeout=10)
        assert len(first.runs) == 2 and first.next_page_token
        request.page_token = first.next_page_token
        second = stub.ListRuns(request, timeout=10)
        listed = [r.run_id for r in [*first.runs, *second.runs]]
        assert len(listed) == len(set(listed)) >= 3
        assert all(r.dataset_id == "ecommerce" and r.state == run_pb2.RUN_STATE_SUCCEEDED
                   for r in [*first.runs, *second.runs])
        created = [r.create_time.ToNanoseconds() for r in [*first.runs, *second.runs]]
        assert created == sorted(created, reverse=True)
        future = api.ListRunsRequest(dataset_id="ecommerce")
        future.min_create_time.FromSeconds(int(time.time()) + 3600)
        assert list(stub.ListRuns(future, timeout=10).runs) == []
        with pytest.raises(grpc.RpcError) as bad:
            stub.ListRuns(api.ListRunsRequest(page_token="nonsense"), timeout=10)
        assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_two_processes_share_a_store_without_touching_each_others_runs(stack: RunningStack) -> None:
    channel, stub = stub_for(stack.analyst_target)
    with channel:
        pending = stub.SubmitRun.future(api.SubmitRunRequest(dataset_id="sensors", sql=SLOW_SQL), timeout=120)
        run = running_run(stub)
        # Another process (the CLI with its embedded stack) starts on the same store, recovers
        # what it may, answers and exits while the first process's run is still in its sandbox.
        other = subprocess.run([CLI, "sql", "--capsule-db", str(stack.capsule_db), "--datasets-dir",
                                str(stack.datasets_dir), "--cache-dir", str(stack.capsule_db.parent / "cli-cache"),
                                "--dataset", "support", "--json", "SELECT count(*) AS n FROM tickets"],
                               capture_output=True, text=True, timeout=180)
        assert other.returncode == 0, other.stderr
        answer = json.loads(other.stdout)
        assert answer["status"] == "SUCCEEDED"
        assert stub.GetRun(api.GetRunRequest(name=run.name), timeout=10).run.state == run_pb2.RUN_STATE_RUNNING
        with pytest.raises(grpc.RpcError) as none_yet:
            stub.GetCapsule(api.GetCapsuleRequest(name=run.run_id), timeout=10)
        assert none_yet.value.code() == grpc.StatusCode.NOT_FOUND
        # The other process's run is in the shared store.
        assert capsule_of(stub, answer["run_id"]).run.state == run_pb2.RUN_STATE_SUCCEEDED
        stub.StopRun(api.StopRunRequest(name=run.name), timeout=10)
        finished = pending.result().run
        assert finished.state == run_pb2.RUN_STATE_CANCELLED
        assert capsule_of(stub, run.run_id).run.state == run_pb2.RUN_STATE_CANCELLED
    no_sandbox_running(stack)


def test_shutdown_records_runs_in_flight_as_cancelled(datasets_dir: Path, tmp_path: Path) -> None:
    db = tmp_path / "capsules.sqlite3"
    running = start_stack(datasets_dir, db, runner_overrides={"max_timeout_seconds": 60.0},
                          run_timeout_seconds=60.0)
    try:
        channel, stub = stub_for(running.analyst_target)
        with channel:
            pending = stub.SubmitRun.future(api.SubmitRunRequest(dataset_id="sensors", sql=SLOW_SQL), timeout=120)
            run = running_run(stub)
            running.loop.run(running.stack.stop(grace=0.5))
            with pytest.raises(grpc.RpcError):
                pending.result()
    finally:
        running.loop.close()
    store = SqliteCapsuleStore(db)
    try:
        capsule = store.get(run.run_id)
        assert capsule is not None and capsule.run.state == run_pb2.RUN_STATE_CANCELLED
        assert capsule.run.error.metadata["cause"] == "service_shutdown"
        assert store.in_flight() == []
    finally:
        store.close()


def test_a_run_of_another_process_is_visible_and_watched_until_it_ends(stack: RunningStack) -> None:
    other = SqliteCapsuleStore(stack.capsule_db)  # another process's view of the shared store
    run = run_pb2.Run(name="runs/rotherprocess", run_id="rotherprocess", state=run_pb2.RUN_STATE_RUNNING,
                      dataset_id="support")
    run.create_time.GetCurrentTime()
    other.begin(run, Owner("another-host", "boot", 1, "1").token())  # alive as far as this host can tell
    channel, stub = stub_for(stack.analyst_target)
    try:
        with channel, ThreadPoolExecutor(1) as pool:
            watching = pool.submit(lambda: [r.event for r in stub.WatchRun(api.WatchRunRequest(name=run.name),
                                                                            timeout=60)])
            assert stub.GetRun(api.GetRunRequest(name=run.name), timeout=10).run.state == run_pb2.RUN_STATE_RUNNING
            listed = stub.ListRuns(api.ListRunsRequest(states=[run_pb2.RUN_STATE_RUNNING]), timeout=10).runs
            assert run.run_id in [r.run_id for r in listed]
            with pytest.raises(grpc.RpcError) as elsewhere:
                stub.StopRun(api.StopRunRequest(name=run.name), timeout=10)
            assert elsewhere.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            time.sleep(0.5)  # let the watcher wait for the other process (correct either way)
            run.state = run_pb2.RUN_STATE_SUCCEEDED
            other.put(capsule_pb2.Capsule(name="capsules/rotherprocess", run=run, events=[run_pb2.RunEvent(
                run_id=run.run_id, sequence=1, stage=run_pb2.STAGE_DONE, run=run)]))
            events = watching.result()
        assert [e.stage for e in events] == [run_pb2.STAGE_DONE]
        assert events[-1].run.state == run_pb2.RUN_STATE_SUCCEEDED
    finally:
        other.close()
