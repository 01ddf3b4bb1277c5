"""Results kept once: a bounded preview in the capsule, every row in a content-addressed file.

A capsule must fit in one gRPC message (4 MB by default) with its events and stats, and a page
of ListCapsules must hold several. A result whose encoding exceeds PREVIEW_MAX_BYTES keeps its
first rows within that size in the capsule; the whole ResultTable goes to
`<dir>/<sha256[:2]>/<sha256>.pb`, written once (same content, same file) and atomically.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from csv_analyst.v1 import capsule_pb2, result_pb2

PREVIEW_MAX_BYTES = 256 << 10


class ResultFileError(Exception):
    """A stored result file is missing or does not match its digest."""


def preview(result: result_pb2.ResultTable, max_bytes: int = PREVIEW_MAX_BYTES) -> result_pb2.ResultTable:
    """The result with its first rows whose encoding fits in max_bytes (row_count = rows kept)."""
    kept = result_pb2.ResultTable(columns=result.columns, truncated=result.truncated)
    budget = max_bytes - kept.ByteSize()
    for row in result.rows:
        size = row.ByteSize() + 4  # field tag and length prefix
        if size > budget:
            break
        kept.rows.append(row)
        budget -= size
    kept.row_count = len(kept.rows)
    return kept


class ResultFiles:
    """Content-addressed result files under one directory (created on first write)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path_for(self, sha256: str) -> Path:
        """Where the result with this digest lives."""
        return self.directory / sha256[:2] / f"{sha256}.pb"

    def put(self, result: result_pb2.ResultTable) -> capsule_pb2.StoredResult:
        """Store result (blocking: call it off the event loop) and describe the file."""
        data = result.SerializeToString(deterministic=True)
        sha256 = hashlib.sha256(data).hexdigest()
        path = self.path_for(sha256)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".tmp-", delete=False) as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.replace(file.name, path)
        return capsule_pb2.StoredResult(sha256=sha256, size_bytes=len(data), row_count=len(result.rows))

    def get(self, stored: capsule_pb2.StoredResult) -> result_pb2.ResultTable:
        """Read a stored result back (blocking), checking its digest.

        Raises:
            ResultFileError: When the file is missing or its content does not match.
        """
        path = self.path_for(stored.sha256)
        try:
            data = path.read_bytes()
        except OSError as error:
            raise ResultFileError(f"the result file {stored.sha256} cannot be read: {error.strerror}") from error
        if hashlib.sha256(data).hexdigest() != stored.sha256:
            raise ResultFileError(f"the result file {stored.sha256} does not match its digest")
        return result_pb2.ResultTable.FromString(data)
