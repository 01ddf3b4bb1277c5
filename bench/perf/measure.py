"""Measurements for the runner benchmark: each function times one thing and returns numbers."""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import grpc

from csv_analyst.v1 import analyst_service_pb2 as api, analyst_service_pb2_grpc, run_pb2


def percentile(values: list[float], share: float) -> float:
    """The share-th percentile (0..1) by linear interpolation."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    position = (len(ordered) - 1) * share
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summary_ms(seconds: list[float]) -> dict[str, float]:
    """p50/p95/max/mean in milliseconds."""
    ms = [s * 1000 for s in seconds]
    return {"p50_ms": round(percentile(ms, 0.5), 2), "p95_ms": round(percentile(ms, 0.95), 2),
            "max_ms": round(max(ms), 2), "mean_ms": round(statistics.fmean(ms), 2), "n": len(ms)}


def floor_seconds(database: Path, sql: str, repeats: int, pause_seconds: float = 0.0) -> list[float]:
    """In-process DuckDB time of the query on the materialised file, connection already open.

    Args:
        pause_seconds: Idle time before each query, as in the paced SubmitRun measurement (an
            idle machine runs the next query slower than one in a hot loop: measured here,
            ~11 ms after a 0.5 s pause against ~7.5 ms back to back, in the same process).
    """
    connection = duckdb.connect(str(database), read_only=True)
    connection.execute("SET threads = 1")  # the sandbox runs DuckDB with one thread too
    for _ in range(3):
        connection.execute(sql).fetchall()
    times = []
    for _ in range(repeats):
        time.sleep(pause_seconds)
        started = time.perf_counter()
        connection.execute(sql).fetchall()
        times.append(time.perf_counter() - started)
    connection.close()
    return times


def materialise(csv: Path, database: Path, table: str) -> None:
    """Build the floor's DuckDB file the way the runner does (CREATE TABLE from read_csv)."""
    if database.exists():
        database.unlink()
    connection = duckdb.connect(str(database))
    connection.execute(f"CREATE TABLE {table} AS SELECT * FROM read_csv(?, header = true)", [str(csv)])
    connection.close()


def pandas_seconds(csv: Path, repeats: int) -> list[float]:
    """pandas read_csv + group-by of the same question (the peer baseline)."""
    import pandas as pd

    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        frame = pd.read_csv(csv)
        frame.groupby("status").agg(orders=("order_id", "count"), revenue=("total", "sum")).sort_values(
            "revenue", ascending=False)
        times.append(time.perf_counter() - started)
    return times


def import_duckdb_seconds(repeats: int) -> list[float]:
    """Plain `python -c 'import duckdb'`: the least any fresh Python sandbox can cost."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import duckdb"], check=True)
        times.append(time.perf_counter() - started)
    return times


def native_start_seconds(cli: str, repeats: int) -> list[float]:
    """The bare native DuckDB CLI answering `SELECT 1` (no sandbox): the floor of a native run."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([cli, "-batch", "-no-init", ":memory:", "-c", "SELECT 1"], check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - started)
    return times


def submit_latencies(target: str, dataset_id: str, sql: str, runs: int,
                     pause_seconds: float = 0.0) -> tuple[list[float], list[run_pb2.Run]]:
    """Sequential SubmitRun calls over gRPC: wall time of each call as the client sees it.

    Args:
        pause_seconds: Think time before each call (an analyst reading the last answer); 0 sends
            the calls back to back.
    """
    times, results = [], []
    with grpc.insecure_channel(target) as channel:
        stub = analyst_service_pb2_grpc.AnalystServiceStub(channel)
        for _ in range(runs):
            time.sleep(pause_seconds)
            started = time.perf_counter()
            run = stub.SubmitRun(api.SubmitRunRequest(dataset_id=dataset_id, sql=sql), timeout=60).run
            times.append(time.perf_counter() - started)
            results.append(run)
    return times, results


@dataclass
class LoadResult:
    """What a load run observed."""

    latencies: list[float] = field(default_factory=list)
    outcomes: dict[str, int] = field(default_factory=dict)
    wall_seconds: float = 0.0
    peak_rss_bytes: int = 0


def _tree_rss(root: int) -> int:
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            parents[int(entry)] = int(fields[1])
            rss[int(entry)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue
    total, stack = 0, [root]
    children: dict[int, list[int]] = {}
    for pid, parent in parents.items():
        children.setdefault(parent, []).append(pid)
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total


def load_run(target: str, dataset_id: str, sql: str, users: int, per_user: int) -> LoadResult:
    """`users` clients, each with `per_user` SubmitRuns in flight at once; peak memory sampled."""
    result = LoadResult()
    lock = threading.Lock()
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            result.peak_rss_bytes = max(result.peak_rss_bytes, _tree_rss(os.getpid()))
            time.sleep(0.02)

    def record(started: float, call: Any) -> None:
        finished = time.perf_counter()  # when this call completed, whatever order they complete in
        try:
            run = call.result()
            outcome = "SUCCEEDED" if run.run.state == run_pb2.RUN_STATE_SUCCEEDED else (
                run.run.error.reason or "FAILED")
            if run.run.error.status_code == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]:
                outcome = "RESOURCE_EXHAUSTED"
        except grpc.RpcError as error:
            outcome = error.code().name  # type: ignore[attr-defined]
        with lock:
            result.latencies.append(finished - started)
            result.outcomes[outcome] = result.outcomes.get(outcome, 0) + 1

    def user() -> None:
        with grpc.insecure_channel(target) as channel:
            stub = analyst_service_pb2_grpc.AnalystServiceStub(channel)
            calls = []
            for _ in range(per_user):
                started = time.perf_counter()
                call = stub.SubmitRun.future(api.SubmitRunRequest(dataset_id=dataset_id, sql=sql), timeout=120)
                call.add_done_callback(lambda done, started=started: record(started, done))
                calls.append(call)
            for call in calls:
                with contextlib.suppress(grpc.RpcError):
                    call.result()

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    threads = [threading.Thread(target=user) for _ in range(users)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.wall_seconds = time.perf_counter() - started
    stop.set()
    sampler.join()
    return result


def executor_cold_seconds(make_executor: Callable[[], Any], request_for: Callable[[int], Any], repeats: int) -> list[float]:
    """Cold start of one executor: a fresh sandbox per run, no pool, trivial query."""
    async def scenario() -> list[float]:
        executor = make_executor()
        times = []
        try:
            for index in range(repeats):
                started = time.perf_counter()
                outcome = await executor.execute(request_for(index), lambda: None)
                times.append(time.perf_counter() - started)
                if outcome.result.HasField("error"):
                    raise RuntimeError(outcome.result.error.message)
        finally:
            await executor.close()
        return times

    return asyncio.run(scenario())
