"""The exact result cache: the same query over the same bytes answers without a sandbox.

The key is the dataset version, every table's name and file identity (path, size, inode,
modification and change times: see files.py), the query kind and text (compiled SQL or Python
code) and the row cap, so an edited file, another dataset version or another limit can never be
served a stale answer. Only succeeded runs are kept, and only queries that say the same thing
twice (nothing random, no clock, no uuids). Bounded in bytes (least recently used out) and in
age (TTL).
"""

from __future__ import annotations

import hashlib
import re
import time
from collections import OrderedDict
from dataclasses import dataclass

from analyst_service.files import FileIdentity
from csv_analyst.v1 import dataset_pb2, result_pb2, run_pb2

# Queries whose answer can change between two runs over the same bytes are never cached.
_VOLATILE = re.compile(r"random|uuid|now\s*\(|current_|today|localtime|get_current|epoch_ms\s*\(\s*\)|setseed",
                       re.IGNORECASE)


@dataclass(frozen=True)
class CachedResult:
    """An answer and the run that computed it."""

    result: result_pb2.ResultTable
    run_id: str
    stored: float


class ResultCache:
    """Answers of succeeded runs by exact key; LRU by bytes, with a TTL."""

    def __init__(self, max_bytes: int = 64 << 20, ttl_seconds: float = 600.0) -> None:
        self._max_bytes = max_bytes
        self._ttl = ttl_seconds
        self._entries: OrderedDict[str, tuple[CachedResult, int]] = OrderedDict()
        self._bytes = 0

    @staticmethod
    def key_for(dataset: dataset_pb2.Dataset, host_paths: list[str], run: run_pb2.Run, max_rows: int) -> str | None:
        """The key of a run's query, or None when it must not be cached (volatile, or a file is gone).

        Blocking (stats the files): call it off the event loop.
        """
        query = run.python_code or run.sql
        if not query or _VOLATILE.search(query):
            return None
        digest = hashlib.sha256()
        for part in (dataset.dataset_id, dataset.version_hash, run_pb2.QueryType.Name(run.query_type), query,
                     str(max_rows)):
            digest.update(part.encode() + b"\0")
        for table, path in zip(dataset.tables, host_paths, strict=True):
            try:
                identity = FileIdentity.of(path)
            except OSError:
                return None
            digest.update(f"{table.name}\0{identity.token()}\0".encode())
        return digest.hexdigest()

    def get(self, key: str) -> CachedResult | None:
        """The cached answer for key, if fresh."""
        found = self._entries.get(key)
        if found is None:
            return None
        entry, size = found
        if time.monotonic() - entry.stored > self._ttl:
            self._entries.pop(key)
            self._bytes -= size
            return None
        self._entries.move_to_end(key)
        return entry

    def put(self, key: str, result: result_pb2.ResultTable, run_id: str) -> None:
        """Keep a succeeded run's answer (answers larger than a quarter of the bound are not kept)."""
        size = result.ByteSize()
        if size > self._max_bytes // 4:
            return
        if key in self._entries:
            self._bytes -= self._entries.pop(key)[1]
        copy = result_pb2.ResultTable()
        copy.CopyFrom(result)
        self._entries[key] = (CachedResult(copy, run_id, time.monotonic()), size)
        self._bytes += size
        while self._bytes > self._max_bytes:
            _, (_, dropped) = self._entries.popitem(last=False)
            self._bytes -= dropped

    def __len__(self) -> int:
        return len(self._entries)
