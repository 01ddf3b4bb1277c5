"""The capsule store interface: put (idempotent), get, paginated list. Capsules are immutable."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from csv_analyst.v1 import capsule_pb2, run_pb2


@dataclass(frozen=True)
class CapsulePage:
    """One page of capsules, newest first, and the token of the next page ('' at the end)."""

    capsules: list[capsule_pb2.Capsule]
    next_page_token: str


class CapsuleStore(Protocol):
    """Stores the record of every run."""

    def begin(self, run: run_pb2.Run) -> None:
        """Record that a run started (cleared when its capsule is put)."""
        ...

    def interrupted(self) -> list[run_pb2.Run]:
        """Runs that began but never got a capsule."""
        ...

    def put(self, capsule: capsule_pb2.Capsule) -> None:
        """Store a capsule; storing the same run id again is a no-op."""
        ...

    def get(self, run_id: str) -> capsule_pb2.Capsule | None:
        """Return the capsule of run_id, or None."""
        ...

    def latest_in_thread(self, thread_id: str) -> capsule_pb2.Capsule | None:
        """The newest succeeded capsule with a plan in a conversation thread, or None."""
        ...

    def list(self, page_size: int, page_token: str, dataset_id: str = "") -> CapsulePage:
        """Return a page of capsules, newest first.

        Raises:
            ValueError: For a page token this store did not issue.
        """
        ...

    def close(self) -> None:
        """Release the store's resources."""
        ...
