"""Shared by the offline-planner tests: a CSV profiled in-process with the service's own SQL and
parsing (analyst_service.profiling), loaded the way the runner loads it (or as a view)."""

from __future__ import annotations

import math
from decimal import Decimal
from pathlib import Path

import duckdb

from analyst_service.profiling import apply_describe, apply_profile, describe_sql, profile_sql
from csv_analyst.v1 import dataset_pb2


def profiled_table(name: str, path: Path, kind: str = "TABLE") -> tuple[dataset_pb2.Dataset, duckdb.DuckDBPyConnection]:
    """A one-table ad-hoc dataset, profiled, and a connection holding the table (`kind` TABLE or VIEW)."""
    dataset = dataset_pb2.Dataset(dataset_id=f"adhoc-{name}", tables=[dataset_pb2.Table(name=name, file=str(path))])
    connection = duckdb.connect()
    connection.execute(f"CREATE {kind} \"{name}\" AS SELECT * FROM read_csv('{path}', header = true)")
    apply_describe(dataset, connection.execute(describe_sql(dataset)).fetchall())
    apply_profile(dataset, connection.execute(profile_sql(dataset)).fetchall())
    return dataset, connection


def profiled_tables(texts: dict[str, str], out: Path, kind: str = "TABLE"
                    ) -> dict[str, tuple[dataset_pb2.Dataset, duckdb.DuckDBPyConnection]]:
    """Write each CSV text to `out/<name>.csv` and profile it (see profiled_table)."""
    built = {}
    for name, text in texts.items():
        path = out / f"{name}.csv"
        path.write_text(text, encoding="utf-8")
        built[name] = profiled_table(name, path, kind)
    return built


def profiled_dataset(dataset_id: str, files: dict[str, tuple[str, dict[str, str]]],
                     relationships: list[tuple[str, str, str, str]], out: Path
                     ) -> tuple[dataset_pb2.Dataset, duckdb.DuckDBPyConnection]:
    """A dataset of several tables with column descriptions and declared relationships, profiled.

    Args:
        dataset_id: The dataset's id.
        files: Table name -> (CSV text, column name -> description).
        relationships: (from_table, from_column, to_table, to_column) of each relationship.
        out: Folder the CSV files are written to.

    Returns:
        The profiled dataset and a connection holding each table.
    """
    dataset = dataset_pb2.Dataset(dataset_id=dataset_id, relationships=[
        dataset_pb2.Relationship(from_table=a, from_column=b, to_table=c, to_column=d) for a, b, c, d in relationships])
    connection = duckdb.connect()
    for name, (text, _) in files.items():
        path = out / f"{name}.csv"
        path.write_text(text, encoding="utf-8")
        dataset.tables.add(name=name, file=str(path))
        connection.execute(f"CREATE TABLE {name} AS SELECT * FROM read_csv('{path}', header = true)")
    apply_describe(dataset, connection.execute(describe_sql(dataset)).fetchall())
    for table in dataset.tables:
        for column in table.columns:
            column.description = files[table.name][1].get(column.name, "")
    apply_profile(dataset, connection.execute(profile_sql(dataset)).fetchall())
    return dataset, connection


def sorted_rows(connection: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[object, ...]]:
    """The rows sql returns, each cell as numeric_cell makes it, in a fixed order."""
    return sorted((tuple(numeric_cell(v) for v in row) for row in connection.execute(sql).fetchall()), key=repr)


def numeric_cell(value: object) -> object:
    """A result cell for comparison: numbers as floats rounded to 6 places, NaN as None, the rest as text."""
    if isinstance(value, Decimal):
        value = float(value)
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 6)
    if isinstance(value, int) and not isinstance(value, bool):
        return round(float(value), 6)
    return str(value) if value is not None else None
