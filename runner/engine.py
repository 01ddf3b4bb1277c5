"""DuckDB inside the sandbox: locked down, capped, one query.

The lock-down order matters (measured with DuckDB 2.0): allowed_directories and temp settings
must be set before enable_external_access=false, and lock_configuration=true comes last.
"""

from __future__ import annotations

from collections.abc import Callable

import contextlib
import datetime
import decimal
import json
import math
import time
import uuid
from typing import Any

import duckdb

from csv_analyst.v1 import result_pb2, run_pb2, value_pb2
from csv_analyst.runner.v1 import sandbox_pb2
from runner.ingest import CsvIngestError, identifier, literal, load_csv
from runner.python_mode import PolicyViolation, PythonProgramError, run_python

TEMP_DIR = "/tmp/duckdb-spill"
MAX_TEMP_BYTES = 512 * 1024 * 1024
# Output caps: the result travels in one gRPC message (4 MB default) and is stored in a capsule.
# Rows past MAX_RESULT_BYTES are cut (truncated=true); longer text cells are shortened.
MAX_RESULT_BYTES = 2 << 20
MAX_CELL_CHARS = 64 * 1024
# What a waiting warm sandbox reads ahead into DuckDB's buffers (see warm_up): rows x columns
# in all (the 1e6-order demo dataset needs 20e6), and rows of any one table.
WARM_UP_CELLS = 25_000_000
WARM_UP_TABLE_ROWS = 5_000_000
# The storage format of materialised files: the oldest one the native DuckDB CLI of the SQL path
# reads (PyPI duckdb-cli lags the Python package: 1.5.6 against 2.0.1; see
# runner_service/executors/native_sql.py). Newer readers read it too.
STORAGE_VERSION = "v1.5.0"


class QueryTimeoutError(Exception):
    """DuckDB interrupted the query at max_execution_time."""


def open_connection(task: sandbox_pb2.SandboxTask, database: str = ":memory:") -> duckdb.DuckDBPyConnection:
    """Open a DuckDB restricted to the task's data directory, with the task's tables loaded.

    The tables come from the materialised DuckDB file (task.database_path, attached read-only)
    or else from the CSV files (one table per file).

    Args:
        task: The sandbox task (tables with sandbox paths, limits, data_dir).
        database: The database to open (":memory:" for queries, the output file to materialise).

    Returns:
        A connection whose configuration is locked.
    """
    storage = {} if database == ":memory:" else {"storage_compatibility_version": STORAGE_VERSION}
    connection = duckdb.connect(database, config={
        **storage,
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
        "allow_community_extensions": False,
        "allow_unsigned_extensions": False,
        "allow_persistent_secrets": False,
    })
    limits = task.limits
    if not task.data_dir.startswith("/") or not task.data_dir.strip("/"):
        raise ValueError(f"data_dir must be an absolute directory below /, not {task.data_dir!r}")
    data_dir = task.data_dir.rstrip("/") + "/"
    timeout_ms = max(1, int(limits.timeout.ToMilliseconds())) if limits.HasField("timeout") else 0
    statements = [
        ("SET allowed_directories = ?", [[data_dir]]),
        ("SET temp_directory = ?", [TEMP_DIR]),
        ("SET max_temp_directory_size = ?", [f"{MAX_TEMP_BYTES}B"]),
        ("SET memory_limit = ?", [f"{limits.memory_bytes}B" if limits.memory_bytes else "256MB"]),
        ("SET threads = ?", [limits.threads or 1]),
        ("SET max_execution_time = ?", [timeout_ms]),
        ("SET enable_external_access = false", []),
    ]
    for statement, parameters in statements:
        connection.execute(statement, parameters)
    if task.database_path:
        if not task.database_path.startswith(data_dir):
            raise ValueError("the database file is outside the data directory")
        connection.execute(f"ATTACH {literal(task.database_path)} AS dataset (READ_ONLY)")
        connection.execute("USE dataset")
    else:
        load_tables(connection, task, data_dir)
    connection.execute("SET lock_configuration = true")
    return connection




