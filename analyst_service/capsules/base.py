"""The capsule store interface: put (idempotent), get, paginated list. Capsules are immutable.

Stores are synchronous (SQLite, PostgreSQL drivers): the RunManager calls them off the event loop.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from typing import Protocol

from analyst_service.capsules.results import ResultStore
from csv_analyst.v1 import capsule_pb2, run_pb2


@dataclass(frozen=True)
class CapsulePage:
    """One page of capsules, newest first, and the token of the next page ('' at the end)."""

    capsules: list[capsule_pb2.Capsule]
    next_page_token: str


@dataclass(frozen=True)
class InFlight:
    """A run that began and has no capsule yet, with its owner's token (see capsules.owners)."""

    run: run_pb2.Run
    owner: str


@dataclass(frozen=True)
class RunQuery:
    """Which runs ListRuns wants: states (empty: all), dataset ('' : all), creation time range
    in microseconds since the epoch (None: unbounded; the upper bound is exclusive)."""

    states: tuple[int, ...] = ()
    dataset_id: str = ""
    min_create_micros: int | None = None
    max_create_micros: int | None = None

    def matches(self, run: run_pb2.Run) -> bool:
        """Whether run passes the filter."""
        created = run.create_time.ToMicroseconds()
        return ((not self.states or run.state in self.states)
                and (not self.dataset_id or run.dataset_id == self.dataset_id)
                and (self.min_create_micros is None or created >= self.min_create_micros)
                and (self.max_create_micros is None or created < self.max_create_micros))


@dataclass(frozen=True)
class RunPage:
    """One page of finished runs, newest first, and the token of the next page ('' at the end)."""

    runs: list[run_pb2.Run]
    next_page_token: str


class CapsuleStore(Protocol):
    """Stores the record of every run."""

    results: ResultStore

    def begin(self, run: run_pb2.Run, owner: str = "") -> None:
        """Record that a run started and its owner's token (cleared when its capsule is put)."""
        ...

    def owner_is_gone(self, token: str) -> bool:
        """Whether the process that wrote this owner token (see capsules.owners) is certainly gone,
        so its in-flight runs will never finish (blocking)."""
        ...

    def in_flight(self) -> list[InFlight]:
        """Runs that began and have no capsule yet, newest first."""
        ...

    def in_flight_run(self, run_id: str) -> InFlight | None:
        """The in-flight record of run_id, or None."""
        ...

    def put(self, capsule: capsule_pb2.Capsule) -> None:
        """Store a capsule; storing the same run id again is a no-op."""
        ...

    def get(self, run_id: str) -> capsule_pb2.Capsule | None:
        """Return the capsule of run_id, or None."""
        ...

    def in_thread(self, thread_id: str, count: int) -> builtins.list[capsule_pb2.Capsule]:
        """The newest `count` capsules of a conversation thread (any state), newest first."""
        ...

    def list(self, page_size: int, page_token: str, dataset_id: str = "", max_bytes: int = 0) -> CapsulePage:
        """Return a page of capsules, newest first, of at most page_size capsules and (but for
        the first) max_bytes of encoded capsules (0: no byte bound).

        Raises:
            ValueError: For a page token this store did not issue.
        """
        ...

    def list_runs(self, page_size: int, page_token: str, query: RunQuery) -> RunPage:
        """Return a page of finished runs matching query, newest first, without result rows.

        Raises:
            ValueError: For a page token this store did not issue.
        """
        ...

    def close(self) -> None:
        """Release the store's resources."""
        ...
