"""SQL runs on the native DuckDB CLI instead of Python importing duckdb.

The sandboxed program of a SQL run on a materialised dataset is the DuckDB CLI binary shipped by
PyPI `duckdb-cli` (~30 ms to start, against 120-260 ms for Python importing duckdb). Everything
else stays: the same sandbox per run, the same lock-down (`setup_script`), the same typed answer
(`translate` turns the CLI's output into the SandboxResult the Python runner would write).

Talking to the CLI (its stdin, in two parts, like the Python runner's two frames):
- set-up, written when the sandbox starts: extension loading off, allowed directory, temp and
  memory and thread limits, external access off, the materialised file attached read-only,
  then the CLI's safe mode (no shell, no file dot-commands; it also locks the configuration).
  A waiting sandbox prints nothing (an executor takes early output or end of output as a failed
  set-up). `-bail` ends the CLI at the first error, so nothing runs on a broken set-up.
- query, written when a run takes the sandbox: `@@ready` (so the answer tells a set-up failure
  from a query failure), `DESCRIBE` of the query (column names and DuckDB types, planning only),
  `@@columns`, the rows (at most max_rows + 1, for honest truncation), `@@rows`, end of input. The run's SQL never reaches the CLI as text of its own: it is
  one escaped string literal given to `query()`, which accepts exactly one SELECT statement.

The output is `.mode jsonlines`: every row is one JSON object on one line (strings escaped, so a
row never starts with anything but `{`), NULL is `null` and the string 'NULL' is `"NULL"`, NaN
and infinities are bare `NaN`/`Infinity`, and integers beyond 64 bits and decimals are strings;
the column types from DESCRIBE say how to read each value.

Version pairing: duckdb-cli lags the Python package (1.5.6 when duckdb is 2.0.1), so the
materialised file is written in a storage format both read (STORAGE_VERSION) and DuckDB's own
max_execution_time (2.0 only) is replaced by the executor's wall-clock kill (RUNNER_TIMEOUT).
"""

from __future__ import annotations

import datetime
import decimal
import functools
import importlib.util
import json
import math
import os
import re
from pathlib import Path

from csv_analyst.runner.v1 import sandbox_pb2
from csv_analyst.v1 import result_pb2, run_pb2, value_pb2
from runner.engine import (
    MAX_RESULT_BYTES,
    MAX_TEMP_BYTES,
    STORAGE_VERSION,
    TEMP_DIR,
    WARM_UP_CELLS,
    WARM_UP_TABLE_ROWS,
    _capped,
)
from runner.ingest import identifier, literal
from runner_service.executors.base import SandboxRequest, runner_error

CLI_FLAGS = ("-batch", "-no-init", "-bail", "-jsonlines", ":memory:")
READY, COLUMNS, ROWS = b"@@ready", b"@@columns", b"@@rows"
_ERROR_LINE = re.compile(r"^([A-Za-z ]+ Error): (.*)$")


def find_cli() -> str | None:
    """The DuckDB CLI binary of the installed `duckdb-cli` package, or None when missing."""
    spec = importlib.util.find_spec("duckdb_cli")
    if spec is None or spec.origin is None:
        return None
    binary = Path(spec.origin).resolve().parent / "duckdb"
    return str(binary) if os.access(binary, os.X_OK) else None


def serves(request: SandboxRequest) -> bool:
    """Whether the native CLI runs this request: SQL on a materialised dataset.

    Python mode, materialisation and runs on raw CSV files (whose strict ingest is Python:
    runner/ingest.py) stay on the Python runner.
    """
    return bool(request.database_path) and not request.python_code and not request.output_dir


def sql_string(text: str) -> str:
    """`text` as one DuckDB escape-string literal on a single line (no quote, backslash or
    ASCII control character of the text survives unescaped; E'' knows \\xHH, not \\u)."""
    escaped = []
    for char in text:
        if char in ("\\", "'"):
            escaped.append("\\" + char)
        elif char == "\n":
            escaped.append("\\n")
        elif char == "\r":
            escaped.append("\\r")
        elif char == "\t":
            escaped.append("\\t")
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            escaped.append(f"\\x{ord(char):02x}")  # the CLI reads lines of bytes: the rest is safe UTF-8
        else:
            escaped.append(char)
    return "E'" + "".join(escaped) + "'"


