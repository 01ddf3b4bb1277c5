"""The runner's stdin protocol.

Two forms, told apart by the first byte:
- legacy: one SandboxTask (binary protobuf) until end of input;
- framed: two frames, each a 4-byte big-endian length and a SandboxTask. The first frame sets up
  DuckDB (tables or materialised file, limits); the second brings the run's run_id and sql. A
  warm sandbox receives the first frame when it starts and the second when a run takes it.
A binary SandboxTask never starts with a zero byte (field tags are >= 0x08), and frames are
capped below 16 MiB, so a framed stream always does.

The answer mirrors the input: a framed task gets its SandboxResult back as one frame, so the
executor has the whole answer the moment the frame is complete and need not wait for the
sandbox to exit (tearing down bwrap's namespaces or a container costs 10-100 ms); a legacy task
gets the bare message, ended by the end of output.
"""

from __future__ import annotations

import struct
from typing import BinaryIO

from csv_analyst.runner.v1 import sandbox_pb2

MAX_FRAME = (1 << 24) - 1


class ProtocolError(Exception):
    """The input is not a readable task."""


def frame(task: sandbox_pb2.SandboxTask) -> bytes:
    """Encode one task as a frame."""
    data = task.SerializeToString()
    if len(data) > MAX_FRAME:
        raise ProtocolError(f"task of {len(data)} bytes is larger than a frame")
    return struct.pack(">I", len(data)) + data


def result_frame(result: sandbox_pb2.SandboxResult) -> bytes:
    """Encode the sandbox's answer as a frame (results are capped far below MAX_FRAME)."""
    data = result.SerializeToString()
    return struct.pack(">I", len(data)) + data


def complete_frame(buffer: bytes | bytearray) -> bytes | None:
    """The payload of the frame at the start of buffer once all of it has arrived, else None."""
    if len(buffer) < 4:
        return None
    (size,) = struct.unpack(">I", buffer[:4])
    if len(buffer) < 4 + size:
        return None
    return bytes(buffer[4:4 + size])


def query_frame(run_id: str, sql: str, python_code: str = "") -> bytes:
    """The second frame: the run's id and its SQL or restricted Python program."""
    return frame(sandbox_pb2.SandboxTask(run_id=run_id, sql=sql, python_code=python_code))


def _read_exactly(stream: BinaryIO, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = stream.read(size - len(data))
        if not chunk:
            raise ProtocolError(f"input ended after {len(data)} of {size} bytes")
        data += chunk
    return data


def read_frame(stream: BinaryIO, header: bytes = b"") -> sandbox_pb2.SandboxTask:
    """Read one frame (optionally with the first header bytes already read)."""
    header += _read_exactly(stream, 4 - len(header))
    (size,) = struct.unpack(">I", header)
    if size > MAX_FRAME:
        raise ProtocolError(f"frame of {size} bytes is too large")
    try:
        return sandbox_pb2.SandboxTask.FromString(_read_exactly(stream, size))
    except Exception as error:  # noqa: BLE001 - protobuf raises DecodeError and others
        raise ProtocolError(f"unreadable frame: {error}") from error
