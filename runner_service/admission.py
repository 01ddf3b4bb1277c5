"""Admission control: a bounded queue in front of a fixed number of sandbox slots."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator

from runner_service import metrics


# Sandboxes per core: a run is not all CPU (namespace set-up, pipes, the services' own work), so
# two per core keep both cores busy (measured by `python -m bench.perf`: load at 2 and at this).
RUNS_PER_CORE = 2
# Share of the machine's memory that running sandboxes may hold at their caps.
MEMORY_SHARE = 0.5


def derived_concurrency(run_memory_bytes: int, cpus: int | None = None, memory_bytes: int | None = None) -> int:
    """How many sandboxes may run at once on this machine: RUNS_PER_CORE per core, and no more
    than MEMORY_SHARE of the memory can hold at each run's cgroup cap (twice its DuckDB memory).

    Args:
        run_memory_bytes: A run's DuckDB memory limit (the default one).
        cpus: Cores (default: the ones this process may use).
        memory_bytes: Physical memory (default: this machine's).
    """
    if cpus is None:
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if memory_bytes is None:
        memory_bytes = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    by_memory = int(memory_bytes * MEMORY_SHARE) // max(1, 2 * run_memory_bytes)
    return max(1, min(cpus * RUNS_PER_CORE, by_memory))


class QueueFullError(Exception):
    """The admission queue is full; a later retry can work."""

    def __init__(self, max_queue: int) -> None:
        super().__init__(f"the runner queue is full ({max_queue} runs waiting, set by max_queue); retry shortly")
        self.max_queue = max_queue


class Admission:
    """At most `concurrency` runs execute; at most `max_queue` wait; more are refused."""

    def __init__(self, concurrency: int, max_queue: int) -> None:
        self._slots = asyncio.Semaphore(concurrency)
        self._max_queue = max_queue
        self._waiting = 0

    @property
    def waiting(self) -> int:
        """Runs currently waiting for a slot."""
        return self._waiting

    def admit(self) -> int:
        """Reserve a queue place and return the number of runs ahead.

        Raises:
            QueueFullError: When max_queue runs are already waiting.
        """
        if self._waiting >= self._max_queue:
            raise QueueFullError(self._max_queue)
        self._waiting += 1
        return self._waiting - 1

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Wait for a sandbox slot (after admit) and hold it for the block."""
        try:
            await self._slots.acquire()
        finally:
            self._waiting -= 1
        metrics.RUNNING.inc()
        try:
            yield
        finally:
            metrics.RUNNING.dec()
            self._slots.release()