def setup_script(task: sandbox_pb2.SandboxTask) -> bytes:
    """The CLI input that locks DuckDB down and attaches the dataset (see the module docstring).

    Raises:
        ValueError: When the task's paths are not inside its data directory.
    """
    limits = task.limits
    if not task.data_dir.startswith("/") or not task.data_dir.strip("/"):
        raise ValueError(f"data_dir must be an absolute directory below /, not {task.data_dir!r}")
    data_dir = task.data_dir.rstrip("/") + "/"
    if not task.database_path.startswith(data_dir):
        raise ValueError("the database file is outside the data directory")
    memory = f"{limits.memory_bytes}B" if limits.memory_bytes else "256MB"
    statements = [
        "SET autoinstall_known_extensions = false",
        "SET autoload_known_extensions = false",
        "SET allow_community_extensions = false",
        "SET allow_persistent_secrets = false",
        f"SET allowed_directories = [{literal(data_dir)}]",
        f"SET temp_directory = {literal(TEMP_DIR)}",
        f"SET max_temp_directory_size = '{MAX_TEMP_BYTES}B'",
        f"SET memory_limit = {literal(memory)}",
        f"SET threads = {int(limits.threads or 1)}",
        "SET enable_external_access = false",
        f"ATTACH {literal(task.database_path)} AS dataset (READ_ONLY)",
        "USE dataset",
    ]
    lines = [statement + ";" for statement in statements]
    # Safe mode refuses .shell/.system/.read/.open/.output/.once/.import/.log and sets
    # enable_external_access=false and lock_configuration=true itself.
    lines += [".safe_mode"]
    return ("\n".join(lines) + "\n").encode()


@functools.lru_cache(maxsize=64)
def _catalog(path: str, identity: tuple[int, int, int]) -> tuple[tuple[str, int, tuple[tuple[str, str], ...]], ...]:
    import duckdb

    with duckdb.connect(path, read_only=True) as connection:
        tables = connection.execute("SELECT table_name, estimated_size FROM duckdb_tables() "
                                    "WHERE database_name = current_database() ORDER BY estimated_size DESC").fetchall()
        return tuple((name, rows, tuple(connection.execute(
            "SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = current_database() "
            "AND table_name = ? ORDER BY column_index", [name]).fetchall())) for name, rows in tables)


def warm_up_script(database_path: str, max_cells: int = WARM_UP_CELLS) -> bytes:
    """What a warm sandbox runs ahead while it waits, like the Python runner's warm-up
    (runner.engine.warm_up) but shorter: the columns of the largest table that fits (at most
    max_cells rows x columns, WARM_UP_TABLE_ROWS rows) read into DuckDB's buffers in one pass,
    then one rehearsal of the commonest analyst shape on it; output discarded (`.mode trash`),
    so a waiting sandbox still prints nothing. The tables come from the materialised file itself
    (read here, read-only, once per file). A run that takes the sandbox early waits for the rest
    of it (the CLI cannot stop it), so executors give it only to pool sandboxes started while
    no run is executing, never to cold starts. Best effort: none when the file cannot be read.
    """
    try:
        stat = os.stat(database_path)
        catalog = _catalog(database_path, (stat.st_ino, stat.st_size, stat.st_mtime_ns))
    except Exception:  # noqa: BLE001 - duckdb.Error, OSError: the run simply starts cold
        return b""
    lines = [".mode trash"]
    for name, rows, columns in catalog:
        if not columns or rows > WARM_UP_TABLE_ROWS or rows * len(columns) > max_cells:
            continue
        # hash() forces each value to be read (min/max would be answered from statistics).
        reads = ", ".join(f"bit_xor(hash({identifier(column)}))" for column, _ in columns)
        lines += [f"SELECT {reads} FROM {identifier(name)};", _rehearsal(name, columns) + ";"]
        break
    lines.append(".mode jsonlines")
    return ("\n".join(lines) + "\n").encode() if len(lines) > 2 else b""


def _rehearsal(table: str, columns: tuple[tuple[str, str], ...]) -> str:
    key = next((name for name, kind in columns if kind == "VARCHAR"), columns[0][0])
    numbers = [name for name, kind in columns
               if name != key and (kind in ("DOUBLE", "BIGINT", "INTEGER", "HUGEINT") or kind.startswith("DECIMAL"))]
    total = f", sum({identifier(numbers[-1])}) AS total" if numbers else ""
    return (f"SELECT {identifier(key)}, count(*) AS n{total} FROM {identifier(table)} "
            f"GROUP BY 1 ORDER BY 2 DESC LIMIT 10")


