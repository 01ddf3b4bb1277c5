"""A chart only where one helps: line over time, bars over categories, never a single bar."""

from __future__ import annotations

from gradio_ui.chart import MAX_BARS, chart_png, chart_spec
from gradio_ui.format import ColumnFormat

CATEGORY = ColumnFormat("status", "text")
COUNT = ColumnFormat("count", "integer")
MONTH = ColumnFormat("month", "month")


def test_categories_get_bars_in_the_result_order() -> None:
    spec = chart_spec([CATEGORY, COUNT], [["shipped", 30], ["placed", 10], ["returned", 20]])
    assert spec is not None and spec.kind == "bar"
    assert spec.labels == ["shipped", "placed", "returned"] and spec.values == [30.0, 10.0, 20.0]
    assert chart_png(spec).startswith(b"\x89PNG")


def test_time_gets_a_line_sorted_by_time() -> None:
    spec = chart_spec([MONTH, COUNT], [["2023-02-01T00:00:00", 5], ["2023-01-01T00:00:00", 7]])
    assert spec is not None and spec.kind == "line"
    assert [label.month for label in spec.labels] == [1, 2]  # type: ignore[union-attr]
    assert chart_png(spec).startswith(b"\x89PNG")


def test_no_chart_where_it_does_not_help() -> None:
    assert chart_spec([CATEGORY, COUNT], [["shipped", 30]]) is None  # one bar is just the number
    assert chart_spec([CATEGORY, COUNT], [["a", 1], ["a", 2]]) is None  # one distinct label
    assert chart_spec([COUNT], [[1], [2]]) is None
    assert chart_spec([CATEGORY, CATEGORY], [["a", "b"], ["c", "d"]]) is None
    assert chart_spec([CATEGORY, COUNT, COUNT], [["a", 1, 2], ["b", 3, 4]]) is None
    assert chart_spec([CATEGORY, COUNT], [[str(i), i] for i in range(MAX_BARS + 1)]) is None
