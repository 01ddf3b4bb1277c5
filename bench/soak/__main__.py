"""Soak benchmark: `python -m bench.soak [--clients 50] [--seconds 300] [--store sqlite|postgres|both]`.

Starts a real `csv-analyst serve` (bwrap sandboxes, warm pools, the result cache on) with each
capsule store in turn (a private PostgreSQL from Debian's binaries, as the tests start one), runs
N concurrent clients for the duration (registry prompts, SQL, bad input; see workload.py), and
reports per store (after a warm-up that is not measured: one statement and one question per
dataset, so materialised copies, profiles and warm sandboxes exist):
- calls and runs per second, p50/p95 latency (all answered calls, and per kind);
- outcomes, and every outcome that is not one of its request's expected typed answers;
- lost capsules: run ids a caller got that have no capsule afterwards (and capsules whose outcome
  differs from what the caller got);
- memory: the RSS of the service process (both services; sandboxes are separate processes and
  come and go), sampled every 2 s; flat means the largest sample after the first minute is
  within 10% of the first sample after it.
Nothing here is a pass/fail test; `--json-out` writes the result (bench/results/soak.json).
`--seconds 30` is a smoke run (below two minutes the memory window starts after a third of the run).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.soak.clients import Record, check_capsules, run_clients, warm_up
from bench.soak.workload import SHED, Workload

REPO = Path(__file__).resolve().parents[2]
CLI = str(Path(sys.executable).parent / "csv-analyst")
WARMUP_SECONDS = 60.0
SAMPLE_SECONDS = 2.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


class MemorySampler:
    """Samples one process's RSS every SAMPLE_SECONDS in a thread: (seconds since start, bytes)."""

    def __init__(self, pid: int) -> None:
        self.samples: list[tuple[float, int]] = []
        self._pid = pid
        self._stop = threading.Event()
        self._began = time.monotonic()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            try:
                self.samples.append((time.monotonic() - self._began, _rss_bytes(self._pid)))
            except OSError:
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


