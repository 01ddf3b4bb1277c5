"""The exact result cache through the real services: a repeat is answered without a sandbox and
says so in its capsule; an edited file, a volatile query or a server without the cache runs again."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from csv_analyst.v1 import analyst_service_pb2 as api, analyst_service_pb2_grpc, run_pb2
from tests.conftest import RunningStack, start_stack, stop_stack

pytestmark = pytest.mark.bwrap


@pytest.fixture(scope="module")
def csv_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache-csv")


@pytest.fixture(scope="module")
def cached_stack(datasets_dir: Path, csv_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    work = tmp_path_factory.mktemp("cache-stack")
    running = start_stack(datasets_dir, work / "capsules.sqlite3", csv_roots=(csv_root,), upload_dir=work / "uploads",
                          enable_python=True, result_cache_bytes=64 << 20)
    yield running
    stop_stack(running)


@pytest.fixture(scope="module")
def stub(cached_stack: RunningStack) -> Iterator[Any]:
    with grpc.insecure_channel(cached_stack.analyst_target) as channel:
        yield analyst_service_pb2_grpc.AnalystServiceStub(channel)


def submit(stub: Any, **request: Any) -> run_pb2.Run:
    run = stub.SubmitRun(api.SubmitRunRequest(**request), timeout=120).run
    assert run.state == run_pb2.RUN_STATE_SUCCEEDED, run.error
    return run


def test_a_repeat_is_answered_from_the_cache_and_says_so(stub: Any) -> None:
    sql = "SELECT priority, count(*) AS n FROM tickets GROUP BY priority ORDER BY priority"
    first = submit(stub, dataset_id="support", sql=sql)
    again = submit(stub, dataset_id="support", sql=sql)
    assert not first.cache_hit and first.runner_mode == "bwrap"
    assert again.cache_hit and again.cached_from_run_id == first.run_id and again.runner_mode == "cache"
    assert again.result.rows == first.result.rows and not again.HasField("start_time")
    capsule = stub.GetCapsule(api.GetCapsuleRequest(name=again.run_id), timeout=30).capsule
    assert capsule.run.cache_hit and capsule.run.cached_from_run_id == first.run_id


def test_an_edited_file_is_never_served_from_the_cache(stub: Any, csv_root: Path) -> None:
    path = csv_root / "prices.csv"
    path.write_text("item,price\na,1\nb,2\n")
    sql = "SELECT sum(price) AS total FROM prices"
    first = submit(stub, csv_paths=[str(path)], sql=sql)
    path.write_text("item,price\na,1\nb,5\n")  # same size, new content
    edited = submit(stub, csv_paths=[str(path)], sql=sql)
    assert not edited.cache_hit
    assert first.result.rows[0].values[0].int_value == 3 and edited.result.rows[0].values[0].int_value == 6


def test_volatile_queries_run_every_time(stub: Any) -> None:
    # (The SQL policy refuses random() and friends; a Python program can draw random numbers.)
    answers = [submit(stub, dataset_id="sensors", python_code="result = float(np.random.rand())") for _ in range(2)]
    assert not any(run.cache_hit for run in answers)
    assert answers[0].result.rows != answers[1].result.rows
    python = "result_df = sensors.groupby('location', as_index=False).size()"
    repeated = [submit(stub, dataset_id="sensors", python_code=python) for _ in range(2)]
    assert repeated[1].cache_hit and repeated[1].cached_from_run_id == repeated[0].run_id


def test_a_server_without_the_cache_runs_every_time(datasets_dir: Path, tmp_path: Path) -> None:
    running = start_stack(datasets_dir, tmp_path / "c.sqlite3", upload_dir=tmp_path / "uploads", result_cache_bytes=0)
    try:
        with grpc.insecure_channel(running.analyst_target) as channel:
            stub = analyst_service_pb2_grpc.AnalystServiceStub(channel)
            runs = [submit(stub, dataset_id="sensors", sql="SELECT count(*) AS n FROM sensors") for _ in range(2)]
        assert not any(run.cache_hit for run in runs)
    finally:
        stop_stack(running)
