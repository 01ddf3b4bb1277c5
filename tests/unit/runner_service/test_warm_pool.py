"""Warm pools: pre-started sandboxes serve exactly one run each, keyed by mounts and limits."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from pathlib import Path

import pytest
from google.protobuf import duration_pb2

from csv_analyst.v1 import run_pb2
from runner_service.executors.base import SandboxRequest, TableFile
from runner_service.executors.bwrap import BwrapExecutor, pool_key
from runner_service.executors.pool import PoolSettings, WarmPool, warm_template
from runner_service.materialize import materialisation_key
from tests.conftest import require_bwrap

LIMITS = run_pb2.ResourceLimits(timeout=duration_pb2.Duration(seconds=10), memory_bytes=256 << 20, max_rows=10,
                                threads=1, max_processes=32)


class FakeHandle:
    def __init__(self, n: int) -> None:
        self.n, self.alive, self.discarded = n, True, False


def test_pool_takes_once_refills_to_size_and_drops_least_recent_keys() -> None:
    async def scenario() -> None:
        made: list[FakeHandle] = []

        async def spawn(template: str) -> FakeHandle:
            made.append(FakeHandle(len(made)))
            return made[-1]

        def discard(handle: FakeHandle) -> None:
            handle.discarded = True

        pool: WarmPool[str, FakeHandle] = WarmPool(PoolSettings(size_per_key=2, max_keys=2), spawn,
                                                   lambda h: h.alive, discard)
        assert pool.take("a") is None
        pool.want("a", "A")
        await pool.refill()
        assert pool.count("a") == 2
        first = pool.take("a")
        assert first is not None and pool.count("a") == 1
        remaining = made[0] if first is made[1] else made[1]
        remaining.alive = False  # a warm sandbox that died is never handed out
        assert pool.take("a") is None and remaining.discarded
        pool.want("b", "B")
        pool.want("c", "C")  # "a" is now the least recently used of three keys: dropped
        await pool.refill()
        assert pool.count("a") == 0 and pool.count("b") == 2 and pool.count("c") == 2
        await pool.close()
        assert all(h.discarded for h in made[2:])

    asyncio.run(scenario())


def test_idle_sandboxes_are_killed() -> None:
    async def scenario() -> None:
        made: list[FakeHandle] = []

        async def spawn(template: str) -> FakeHandle:
            made.append(FakeHandle(len(made)))
            return made[-1]

        pool: WarmPool[str, FakeHandle] = WarmPool(PoolSettings(size_per_key=1, idle_seconds=0.0), spawn,
                                                   lambda h: h.alive, lambda h: setattr(h, "discarded", True))
        pool.want("a", "A")
        await pool.refill()
        await pool.refill()  # the first one is idle past 0 s: replaced
        assert made[0].discarded and len(made) == 2

    asyncio.run(scenario())


def test_pool_key_separates_mounts_and_limits() -> None:
    base = SandboxRequest("r", "SELECT 1", (TableFile("t", "/x/a.csv"),), LIMITS)
    other_file = SandboxRequest("r", "SELECT 1", (TableFile("t", "/x/b.csv"),), LIMITS)
    other_limits = SandboxRequest("r", "SELECT 1", (TableFile("t", "/x/a.csv"),),
                                  run_pb2.ResourceLimits(timeout=duration_pb2.Duration(seconds=3)))
    same_data_other_query = SandboxRequest("r2", "SELECT 2", (TableFile("t", "/x/a.csv"),), LIMITS)
    other_name = SandboxRequest("r", "SELECT 1", (TableFile("u", "/x/a.csv"),), LIMITS)
    assert len({pool_key(base), pool_key(other_file), pool_key(other_limits), pool_key(other_name)}) == 4
    assert pool_key(base) == pool_key(same_data_other_query)
    assert pool_key(SandboxRequest("m", "", base.tables, LIMITS, output_dir="/tmp/out")) is None
    # A Python-mode run never takes a SQL run's sandbox (which may be the native DuckDB CLI).
    python = SandboxRequest("p", "", base.tables, LIMITS, "/x/dataset.duckdb", python_code="result = 1")
    sql = SandboxRequest("s", "SELECT 1", base.tables, LIMITS, "/x/dataset.duckdb")
    assert pool_key(python) != pool_key(sql)



def test_pool_key_and_materialisation_key_change_when_a_file_is_edited(tmp_path: Path) -> None:
    csv = tmp_path / "a.csv"
    csv.write_text("x\n1\n")
    request = SandboxRequest("r", "SELECT 1", (TableFile("t", str(csv)),), LIMITS)
    before, materialised_before = pool_key(request), materialisation_key("ab" * 16, request.tables)
    assert pool_key(request) == before
    csv.write_text("x\n2\n")  # same size, same path
    assert pool_key(request) != before
    assert materialisation_key("ab" * 16, request.tables) != materialised_before
    replacement = tmp_path / "b.csv"
    replacement.write_text("x\n2\n")
    edited = pool_key(request)
    os.replace(replacement, csv)  # an atomic replace: a new inode
    assert pool_key(request) != edited


def test_refill_drops_a_wanted_key_whose_files_changed() -> None:
    async def scenario() -> None:
        made: list[FakeHandle] = []
        current = {"A": "a"}

        async def spawn(template: str) -> FakeHandle:
            made.append(FakeHandle(len(made)))
            return made[-1]

        pool: WarmPool[str, FakeHandle] = WarmPool(PoolSettings(size_per_key=1), spawn, lambda h: h.alive,
                                                   lambda h: setattr(h, "discarded", True), key_of=current.get)
        pool.want("a", "A")
        await pool.refill()
        assert pool.count("a") == 1
        current["A"] = "a2"  # the template's files changed: key "a" no longer describes it
        await pool.refill()
        assert pool.count() == 0 and made[0].discarded and len(made) == 1

    asyncio.run(scenario())



def test_time_limits_from_callers_deadlines_share_a_warm_sandbox() -> None:
    def with_timeout(seconds: float) -> SandboxRequest:
        limits = run_pb2.ResourceLimits(memory_bytes=1 << 28)
        limits.timeout.FromNanoseconds(int(seconds * 1e9))
        return SandboxRequest("r", "SELECT 1", (TableFile("t", "/x/a.csv"),), limits)

    # A caller's deadline leaves 29.748 s one time and 29.751 s the next: the same warm sandbox.
    assert pool_key(with_timeout(29.748)) == pool_key(with_timeout(29.751)) == pool_key(with_timeout(30.0))
    assert pool_key(with_timeout(30.0)) != pool_key(with_timeout(31.0))
    template = warm_template(with_timeout(29.748))
    # Started with the limit rounded up, DuckDB's own limit never cuts a run short of its own.
    assert template.limits.timeout.ToNanoseconds() == 30 * 10**9
    assert template.limits.memory_bytes == 1 << 28 and template.sql == "" and template.run_id == ""


@pytest.mark.bwrap
def test_real_warm_sandbox_serves_one_run(tmp_path: Path) -> None:
    require_bwrap()
    csv = tmp_path / "t.csv"
    csv.write_text("a,b\n1,x\n2,y\n3,z\n")

    async def scenario() -> None:
        executor = BwrapExecutor(pool_settings=PoolSettings(size_per_key=1))
        try:
            def request(run_id: str, sql: str) -> SandboxRequest:
                return SandboxRequest(run_id, sql, (TableFile("t", str(csv)),), LIMITS)

            first = await executor.execute(request("r1", "SELECT sum(a) FROM t"), lambda: None)
            assert first.result.result.rows[0].values[0].int_value == 6
            key = pool_key(request("x", ""))
            assert key is not None and executor.pool.count(key) == 0
            await executor.replenish()
            assert executor.pool.count(key) == 1
            warm = executor.pool._warm[key][0].handle.process  # noqa: SLF001 - observe the very process
            second = await executor.execute(request("r2", "SELECT max(b) FROM t"), lambda: None)
            assert second.result.result.rows[0].values[0].string_value == "z"
            assert executor.pool.count(key) == 0
            # The answer comes back before the sandbox is torn down; it then exits by itself (code 0).
            assert _exit_code(warm) == 0, "a warm sandbox must exit after its one run"
            await executor.replenish()
            assert executor.pool.count(key) == 1
            spare = executor.pool._warm[key][0].handle.process  # noqa: SLF001
        finally:
            await executor.close()
        assert spare.poll() is not None, "close() must kill warm sandboxes"

    asyncio.run(scenario())


def _exit_code(process: subprocess.Popen[bytes], timeout: float = 10.0) -> int | None:
    deadline = time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    return process.poll()
