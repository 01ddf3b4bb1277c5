"""General failure kinds (issue 10): calendar parts, duration units, spread statistics, "which <time
unit>", superlatives of amounts per group, and counting things whose rows repeat.

Each question is planned against a small profiled table, compiled and run on DuckDB; its rows must
equal those of a hand-written query. The wording is this project's own.
"""

from __future__ import annotations

import duckdb
import pytest

from analyst_service.compiler import compile_plan
from analyst_service.errors import PlannerError
from analyst_service.planning.base import ClarificationNeededError
from analyst_service.planning.offline import plan_question
from tests.unit.analyst_service.planning.profiled_tables import profiled_tables, sorted_rows
from csv_analyst.v1 import dataset_pb2, plan_pb2

TABLES = {
    "visits": "visit_id,desk,opened_at,closed_at,wait,fee\n"
              "1,north,2024-01-01 09:10:00,2024-01-01 11:10:00,12,5.0\n"
              "2,north,2024-01-02 09:40:00,2024-01-02 10:10:00,3,2.5\n"
              "3,south,2024-01-07 14:00:00,2024-01-08 14:00:00,30,7.0\n"
              "4,south,2024-02-05 09:05:00,2024-02-05 09:35:00,8,1.0\n"
              "5,east,2024-03-11 17:20:00,2024-03-11 21:20:00,20,9.5\n"
              "6,east,2024-03-12 09:00:00,2024-03-12 09:15:00,1,0.5\n",
    "gauges": "Month,Day,Level\n5,1,3.5\n5,2,4.0\n6,1,2.0\n7,1,6.5\n",
    "meals": "bill,charge,party\n12.5,2.0,2\n45.0,6.5,4\n30.0,4.0,3\n",
    "towns": "town,urban\nAsh,90\nBirch,50\nCedar,85\nDale,30\n",
    "routes": "Route,Passengers carried,Operator\nA1,100,Blue\nB2,250,Blue\nC3,75,Green\n",
    "devices": "device_id,site,level\n1,Riga,3\n1,Riga,4\n2,Riga,5\n2,Riga,1\n3,Tartu,4\n3,Tartu,4\n",
}


@pytest.fixture(scope="module")
def tables(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[dataset_pb2.Dataset, duckdb.DuckDBPyConnection]]:
    return profiled_tables(TABLES, tmp_path_factory.mktemp("calendar"))


@pytest.mark.parametrize(("table", "question", "expected_sql"), [
    # Calendar parts group every day's (week's, year's) same hour (weekday, month) together.
    ("visits", "average wait by hour of the day",
     "SELECT hour(opened_at), avg(wait) FROM visits GROUP BY 1"),
    ("visits", "number of visits per day of the week",
     "SELECT isodow(opened_at), count(*) FROM visits GROUP BY 1"),
    ("visits", "which hour of the day had the most visits",
     "SELECT hour(opened_at), count(*) FROM visits GROUP BY 1 ORDER BY 2 DESC LIMIT 1"),
    # A timeline bucket named by "which": one bucket is the answer.
    ("visits", "which month had the fewest visits",
     "SELECT date_trunc('month', opened_at), count(*) FROM visits GROUP BY 1 ORDER BY 2 LIMIT 1"),
    # A superlative of an amount that adds up, per group: the group's total.
    ("visits", "which desk collected the highest fees",
     "SELECT desk, sum(fee) FROM visits GROUP BY 1 ORDER BY 2 DESC LIMIT 1"),
    # Durations in the unit asked for.
    ("visits", "average time to close in hours for each desk",
     "SELECT desk, avg(date_diff('second', opened_at, closed_at) / 3600.0) FROM visits GROUP BY 1"),
    ("visits", "how many minutes did it take to close on average?",
     "SELECT avg(date_diff('second', opened_at, closed_at) / 60.0) FROM visits"),
    ("visits", "how long to close, on average?",
     "SELECT avg(date_diff('second', opened_at, closed_at) / 86400.0) FROM visits"),
    # Spread statistics.
    ("visits", "standard deviation of the wait", "SELECT stddev_samp(wait) FROM visits"),
    ("visits", "variance of fees per desk", "SELECT desk, var_samp(fee) FROM visits GROUP BY 1"),
    # A table whose rows repeat its own id: the things are counted once each.
    ("devices", "how many devices are there in Riga?", "SELECT count(DISTINCT device_id) FROM devices WHERE site = 'Riga'"),
    ("visits", "how many visits were there?", "SELECT count(*) FROM visits"),
    # A column whose name says it holds counts ("Passengers carried") is added up, not counted.
    ("routes", "how many passengers did Blue carry?", "SELECT sum(\"Passengers carried\") FROM routes WHERE Operator = 'Blue'"),
    # An amount of money compares with the money column whose values span it.
    ("meals", "how many rows were over $40?", "SELECT count(*) FROM meals WHERE bill > 40"),
    # "what percent of <rows>": a share of the rows, not a listing of them.
    ("towns", "what percent of towns are more than 80 percent urban?", "SELECT 50.0"),
    # A plain column named like the part is that column, not a calendar part.
    ("gauges", "average level by month of the year", "SELECT Month, avg(Level) FROM gauges GROUP BY 1"),
])
def test_questions_match_hand_written_sql(
        tables: dict[str, tuple[dataset_pb2.Dataset, duckdb.DuckDBPyConnection]],
        table: str, question: str, expected_sql: str) -> None:
    dataset, connection = tables[table]
    plan = plan_question(question, dataset)
    assert sorted_rows(connection, compile_plan(plan, dataset)) == sorted_rows(connection, expected_sql), plan.explanation


