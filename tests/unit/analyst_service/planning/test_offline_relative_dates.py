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


def _tickets_with_resolution() -> dataset_pb2.Dataset:
    dataset = _tickets("2024-06-14 10:00:00")
    dataset.tables[0].columns.append(dataset_pb2.Column(name="resolved_at", type="TIMESTAMP", profile=dataset_pb2.ColumnProfile(
        distinct_count=90, null_count=10, min_value="2023-01-03 10:00:00", max_value="2024-06-15 12:00:00")))
    return dataset


@pytest.mark.parametrize(("question", "aggregation"), [
    ("What is the average time to resolve tickets by category?", plan_pb2.AGGREGATION_AVG),
    ("how long does it take to resolve a ticket?", plan_pb2.AGGREGATION_AVG),
    ("longest resolution time", plan_pb2.AGGREGATION_MAX),
])
def test_durations_are_days_between_the_start_and_end_columns(question: str, aggregation: int) -> None:
    plan = _plan(question, _tickets_with_resolution())
    durations = [s for s in plan.select if s.minus_column]
    assert len(durations) == 1
    assert (durations[0].column, durations[0].minus_column, durations[0].aggregation) == (
        "resolved_at", "created_at", aggregation)
    assert "days from created_at to resolved_at" in plan.explanation


def test_presence_word_after_an_aggregate_keeps_the_measure() -> None:
    """Regression: "minimum temperature recorded" read "recorded" as temp IS NOT NULL and lost the measure."""
    dataset = dataset_pb2.Dataset(dataset_id="s", tables=[dataset_pb2.Table(name="sensors", row_count=100, columns=[
        dataset_pb2.Column(name="location", type="VARCHAR", profile=dataset_pb2.ColumnProfile(
            distinct_count=2, top_values=["Oslo", "Rome"])),
        dataset_pb2.Column(name="temp", type="DOUBLE", description="Temperature in degrees Celsius.",
                           profile=dataset_pb2.ColumnProfile(distinct_count=90, null_count=5, min_value="-3.5",
                                                             max_value="31.0"))])])
    plan = _plan("What is the minimum temperature recorded in Oslo?", dataset)
    assert [(s.column, s.aggregation) for s in plan.select] == [("temp", plan_pb2.AGGREGATION_MIN)]
    assert [(f.column, f.values[0].string_value) for f in plan.filters] == [("location", "Oslo")]


def test_a_rate_of_a_yes_no_column_is_the_share_of_true_rows() -> None:
    dataset = dataset_pb2.Dataset(dataset_id="shop", tables=[dataset_pb2.Table(name="orders", row_count=50, columns=[
        dataset_pb2.Column(name="status", type="VARCHAR", profile=dataset_pb2.ColumnProfile(
            distinct_count=2, top_values=["completed", "cancelled"])),
        dataset_pb2.Column(name="returned", type="BOOLEAN", profile=dataset_pb2.ColumnProfile(
            distinct_count=2, top_values=["false", "true"]))])])
    plan = _plan("What is the return rate by status?", dataset)
    percent = [s for s in plan.select if s.aggregation == plan_pb2.AGGREGATION_PERCENT]
    assert len(percent) == 1 and percent[0].column == "*"
    assert [(f.column, f.values[0].bool_value) for f in percent[0].share_of] == [("returned", True)]
    assert [g.column for g in plan.group_by] == ["status"]
    assert "percentage of rows where returned" in plan.explanation.lower()
