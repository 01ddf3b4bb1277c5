"""The upload store: CSV files clients stream to the service (UploadDataset), kept by content.

Each upload becomes a directory `<upload_dir>/<digest>/` holding its files under their (checked)
base names and a `manifest.json` with the file order; the digest covers every file's name and
bytes, so the same upload twice is one dataset. Files are written by this service only, mode
0640 with the sandbox user's group (0600 when sandboxes run as this service's own user), and
are listed again when the service starts.

A file that is not UTF-8 is re-encoded: its encoding is detected (charset_normalizer, on a
sample around its first non-UTF-8 byte), the whole file is decoded strictly with it and stored as
UTF-8, and the manifest records an `encoding_fixed` ingestion problem. A file whose encoding
cannot be detected, or that does not decode with it, is refused (INVALID_ARGUMENT). The digest
covers the bytes as sent, so the same upload is still one dataset.
"""

from __future__ import annotations

import asyncio
import codecs
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

import charset_normalizer
import grpc

from analyst_service.catalog import table_name_for
from analyst_service.errors import AnalystError, InvalidRequestError
from csv_analyst.v1 import dataset_pb2

log = logging.getLogger(__name__)

FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,99}$")
MANIFEST = "manifest.json"
MAX_FILES = 16
# Bytes given to the encoding detector: the file's start and the bytes around its first non-UTF-8 byte.
DETECTION_SAMPLE_BYTES = 1 << 20
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
    # Offset of the first non-UTF-8 byte of each file that has one.
    not_utf8: dict[str, int] = field(default_factory=dict)


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
        if current.not_utf8_at is not None:
            incoming.not_utf8[current.path.name] = current.not_utf8_at

    def _commit(self, incoming: _Incoming) -> dataset_pb2.Dataset:
        files: list[dict[str, object]] = [{"name": n, "sha256": d}
                                          for n, d in zip(incoming.names, incoming.digests, strict=True)]
        for entry in files:
            offset = incoming.not_utf8.get(str(entry["name"]))
            if offset is not None:
                entry["problems"] = [reencode_to_utf8(incoming.directory / str(entry["name"]), offset)]
        manifest = {"files": files}
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
        problems = [dataset_pb2.IngestionProblem(table=table_name_for(Path(entry["name"])), kind=str(problem["kind"]),
                                                 message=str(problem["message"]))
                    for entry in manifest["files"] for problem in entry.get("problems", [])]
        return dataset_pb2.Dataset(
            name=f"datasets/{dataset_id}", dataset_id=dataset_id, title="Uploaded: " + ", ".join(names),
            description="Tables from the uploaded files " + ", ".join(names) + ".", version_hash=digest,
            tables=[dataset_pb2.Table(name=table_name_for(Path(n)), file=str(directory / n)) for n in names],
            ingestion_problems=problems)

    def delete(self, digest: str) -> None:
        """Remove a stored upload: its directory is renamed away at once (a restart never lists it
        again, even if the removal of its files is cut short), then removed.

        Raises:
            ValueError: When digest is not an upload digest.
            FileNotFoundError: When there is no such upload.
        """
        if not _DIGEST.match(digest):
            raise ValueError(f"not an upload digest: {digest!r}")
        doomed = self.root / f".deleting-{uuid.uuid4().hex}"
        os.rename(self.root / digest, doomed)
        shutil.rmtree(doomed, ignore_errors=True)

    def list(self) -> list[dataset_pb2.Dataset]:
        """Every stored upload (unreadable ones are skipped with a warning); removes what an
        interrupted upload or deletion left behind."""
        datasets = []
        for directory in sorted(self.root.iterdir()):
            if directory.name.startswith(".deleting-"):
                shutil.rmtree(directory, ignore_errors=True)
                continue
            if _DIGEST.match(directory.name):
                try:
                    datasets.append(self.load(directory.name))
                except (OSError, ValueError, KeyError, TypeError) as error:
                    log.warning("skipping unreadable upload %s: %s", directory.name, error)
        return datasets


def reencode_to_utf8(path: Path, offset: int) -> dict[str, str]:
    """Rewrite a file that is not UTF-8 as UTF-8, in its detected encoding (blocking).

    Args:
        path: The file, written by this service.
        offset: Where its first non-UTF-8 byte is.

    Returns:
        The `encoding_fixed` problem to record (kind and message).

    Raises:
        InvalidRequestError: When the encoding cannot be detected or the file does not decode with it.
    """
    with open(path, "rb") as handle:
        sample = handle.read(DETECTION_SAMPLE_BYTES)
        if offset >= len(sample):
            handle.seek(max(0, offset - DETECTION_SAMPLE_BYTES // 2))
            sample += b"\n" + handle.read(DETECTION_SAMPLE_BYTES)
    best = charset_normalizer.from_bytes(sample).best()
    refusal = (f"the file {path.name!r} is not valid UTF-8 (byte {offset + 1:,}) and its encoding could not be "
               "detected; save it as UTF-8 and upload it again")
    if best is None:
        raise InvalidRequestError(message=refusal, violations=[("chunk", "not UTF-8")],
                                  metadata={"file_name": path.name, "offset": str(offset)})
    encoding = codecs.lookup(best.encoding).name
    converted = path.with_name(path.name + ".utf8")
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    try:
        with open(path, "rb") as source, open(converted, "x", encoding="utf-8", newline="") as target:
            while chunk := source.read(1 << 20):
                target.write(decoder.decode(chunk))
            target.write(decoder.decode(b"", final=True))
    except UnicodeDecodeError:
        converted.unlink(missing_ok=True)
        raise InvalidRequestError(message=refusal, violations=[("chunk", "not UTF-8")],
                                  metadata={"file_name": path.name, "offset": str(offset)}) from None
    os.replace(converted, path)
    return {"kind": "encoding_fixed",
            "message": f"the file was not UTF-8 (byte {offset + 1:,} is not); it was read as {encoding} and "
                       "stored as UTF-8: check that accented letters look right"}


class _OpenFile:
    """One file being written, hashed and checked for UTF-8."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        self._hash = hashlib.sha256()
        self._size = 0
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="strict")
        self.not_utf8_at: int | None = None

    def write(self, data: bytes) -> None:
        assert self._fd is not None
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view):]
        self._hash.update(data)
        if self.not_utf8_at is None:
            pending = len(self._utf8.getstate()[0])  # bytes of a sequence the last chunk cut
            try:
                self._utf8.decode(data)
            except UnicodeDecodeError as error:
                self.not_utf8_at = self._size - pending + error.start
        self._size += len(data)

    def finish(self) -> tuple[str, int]:
        self.discard()
        if self.not_utf8_at is None:
            try:
                self._utf8.decode(b"", final=True)
            except UnicodeDecodeError:
                self.not_utf8_at = self._size - 1  # a multi-byte sequence cut off at the end
        return self._hash.hexdigest(), self._size

    def discard(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
