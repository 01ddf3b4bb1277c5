"""Where the CPU of a run goes: `python -m bench.perf.cpu [--scale 50] [--runs 50] [--profile]`.

On 2 cores, 30 runs/s leaves about 66 ms of CPU per run for everything (analyst service, runner
service, sandbox). Wall-clock latency on a shared machine drifts with the neighbours' load; CPU
time per run does much less. This starts the real stack (bwrap executor, warm pool, native SQL
runner) in a child process placed in a cpuacct cgroup of its own, drives it from this process
(so the client's CPU is not counted) and reports, per run, for a burst and for back-to-back runs:

- the services' Python CPU (the child's own user + system time: analyst and runner service,
  gRPC, capsule store), from /proc/<child>/stat;
- the sandboxes' CPU (everything else in the cgroup: sh, bwrap, setpriv, the DuckDB CLI), as
  the cgroup's cpuacct.usage minus the child's own time;
- with --profile, the services' hottest functions (cProfile of the event loop's thread).

Without a writable cpuacct cgroup only the services' share is reported.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from bench.perf import measure

REPO = Path(__file__).resolve().parents[2]

CPUACCT = Path("/sys/fs/cgroup/cpuacct")
TICKS = os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent busy since boot (every process, kernel threads included)."""
    fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / TICKS  # all but idle and iowait


def _own_cpu_seconds(pid: int) -> float:
    """User + system time of one process (all its threads), not its children."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


class Meter:
    """CPU of the stack's process and of everything started in its cgroup."""

    def __init__(self, pid: int, cgroup: Path | None) -> None:
        self.pid, self.cgroup = pid, cgroup

    def read(self) -> tuple[float, float]:
        """(services' own CPU seconds, cgroup CPU seconds or nan)."""
        own = _own_cpu_seconds(self.pid)
        total = float("nan")
        if self.cgroup is not None:
            total = int((self.cgroup / "cpuacct.usage").read_text()) / 1e9
        return own, total


def _stack_child(scale: float, data_dir: Path, pool_size: int, max_concurrency: int, sql_runner: str) -> None:
    """In the child: start the stack, print its target, then obey commands on stdin."""
    import asyncio
    import cProfile
    import io
    import pstats
    import shutil
    import tempfile

    from analyst_service.config import AnalystSettings
    from bench.perf.__main__ import datasets_at
    from csv_analyst_app.stack import start_local_stack
    from runner_service.config import RunnerSettings

    datasets = datasets_at(scale, data_dir)
    work = Path(tempfile.mkdtemp(prefix="csv-analyst-cpu-"))
    analyst = AnalystSettings(port=0, datasets_dir=datasets, capsule_db=work / "capsules.sqlite3",
                              run_timeout_seconds=60.0, max_rows=100, result_cache_bytes=0)
    runner = RunnerSettings(port=0, cache_dir=work / "materialized", pool_size=pool_size,
                            max_concurrency=max_concurrency, max_queue=64, sql_runner=sql_runner)

    async def main() -> None:
        stack = await start_local_stack(analyst, runner)
        loop = asyncio.get_running_loop()
        profiler = cProfile.Profile()
        print(json.dumps({"target": stack.analyst_target}), flush=True)
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while line := (await reader.readline()).decode().strip():
            if line == "materialised":
                await stack.runner.materializer.wait_idle()
                reply: dict[str, Any] = {}
            elif line == "counters":
                from runner_service import metrics

                reply = {"sandbox_starts": sum(s.value for m in metrics.SANDBOX_STARTS.collect() for s in m.samples
                                               if s.name.endswith("_total")),
                         "read_aheads": sum(s.value for m in metrics.READ_AHEADS.collect() for s in m.samples
                                            if s.name.endswith("_total")),
                         "warm_hits": sum(s.value for m in metrics.WARM_POOL.collect() for s in m.samples
                                          if s.name.endswith("_total") and s.labels.get("result") == "hit")}
            elif line == "profile-on":
                profiler = cProfile.Profile()
                profiler.enable()
                reply = {}
            elif line == "profile-off":
                profiler.disable()
                text = io.StringIO()
                pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(40)
                reply = {"profile": text.getvalue()}
            else:
                break
            print(json.dumps(reply), flush=True)
        await stack.stop(grace=2.0)
        shutil.rmtree(work, ignore_errors=True)

    asyncio.run(main())


def _cgroup() -> Path | None:
    if not os.access(CPUACCT, os.W_OK):
        return None
    group = CPUACCT / "csv-analyst-bench" / uuid.uuid4().hex[:12]
    group.mkdir(parents=True)
    return group


