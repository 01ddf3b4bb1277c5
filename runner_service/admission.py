"""Admission control: a bounded queue in front of a fixed number of sandbox slots."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from runner_service import metrics


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