def load_tables(connection: duckdb.DuckDBPyConnection, task: sandbox_pb2.SandboxTask, data_dir: str) -> None:
    """Load each CSV file of the task as a table named after it."""
    for table in task.tables:
        if not table.path.startswith(data_dir):
            raise ValueError(f"table {table.name!r} is outside the data directory")
        # Table names and paths come from the service's own registry, not from the user, and
        # are quoted as an identifier and a literal here. A table (not a view) keeps the file's
        # row order in DuckDB's rowid, which plans use for "first"/"last"/"previous" questions.
        # runner.ingest loads strictly and refuses ragged or silently dropped rows.
        load_csv(connection, table.name, table.path)


def warm_up(connection: duckdb.DuckDBPyConnection, max_cells: int = WARM_UP_CELLS,
            query_waiting: Callable[[], bool] = lambda: False) -> None:
    """Prepare a warm sandbox's DuckDB for its first query while it waits for its run.

    A fresh process pays for its first reads and its first hash aggregate (buffers, page faults,
    allocator): measured through the whole service on 1e6 rows, the in-sandbox query took ~12 ms
    after reading the tables and ~9-10 ms after the rehearsal too, against ~13-16 ms without either.
    1. Read the tables' columns into DuckDB's buffers, one column per statement (hashing forces
       the read: min/max would be answered from the file's statistics), largest table first, up
       to max_cells rows x columns in all and WARM_UP_TABLE_ROWS rows per table, so a big dataset
       does not keep a waiting sandbox busy.
    2. Rehearse the commonest analyst shape (group by a text column, count and sum, order,
       limit) once, on the largest table read.
    query_waiting() is asked before every statement: once the run's query has arrived, the
    warm-up stops, so a run waits at most for one column of one table (a cold start gets its
    query at once and skips all of it). Best effort: a failure here is not the run's failure.
    """
    tables = connection.execute(
        "SELECT table_name, estimated_size, column_count FROM duckdb_tables() "
        "WHERE database_name = current_database() ORDER BY estimated_size DESC").fetchall()
    budget = max_cells
    read: list[str] = []
    for name, rows, column_count in tables:
        if rows > WARM_UP_TABLE_ROWS or rows * column_count > budget:
            continue
        budget -= rows * column_count
        for column in _columns(connection, name):
            if query_waiting():
                return
            with contextlib.suppress(duckdb.Error):
                connection.execute(f"SELECT bit_xor(hash({identifier(column[0])})) FROM {identifier(name)}").fetchall()
        read.append(name)
    if read and not query_waiting():
        with contextlib.suppress(duckdb.Error):
            connection.execute(_rehearsal(connection, read[0])).fetchall()


def _columns(connection: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str]]:
    """(name, type) of a table's columns, in order."""
    return connection.execute(
        "SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = current_database() "
        "AND table_name = ? ORDER BY column_index", [table]).fetchall()


def _rehearsal(connection: duckdb.DuckDBPyConnection, table: str) -> str:
    columns = _columns(connection, table)
    key = next((name for name, kind in columns if kind == "VARCHAR"), columns[0][0])
    numbers = [name for name, kind in columns
               if kind in ("DOUBLE", "BIGINT", "INTEGER", "HUGEINT") or kind.startswith("DECIMAL") and name != key]
    total = f", sum({identifier(numbers[-1])}) AS total" if numbers else ""
    return f"SELECT {identifier(key)}, count(*) AS n{total} FROM {identifier(table)} GROUP BY 1 ORDER BY 2 DESC LIMIT 10"


def materialize(task: sandbox_pb2.SandboxTask) -> sandbox_pb2.SandboxResult:
    """Build the materialised DuckDB file task.materialize_to from the task's CSV tables."""
    result = sandbox_pb2.SandboxResult()
    started = time.perf_counter()
    try:
        connection = open_connection(task, task.materialize_to)
        connection.execute("CHECKPOINT")
        connection.close()
    except CsvIngestError as error:
        result.error.CopyFrom(_ingest_error(error))
    except (duckdb.Error, ValueError) as error:
        result.error.CopyFrom(_error(run_pb2.ERROR_CODE_RUNNER_INTERNAL_ERROR, 13,
                                     f"materialisation failed: {_first_line(error)}"))
    result.setup_seconds = time.perf_counter() - started
    return result


