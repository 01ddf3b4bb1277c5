"""The upload store: CSV files clients stream to the service (UploadDataset), kept by content.

Each upload becomes a directory `<upload_dir>/<digest>/` holding its files under their (checked)
base names and a `manifest.json` with the file order; the digest covers every file's name and
bytes, so the same upload twice is one dataset. Files are written by this service only, mode
0640 with the sandbox user's group (0600 when sandboxes run as this service's own user), and
are listed again when the service starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from analyst_service.catalog import table_name_for
from analyst_service.errors import AnalystError, InvalidRequestError
from csv_analyst.v1 import dataset_pb2

log = logging.getLogger(__name__)

FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,99}$")
MANIFEST = "manifest.json"
MAX_FILES = 16
_DIGEST = re.compile(r"^[0-9a-f]{64}$")


@dataclass
class UploadTooLargeError(AnalystError):
    """The upload is over the server's size or file-count limit."""

    status_code: grpc.StatusCode = grpc.StatusCode.RESOURCE_EXHAUSTED


@dataclass
class _Incoming:
    """Files of one upload being received."""

    directory: Path
    names: list[str] = field(default_factory=list)
    digests: list[str] = field(default_factory=list)
    total: int = 0


@dataclass
class UploadStore:
    """Receives, stores and lists uploaded datasets."""

    root: Path
    max_bytes: int = 1 << 30
    sandbox_gid: int | None = None

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.root, 0o700)

    async def receive(self, chunks: AsyncIterator[tuple[str, bytes]]) -> dataset_pb2.Dataset:
        """Store one upload from (file_name, bytes) messages and return its dataset.

        Raises:
            InvalidRequestError: For a bad name, bytes before a name, no file, an empty file or
                two files with one table name.
            UploadTooLargeError: Over max_bytes or MAX_FILES.
        """
        incoming = _Incoming(self.root / f".incoming-{uuid.uuid4().hex}")
        incoming.directory.mkdir(mode=0o700)
        current: _OpenFile | None = None
        try:
            async for file_name, data in chunks:
                if file_name:
                    if current is not None:
                        self._close(current, incoming)
                    current = self._open(file_name, incoming)
                if data:
                    if current is None:
                        raise InvalidRequestError(message="the upload sent bytes before a file name",
                                                  violations=[("file_name", "the first message of a file must set it")])
                    incoming.total += len(data)
                    if incoming.total > self.max_bytes:
                        raise UploadTooLargeError(message=f"the upload is over this server's limit of "
                                                          f"{self.max_bytes >> 20} MB", metadata={"max_bytes": str(self.max_bytes)})
                    await asyncio.to_thread(current.write, data)
            if current is None:
                raise InvalidRequestError(message="the upload holds no file", violations=[("file_name", "no file was sent")])
            self._close(current, incoming)
            return await asyncio.to_thread(self._commit, incoming)
        finally:
            if current is not None:
                current.discard()
            shutil.rmtree(incoming.directory, ignore_errors=True)

    def _open(self, file_name: str, incoming: _Incoming) -> _OpenFile:
        if not FILE_NAME.match(file_name) or file_name in (".", ".."):
            raise InvalidRequestError(message=f"{file_name[:100]!r} is not an acceptable file name: use letters, digits, "
                                              "spaces, '.', '_' and '-' (at most 100 characters)",
                                      violations=[("file_name", "bad characters or too long")])
        if len(incoming.names) >= MAX_FILES:
            raise UploadTooLargeError(message=f"an upload holds at most {MAX_FILES} files",
                                      metadata={"max_files": str(MAX_FILES)})
        table = table_name_for(Path(file_name))
        for name in incoming.names:
            if table_name_for(Path(name)) == table:
                raise InvalidRequestError(message=f"files {name!r} and {file_name!r} both become table {table!r}; "
                                                  "rename one of them", violations=[("file_name", "duplicate table")])
        incoming.names.append(file_name)
        return _OpenFile(incoming.directory / file_name)

    def _close(self, current: _OpenFile, incoming: _Incoming) -> None:
        digest, size = current.finish()
        if size == 0:
            raise InvalidRequestError(message=f"the file {current.path.name!r} is empty",
                                      violations=[("chunk", "no bytes were sent for this file")])
        incoming.digests.append(digest)

    def _commit(self, incoming: _Incoming) -> dataset_pb2.Dataset:
        manifest = {"files": [{"name": n, "sha256": d} for n, d in zip(incoming.names, incoming.digests, strict=True)]}
        digest = hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()
        for name in incoming.names:
            self._share(incoming.directory / name)
        (incoming.directory / MANIFEST).write_text(json.dumps(manifest, sort_keys=True), encoding="utf-8")
        final = self.root / digest
        with contextlib.suppress(FileExistsError, OSError):
            if not final.exists():
                os.rename(incoming.directory, final)
        return self.load(digest)

    def _share(self, path: Path) -> None:
        if self.sandbox_gid is not None:
            os.chown(path, -1, self.sandbox_gid)
            os.chmod(path, 0o640)
        else:
            os.chmod(path, 0o600)

    def load(self, digest: str) -> dataset_pb2.Dataset:
        """The dataset of a stored upload.

        Raises:
            ValueError: When there is no such upload or its manifest is unreadable.
        """
        if not _DIGEST.match(digest):
            raise ValueError(f"not an upload digest: {digest!r}")
        directory = self.root / digest
        manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
        names = [entry["name"] for entry in manifest["files"]]
        if not names or not all(isinstance(n, str) and FILE_NAME.match(n) for n in names):
            raise ValueError(f"upload {digest}: bad manifest")
        dataset_id = f"upload-{digest[:16]}"
        return dataset_pb2.Dataset(
            name=f"datasets/{dataset_id}", dataset_id=dataset_id, title="Uploaded: " + ", ".join(names),
            description="Tables from the uploaded files " + ", ".join(names) + ".", version_hash=digest,
            tables=[dataset_pb2.Table(name=table_name_for(Path(n)), file=str(directory / n)) for n in names])

    def list(self) -> list[dataset_pb2.Dataset]:
        """Every stored upload (unreadable ones are skipped with a warning)."""
        datasets = []
        for directory in sorted(self.root.iterdir()):
            if _DIGEST.match(directory.name):
                try:
                    datasets.append(self.load(directory.name))
                except (OSError, ValueError, KeyError, TypeError) as error:
                    log.warning("skipping unreadable upload %s: %s", directory.name, error)
        return datasets


class _OpenFile:
    """One file being written and hashed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        self._hash = hashlib.sha256()
        self._size = 0

    def write(self, data: bytes) -> None:
        assert self._fd is not None
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view):]
        self._hash.update(data)
        self._size += len(data)

    def finish(self) -> tuple[str, int]:
        self.discard()
        return self._hash.hexdigest(), self._size

    def discard(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
