"""Runner benchmark: `python -m bench.perf [--scale 50]`.

Measures, side by side in one run on this machine, and prints as a table (JSON with --json-out):
- the floor: in-process DuckDB time of the question on the materialised data, both in a hot
  loop and paced like the SubmitRun calls (the same pause before each query);
- end-to-end gRPC SubmitRun latency through the warm pool (p50, p95) and its ratio to the floor
  measured the same way (paced against paced; also against the hot floor);
- the same paced SubmitRun through warm Docker containers;
- cold start per executor (bubblewrap, Docker) and runner: the native SQL runner against the bare
  native DuckDB CLI start, the Python runner against plain `python -c 'import duckdb'`;
- pandas read_csv + group-by of the same question (peer baseline) and its ratio to the floor;
- a load run (5 users x 10 concurrent runs) and a burst of 50: outcomes, latency, runs/s, peak memory;
- variants that decide the defaults: no warm pool, two warm sandboxes per dataset, the old fixed
  concurrency of 2, and the Python runner for SQL;
- CPU time per run (services and sandboxes apart) for a burst and back-to-back runs
  (bench/perf/cpu.py): unlike latency, it hardly moves with the neighbours' load;
- the issue's targets (`targets`), each as a measured value against its limit.
Numbers are ratios against baselines measured in the same run; nothing here is a pass/fail test.
`python -m bench.perf.table --readme README.md` regenerates the README's table from the JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import platform
import shutil
import sys
import tempfile
import threading
import uuid
from pathlib import Path
from typing import Any

from google.protobuf import duration_pb2

from bench.perf import cpu, measure
from csv_analyst.v1 import run_pb2

REPO = Path(__file__).resolve().parents[2]
PAUSE_SECONDS = 0.5
QUESTION_SQL = ("SELECT status, count(*) AS orders, sum(total) AS revenue FROM orders "
                "GROUP BY status ORDER BY revenue DESC")


def machine() -> dict[str, Any]:
    """What this machine is."""
    model = ""
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as meminfo:
        memory_kb = int(meminfo.readline().split()[1])
    return {"cpus": os.cpu_count(), "cpu_model": model, "memory_gib": round(memory_kb / 2**20, 1),
            "python": platform.python_version(), "kernel": platform.release()}


def datasets_at(scale: float, root: Path) -> Path:
    """The demo datasets at this scale (generated once, then reused)."""
    from csv_analyst_datasets.generator import generate

    out = root / f"scale-{scale:g}"
    if not (out / "registry.json").exists():
        print(f"generating the demo datasets at scale {scale:g} into {out} ...", file=sys.stderr, flush=True)
        generate(out, scale)
    return out


class Loop:
    """An asyncio loop in a thread, so the gRPC stack serves while this thread measures."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(600)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def load_summary(result: measure.LoadResult) -> dict[str, Any]:
    done = sum(result.outcomes.values())
    return {**measure.summary_ms(result.latencies), "outcomes": result.outcomes,
            "runs_per_second": round(done / result.wall_seconds, 1),
            "peak_memory_mib": round(result.peak_rss_bytes / 2**20, 1),
            "unexpected_errors": sum(n for k, n in result.outcomes.items()
                                     if k not in ("SUCCEEDED", "RESOURCE_EXHAUSTED"))}


