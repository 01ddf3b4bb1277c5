"""The executor interface: run one sandbox task in a fresh sandbox and report the outcome.

Run failures (query errors, timeouts, limits) are data in the outcome; an executor raises
`SandboxStartError` only when the sandbox could not start at all.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from csv_analyst.v1 import run_pb2
from csv_analyst.runner.v1 import sandbox_pb2

log = logging.getLogger(__name__)


class SandboxStartError(Exception):
    """The sandbox could not be started (missing binary, bad configuration)."""


@dataclass(frozen=True)
class TableFile:
    """A table and the host path of its CSV file."""

    name: str
    host_path: str


@dataclass(frozen=True)
class SandboxRequest:
    """Everything an executor needs for one run."""

    run_id: str
    sql: str
    tables: tuple[TableFile, ...]
    limits: run_pb2.ResourceLimits
    # Host path of a materialised DuckDB file to attach read-only instead of the CSV tables.
    database_path: str = ""
    # Host directory (writable) in which to build the materialised file `dataset.duckdb`.
    output_dir: str = ""
    # A restricted Python program to run instead of sql.
    python_code: str = ""


DATABASE_FILE = "dataset.duckdb"
OUTPUT_SUBDIR = "out"
# A result larger than this is not read into the service (10,000 rows of wide text fit easily):
# the sandbox is killed and the run fails with RUNNER_RESOURCE_EXCEEDED.
MAX_STDOUT_BYTES = 64 << 20


@dataclass
class SandboxOutcome:
    """What came back from one sandbox."""

    result: sandbox_pb2.SandboxResult
    stdout: str
    stderr: str
    wall_seconds: float
    exit_code: int | None


class Executor(Protocol):
    """Runs each request in its own sandbox; one sandbox serves exactly one run."""

    name: str

    async def execute(self, request: SandboxRequest, on_started: Callable[[], None]) -> SandboxOutcome:
        """Run the request and return its outcome; call on_started once the sandbox is up.

        Raises:
            SandboxStartError: When no sandbox could be started.
        """
        ...

    async def cancel(self, run_id: str) -> bool:
        """Kill the sandbox of a running run; return whether one was running."""
        ...

    async def close(self) -> None:
        """Kill every sandbox still running and release resources."""
        ...


def sandbox_task(request: SandboxRequest, data_dir: str, sandbox_paths: list[str]) -> sandbox_pb2.SandboxTask:
    """Build the task the runner reads, with paths as seen inside the sandbox.

    Inside the sandbox the materialised file is `{data_dir}/dataset.duckdb` and the output
    directory of a materialisation is `{data_dir}/out`.
    """
    return sandbox_pb2.SandboxTask(
        run_id=request.run_id,
        sql=request.sql,
        python_code=request.python_code,
        tables=[sandbox_pb2.TableSource(name=t.name, path=p) for t, p in zip(request.tables, sandbox_paths, strict=True)],
        limits=request.limits,
        data_dir=data_dir,
        database_path=f"{data_dir}/{DATABASE_FILE}" if request.database_path else "",
        materialize_to=f"{data_dir}/{OUTPUT_SUBDIR}/{DATABASE_FILE}" if request.output_dir else "",
    )


def capped_text(data: bytes, limit: int) -> str:
    """Captured output as text, cut at `limit` bytes with a note saying how much was dropped."""
    text = data[:limit].decode("utf-8", errors="replace")
    return text + (f"\n[truncated {len(data) - limit} bytes]" if len(data) > limit else "")


def looks_out_of_memory(stderr: bytes) -> bool:
    """Whether a sandbox's stderr shows an allocation failure (Python, C++ or DuckDB)."""
    return any(marker in stderr for marker in (b"MemoryError", b"std::bad_alloc", b"Out of Memory", b"out of memory"))


def runner_error(code: int, status_code: int, message: str) -> run_pb2.RunError:
    """Build a RunError for failures the executor itself detects (timeout, memory, crash)."""
    return run_pb2.RunError(code=code, reason=run_pb2.ErrorCode.Name(code).removeprefix("ERROR_CODE_"),
                            message=message, status_code=status_code)


def sandbox_failed(run_id: str, exit_code: int | None, stderr_text: str) -> run_pb2.RunError:
    """The error of a sandbox that crashed; its output goes to the log, never to the client."""
    tail = stderr_text.strip().splitlines()[-1:] or [""]
    log.error("run %s: sandbox exited with code %s: %s", run_id, exit_code, tail[0][:300])
    return runner_error(run_pb2.ERROR_CODE_RUNNER_INTERNAL_ERROR, 13,
                        f"the sandbox failed (exit code {exit_code}); the service log has the details of run {run_id}")


def too_much_output() -> run_pb2.RunError:
    """The error of a run whose sandbox wrote more than MAX_STDOUT_BYTES on stdout or stderr."""
    return runner_error(run_pb2.ERROR_CODE_RUNNER_RESOURCE_EXCEEDED, 8,
                        f"the run wrote more than {MAX_STDOUT_BYTES >> 20} MB of output; lower max_rows")
