"""Warm sandbox pools: pre-started sandboxes waiting for exactly one request each.

A cold sandbox costs about 125 ms (bubblewrap) to 320 ms (Docker) before DuckDB runs, against
a few milliseconds of query on a materialised table. A warm sandbox has already started Python
and imported DuckDB and is blocked reading its task; it serves one run and exits. Pools are
keyed by what a sandbox mounts (the dataset's files) and its limits, so a warm sandbox only ever
sees the data of the run it serves. The time limit counts in whole seconds there: callers'
deadlines make it differ by milliseconds from run to run, and each distinct value would need its
own warm sandbox (the executor still kills a run at its exact limit). Refills happen after an answer is sent (a refill competing
with the query for 2 cores doubled latency when measured), and idle sandboxes are killed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import math
import os
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from csv_analyst.v1 import run_pb2
from runner_service import metrics
from runner_service.executors.base import SandboxRequest

log = logging.getLogger(__name__)
Handle = TypeVar("Handle")
Template = TypeVar("Template")


@dataclass(frozen=True)
class PoolSettings:
    """Warm pool sizing.

    Attributes:
        size_per_key: Warm sandboxes kept for each recently used dataset (0 disables pooling).
        max_keys: How many datasets keep warm sandboxes (least recently used are dropped).
        idle_seconds: A warm sandbox unused for this long is killed.
    """

    size_per_key: int = 1
    max_keys: int = 4
    idle_seconds: float = 300.0


def file_identity(path: str) -> str:
    """A file's path with its size, inode and modification/change times (the path alone when
    it cannot be stat'ed: the sandbox then fails to mount it anyway)."""
    try:
        stat = os.stat(path)
    except OSError:
        return path
    return f"{path}\0{stat.st_size}\0{stat.st_ino}\0{stat.st_mtime_ns}\0{stat.st_ctime_ns}"


def pool_key(request: SandboxRequest) -> str | None:
    """What a warm sandbox for this request must match: its mounts, their files' state and its
    limits (None: never pool).

    Every executor keys its pool with this: a warm sandbox mounts exactly the files (or the
    materialised database) of the runs it may serve, under the same limits. A warm sandbox reads
    its tables ahead, so the key holds each file's identity too: after an edit (or an atomic
    replace) the old sandbox no longer matches and is dropped as idle. A materialisation (which
    gets a writable output directory) is never pooled.
    """
    if request.output_dir:
        return None
    digest = hashlib.sha256(request.database_path.encode())
    if request.database_path:
        digest.update(b"\0" + file_identity(request.database_path).encode())
    for table in request.tables:
        digest.update(b"\0" + table.name.encode() + b"\0" + file_identity(table.host_path).encode())
    digest.update(pooled_limits(request.limits).SerializeToString(deterministic=True))
    # A Python-mode run and a SQL run on the same data need different sandboxed programs (the
    # SQL one may be the native DuckDB CLI: native_sql.py).
    digest.update(b"\0python" if request.python_code else b"\0sql")
    return digest.hexdigest()


def pooled_limits(limits: run_pb2.ResourceLimits) -> run_pb2.ResourceLimits:
    """The limits a warm sandbox is started with: the time limit rounded up to whole seconds."""
    pooled = run_pb2.ResourceLimits()
    pooled.CopyFrom(limits)
    if limits.HasField("timeout"):
        pooled.timeout.FromSeconds(math.ceil(limits.timeout.ToNanoseconds() / 1e9))
    return pooled


def warm_template(request: SandboxRequest) -> SandboxRequest:
    """What a warm sandbox for request's key is started from: its mounts, with pooled limits.

    Inside, DuckDB's own time limit is then never shorter than the limit of a run it serves.
    """
    return dataclasses.replace(request, run_id="", sql="", limits=pooled_limits(request.limits))


@dataclass
class _Warm(Generic[Handle]):
    handle: Handle
    since: float = field(default_factory=time.monotonic)


class WarmPool(Generic[Template, Handle]):
    """Keyed pool of single-use warm sandboxes."""

    def __init__(self, settings: PoolSettings, spawn: Callable[[Template], Awaitable[Handle]],
                 alive: Callable[[Handle], bool], discard: Callable[[Handle], None],
                 key_of: Callable[[Template], str | None] | None = None) -> None:
        """Create an empty pool.

        Args:
            settings: Sizing.
            spawn: Starts a warm sandbox from a template.
            alive: Whether a warm sandbox can still serve.
            discard: Kills a warm sandbox.
            key_of: The current key of a template (pool_key): a wanted key whose template now
                gives another key (its files changed) is dropped with its sandboxes at refill.
        """
        self._settings = settings
        self._key_of = key_of
        self._spawn = spawn
        self._alive = alive
        self._discard = discard
        self._warm: dict[str, list[_Warm[Handle]]] = {}
        self._wanted: OrderedDict[str, Template] = OrderedDict()
        self._refilling: asyncio.Lock = asyncio.Lock()
        self._closed = False

    @property
    def enabled(self) -> bool:
        """Whether pooling is on."""
        return self._settings.size_per_key > 0

    def take(self, key: str) -> Handle | None:
        """Take a live warm sandbox for key, or None."""
        warm = self._warm.get(key, [])
        while warm:
            candidate = warm.pop()
            if self._alive(candidate.handle):
                metrics.WARM_POOL.labels(result="hit").inc()
                return candidate.handle
            self._discard(candidate.handle)
        metrics.WARM_POOL.labels(result="miss").inc()
        return None

    def want(self, key: str, template: Template) -> None:
        """Remember that key is in use, so refills keep sandboxes warm for it."""
        if not self.enabled:
            return
        self._wanted[key] = template
        self._wanted.move_to_end(key)
        while len(self._wanted) > self._settings.max_keys:
            self._drop(next(iter(self._wanted)))

    def _drop(self, key: str) -> None:
        self._wanted.pop(key, None)
        for warm in self._warm.pop(key, []):
            self._discard(warm.handle)

    def count(self, key: str | None = None) -> int:
        """Warm sandboxes held (for one key, or in all)."""
        if key is not None:
            return len(self._warm.get(key, []))
        return sum(len(v) for v in self._warm.values())

    async def refill(self) -> None:
        """Bring every wanted key up to size and kill sandboxes idle for too long."""
        if not self.enabled or self._closed:
            return
        async with self._refilling:
            now = time.monotonic()
            for key, warm in list(self._warm.items()):
                keep = [w for w in warm if now - w.since < self._settings.idle_seconds and self._alive(w.handle)]
                for stale in (w for w in warm if w not in keep):
                    self._discard(stale.handle)
                self._warm[key] = keep
            for key, template in list(self._wanted.items()):
                if self._key_of is not None and self._key_of(template) != key:
                    self._drop(key)  # its files changed since: nothing may be started for it
                    continue
                while len(self._warm.setdefault(key, [])) < self._settings.size_per_key and not self._closed:
                    try:
                        handle = await self._spawn(template)
                    except Exception:  # noqa: BLE001 - a failed refill only means the next run is cold
                        log.exception("could not pre-start a sandbox for %s", key)
                        break
                    self._warm[key].append(_Warm(handle))

    async def close(self) -> None:
        """Kill every warm sandbox."""
        self._closed = True
        async with self._refilling:
            for warm in self._warm.values():
                for item in warm:
                    self._discard(item.handle)
            self._warm.clear()
