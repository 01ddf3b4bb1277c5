"""The materialiser's bookkeeping: a failed build is retried after a doubling backoff, and the
cache is kept under its size cap by deleting the least recently used copies. The sandboxed build
itself is replaced by a stand-in that writes (or fails to write) the database file; real builds
run in tests/integration."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from csv_analyst.v1 import run_pb2
from csv_analyst.runner.v1 import sandbox_pb2
from runner_service.executors.base import DATABASE_FILE, SandboxOutcome, SandboxRequest, TableFile
from runner_service.materialize import RETRY_BASE_SECONDS, Materializer, materialisation_key

VERSION = "ab" * 16


class StandInBuilds:
    """Writes `size` bytes as the database, or fails while `failing` is set."""

    name = "stand-in"

    def __init__(self, size: int = 1000) -> None:
        self.size = size
        self.failing = False
        self.builds = 0

    async def execute(self, request: SandboxRequest, on_started: Callable[[], None]) -> SandboxOutcome:
        on_started()
        self.builds += 1
        result = sandbox_pb2.SandboxResult()
        if self.failing:
            result.error.CopyFrom(run_pb2.RunError(message="transient failure"))
        else:
            (Path(request.output_dir) / DATABASE_FILE).write_bytes(b"\0" * self.size)
        return SandboxOutcome(result, "", "", 0.01, 0)


def table(tmp_path: Path, name: str) -> tuple[TableFile, ...]:
    path = tmp_path / f"{name}.csv"
    path.write_text(f"x\n{name}\n")
    return (TableFile(name, str(path)),)


def test_a_failed_build_is_retried_after_a_doubling_backoff(tmp_path: Path) -> None:
    async def scenario() -> None:
        now = [1000.0]
        builds = StandInBuilds()
        materializer = Materializer(tmp_path / "cache", builds, clock=lambda: now[0])
        tables = table(tmp_path, "t")
        key = materialisation_key(VERSION, tables)
        assert key is not None
        builds.failing = True
        assert materializer.lookup(VERSION, tables) == ""
        await materializer.wait_idle()
        assert builds.builds == 1 and materializer.retry_at(key) == 1000 + RETRY_BASE_SECONDS
        materializer.lookup(VERSION, tables)
        await materializer.wait_idle()
        assert builds.builds == 1, "no retry before the backoff ends"
        now[0] += RETRY_BASE_SECONDS
        materializer.lookup(VERSION, tables)
        await materializer.wait_idle()
        assert builds.builds == 2 and materializer.retry_at(key) == now[0] + 2 * RETRY_BASE_SECONDS
        now[0] += 2 * RETRY_BASE_SECONDS
        builds.failing = False
        materializer.lookup(VERSION, tables)
        await materializer.wait_idle()
        assert materializer.retry_at(key) is None
        assert materializer.lookup(VERSION, tables) == str(materializer.path_for(key))

    asyncio.run(scenario())


def test_the_cache_stays_under_its_cap_least_recently_used_first(tmp_path: Path) -> None:
    async def scenario() -> None:
        now = [1000.0]
        builds = StandInBuilds(size=1000)
        materializer = Materializer(tmp_path / "cache", builds, max_bytes=2500, clock=lambda: now[0])
        (tmp_path / "cache").mkdir()
        (tmp_path / "cache" / "stale.duckdb").write_bytes(b"\0" * 1000)  # left by an earlier process
        versions = {name: table(tmp_path, name) for name in ("a", "b", "c")}
        for name in ("a", "b"):
            materializer.lookup(VERSION, versions[name])
            await materializer.wait_idle()
            now[0] += 120
        assert not (tmp_path / "cache" / "stale.duckdb").exists(), "unused files go first"
        now[0] += 120
        assert materializer.lookup(VERSION, versions["a"])  # "a" is now more recently used than "b"
        now[0] += 120
        materializer.lookup(VERSION, versions["c"])
        await materializer.wait_idle()
        names = sorted(p.name for p in (tmp_path / "cache").glob("*.duckdb"))
        expected = sorted(f"{materialisation_key(VERSION, versions[n])}.duckdb" for n in ("a", "c"))
        assert names == expected
        # A file used within the grace period stays even over the cap: a run may be mounting it.
        materializer.max_bytes = 0
        used_long_ago = f"{materialisation_key(VERSION, versions['a'])}.duckdb"
        assert materializer.evict() == [used_long_ago]
        assert [p.name for p in (tmp_path / "cache").glob("*.duckdb")] == [
            f"{materialisation_key(VERSION, versions['c'])}.duckdb"]

    asyncio.run(scenario())
