"""Cells as a reader expects them: numbers with thousands separators and sensible decimals, dates
as dates, percentages as percentages.

The kind of each result column comes from its DuckDB type and, when the run has a plan, from the
select item that produced it (an AGGREGATION_PERCENT item is a percentage, a month bucket reads
"Jan 2023"). Pure functions; nothing here knows about Gradio.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

from csv_analyst.v1 import plan_pb2, result_pb2

Cell = bool | int | float | str | None
Kind = Literal["integer", "decimal", "percent", "date", "timestamp", "month", "quarter", "boolean", "text"]

_INTEGER_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "INT", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
                  "UINTEGER", "UBIGINT", "UHUGEINT")
_DECIMAL_TYPES = ("FLOAT", "DOUBLE", "REAL", "DECIMAL", "NUMERIC")
_NULL = "–"  # an en dash: NULL is shown as a gap, not as the text "None"


@dataclass(frozen=True)
class ColumnFormat:
    """How one result column is shown.

    Attributes:
        name: The column name.
        kind: What its values are, which decides how they are written.
        whole: For decimal and percent columns: every value is a whole number, so none shows
            decimals (otherwise every value of 1 or more shows two, keeping the column aligned).
    """

    name: str
    kind: Kind
    whole: bool = False

    @property
    def numeric(self) -> bool:
        """True for numbers (right-aligned in tables, the value axis of charts)."""
        return self.kind in ("integer", "decimal", "percent")

    @property
    def temporal(self) -> bool:
        """True for dates, timestamps and time buckets (the x axis of a line chart)."""
        return self.kind in ("date", "timestamp", "month", "quarter")


def _output_name(item: plan_pb2.SelectItem) -> str:
    """The output name of a select item, as the analyst's compiler names it when there is no alias."""
    if item.alias:
        return item.alias
    base = item.column.rsplit(".", 1)[-1]
    if item.aggregation:
        name = plan_pb2.Aggregation.Name(item.aggregation).removeprefix("AGGREGATION_").lower()
        return name if item.column == "*" else f"{name}_{base}"
    if item.bucket:
        return f"{base}_{plan_pb2.TimeBucket.Name(item.bucket).removeprefix('TIME_BUCKET_').lower()}"
    return base


def column_formats(table: result_pb2.ResultTable, plan: plan_pb2.Plan | None = None,
                   rows: list[list[Cell]] | None = None) -> list[ColumnFormat]:
    """The format of each column of a result, from its type, the plan's select items and the values."""
    percent: set[str] = set()
    buckets: dict[str, int] = {}
    for item in plan.select if plan is not None else ():
        name = _output_name(item)
        if item.aggregation == plan_pb2.AGGREGATION_PERCENT:
            percent.add(name)
        if item.bucket:
            buckets[name] = item.bucket
    formats = []
    for index, column in enumerate(table.columns):
        type_name = column.type.upper()
        kind: Kind
        if column.name in percent and type_name.startswith(_INTEGER_TYPES + _DECIMAL_TYPES):
            kind = "percent"
        elif type_name.startswith(_INTEGER_TYPES):
            kind = "integer"
        elif type_name.startswith(_DECIMAL_TYPES):
            kind = "decimal"
        elif type_name.startswith(("DATE", "TIMESTAMP")):
            bucket = buckets.get(column.name)
            if bucket == plan_pb2.TIME_BUCKET_MONTH:
                kind = "month"
            elif bucket == plan_pb2.TIME_BUCKET_QUARTER:
                kind = "quarter"
            elif type_name == "DATE" or bucket in (plan_pb2.TIME_BUCKET_DAY, plan_pb2.TIME_BUCKET_WEEK):
                kind = "date"
            else:
                kind = "timestamp"
        elif type_name == "BOOLEAN":
            kind = "boolean"
        else:
            kind = "text"
        whole = kind in ("decimal", "percent") and all(
            isinstance(row[index], int | float) and float(row[index]) == int(row[index])  # type: ignore[arg-type]
            for row in rows or [] if index < len(row) and row[index] is not None)
        formats.append(ColumnFormat(column.name, kind, whole))
    return formats


def format_number(value: float, percent: bool = False, whole: bool | None = None) -> str:
    """A number with thousands separators and as many decimals as its size needs.

    Whole numbers show no decimals (unless `whole` is False: a column with fractions elsewhere);
    others two decimals, or three significant digits when smaller than 1 (0.0123), so that
    214483.7299999996 reads 214,483.73.
    """
    if math.isnan(value) or math.isinf(value):
        return str(value)
    suffix = "%" if percent else ""
    if (whole if whole is not None else value == int(value)) and value == int(value) and abs(value) < 1e15:
        return f"{int(value):,}{suffix}"
    if abs(value) < 1:
        return f"{value:.3g}{suffix}"
    return f"{value:,.2f}{suffix}"


def _parse_time(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def format_cell(value: Cell, column: ColumnFormat) -> str:
    """One cell as text for a reader (NULL is an en dash)."""
    if value is None:
        return _NULL
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        if column.kind == "integer" and isinstance(value, int):
            return f"{value:,}"
        return format_number(float(value), percent=column.kind == "percent", whole=column.whole)
    if column.temporal:
        moment = _parse_time(value)
        if moment is not None:
            return format_time(moment, column.kind)
    return value


def format_time(moment: datetime | date, kind: Kind) -> str:
    """A date or timestamp as a reader writes it for the column's kind."""
    if kind == "month":
        return moment.strftime("%b %Y")
    if kind == "quarter":
        return f"{moment.year} Q{(moment.month - 1) // 3 + 1}"
    if not isinstance(moment, datetime) or kind == "date":
        return moment.strftime("%Y-%m-%d")
    if moment.time() == datetime.min.time():  # a timestamp at midnight is a date
        return moment.strftime("%Y-%m-%d")
    return moment.strftime("%Y-%m-%d %H:%M:%S" if moment.second else "%Y-%m-%d %H:%M")
