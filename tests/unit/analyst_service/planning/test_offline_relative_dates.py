"""Relative dates ("last month", "past 3 weeks", "this year") read against the data's latest date."""

from __future__ import annotations

import asyncio
from datetime import date

import pytest

from analyst_service.errors import PlannerError
from analyst_service.planning.base import PlanningContext
from analyst_service.planning.dates import relative_span
from analyst_service.planning.offline import OfflinePlanner
from csv_analyst.v1 import dataset_pb2, plan_pb2


@pytest.mark.parametrize(("unit", "count", "latest", "expected"), [
    ("month", 1, date(2024, 12, 31), (date(2024, 12, 1), date(2025, 1, 1))),
    ("month", 3, date(2024, 2, 10), (date(2023, 12, 1), date(2024, 3, 1))),
    ("quarter", 1, date(2024, 8, 15), (date(2024, 7, 1), date(2024, 10, 1))),
    ("year", 2, date(2024, 5, 1), (date(2023, 1, 1), date(2025, 1, 1))),
    ("week", 1, date(2024, 1, 3), (date(2024, 1, 1), date(2024, 1, 8))),  # weeks start on Monday
    ("day", 7, date(2024, 3, 3), (date(2024, 2, 26), date(2024, 3, 4))),
])
def test_relative_spans_end_with_the_unit_of_the_latest_date(unit: str, count: int, latest: date,
                                                             expected: tuple[date, date]) -> None:
    assert relative_span(unit, count, latest) == expected


def _tickets(max_created: str) -> dataset_pb2.Dataset:
    def column(name: str, type_: str, **profile: object) -> dataset_pb2.Column:
        return dataset_pb2.Column(name=name, type=type_, profile=dataset_pb2.ColumnProfile(**profile))  # type: ignore[arg-type]

    return dataset_pb2.Dataset(dataset_id="help", tables=[dataset_pb2.Table(name="tickets", row_count=100, columns=[
        column("ticket_id", "BIGINT", distinct_count=100, min_value="1", max_value="100"),
        column("created_at", "TIMESTAMP", distinct_count=100, min_value="2023-01-02 09:00:00", max_value=max_created),
        column("category", "VARCHAR", distinct_count=2, top_values=["Billing", "Technical"])])])


def _plan(question: str, dataset: dataset_pb2.Dataset) -> plan_pb2.Plan:
    return asyncio.run(OfflinePlanner().plan(question, dataset, PlanningContext()))


def test_last_month_filters_the_latest_month_of_the_data_and_says_so() -> None:
    plan = _plan("How many tickets were created last month?", _tickets("2024-06-14 10:00:00"))
    bounds = sorted((plan_pb2.FilterOperator.Name(f.op), f.values[0].string_value) for f in plan.filters)
    assert bounds == [("FILTER_OPERATOR_GE", "2024-06-01"), ("FILTER_OPERATOR_LT", "2024-07-01")]
    assert "'last month' read as 2024-06-01 to 2024-06-30" in plan.notes


def test_past_weeks_per_category() -> None:
    plan = _plan("tickets per category in the past 2 weeks", _tickets("2024-06-14 10:00:00"))
    assert [g.column for g in plan.group_by] == ["category"]
    assert sorted(f.values[0].string_value for f in plan.filters) == ["2024-06-03", "2024-06-17"]


def test_last_without_a_time_unit_is_still_a_position() -> None:
    plan = _plan("What is the last ticket?", _tickets("2024-06-14 10:00:00"))
    assert not plan.filters and plan.order_by[0].file_order and plan.order_by[0].descending


def test_relative_date_without_a_known_latest_date_asks_back() -> None:
    with pytest.raises(PlannerError):
        _plan("How many tickets were created last month?", _tickets(""))