def measure_stack(options: argparse.Namespace) -> dict[str, Any]:
    """Start the stack in a child process and measure CPU per run for a burst and back to back."""
    from bench.perf.__main__ import QUESTION_SQL  # imported here: bench.perf.__main__ imports this module
    cgroup = _cgroup()
    argv = [sys.executable, "-m", "bench.perf.cpu", "--child", "--scale", str(options.scale), "--data-dir",
            str(options.data_dir), "--pool-size", str(options.pool_size), "--concurrency", str(options.concurrency),
            "--sql-runner", options.sql_runner]
    join = f"echo $$ > {cgroup / 'cgroup.procs'}; " if cgroup else ""
    child = subprocess.Popen(["/bin/sh", "-c", join + 'exec "$@"', "sh", *argv], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, cwd=REPO)
    assert child.stdin is not None and child.stdout is not None

    def ask(command: str) -> dict[str, Any]:
        assert child.stdin is not None and child.stdout is not None
        child.stdin.write(command + "\n")
        child.stdin.flush()
        return json.loads(child.stdout.readline())  # type: ignore[no-any-return]

    out: dict[str, Any] = {"cgroup": cgroup is not None}
    try:
        target = json.loads(child.stdout.readline())["target"]
        meter = Meter(child.pid, cgroup)
        measure.submit_latencies(target, "ecommerce", QUESTION_SQL, 1)
        ask("materialised")
        measure.submit_latencies(target, "ecommerce", QUESTION_SQL, 5)

        # What the machine spends per second without this benchmark's runs (other jobs, idle
        # services), subtracted from the machine's busy time during each measurement.
        busy_start = machine_busy_seconds()
        time.sleep(2.0)
        idle_busy = (machine_busy_seconds() - busy_start) / 2.0
        out["machine_busy_cores_before"] = round(idle_busy, 2)

        def per_run(label: str, action: Any, runs: int) -> None:
            time.sleep(1.0)  # let refills and clean-up of the previous step finish
            counters0 = ask("counters")
            own0, total0 = meter.read()
            busy0, clock0 = machine_busy_seconds(), time.perf_counter()
            started = time.perf_counter()
            result = action()
            wall = time.perf_counter() - started
            time.sleep(1.5)  # the last sandboxes exit and their refills end: count them too
            own1, total1 = meter.read()
            counters1 = ask("counters")
            busy = (machine_busy_seconds() - busy0 - (time.perf_counter() - clock0) * idle_busy) / runs
            services = (own1 - own0) / runs
            sandboxes = ((total1 - total0) - (own1 - own0)) / runs
            out[label] = {"runs": runs, "wall_seconds": round(wall, 2), "runs_per_second": round(runs / wall, 1),
                          "services_cpu_ms_per_run": round(services * 1000, 1),
                          "sandbox_cpu_ms_per_run": round(sandboxes * 1000, 1),
                          "total_cpu_ms_per_run": round((services + sandboxes) * 1000, 1),
                          "machine_cpu_ms_per_run": round(busy * 1000, 1),
                          **{name: counters1[name] - counters0[name] for name in counters0}, **result}

        def burst() -> dict[str, Any]:
            load = measure.load_run(target, "ecommerce", QUESTION_SQL, 1, options.runs)
            return {**measure.summary_ms(load.latencies), "outcomes": load.outcomes}

        def back_to_back() -> dict[str, Any]:
            latencies, _ = measure.submit_latencies(target, "ecommerce", QUESTION_SQL, options.runs)
            return measure.summary_ms(latencies)

        if options.profile:
            ask("profile-on")
        per_run("burst", burst, options.runs)
        per_run("back_to_back", back_to_back, options.runs)
        if options.profile:
            out["profile"] = ask("profile-off")["profile"]
    finally:
        with contextlib.suppress(Exception):
            child.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(30)
        if child.poll() is None:
            child.kill()
            child.wait()
        if cgroup is not None:
            with contextlib.suppress(OSError):
                cgroup.rmdir()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=50.0)
    parser.add_argument("--data-dir", type=Path, default=REPO / "bench" / ".data")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--pool-size", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=0)
    parser.add_argument("--sql-runner", default="auto")
    parser.add_argument("--profile", action="store_true", help="also print the services' hottest functions")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.child:
        _stack_child(options.scale, options.data_dir, options.pool_size, options.concurrency, options.sql_runner)
        return 0
    result = measure_stack(options)
    profile = result.pop("profile", None)
    print(json.dumps(result, indent=2))
    if profile:
        print(profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
