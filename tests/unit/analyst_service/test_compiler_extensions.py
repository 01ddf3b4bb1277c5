"""Plan-language extensions: numbers stored as text, median, percentages, differences, file order.

Each compiled query runs in DuckDB over tables loaded the way the runner loads them."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from analyst_service.compiler import compile_plan
from analyst_service.errors import ValidationError
from analyst_service.validation.sql import check_sql
from csv_analyst.v1 import dataset_pb2, plan_pb2, value_pb2

CSV = """event,prize,held_on,ended_on,score,country
Open A,"$200,000",2020-01-05,2020-01-09,7,Kenya
Open B,"$50,000",2020-03-01,2020-03-02,3,Kenya
Masters,"$1.5 million",2020-02-10,2020-02-20,9,Japan
Cup,–,2020-04-01,2020-04-01,5,Peru
"""
COLUMNS = [("event", "VARCHAR"), ("prize", "VARCHAR"), ("held_on", "DATE"), ("ended_on", "DATE"),
           ("score", "BIGINT"), ("country", "VARCHAR")]


@pytest.fixture()
def dataset() -> dataset_pb2.Dataset:
    return dataset_pb2.Dataset(dataset_id="d", tables=[dataset_pb2.Table(
        name="events", columns=[dataset_pb2.Column(name=n, type=t) for n, t in COLUMNS])])


@pytest.fixture()
def connection(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    path = tmp_path / "events.csv"
    path.write_text(CSV)
    con = duckdb.connect()
    con.execute(f"CREATE TABLE events AS SELECT * FROM read_csv('{path}', header = true)")
    return con


def run(plan: plan_pb2.Plan, dataset: dataset_pb2.Dataset, con: duckdb.DuckDBPyConnection) -> list[tuple]:
    sql = compile_plan(plan, dataset)
    check_sql(sql, ["events"])  # compiled SQL always passes the read-only policy too
    return con.execute(sql).fetchall()


def text(value: str) -> value_pb2.Value:
    return value_pb2.Value(string_value=value)


def test_text_numbers_filter_sort_and_sum(dataset, connection) -> None:
    plan = plan_pb2.Plan(base_table="events", select=[plan_pb2.SelectItem(column="event")],
                         filters=[plan_pb2.Filter(column="prize", op=plan_pb2.FILTER_OPERATOR_GT, as_number=True,
                                                  values=[value_pb2.Value(int_value=40000)])],
                         order_by=[plan_pb2.OrderBy(key="prize", as_number=True, descending=True)])
    assert run(plan, dataset, connection) == [("Open A",), ("Open B",)]
    total = plan_pb2.Plan(base_table="events", select=[plan_pb2.SelectItem(
        column="prize", aggregation=plan_pb2.AGGREGATION_SUM, as_number=True)])
    assert run(total, dataset, connection) == [(250001.5,)]


def test_sum_of_text_without_as_number_is_rejected_with_a_hint(dataset) -> None:
    plan = plan_pb2.Plan(base_table="events", select=[plan_pb2.SelectItem(column="prize", aggregation=plan_pb2.AGGREGATION_SUM)])
    with pytest.raises(ValidationError) as raised:
        compile_plan(plan, dataset)
    assert raised.value.violations[0][0] == "plan.select[0].aggregation"
    assert "as_number" in raised.value.violations[0][1]


def test_median(dataset, connection) -> None:
    plan = plan_pb2.Plan(base_table="events", select=[plan_pb2.SelectItem(column="score", aggregation=plan_pb2.AGGREGATION_MEDIAN)])
    assert run(plan, dataset, connection) == [(6.0,)]


def test_percent_of_rows_and_of_a_total(dataset, connection) -> None:
    share = [plan_pb2.Filter(column="country", op=plan_pb2.FILTER_OPERATOR_EQ, values=[text("Kenya")])]
    rows = plan_pb2.Plan(base_table="events", select=[plan_pb2.SelectItem(
        column="*", aggregation=plan_pb2.AGGREGATION_PERCENT, share_of=share, alias="pct")])
    assert run(rows, dataset, connection) == [(50.0,)]
    of_total = plan_pb2.Plan(base_table="events", select=[plan_pb2.SelectItem(
        column="score", aggregation=plan_pb2.AGGREGATION_PERCENT, share_of=share)])
    assert run(of_total, dataset, connection) == [(pytest.approx(100 * 10 / 24),)]


def test_percent_needs_share_of(dataset) -> None:
    plan = plan_pb2.Plan(base_table="events", select=[plan_pb2.SelectItem(column="*", aggregation=plan_pb2.AGGREGATION_PERCENT)])
    with pytest.raises(ValidationError) as raised:
        compile_plan(plan, dataset)
    assert raised.value.violations[0][0] == "plan.select[0].share_of"


def test_days_between_two_dates(dataset, connection) -> None:
    plan = plan_pb2.Plan(base_table="events", select=[
        plan_pb2.SelectItem(column="event"),
        plan_pb2.SelectItem(column="ended_on", minus_column="held_on", alias="days")],
        order_by=[plan_pb2.OrderBy(key="days", descending=True)], limit=1)
    assert run(plan, dataset, connection) == [("Masters", 10)]
    bad = plan_pb2.Plan(base_table="events", select=[plan_pb2.SelectItem(column="ended_on", minus_column="country")])
    with pytest.raises(ValidationError) as raised:
        compile_plan(bad, dataset)
    assert raised.value.violations[0][0] == "plan.select[0].minus_column"


def test_file_order_first_and_last(dataset, connection) -> None:
    last = plan_pb2.Plan(base_table="events", select=[plan_pb2.SelectItem(column="event")],
                         order_by=[plan_pb2.OrderBy(file_order=True, descending=True)], limit=1)
    assert run(last, dataset, connection) == [("Cup",)]
    grouped = plan_pb2.Plan(base_table="events", select=[plan_pb2.SelectItem(column="*", aggregation=plan_pb2.AGGREGATION_COUNT)],
                            order_by=[plan_pb2.OrderBy(file_order=True)])
    with pytest.raises(ValidationError) as raised:
        compile_plan(grouped, dataset)
    assert raised.value.violations[0][0] == "plan.order_by[0].file_order"


def test_anchor_row_before_and_after(dataset, connection) -> None:
    match = [plan_pb2.Filter(column="event", op=plan_pb2.FILTER_OPERATOR_EQ, values=[text("Masters")])]
    before = plan_pb2.Plan(base_table="events", select=[plan_pb2.SelectItem(column="event")],
                           anchor=plan_pb2.RowAnchor(match=match, offset=-1))
    assert run(before, dataset, connection) == [("Open B",)]
    after = plan_pb2.Plan(base_table="events", select=[plan_pb2.SelectItem(column="event")],
                          anchor=plan_pb2.RowAnchor(match=match, offset=1))
    assert run(after, dataset, connection) == [("Cup",)]


def test_anchor_nearest_passing_the_plan_filters(dataset, connection) -> None:
    match = [plan_pb2.Filter(column="event", op=plan_pb2.FILTER_OPERATOR_EQ, values=[text("Open A")])]
    kenya = [plan_pb2.Filter(column="country", op=plan_pb2.FILTER_OPERATOR_NE, values=[text("Kenya")])]
    plan = plan_pb2.Plan(base_table="events", select=[plan_pb2.SelectItem(column="event")], filters=kenya,
                         anchor=plan_pb2.RowAnchor(match=match, offset=1, nearest=True), limit=1)
    assert run(plan, dataset, connection) == [("Masters",)]
    counted = plan_pb2.Plan(base_table="events", select=[plan_pb2.SelectItem(column="*", aggregation=plan_pb2.AGGREGATION_COUNT)],
                            anchor=plan_pb2.RowAnchor(match=match, offset=1, nearest=True))
    with pytest.raises(ValidationError) as raised:
        compile_plan(counted, dataset)
    assert raised.value.violations[0][0] == "plan.anchor.nearest"


def test_years_of_text_and_date_columns(dataset, connection, tmp_path) -> None:
    connection.execute("CREATE TABLE notes AS SELECT * FROM (VALUES ('10 August 1975'), ('June 28, 1998'), ('n/a')) t(said)")
    notes = dataset_pb2.Dataset(dataset_id="d", tables=[dataset_pb2.Table(
        name="notes", columns=[dataset_pb2.Column(name="said", type="VARCHAR")])])
    plan = plan_pb2.Plan(base_table="notes", select=[plan_pb2.SelectItem(column="said", as_year=True, alias="y")],
                         filters=[plan_pb2.Filter(column="said", as_year=True, op=plan_pb2.FILTER_OPERATOR_LT,
                                                  values=[value_pb2.Value(int_value=1990)])])
    sql = compile_plan(plan, notes)
    assert connection.execute(sql).fetchall() == [(1975,)]
    dates = plan_pb2.Plan(base_table="events", select=[plan_pb2.SelectItem(column="held_on", as_year=True, alias="y")],
                          limit=1)
    assert run(dates, dataset, connection) == [(2020,)]


def test_range_and_ratio_of_totals(dataset, connection) -> None:
    spread = plan_pb2.Plan(base_table="events", select=[plan_pb2.SelectItem(column="score", aggregation=plan_pb2.AGGREGATION_RANGE)])
    assert run(spread, dataset, connection) == [(6,)]
    ratio = plan_pb2.Plan(base_table="events", select=[plan_pb2.SelectItem(
        column="score", aggregation=plan_pb2.AGGREGATION_PERCENT, ratio_of="prize", as_number=True)])
    assert run(ratio, dataset, connection) == [(pytest.approx(100 * 24 / 250001.5),)]


def test_standard_deviation_and_variance(dataset, connection) -> None:
    # Scores 7, 3, 9, 5: mean 6, squared deviations 1 + 9 + 9 + 1 = 20, sample variance 20 / 3.
    plan = plan_pb2.Plan(base_table="events", select=[
        plan_pb2.SelectItem(column="score", aggregation=plan_pb2.AGGREGATION_STDDEV),
        plan_pb2.SelectItem(column="score", aggregation=plan_pb2.AGGREGATION_VARIANCE)])
    assert run(plan, dataset, connection) == [(pytest.approx((20 / 3) ** 0.5), pytest.approx(20 / 3))]
    text_column = plan_pb2.Plan(base_table="events", select=[
        plan_pb2.SelectItem(column="country", aggregation=plan_pb2.AGGREGATION_STDDEV)])
    with pytest.raises(ValidationError):
        compile_plan(text_column, dataset)


@pytest.mark.parametrize(("unit", "expected"), [
    (plan_pb2.DURATION_UNIT_UNSPECIFIED, 10), (plan_pb2.DURATION_UNIT_DAYS, 10),
    (plan_pb2.DURATION_UNIT_HOURS, 240), (plan_pb2.DURATION_UNIT_MINUTES, 14400),
    (plan_pb2.DURATION_UNIT_SECONDS, 864000), (plan_pb2.DURATION_UNIT_WEEKS, pytest.approx(10 / 7)),
])
def test_a_duration_in_a_unit(dataset, connection, unit: int, expected: object) -> None:
    plan = plan_pb2.Plan(base_table="events", select=[
        plan_pb2.SelectItem(column="ended_on", minus_column="held_on", alias="d", duration_unit=unit)],
        order_by=[plan_pb2.OrderBy(key="d", descending=True)], limit=1)
    assert run(plan, dataset, connection) == [(expected,)]


def test_a_duration_unit_needs_a_difference(dataset) -> None:
    plan = plan_pb2.Plan(base_table="events", select=[
        plan_pb2.SelectItem(column="score", duration_unit=plan_pb2.DURATION_UNIT_HOURS)])
    with pytest.raises(ValidationError) as raised:
        compile_plan(plan, dataset)
    assert raised.value.violations[0][0] == "plan.select[0].duration_unit"
