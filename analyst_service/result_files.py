"""Result tables as files: CSV (formulas neutralised, see export.py) and Parquet.

Parquet is written by DuckDB in this process from the result's own typed values (never from a
user's CSV): the rows go in as JSON with an explicit schema, and columns whose DuckDB type is a
date or time come out typed again.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import duckdb

from analyst_service.answers import cell
from analyst_service.export import to_csv
from csv_analyst.v1 import result_pb2

CSV_TYPE = "text/csv"
PARQUET_TYPE = "application/vnd.apache.parquet"
# Column types (first word of the sandbox's type name) cast back from ISO text; only these
# constants ever reach the SQL below (the type names come from the sandbox).
_TEMPORAL = {"DATE": "DATE", "TIMESTAMP": "TIMESTAMP", "TIME": "TIME", "TIMESTAMPTZ": "TIMESTAMPTZ"}


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _json_type(result: result_pb2.ResultTable, index: int) -> str:
    """The DuckDB type a column's values are read as (from the values present, not the name)."""
    kinds = {row.values[index].WhichOneof("kind") for row in result.rows} - {None, "null_value"}
    if kinds == {"bool_value"}:
        return "BOOLEAN"
    if kinds == {"int_value"}:
        return "BIGINT"
    if kinds and kinds <= {"int_value", "double_value"}:
        return "DOUBLE"
    return "VARCHAR"


def to_csv_bytes(result: result_pb2.ResultTable) -> bytes:
    """The result as CSV (UTF-8, header first, CRLF, formula cells neutralised)."""
    rows = ([cell(value) for value in row.values] for row in result.rows)
    return to_csv([c.name for c in result.columns], rows).encode("utf-8")


def to_parquet_bytes(result: result_pb2.ResultTable) -> bytes:
    """The result as a Parquet file with typed columns (blocking: call it off the event loop)."""
    with tempfile.TemporaryDirectory(prefix="csv-analyst-export-") as directory:
        rows_path = Path(directory) / "rows.jsonl"
        with rows_path.open("w", encoding="utf-8") as file:
            for row in result.rows:
                file.write(json.dumps({f"c{i}": cell(v) for i, v in enumerate(row.values)}) + "\n")
        columns = {f"c{i}": _json_type(result, i) for i in range(len(result.columns))}
        selects = []
        for index, column in enumerate(result.columns):
            source = f"c{index}"
            temporal = _TEMPORAL.get(column.type.upper().split("(")[0].split(" ")[0])
            if columns[source] == "VARCHAR" and temporal:
                source = f"TRY_CAST({source} AS {temporal})"
            selects.append(f"{source} AS {_quote(column.name)}")
        out = Path(directory) / "result.parquet"
        connection = duckdb.connect(":memory:")
        try:
            if result.rows:
                source_sql = (f"read_json(?, format = 'newline_delimited', columns = "
                              f"{{{', '.join(f'{k!r}: {v!r}' for k, v in columns.items())}}})")
                parameters: list[object] = [str(rows_path)]
            else:
                source_sql = "(SELECT " + ", ".join(f"NULL::{v} AS {k}" for k, v in columns.items()) + " LIMIT 0)"
                parameters = []
            select = ", ".join(selects) if selects else "1 AS empty"
            connection.execute(f"COPY (SELECT {select} FROM {source_sql}) TO '{out}' (FORMAT parquet)", parameters)
        finally:
            connection.close()
        return out.read_bytes()