def end_to_end(datasets: Path, work: Path, runs: int, load_users: int, load_per_user: int, burst: int,
               pool_size: int = 1, max_concurrency: int = 0, sql_runner: str = "auto") -> dict[str, Any]:
    """Start the real stack (bwrap, warm pool, materialisation) and measure SubmitRun and load
    (load_users 0: SubmitRun only)."""
    from analyst_service.config import AnalystSettings
    from csv_analyst_app.stack import start_local_stack
    from runner_service.config import RunnerSettings

    loop = Loop()
    # No exact result cache: every SubmitRun of the same SQL must meet a sandbox.
    analyst = AnalystSettings(port=0, datasets_dir=datasets, capsule_db=work / f"capsules-{uuid.uuid4().hex[:8]}.sqlite3",
                              run_timeout_seconds=60.0, max_rows=100, result_cache_bytes=0)
    # The materialised copy is shared by every stack of the run (same cache directory and key).
    runner = RunnerSettings(port=0, cache_dir=work / "materialized", pool_size=pool_size,
                            max_concurrency=max_concurrency, max_queue=64, sql_runner=sql_runner)
    stack = loop.run(start_local_stack(analyst, runner))
    try:
        target = stack.analyst_target
        # First run reads the CSVs and starts the materialisation; wait for it, then warm up.
        measure.submit_latencies(target, "ecommerce", QUESTION_SQL, 1)
        loop.run(stack.runner.materializer.wait_idle())
        measure.submit_latencies(target, "ecommerce", QUESTION_SQL, 3)
        # Paced like an analyst (a pause before each question), so the warm sandbox refilled after
        # the previous answer is ready; and back to back, where each run waits for that refill.
        latencies, results = measure.submit_latencies(target, "ecommerce", QUESTION_SQL, runs, PAUSE_SECONDS)
        back_to_back, _ = measure.submit_latencies(target, "ecommerce", QUESTION_SQL, runs)
        failures = [r.error.message for r in results if r.state != run_pb2.RUN_STATE_SUCCEEDED]
        sandbox_query = [r.stats.query_duration.ToNanoseconds() / 1e9 for r in results]
        out: dict[str, Any] = {
            "pool_size": pool_size, "concurrency": runner.concurrency(), "sql_runner": sql_runner,
            "submit_run": measure.summary_ms(latencies), "submit_run_back_to_back": measure.summary_ms(back_to_back),
            "submit_failures": failures, "query_in_sandbox": measure.summary_ms(sandbox_query)}
        if load_users:
            load = measure.load_run(target, "ecommerce", QUESTION_SQL, load_users, load_per_user)
            out["load"] = {"users": load_users, "concurrent_per_user": load_per_user, **load_summary(load)}
            burst_result = measure.load_run(target, "ecommerce", QUESTION_SQL, 1, burst)
            out["burst"] = {"size": burst, **load_summary(burst_result)}
    finally:
        loop.run(stack.stop(grace=2.0))
        loop.close()
    return out


def variants(datasets: Path, work: Path, runs: int, load_users: int, load_per_user: int, burst: int) -> dict[str, Any]:
    """The same measurements with other settings, to decide the defaults: no warm pool, a pool
    of 2 per dataset, the old fixed concurrency of 2, and the Python runner for SQL."""
    return {
        "pool_0": end_to_end(datasets, work, runs, 0, 0, 0, pool_size=0),
        "pool_2": end_to_end(datasets, work, runs, 0, 0, 0, pool_size=2),
        "concurrency_2": end_to_end(datasets, work, runs, load_users, load_per_user, burst, max_concurrency=2),
        "python_runner": end_to_end(datasets, work, runs, load_users, load_per_user, burst, sql_runner="python"),
    }


def docker_end_to_end(datasets: Path, work: Path, runs: int) -> dict[str, Any]:
    """Paced SubmitRun through a stack whose runner uses the Docker executor (warm containers)."""
    from analyst_service.config import AnalystSettings
    from csv_analyst_app.stack import start_local_stack
    from runner_service.config import RunnerSettings

    loop = Loop()
    analyst = AnalystSettings(port=0, datasets_dir=datasets, capsule_db=work / "capsules-docker.sqlite3",
                              run_timeout_seconds=60.0, max_rows=100, result_cache_bytes=0)
    runner = RunnerSettings(port=0, cache_dir=work / "materialized-docker", pool_size=1, max_queue=64,
                            executor="docker")
    try:
        stack = loop.run(start_local_stack(analyst, runner))
    except Exception as error:  # noqa: BLE001 - Docker is optional on a laptop
        loop.close()
        return {"unavailable": f"{type(error).__name__}: {error}"[:300]}
    try:
        target = stack.analyst_target
        measure.submit_latencies(target, "ecommerce", QUESTION_SQL, 1)
        loop.run(stack.runner.materializer.wait_idle())
        measure.submit_latencies(target, "ecommerce", QUESTION_SQL, 3, PAUSE_SECONDS)
        latencies, results = measure.submit_latencies(target, "ecommerce", QUESTION_SQL, runs, PAUSE_SECONDS)
    finally:
        loop.run(stack.stop(grace=2.0))
        loop.close()
    return {"submit_run": measure.summary_ms(latencies),
            "query_in_sandbox": measure.summary_ms([r.stats.query_duration.ToNanoseconds() / 1e9 for r in results]),
            "failures": [r.error.message for r in results if r.state != run_pb2.RUN_STATE_SUCCEEDED]}


