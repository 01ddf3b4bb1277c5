"""Dataset profiling inside the sandbox: column types, row counts, distinct and null counts,
min/max and the most frequent values, computed once per dataset version.

CSV files are untrusted input, so even this trusted SQL runs through the RunnerService in a
sandbox, never in the analyst process. Two runs per dataset version: one DESCRIBE of every table
(types), one scan (profiles). Results are cached by everything they depend on: the version hash,
each table's name and the identity of its file (path, size, inode, times), so neither a table of
another name nor a file edited since can answer for it.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import OrderedDict
from collections.abc import Sequence

from google.protobuf import duration_pb2

from analyst_service.answers import cell
from analyst_service.errors import InvalidRequestError
from analyst_service.files import FileIdentity
from analyst_service.ingestion import add_problems, empty_column_problems, problems_from_notes
from csv_analyst.v1 import dataset_pb2, result_pb2, run_pb2
from csv_analyst.runner.v1 import runner_dispatch_service_pb2 as dispatch_pb2, runner_dispatch_service_pb2_grpc, sandbox_pb2

TOP_VALUES = 50
MAX_TOP_VALUES = 200
MAX_PROFILED_COLUMNS = 300
# The runner returns at most 10,000 rows; the profile's rows must fit in them.
PROFILE_ROW_BUDGET = 9_000


def top_values_per_column(dataset: dataset_pb2.Dataset) -> int:
    """How many frequent values to keep per text column: more when there are few text columns
    (small tables are then listed whole, so any cell can be linked), never past the row budget."""
    columns = [c for t in dataset.tables for c in t.columns[:MAX_PROFILED_COLUMNS]]
    text_columns = sum(1 for c in columns if c.type.upper().startswith(_TEXT_TYPES))
    spare = PROFILE_ROW_BUDGET - len(columns) - len(dataset.tables)
    return max(TOP_VALUES // 5, min(MAX_TOP_VALUES, spare // max(1, text_columns)))
_TEXT_TYPES = ("VARCHAR", "BOOLEAN")


def quote(name: str) -> str:
    """Quote an identifier for DuckDB."""
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    """Quote a string literal for DuckDB."""
    return "'" + text.replace("'", "''") + "'"


def describe_sql(dataset: dataset_pb2.Dataset) -> str:
    """One query listing (table, column, type) for every table, in column order."""
    parts = [f"SELECT {literal(t.name)} AS table_name, column_name, column_type, {i} AS table_index "
             f"FROM (DESCRIBE {quote(t.name)})" for i, t in enumerate(dataset.tables)]
    return " UNION ALL ".join(parts)


def profile_sql(dataset: dataset_pb2.Dataset) -> str:
    """One query with a stats row per column, a row count per table and top values of text columns."""
    parts = []
    top = top_values_per_column(dataset)
    for table in dataset.tables:
        source = quote(table.name)
        parts.append(f"SELECT {literal(table.name)} AS t, NULL AS c, 'rows' AS kind, NULL AS v, count(*) AS n, "
                     f"NULL::BIGINT AS nulls, NULL AS lo, NULL AS hi FROM {source}")
        for column in table.columns[:MAX_PROFILED_COLUMNS]:
            col = quote(column.name)
            ordered = not column.type.upper().startswith(("STRUCT", "MAP", "LIST"))
            lo_hi = f"CAST(min({col}) AS VARCHAR), CAST(max({col}) AS VARCHAR)" if ordered else "NULL, NULL"
            parts.append(f"SELECT {literal(table.name)}, {literal(column.name)}, 'stats', NULL, "
                         f"approx_count_distinct({col}), count(*) FILTER (WHERE {col} IS NULL), {lo_hi} FROM {source}")
            if column.type.upper().startswith(_TEXT_TYPES):
                parts.append(f"SELECT * FROM (SELECT {literal(table.name)}, {literal(column.name)}, 'top', "
                             f"CAST({col} AS VARCHAR), count(*), NULL, NULL, NULL FROM {source} "
                             f"WHERE {col} IS NOT NULL GROUP BY {col} ORDER BY count(*) DESC, 4 LIMIT {top})")
    return " UNION ALL ".join(parts)


def _cells(result: result_pb2.ResultTable) -> list[list[object]]:
    return [[cell(value) for value in row.values] for row in result.rows]


def apply_describe(dataset: dataset_pb2.Dataset, rows: Sequence[Sequence[object]]) -> None:
    """Replace the tables' columns with the rows of describe_sql (table, column, type, table index)."""
    for table in dataset.tables:
        del table.columns[:]
    for _, name, type_, index in rows:
        dataset.tables[int(index)].columns.append(dataset_pb2.Column(name=str(name), type=str(type_)))  # type: ignore[call-overload]


def apply_profile(dataset: dataset_pb2.Dataset, rows: Sequence[Sequence[object]]) -> None:
    """Fill row counts and column profiles from the rows of profile_sql."""
    by_table = {t.name: t for t in dataset.tables}
    for table_name, column_name, kind, value, count, nulls, low, high in rows:
        table = by_table[str(table_name)]
        if kind == "rows":
            table.row_count = int(count)  # type: ignore[call-overload]
            continue
        column = next(c for c in table.columns if c.name == column_name)
        if kind == "stats":
            column.profile.distinct_count = int(count or 0)  # type: ignore[call-overload]
            column.profile.null_count = int(nulls or 0)  # type: ignore[call-overload]
            column.profile.min_value = "" if low is None else str(low)
            column.profile.max_value = "" if high is None else str(high)
        else:
            column.profile.top_values.append(str(value))