def query_script(sql: str, max_rows: int) -> bytes:
    """The CLI input of one run: its columns, then at most max_rows + 1 rows."""
    source = f"SELECT * FROM query({sql_string(sql)})"
    lines = [f".print {READY.decode()}", f"DESCRIBE {source};", f".print {COLUMNS.decode()}", f"{source} LIMIT {int(max_rows) + 1};",
             f".print {ROWS.decode()}"]
    return ("\n".join(lines) + "\n").encode()


def complete_answer(stdout: bytes | bytearray) -> bytes | None:
    """The whole answer once the CLI has printed its last marker line, else None."""
    if stdout.endswith(b"\n" + ROWS + b"\n"):
        return bytes(stdout)
    return None


def translate(stdout: bytes, stderr: bytes, max_rows: int) -> sandbox_pb2.SandboxResult | None:
    """The SandboxResult of a CLI run, as the Python runner would have written it.

    Args:
        stdout: Everything the CLI printed (ready marker, DESCRIBE rows, markers, row objects).
        stderr: Its diagnostics (a DuckDB error when it stopped on one).
        max_rows: The run's row cap (max_rows + 1 rows were asked for).

    Returns:
        The result, or None when the output says nothing (a killed or crashed CLI: the
        executor's own checks decide then).
    """
    parts = _parts(stdout)
    result = sandbox_pb2.SandboxResult()
    if parts is not None:
        columns, rows = parts
        table, produced = _table(columns, rows, max_rows)
        result.result.CopyFrom(table)
        result.rows_produced = produced
        return result
    kind, message = _duckdb_error(stderr)
    if kind is None:
        return None
    if not stdout.startswith(READY + b"\n"):
        result.error.CopyFrom(runner_error(run_pb2.ERROR_CODE_RUNNER_INTERNAL_ERROR, 13,
                                           f"sandbox setup failed: {kind}: {message}"))
    elif kind == "Out of Memory Error":
        result.error.CopyFrom(runner_error(run_pb2.ERROR_CODE_RUNNER_RESOURCE_EXCEEDED, 8,
                                           f"the query exceeded the memory limit set by run_memory: {kind}: {message}"))
    else:
        result.error.CopyFrom(runner_error(run_pb2.ERROR_CODE_QUERY_ERROR, 3,
                                           f"DuckDB rejected the query: {kind}: {message}"[:520]))
    return result


def _parts(stdout: bytes) -> tuple[list[bytes], list[bytes]] | None:
    lines = stdout.split(b"\n")
    if lines[:1] != [READY] or COLUMNS not in lines or complete_answer(stdout) is None:
        return None
    split = lines.index(COLUMNS)
    # An empty result prints one empty line; a row is never empty.
    return lines[1:split], [line for line in lines[split + 1:-2] if line]


def _duckdb_error(stderr: bytes) -> tuple[str | None, str]:
    """The first DuckDB error line of the CLI's stderr ("Binder Error", "the message")."""
    for line in stderr.decode("utf-8", errors="replace").splitlines():
        match = _ERROR_LINE.match(line.strip())
        if match:
            return match.group(1), match.group(2)[:500]
    return None, ""


def _table(column_lines: list[bytes], row_lines: list[bytes], max_rows: int) -> tuple[result_pb2.ResultTable, int]:
    described = [json.loads(line) for line in column_lines]
    types = [column["column_type"] for column in described]
    table = result_pb2.ResultTable(
        columns=[result_pb2.ResultColumn(name=column["column_name"], type=column["column_type"]) for column in described],
        truncated=len(row_lines) > max_rows)
    size = 0
    for line in row_lines[:max_rows]:
        # Pairs, not a dict: two columns may share a name.
        pairs = json.loads(line, object_pairs_hook=_Pairs)
        row = result_pb2.ResultRow(values=[_capped(to_value(value, kind)) for (_, value), kind in zip(pairs, types, strict=True)])
        size += row.ByteSize()
        if size > MAX_RESULT_BYTES:
            table.truncated = True
            break
        table.rows.append(row)
    table.row_count = len(table.rows)
    return table, len(row_lines)