def one_row_database(work: Path) -> tuple[Path, Path]:
    """A one-row CSV and its materialised file, built by the runner's own code (so a cold start
    measures the sandbox, not loading data)."""
    from csv_analyst.runner.v1 import sandbox_pb2
    from runner.engine import materialize

    csv = work / "one.csv"
    csv.write_text("a\n1\n")
    database = work / "one.duckdb"
    built = materialize(sandbox_pb2.SandboxTask(
        tables=[sandbox_pb2.TableSource(name="t", path=str(csv))], data_dir=str(work), materialize_to=str(database),
        limits=run_pb2.ResourceLimits(memory_bytes=256 << 20, threads=1)))
    if built.HasField("error"):
        raise RuntimeError(built.error.message)
    database.chmod(0o644)
    return csv, database


def cold_starts(work: Path, repeats: int) -> dict[str, Any]:
    """Cold start per executor and runner against the bare start of each runner's program: the
    native DuckDB CLI (`duckdb -c 'SELECT 1'`) for SQL on a materialised file, `python -c 'import
    duckdb'` for the Python runner (SQL on raw CSV files, Python mode)."""
    from runner_service.executors.base import SandboxRequest, TableFile
    from runner_service.executors.bwrap import BwrapExecutor
    from runner_service.executors.native_sql import find_cli
    from runner_service.executors.pool import PoolSettings

    csv, database = one_row_database(work)
    work.chmod(0o755)
    limits = run_pb2.ResourceLimits(timeout=duration_pb2.Duration(seconds=60), memory_bytes=512 << 20,
                                    max_rows=10, threads=1, max_processes=64)

    def on_csv(index: int) -> SandboxRequest:
        return SandboxRequest(f"cold-{index}", "SELECT 1", (TableFile("t", str(csv)),), limits)

    def materialised(index: int) -> SandboxRequest:
        return SandboxRequest(f"cold-{index}", "SELECT 1", (TableFile("t", str(csv)),), limits, str(database))

    out: dict[str, Any] = {"python_import_duckdb": measure.summary_ms(measure.import_duckdb_seconds(repeats))}
    cli = find_cli()
    if cli is not None:
        out["native_cli_start"] = measure.summary_ms(measure.native_start_seconds(cli, repeats))
        out["bwrap_native"] = measure.summary_ms(measure.executor_cold_seconds(
            lambda: BwrapExecutor(pool_settings=PoolSettings(size_per_key=0), native_cli=cli), materialised, repeats))
    out["bwrap"] = measure.summary_ms(measure.executor_cold_seconds(
        lambda: BwrapExecutor(pool_settings=PoolSettings(size_per_key=0), native_cli=None), on_csv, repeats))
    try:
        from runner_service.config import RunnerSettings
        from runner_service.server import make_executor

        settings = dataclasses.replace(RunnerSettings(), executor="docker")
        out["docker"] = measure.summary_ms(measure.executor_cold_seconds(lambda: make_executor(settings), on_csv, repeats))
        if cli is not None:
            out["docker_native"] = measure.summary_ms(measure.executor_cold_seconds(
                lambda: make_executor(settings), materialised, repeats))
    except Exception as error:  # noqa: BLE001 - Docker is optional on a laptop
        out["docker"] = {"unavailable": f"{type(error).__name__}: {error}"[:300]}
    return out


