"""Cells formatted by type: thousands separators, decimals per column, dates, months, percentages."""

from __future__ import annotations

import pytest

from csv_analyst.v1 import plan_pb2, result_pb2
from gradio_ui.format import ColumnFormat, column_formats, format_cell, format_number


def _table(*columns: tuple[str, str]) -> result_pb2.ResultTable:
    return result_pb2.ResultTable(columns=[result_pb2.ResultColumn(name=n, type=t) for n, t in columns])


@pytest.mark.parametrize(("value", "text"), [
    (214483.7299999996, "214,483.73"), (1234567.0, "1,234,567"), (3.456, "3.46"), (0.012345, "0.0123"),
    (-2500.5, "-2,500.50"), (0.0, "0"),
])
def test_numbers_get_separators_and_sensible_decimals(value: float, text: str) -> None:
    assert format_number(value) == text


def test_a_column_with_fractions_shows_two_decimals_everywhere() -> None:
    table = _table(("region", "VARCHAR"), ("total", "DOUBLE"))
    formats = column_formats(table, None, [["a", 47394.0], ["b", 53267.4]])
    assert [format_cell(row[1], formats[1]) for row in ([None, 47394.0], [None, 53267.4])] == ["47,394.00", "53,267.40"]
    whole = column_formats(table, None, [["a", 47394.0], ["b", 12.0]])
    assert format_cell(47394.0, whole[1]) == "47,394"


def test_kinds_come_from_types_and_the_plan() -> None:
    plan = plan_pb2.Plan(select=[
        plan_pb2.SelectItem(column="order_date", bucket=plan_pb2.TIME_BUCKET_MONTH, alias="month"),
        plan_pb2.SelectItem(column="*", aggregation=plan_pb2.AGGREGATION_PERCENT),
        plan_pb2.SelectItem(column="created", bucket=plan_pb2.TIME_BUCKET_QUARTER),
    ])
    table = _table(("month", "TIMESTAMP"), ("percent", "DOUBLE"), ("created_quarter", "TIMESTAMP"),
                   ("n", "BIGINT"), ("day", "DATE"), ("at", "TIMESTAMP"), ("ok", "BOOLEAN"), ("name", "VARCHAR"))
    kinds = [column.kind for column in column_formats(table, plan)]
    assert kinds == ["month", "percent", "quarter", "integer", "date", "timestamp", "boolean", "text"]


@pytest.mark.parametrize(("value", "kind", "text"), [
    ("2023-01-01T00:00:00", "month", "Jan 2023"),
    ("2023-04-01T00:00:00", "quarter", "2023 Q2"),
    ("2023-01-05T00:00:00", "timestamp", "2023-01-05"),
    ("2023-01-05T13:45:00", "timestamp", "2023-01-05 13:45"),
    ("2023-01-05", "date", "2023-01-05"),
    (12.5, "percent", "12.50%"),
    (1234567, "integer", "1,234,567"),
    (True, "boolean", "yes"),
    (None, "text", "–"),
    ("not a date", "date", "not a date"),
])
def test_cells(value: object, kind: str, text: str) -> None:
    assert format_cell(value, ColumnFormat("c", kind)) == text  # type: ignore[arg-type]