class _Pairs(list):  # type: ignore[type-arg]
    """A JSON object as its (key, value) pairs in order (a row; nested ones become dicts)."""


def _plain(value: object) -> object:
    if isinstance(value, _Pairs):
        return {key: _plain(item) for key, item in value}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


_INTEGER_TYPES = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
                  "UBIGINT", "UHUGEINT"}
_INTERVAL = re.compile(r"^(?:(?P<years>-?\d+) years? ?)?(?:(?P<months>-?\d+) mon(?:th)?s? ?)?(?:(?P<days>-?\d+) days? ?)?"
                       r"(?P<time>-?\d+:\d\d:\d\d(?:\.\d+)?)?$")


def to_value(value: object, kind: str) -> value_pb2.Value:
    """One jsonlines value of a column of DuckDB type `kind`, as runner.engine.to_value would
    convert the Python value of the same cell."""
    if value is None:
        return value_pb2.Value(null_value=0)
    if kind == "BOOLEAN" and isinstance(value, bool):
        return value_pb2.Value(bool_value=value)
    if kind in _INTEGER_TYPES:
        number = int(value)  # 128-bit and unsigned 64-bit values come as strings
        if -(2**63) <= number < 2**63:
            return value_pb2.Value(int_value=number)
        return value_pb2.Value(string_value=str(number))
    if kind in ("DOUBLE", "FLOAT") and isinstance(value, (int, float)):
        number = float(value)
        if math.isnan(number) or math.isinf(number):
            return value_pb2.Value(string_value=str(number))
        return value_pb2.Value(double_value=number)
    if kind.startswith("DECIMAL"):
        return value_pb2.Value(double_value=float(decimal.Decimal(str(value))))
    if isinstance(value, list):  # LIST, STRUCT, MAP: JSON text, as the Python runner writes them
        return value_pb2.Value(string_value=json.dumps(_plain(value)))
    text = str(value)
    if kind in ("TIMESTAMP", "TIMESTAMP WITH TIME ZONE", "TIMESTAMP_NS", "TIMESTAMP_MS", "TIMESTAMP_S",
                "DATE", "TIME", "TIME WITH TIME ZONE"):
        return value_pb2.Value(string_value=_iso(text, kind))
    if kind == "INTERVAL":
        return value_pb2.Value(string_value=_interval(text))
    if kind == "BLOB":
        return value_pb2.Value(string_value=_blob(text).hex())
    return value_pb2.Value(string_value=text)


def _iso(text: str, kind: str) -> str:
    """DuckDB's rendering of a date/time as Python's isoformat() of the same value."""
    # Python keeps microseconds: nanoseconds are cut, like the Python client does.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    try:
        if kind == "DATE":
            return datetime.date.fromisoformat(text).isoformat()
        if kind.startswith("TIME") and not kind.startswith("TIMESTAMP"):
            return datetime.time.fromisoformat(text).isoformat()
        return datetime.datetime.fromisoformat(text).isoformat()
    except ValueError:
        return text  # infinities, BC dates, years past 9999: DuckDB's own text


def _interval(text: str) -> str:
    """DuckDB's interval text as str(timedelta): a month is 30 days, as in the Python client."""
    match = _INTERVAL.match(text.strip())
    if not match or not text.strip():
        return text
    days = int(match["years"] or 0) * 360 + int(match["months"] or 0) * 30 + int(match["days"] or 0)
    seconds = 0.0
    if match["time"]:
        sign = -1 if match["time"].startswith("-") else 1
        hours, minutes, secs = match["time"].lstrip("-").split(":")
        seconds = sign * (int(hours) * 3600 + int(minutes) * 60 + float(secs))
    delta = datetime.timedelta(days=days, seconds=int(seconds), microseconds=round((seconds - int(seconds)) * 1e6))
    return str(delta)


def _blob(text: str) -> bytes:
    """DuckDB's blob text (printable ASCII, other bytes as \\xHH) as the bytes themselves."""
    out = bytearray()
    index = 0
    while index < len(text):
        if text.startswith("\\x", index) and index + 4 <= len(text):
            out.append(int(text[index + 2:index + 4], 16))
            index += 4
        else:
            out += text[index].encode()
            index += 1
    return bytes(out)
