"""File identity and content digests of the CSV files behind datasets.

A cache that answers for a file must know which file, in which state: the identity is the
resolved path with its size, inode, modification and change times. Content digests are cached by
identity (bounded, LRU), so asking about a large file again does not read it again, and an edit
(new mtime/ctime/size, or a new inode after an atomic replace) is seen at once.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass

CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class FileIdentity:
    """What identifies one state of a file without reading it."""

    path: str
    size: int
    inode: int
    mtime_ns: int
    ctime_ns: int

    @classmethod
    def of(cls, path: str) -> FileIdentity:
        """Stat path (following links).

        Raises:
            OSError: When the file cannot be stat'ed.
        """
        stat = os.stat(path)
        return cls(path, stat.st_size, stat.st_ino, stat.st_mtime_ns, stat.st_ctime_ns)

    def token(self) -> str:
        """A stable text form, for cache keys."""
        return f"{self.path}\0{self.size}\0{self.inode}\0{self.mtime_ns}\0{self.ctime_ns}"


@dataclass(frozen=True)
class FileDigest:
    """SHA-256 of a file's bytes and whether it holds anything but whitespace."""

    sha256: str
    blank: bool


class DigestCache:
    """SHA-256 of files, cached by FileIdentity (LRU, bounded by entries); thread-safe."""

    def __init__(self, max_entries: int = 1024) -> None:
        self._max_entries = max_entries
        self._entries: OrderedDict[FileIdentity, FileDigest] = OrderedDict()
        self._lock = threading.Lock()

    def digest(self, path: str) -> tuple[FileIdentity, FileDigest]:
        """Identity and digest of path, reading the file only when its identity is new.

        Raises:
            OSError: When the file cannot be read.
        """
        identity = FileIdentity.of(path)
        with self._lock:
            cached = self._entries.get(identity)
            if cached is not None:
                self._entries.move_to_end(identity)
                return identity, cached
        digest = hashlib.sha256()
        blank = True
        with open(path, "rb") as file:
            while chunk := file.read(CHUNK_BYTES):
                digest.update(chunk)
                blank = blank and not chunk.strip()
        result = FileDigest(digest.hexdigest(), blank)
        # The file may have changed while it was read: cache only when its identity held.
        if FileIdentity.of(path) == identity:
            with self._lock:
                self._entries[identity] = result
                while len(self._entries) > self._max_entries:
                    self._entries.popitem(last=False)
        return identity, result

    def __len__(self) -> int:
        return len(self._entries)
