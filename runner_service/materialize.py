"""Columnar materialisation: each dataset version is loaded from CSV once, into a DuckDB file.

Parsing CSV dominates small queries (79 ms for 1e6 rows vs 4-6 ms on a columnar copy, measured
on this kind of machine), so the first run of a version reads the CSVs and starts a background
build; later runs attach the DuckDB file read-only. The build itself is a sandboxed run (the
CSVs are untrusted) whose only writable mount is a fresh build directory.

The cache is bounded: after each build, the least recently used files go until the total is
under `max_bytes` (a file used in the last EVICTION_GRACE_SECONDS stays: a run may be about to
mount it). A failed build is retried after a backoff that doubles per failure, so a transient
failure never disables a version until restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import re
import shutil
import stat
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from google.protobuf import duration_pb2

from csv_analyst.v1 import run_pb2
from runner.engine import STORAGE_VERSION
from runner_service.executors.base import DATABASE_FILE, Executor, SandboxRequest, TableFile
from runner_service.executors.sandbox_user import SandboxUser

log = logging.getLogger(__name__)
_VERSION = re.compile(r"^[0-9a-f]{16,128}$")
EVICTION_GRACE_SECONDS = 60.0
RETRY_BASE_SECONDS = 30.0
RETRY_MAX_SECONDS = 3600.0
MAX_FAILURE_RECORDS = 1024


def materialisation_key(version: str, tables: tuple[TableFile, ...]) -> str | None:
    """Cache key of a dataset version: the version hash, table names and file identities
    (path, size, inode, modification and change times).

    Returns:
        The key, or None when the version is not a hex digest or a file is missing.
    """
    if not _VERSION.match(version):
        return None
    digest = hashlib.sha256(version.encode())
    # Files of another storage format (before the native SQL path) are not reused.
    digest.update(f"\0storage={STORAGE_VERSION}".encode())
    for table in tables:
        try:
            stat = os.stat(table.host_path)
        except OSError:
            return None
        digest.update(f"\0{table.name}\0{table.host_path}\0{stat.st_size}\0{stat.st_ino}\0{stat.st_mtime_ns}"
                      f"\0{stat.st_ctime_ns}".encode())
    return digest.hexdigest()[:32]


class Materializer:
    """Builds and finds materialised DuckDB files under cache_dir, one build at a time."""

    def __init__(self, cache_dir: Path, executor: Executor, user: SandboxUser | None = None,
                 timeout_seconds: float = 300.0, memory_bytes: int = 1 << 30, max_bytes: int = 10 << 30,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._cache_dir = cache_dir
        self.max_bytes = max_bytes
        self._clock = clock
        self._executor = executor
        # The sandbox user builds in a directory of its own; the finished file is handed back
        # to the service (owner) and shared read-only with the sandbox user's group.
        self._user = user
        self._limits = run_pb2.ResourceLimits(timeout=duration_pb2.Duration(seconds=int(timeout_seconds)),
                                              memory_bytes=memory_bytes, max_rows=1, threads=1, max_processes=64)
        self._building: dict[str, asyncio.Task[None]] = {}
        self._one_at_a_time = asyncio.Semaphore(1)
        # key -> (failures in a row, clock time before which no build is tried again)
        self._failures: OrderedDict[str, tuple[int, float]] = OrderedDict()
        # file name -> clock time of its last use, least recent first
        self._used: OrderedDict[str, float] = OrderedDict()

    def path_for(self, key: str) -> Path:
        """Where the materialised file of key lives."""
        return self._cache_dir / f"{key}.duckdb"

    def lookup(self, version: str, tables: tuple[TableFile, ...]) -> str:
        """Return the materialised file of this version, or "" after starting its build."""
        key = materialisation_key(version, tables)
        if key is None:
            return ""
        path = self.path_for(key)
        if path.exists():
            self._mark_used(path.name)
            return str(path)
        failure = self._failures.get(key)
        if key not in self._building and (failure is None or self._clock() >= failure[1]):
            self._building[key] = asyncio.create_task(self._build(key, tables))
        return ""

    def retry_at(self, key: str) -> float | None:
        """Clock time after which a failed build of key is tried again (None: not failed)."""
        failure = self._failures.get(key)
        return None if failure is None else failure[1]

    def _mark_used(self, name: str) -> None:
        self._used[name] = self._clock()
        self._used.move_to_end(name)

    def _failed(self, key: str) -> None:
        count = self._failures.pop(key, (0, 0.0))[0] + 1
        delay = min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * 2 ** (count - 1))
        self._failures[key] = (count, self._clock() + delay)
        while len(self._failures) > MAX_FAILURE_RECORDS:
            self._failures.popitem(last=False)

    def evict(self, keep: str = "") -> list[str]:
        """Delete least recently used files until the cache holds at most max_bytes (blocking).

        Files used within EVICTION_GRACE_SECONDS and `keep` stay. Files this process has not
        used yet count as older than any it has, oldest modification time first.

        Returns:
            The names of the deleted files.
        """
        files = {p.name: p for p in self._cache_dir.glob("*.duckdb")}
        sizes, modified = {}, {}
        for name, path in files.items():
            with contextlib.suppress(OSError):
                stat = path.stat()
                sizes[name], modified[name] = stat.st_size, stat.st_mtime_ns
        total = sum(sizes.values())
        unseen = sorted((n for n in sizes if n not in self._used), key=modified.__getitem__)
        order = unseen + [n for n in self._used if n in sizes]
        now = self._clock()
        deleted = []
        for name in order:
            if total <= self.max_bytes:
                break
            if name == keep or now - self._used.get(name, -EVICTION_GRACE_SECONDS * 2) < EVICTION_GRACE_SECONDS:
                continue
            with contextlib.suppress(FileNotFoundError):
                files[name].unlink()
            total -= sizes[name]
            self._used.pop(name, None)
            deleted.append(name)
        return deleted

    async def wait_idle(self) -> None:
        """Wait for every build in progress (tests and benchmarks)."""
        while self._building:
            await asyncio.gather(*list(self._building.values()), return_exceptions=True)

    async def close(self) -> None:
        """Cancel builds in progress."""
        for task in list(self._building.values()):
            task.cancel()
        await asyncio.gather(*list(self._building.values()), return_exceptions=True)

    async def _build(self, key: str, tables: tuple[TableFile, ...]) -> None:
        build_dir = self._cache_dir / f".build-{key}-{uuid.uuid4().hex[:8]}"
        try:
            async with self._one_at_a_time:
                build_dir.mkdir(parents=True, mode=0o700)
                if self._user is not None:
                    os.chown(build_dir, self._user.uid, self._user.gid)
                request = SandboxRequest(run_id=f"materialize-{key[:16]}-{uuid.uuid4().hex[:6]}", sql="",
                                         tables=tables, limits=self._limits, output_dir=str(build_dir))
                outcome = await self._executor.execute(request, lambda: None)
                built = build_dir / DATABASE_FILE
                if outcome.result.HasField("error") or not built.exists():
                    self._failed(key)
                    log.warning("materialisation %s failed (retried after %s): %s", key, self.retry_at(key),
                                outcome.result.error.message or outcome.stderr[-300:])
                    return
                if not _adopt(built, self._user):
                    self._failed(key)
                    log.warning("materialisation %s left something other than a regular file; discarded", key)
                    return
                target = self.path_for(key)
                os.replace(built, target)
                self._failures.pop(key, None)
                self._mark_used(target.name)
                log.info("materialised %s in %.2f s", key, outcome.wall_seconds)
                evicted = await asyncio.to_thread(self.evict, target.name)
                if evicted:
                    log.info("evicted %d materialised files over the %d-byte cap", len(evicted), self.max_bytes)
        except Exception:  # noqa: BLE001 - a failed build only means queries keep reading CSV
            self._failed(key)
            log.exception("materialisation %s crashed", key)
        finally:
            with contextlib.suppress(OSError):
                shutil.rmtree(build_dir)
            self._building.pop(key, None)


def _adopt(built: Path, user: SandboxUser | None) -> bool:
    """Take ownership of a file the sandbox built and share it read-only with the sandbox user.

    The build directory was writable inside the sandbox, so the name may be anything: only a
    regular file is taken (opened without following symlinks, changed through its descriptor).
    """
    try:
        fd = os.open(built, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
            return False
        if user is not None:
            os.fchown(fd, os.geteuid(), user.gid)
            os.fchmod(fd, 0o640)
        else:
            os.fchmod(fd, 0o600)
        return True
    finally:
        os.close(fd)