def test_the_explanation_names_the_calendar_part_and_the_unit(
        tables: dict[str, tuple[dataset_pb2.Dataset, duckdb.DuckDBPyConnection]]) -> None:
    dataset, _ = tables["visits"]
    assert "hour of the day" in plan_question("average wait by hour of the day", dataset).explanation
    plan = plan_question("average time to close in hours for each desk", dataset)
    assert "hours from opened_at to closed_at" in plan.explanation
    assert plan.select[-1].duration_unit == plan_pb2.DURATION_UNIT_HOURS


def test_a_calendar_part_without_dates_is_not_answered(
        tables: dict[str, tuple[dataset_pb2.Dataset, duckdb.DuckDBPyConnection]]) -> None:
    dataset, _ = tables["gauges"]
    with pytest.raises(PlannerError):
        plan_question("average level by hour of the day", dataset)


def test_a_per_group_superlative_offers_both_readings(
        tables: dict[str, tuple[dataset_pb2.Dataset, duckdb.DuckDBPyConnection]]) -> None:
    dataset, connection = tables["devices"]
    with pytest.raises(ClarificationNeededError) as raised:
        plan_question("which site has the highest level?", dataset)
    extreme, average = raised.value.options
    # Riga has the single highest level (5), Tartu the highest average (4 against 3.25): they differ.
    assert connection.execute(compile_plan(extreme, dataset)).fetchall()[0][0] == "Riga"
    assert connection.execute(compile_plan(average, dataset)).fetchall()[0][0] == "Tartu"
    assert "Maximum" in extreme.explanation and "Average" in average.explanation
    answered = plan_question("which site had the highest level ever?", dataset)
    assert connection.execute(compile_plan(answered, dataset)).fetchall()[0][0] == "Riga"


def test_a_superlative_over_a_column_naming_the_rows_is_answered(
        tables: dict[str, tuple[dataset_pb2.Dataset, duckdb.DuckDBPyConnection]]) -> None:
    dataset, connection = tables["visits"]
    plan = plan_question("which visit had the highest fee?", dataset)
    assert connection.execute(compile_plan(plan, dataset)).fetchall()[0][0] == 5


def test_a_plain_number_is_not_taken_for_money(
        tables: dict[str, tuple[dataset_pb2.Dataset, duckdb.DuckDBPyConnection]]) -> None:
    with pytest.raises(PlannerError):
        plan_question("how many rows were over 40?", tables["meals"][0])