def profile_key(dataset: dataset_pb2.Dataset, host_paths: Sequence[str]) -> str:
    """Cache key of a dataset's profile: version hash, table names and file identities.

    Raises:
        InvalidRequestError: When a table's file cannot be stat'ed.
    """
    digest = hashlib.sha256(f"{dataset.dataset_id}\0{dataset.version_hash}".encode())
    for table, path in zip(dataset.tables, host_paths, strict=True):
        try:
            identity = FileIdentity.of(path).token()
        except OSError as error:
            raise InvalidRequestError(message=f"the file of table {table.name!r} cannot be read: {error.strerror}",
                                      metadata={"dataset_id": dataset.dataset_id, "table": table.name}) from error
        digest.update(f"\0{table.name}\0{identity}".encode())
    return digest.hexdigest()


class ProfileCache:
    """Profiled datasets by profile_key: LRU, bounded by entries and by serialized bytes."""

    def __init__(self, max_entries: int = 256, max_bytes: int = 64 << 20) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, tuple[dataset_pb2.Dataset, int]] = OrderedDict()
        self._bytes = 0

    def get(self, key: str) -> dataset_pb2.Dataset | None:
        """The cached dataset of key (now most recently used), or None."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        self._entries.move_to_end(key)
        return entry[0]

    def put(self, key: str, dataset: dataset_pb2.Dataset) -> None:
        """Cache dataset under key, dropping the least recently used entries past the bounds."""
        size = dataset.ByteSize()
        previous = self._entries.pop(key, None)
        if previous is not None:
            self._bytes -= previous[1]
        self._entries[key] = (dataset, size)
        self._bytes += size
        while len(self._entries) > 1 and (len(self._entries) > self.max_entries or self._bytes > self.max_bytes):
            _, (_, dropped) = self._entries.popitem(last=False)
            self._bytes -= dropped

    def __len__(self) -> int:
        return len(self._entries)


class DatasetProfiler:
    """Fills column types and profiles of datasets through sandboxed runs; cached (see profile_key)."""

    def __init__(self, runner: runner_dispatch_service_pb2_grpc.RunnerServiceStub, timeout_seconds: float = 60.0,
                 memory_bytes: int = 512 << 20, cache: ProfileCache | None = None) -> None:
        self._runner = runner
        self._timeout = timeout_seconds
        self._memory = memory_bytes
        self._cache = ProfileCache() if cache is None else cache

    async def profile(self, dataset: dataset_pb2.Dataset, host_paths: list[str]) -> dataset_pb2.Dataset:
        """Return a copy of the dataset with types (when missing), row counts and column profiles.

        Args:
            dataset: The dataset; tables without columns get their columns from DESCRIBE.
            host_paths: Host path of each table's CSV file, in table order.

        Raises:
            InvalidRequestError: When a file cannot be read as CSV inside the sandbox.
        """
        key = profile_key(dataset, host_paths)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        profiled = dataset_pb2.Dataset()
        profiled.CopyFrom(dataset)
        notes = ""
        if any(not t.columns for t in profiled.tables):
            described = await self._run(describe_sql(profiled), profiled, host_paths, "describe")
            apply_describe(profiled, _cells(described.result))
            notes = described.stats.stderr
        profiled_run = await self._run(profile_sql(profiled), profiled, host_paths, "profile")
        apply_profile(profiled, _cells(profiled_run.result))
        tables = [t.name for t in profiled.tables]
        add_problems(profiled, problems_from_notes(notes + profiled_run.stats.stderr, tables))
        add_problems(profiled, empty_column_problems(profiled))
        self._cache.put(key, profiled)
        return profiled

    async def _run(self, sql: str, dataset: dataset_pb2.Dataset, host_paths: list[str], purpose: str
                   ) -> dispatch_pb2.ExecuteResponse:
        """The FINISHED event of a sandboxed run of sql (its result, and the runner's load notes in
        stats.stderr)."""
        request = dispatch_pb2.ExecuteRequest(
            run_id=f"{purpose}-{uuid.uuid4().hex[:16]}", sql=sql,
            tables=[sandbox_pb2.TableSource(name=t.name, path=p) for t, p in zip(dataset.tables, host_paths, strict=True)],
            limits=run_pb2.ResourceLimits(timeout=duration_pb2.Duration(seconds=int(self._timeout)),
                                          memory_bytes=self._memory, max_rows=100_000))
        finished = None
        async for response in self._runner.Execute(request):
            if response.kind == dispatch_pb2.RUNNER_EVENT_KIND_FINISHED:
                finished = response
        if finished is None or finished.HasField("error"):
            message = finished.error.message if finished is not None else "the runner returned no result"
            raise InvalidRequestError(
                message=f"the CSV files of dataset {dataset.dataset_id!r} (tables "
                        f"{', '.join(t.name for t in dataset.tables)}) could not be read: {message}",
                metadata={"dataset_id": dataset.dataset_id, "stage": purpose})
        return finished