def ratio(numerator: float, denominator: float) -> float:
    return round(numerator / denominator, 2)


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, each as measured in this run: value, limit and whether it is met."""
    floor, paced = results["floor_in_process"]["p50_ms"], results["floor_in_process_paced"]["p50_ms"]
    cold, docker = results["cold_start"], results["docker_warm"]
    rows = [
        ("back-to-back SubmitRun p50 / floor p50", ratio(results["submit_run_back_to_back"]["p50_ms"], floor), 3.0),
        ("paced SubmitRun p50 / paced floor p50", ratio(results["submit_run"]["p50_ms"], paced), 1.5),
    ]
    for name in ("load", "burst"):
        load = results[name]
        rows += [(f"{name}: p95 seconds", round(load["p95_ms"] / 1000, 2), 3.0),
                 (f"{name}: errors", load["unexpected_errors"], 0),
                 (f"{name}: runs/s (at least)", load["runs_per_second"], 30.0)]
    if "bwrap_native" in cold:
        rows.append(("cold bwrap run / bare native start", ratio(cold["bwrap_native"]["p50_ms"],
                                                                  cold["native_cli_start"]["p50_ms"]), 2.0))
    if "submit_run" in docker:
        rows.append(("warm Docker SubmitRun p50 / paced floor p50", ratio(docker["submit_run"]["p50_ms"], paced), 2.0))
    return [{"target": name, "value": value, "limit": limit,
             "met": value >= limit if "at least" in name else value <= limit} for name, value, limit in rows]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=50.0, help="demo data scale (50 = 1e6 orders)")
    parser.add_argument("--data-dir", type=Path, default=REPO / "bench" / ".data", help="where generated data is kept")
    parser.add_argument("--runs", type=int, default=50, help="sequential SubmitRun calls measured")
    parser.add_argument("--cold-runs", type=int, default=10, help="cold starts measured per executor")
    parser.add_argument("--json-out", type=Path, help="also write the results as JSON here")
    parser.add_argument("--no-variants", action="store_true", help="skip the other-settings comparisons")
    options = parser.parse_args(argv)

    datasets = datasets_at(options.scale, options.data_dir)
    orders_csv = datasets / "ecommerce" / "orders.csv"
    work = Path(tempfile.mkdtemp(prefix="csv-analyst-perf-"))
    try:
        database = work / "floor.duckdb"
        measure.materialise(orders_csv, database, "orders")
        floor = measure.summary_ms(measure.floor_seconds(database, QUESTION_SQL, 30))
        floor_paced = measure.summary_ms(measure.floor_seconds(database, QUESTION_SQL, 30, PAUSE_SECONDS))
        pandas = measure.summary_ms(measure.pandas_seconds(orders_csv, 3))
        e2e = end_to_end(datasets, work, options.runs, 5, 10, 50)
        others = {} if options.no_variants else variants(datasets, work, 20, 5, 10, 50)
        docker = docker_end_to_end(datasets, work, 20)
        cold = cold_starts(work, options.cold_runs)
        cpu_per_run = cpu.measure_stack(argparse.Namespace(
            scale=options.scale, data_dir=options.data_dir, runs=50, pool_size=1, concurrency=0, sql_runner="auto",
            profile=False))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    with open(orders_csv) as handle:
        rows = sum(1 for _ in handle) - 1
    results = {
        "machine": machine(), "scale": options.scale, "orders_rows": rows, "question_sql": QUESTION_SQL,
        "floor_in_process": floor, "floor_in_process_paced": {"pause_seconds": PAUSE_SECONDS, **floor_paced},
        "pandas_read_csv_groupby": pandas, **e2e, "variants": others, "docker_warm": docker, "cold_start": cold,
        "cpu_per_run": cpu_per_run,
        "ratios": {
            # The target: SubmitRun (paced) against the in-process query paced the same way.
            "submit_run_p50_over_paced_floor_p50": round(e2e["submit_run"]["p50_ms"] / floor_paced["p50_ms"], 2),
            "submit_run_p50_over_floor_p50": round(e2e["submit_run"]["p50_ms"] / floor["p50_ms"], 2),
            "back_to_back_p50_over_floor_p50": round(e2e["submit_run_back_to_back"]["p50_ms"] / floor["p50_ms"], 2),
            "pandas_over_floor": round(pandas["p50_ms"] / floor["p50_ms"], 1),
            "bwrap_cold_over_python_import": round(cold["bwrap"]["p50_ms"] / cold["python_import_duckdb"]["p50_ms"], 2),
        },
    }
    if "bwrap_native" in cold:
        results["ratios"]["bwrap_native_cold_over_native_start"] = ratio(cold["bwrap_native"]["p50_ms"],
                                                                         cold["native_cli_start"]["p50_ms"])
    results["targets"] = targets(results)
    if "submit_run" in docker:
        results["ratios"]["docker_submit_run_p50_over_paced_floor_p50"] = round(
            docker["submit_run"]["p50_ms"] / floor_paced["p50_ms"], 2)
    if "p50_ms" in cold.get("docker", {}):
        results["ratios"]["docker_cold_over_python_import"] = round(
            cold["docker"]["p50_ms"] / cold["python_import_duckdb"]["p50_ms"], 2)
    print(json.dumps(results, indent=2))
    if options.json_out:
        options.json_out.parent.mkdir(parents=True, exist_ok=True)
        options.json_out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