def start_serve(store: str, work: Path, datasets: Path, pool_size: int) -> tuple[subprocess.Popen[str], str]:
    """`csv-analyst serve --no-ui` on a free port; returns the process and its target."""
    port = _free_port()
    log = (work / "serve.log").open("w")
    process = subprocess.Popen(
        [CLI, "--log-level", "WARNING", "serve", "--no-ui", "--analyst-port", str(port), "--runner-port", "0",
         "--datasets-dir", str(datasets), "--capsule-db", store, "--cache-dir", str(work / "cache"),
         "--upload-dir", str(work / "uploads"), "--pool-size", str(pool_size)],
        stdout=subprocess.PIPE, stderr=log, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = process.stdout.readline()  # type: ignore[union-attr]
        if not line:
            raise RuntimeError(f"serve exited early; see {work / 'serve.log'}")
        if line.startswith("analyst service"):
            return process, f"127.0.0.1:{port}"
    raise RuntimeError("serve did not start in 120 s")


def percentile(values: list[float], fraction: float) -> float | None:
    """The nearest-rank percentile, or None without values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 1)


def memory_report(samples: list[tuple[float, int]], warmup: float) -> dict[str, Any]:
    """RSS after warm-up: first, largest, last sample and whether it stayed within 10%."""
    after = [rss for at, rss in samples if at >= warmup]
    if not after:
        return {"samples": len(samples), "flat_within_10_percent": None}
    first, largest = after[0], max(after)
    growth = largest / first - 1
    return {"samples": len(samples), "window_starts_s": warmup,
            "rss_mib_first_after_window": round(first / 2**20, 1), "rss_mib_max_after_window": round(largest / 2**20, 1),
            "rss_mib_last": round(after[-1] / 2**20, 1), "rss_mib_before_window_max":
                round(max((r for at, r in samples if at < warmup), default=0) / 2**20, 1),
            "growth_after_window_percent": round(growth * 100, 1), "flat_within_10_percent": growth <= 0.10,
            "rss_mib_every_10_s": [round(rss / 2**20, 1) for at, rss in samples[::max(1, round(10 / SAMPLE_SECONDS))]]}


def summarise(record: Record, seconds: float, missing: list[str], differing: list[str]) -> dict[str, Any]:
    """Throughput, latency, outcomes and unexpected errors of one soak."""
    calls = record.calls
    answered = [c.seconds for c in calls if c.outcome == "SUCCEEDED"]
    outcomes: dict[str, int] = {}
    for call in calls:
        key = f"{call.kind} {call.outcome}"
        outcomes[key] = outcomes.get(key, 0) + 1
    unexpected = [c for c in calls if not c.expected]
    by_kind = {}
    for kind in ("question", "sql", "bad"):
        times = [c.seconds for c in calls if c.kind == kind]
        by_kind[kind] = {"calls": len(times), "p50_ms": _ms(percentile(times, 0.5)), "p95_ms": _ms(percentile(times, 0.95))}
    runs = [c for c in calls if c.run_id]
    return {
        "calls": len(calls), "calls_per_second": round(len(calls) / seconds, 2),
        "runs": len(runs), "runs_per_second": round(len(runs) / seconds, 2),
        "succeeded": len(answered), "succeeded_p50_ms": _ms(percentile(answered, 0.5)),
        "succeeded_p95_ms": _ms(percentile(answered, 0.95)),
        "all_calls_p50_ms": _ms(percentile([c.seconds for c in calls], 0.5)),
        "all_calls_p95_ms": _ms(percentile([c.seconds for c in calls], 0.95)),
        "by_kind": by_kind,
        "shed_queue_full": sum(1 for c in calls if c.outcome in SHED),
        "outcomes": dict(sorted(outcomes.items())),
        "unexpected_errors": len(unexpected),
        "unexpected_samples": [{"kind": c.kind, "outcome": c.outcome, "detail": c.detail} for c in unexpected[:10]],
        "lost_capsules": len(missing), "lost_samples": missing[:10],
        "capsules_differing_from_answer": len(differing),
    }


def soak_one(store_kind: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """One soak against serve with one capsule store."""
    server = None
    if store_kind == "postgres":
        from tests.postgres_server import PostgresServer, _bin_dir

        bin_dir = _bin_dir()
        if bin_dir is None:
            raise SystemExit("PostgreSQL binaries are missing (apt-get install postgresql)")
        server = PostgresServer(bin_dir)
        server.start()
        store = server.new_database()
    else:
        store = str(work / "capsules.sqlite3")
    process, target = start_serve(store, work, args.datasets_dir, args.pool_size)
    sampler = None
    # After the first minute; a smoke run shorter than two minutes watches its last two thirds.
    warmup = WARMUP_SECONDS if args.seconds >= 2 * WARMUP_SECONDS else args.seconds / 3
    try:
        asyncio.run(warm_up(target, json.loads((args.datasets_dir / "registry.json").read_text())))
        sampler = MemorySampler(process.pid)
        started = time.monotonic()
        record = asyncio.run(run_clients(target, Workload(args.datasets_dir / "registry.json", args.seed),
                                         args.clients, args.seconds, args.think_seconds, args.seed))
        elapsed = time.monotonic() - started
        sampler.stop()
        outcomes = {c.run_id: c.outcome for c in record.calls if c.run_id}
        missing, differing = asyncio.run(check_capsules(target, outcomes))
    finally:
        if sampler is not None:
            sampler.stop()
        process.send_signal(signal.SIGTERM)
        try:
            process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
        if server is not None:
            server.close()
    result = summarise(record, elapsed, missing, differing)
    result["memory"] = memory_report(sampler.samples if sampler else [], warmup)
    result["store"] = store_kind
    return result


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients (default 50)")
    parser.add_argument("--seconds", type=float, default=300.0, help="duration per store (default 300)")
    parser.add_argument("--think-seconds", type=float, default=1.0,
                        help="mean pause of a client between its calls (0.5x to 1.5x, uniform)")
    parser.add_argument("--store", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--pool-size", type=int, default=1, help="serve --pool-size (warm sandboxes)")
    parser.add_argument("--datasets-dir", type=Path, default=REPO / "datasets")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json-out", type=Path, help="write the result here (e.g. bench/results/soak.json)")
    args = parser.parse_args(argv)
    if not (args.datasets_dir / "registry.json").exists():
        print(f"no registry in {args.datasets_dir}: run `make setup` first", file=sys.stderr)
        return 2
    results = []
    for store_kind in (["sqlite", "postgres"] if args.store == "both" else [args.store]):
        work = Path(tempfile.mkdtemp(prefix=f"soak-{store_kind}-"))
        if os.geteuid() == 0:
            os.chmod(work, 0o755)
        try:
            print(f"soak: {args.clients} clients for {args.seconds:g} s against serve with the {store_kind} store ...",
                  file=sys.stderr, flush=True)
            result = soak_one(store_kind, args, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        results.append(result)
        print(json.dumps(result, indent=2), flush=True)
    load = os.getloadavg()
    report = {"clients": args.clients, "seconds": args.seconds, "think_seconds": args.think_seconds,
              "pool_size": args.pool_size, "seed": args.seed, "machine": {
                  "cpus": os.cpu_count(), "python": platform.python_version(),
                  "load_average_at_end": [round(x, 2) for x in load]},
              "results": results}
    if args.json_out:
        args.json_out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