def run_query(connection: duckdb.DuckDBPyConnection, sql: str, max_rows: int) -> tuple[result_pb2.ResultTable, int]:
    """Run one statement and return up to max_rows rows and the count produced (max_rows + 1 at most).

    Args:
        connection: A connection from open_connection.
        sql: The validated SQL.
        max_rows: Row cap; one more row is fetched to detect truncation honestly.

    Returns:
        The result table and the number of rows fetched.

    Raises:
        QueryTimeoutError: When DuckDB interrupted the query at its time limit.
        duckdb.Error: For any other query failure.
    """
    try:
        cursor = connection.execute(sql)
        if cursor is None or cursor.description is None:
            raise duckdb.InvalidInputException("the SQL contains no query")
        rows = cursor.fetchmany(max_rows + 1)
    except duckdb.InterruptException as error:
        raise QueryTimeoutError(str(error)) from error
    description = cursor.description or []
    table = result_pb2.ResultTable(
        columns=[result_pb2.ResultColumn(name=d[0], type=str(d[1])) for d in description],
        truncated=len(rows) > max_rows,
    )
    size = 0
    for row in rows[:max_rows]:
        result_row = result_pb2.ResultRow(values=[_capped(to_value(cell)) for cell in row])
        size += result_row.ByteSize()
        if size > MAX_RESULT_BYTES:
            table.truncated = True  # honest: fewer rows than the query produced
            break
        table.rows.append(result_row)
    table.row_count = len(table.rows)
    return table, len(rows)


def _capped(value: value_pb2.Value) -> value_pb2.Value:
    if value.WhichOneof("kind") == "string_value" and len(value.string_value) > MAX_CELL_CHARS:
        extra = len(value.string_value) - MAX_CELL_CHARS
        value.string_value = value.string_value[:MAX_CELL_CHARS] + f"... [{extra} more characters]"
    return value


def to_value(cell: Any) -> value_pb2.Value:
    """Convert one DuckDB Python value to a typed Value."""
    if cell is None:
        return value_pb2.Value(null_value=0)
    if isinstance(cell, bool):
        return value_pb2.Value(bool_value=cell)
    if isinstance(cell, int):
        if -(2**63) <= cell < 2**63:
            return value_pb2.Value(int_value=cell)
        return value_pb2.Value(string_value=str(cell))
    if isinstance(cell, float):
        if math.isnan(cell) or math.isinf(cell):
            return value_pb2.Value(string_value=str(cell))
        return value_pb2.Value(double_value=cell)
    if isinstance(cell, decimal.Decimal):
        return value_pb2.Value(double_value=float(cell))
    if isinstance(cell, (datetime.datetime, datetime.date, datetime.time)):
        return value_pb2.Value(string_value=cell.isoformat())
    if isinstance(cell, (datetime.timedelta, uuid.UUID)):
        return value_pb2.Value(string_value=str(cell))
    if isinstance(cell, (bytes, bytearray, memoryview)):
        return value_pb2.Value(string_value=bytes(cell).hex())
    if isinstance(cell, (list, tuple, dict)):
        return value_pb2.Value(string_value=json.dumps(cell, default=str))
    return value_pb2.Value(string_value=str(cell))


