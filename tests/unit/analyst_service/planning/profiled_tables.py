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


def numeric_cell(value: object) -> object:
    """A result cell for comparison: numbers as floats rounded to 6 places, NaN as None, the rest as text."""
    if isinstance(value, Decimal):
        value = float(value)
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 6)
    if isinstance(value, int) and not isinstance(value, bool):
        return round(float(value), 6)
    return str(value) if value is not None else None