def execute_task(task: sandbox_pb2.SandboxTask,
                 next_query: Callable[[], sandbox_pb2.SandboxTask] | None = None,
                 deliver: Callable[[sandbox_pb2.SandboxResult], None] | None = None,
                 query_waiting: Callable[[], bool] = lambda: False) -> sandbox_pb2.SandboxResult:
    """Run a whole task and report the outcome as data (never raises for query errors).

    Args:
        task: The task; with next_query, only its set-up part (tables, limits, data_dir).
        next_query: Blocks until the run's query arrives (a warm sandbox prepares DuckDB first,
            then waits here); its run_id and sql complete the task.
        deliver: Called with a query's result as soon as it is known, before the connection is
            closed (so the answer is not delayed by DuckDB's tear-down).
        query_waiting: Whether the run's query has arrived (warm-up stops then; see warm_up).

    Returns:
        The result (also passed to deliver when the query ran).
    """
    if task.materialize_to:
        return materialize(task)
    result = sandbox_pb2.SandboxResult()
    started = time.perf_counter()
    try:
        connection = open_connection(task)
    except CsvIngestError as error:
        result.error.CopyFrom(_ingest_error(error))
        return result
    except (duckdb.Error, ValueError) as error:
        result.error.CopyFrom(_error(run_pb2.ERROR_CODE_RUNNER_INTERNAL_ERROR, 13, f"sandbox setup failed: {error}"))
        return result
    if next_query is not None:
        warm_up(connection, query_waiting=query_waiting)
    result.setup_seconds = time.perf_counter() - started
    if next_query is not None:
        query = next_query()
        task.run_id, task.sql, task.python_code = query.run_id, query.sql, query.python_code
    query_started = time.perf_counter()
    max_rows = task.limits.max_rows or 200
    try:
        if task.python_code:
            table, produced = run_python(connection, task.python_code, [t.name for t in task.tables], max_rows,
                                         run_query)
        else:
            table, produced = run_query(connection, task.sql, max_rows)
        result.result.CopyFrom(table)
        result.rows_produced = produced
    except PolicyViolation as error:
        result.error.CopyFrom(_error(run_pb2.ERROR_CODE_PYTHON_POLICY_VIOLATION, 3, str(error)))
    except PythonProgramError as error:
        result.error.CopyFrom(_error(run_pb2.ERROR_CODE_PYTHON_EXECUTION_ERROR, 3, f"the program failed: {error}"))
    except MemoryError:
        result.error.CopyFrom(_error(run_pb2.ERROR_CODE_RUNNER_RESOURCE_EXCEEDED, 8,
                                     "the program exceeded the memory limit set by run_memory"))
    except QueryTimeoutError:
        limit_s = task.limits.timeout.ToMilliseconds() / 1000
        result.error.CopyFrom(_error(run_pb2.ERROR_CODE_RUNNER_TIMEOUT, 4,
                                     f"the query exceeded the {limit_s:g} s limit set by run_timeout"))
    except duckdb.OutOfMemoryException as error:
        result.error.CopyFrom(_error(run_pb2.ERROR_CODE_RUNNER_RESOURCE_EXCEEDED, 8,
                                     f"the query exceeded the memory limit set by run_memory: {_first_line(error)}"))
    except duckdb.Error as error:
        result.error.CopyFrom(_error(run_pb2.ERROR_CODE_QUERY_ERROR, 3, f"DuckDB rejected the query: {_first_line(error)}"))
    result.query_seconds = time.perf_counter() - query_started
    if deliver is not None:
        deliver(result)  # before closing: closing DuckDB costs a few milliseconds
    connection.close()
    return result


def _ingest_error(error: CsvIngestError) -> run_pb2.RunError:
    # A broken input file is the caller's to fix: INVALID_ARGUMENT (3), not an internal error.
    if error.issue == "out_of_memory":
        run_error = _error(run_pb2.ERROR_CODE_RUNNER_RESOURCE_EXCEEDED, 8, error.message)
    else:
        run_error = _error(run_pb2.ERROR_CODE_QUERY_ERROR, 3, error.message)
    run_error.metadata.update(error.metadata())
    return run_error


def _first_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0][:500] if str(error).strip() else type(error).__name__


def _error(code: int, status_code: int, message: str) -> run_pb2.RunError:
    return run_pb2.RunError(code=code, reason=run_pb2.ErrorCode.Name(code).removeprefix("ERROR_CODE_"),
                            message=message, status_code=status_code)
