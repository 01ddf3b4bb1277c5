"""Events that happened, numbers stated as a column's value, both extremes at once, named quarters.

Each question is planned against a small profiled table, compiled and run on DuckDB; its rows must
equal those of a hand-written query. The wording and tables are this project's own.
"""

from __future__ import annotations

import duckdb
import pytest

from analyst_service.compiler import compile_plan
from analyst_service.errors import PlannerError
from analyst_service.planning.happened import event_column
from analyst_service.planning.offline import plan_question
from analyst_service.planning.schema_linking import SchemaIndex
from tests.unit.analyst_service.planning.profiled_tables import profiled_tables, sorted_rows
from csv_analyst.v1 import dataset_pb2

TABLES = {
    "repairs": "repair_id,opened_on,fixed_on,grade,cost\n"
               "1,2024-01-02,2024-01-05,4,10\n2,2024-01-03,,2,20\n3,2024-02-01,2024-02-03,4,30\n"
               "4,2024-04-10,,5,15\n5,2024-05-10,2024-05-12,3,25\n",
    "cases": "case_id,fee,opened\n1001,5,2020-01-01\n1002,7,2021-05-05\n1003,9,2021-06-05\n",
    "quarters": "year,quarter,output\n2019,4,5\n2020,1,6\n2020,2,7\n2021,2,9\n",
}


@pytest.fixture(scope="module")
def tables(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[dataset_pb2.Dataset, duckdb.DuckDBPyConnection]]:
    return profiled_tables(TABLES, tmp_path_factory.mktemp("events"))


@pytest.mark.parametrize(("question", "expected_sql"), [
    # A passive participle naming a date left empty until the event: the event happened.
    ("how many repairs were fixed?", "SELECT count(*) FROM repairs WHERE fixed_on IS NOT NULL"),
    # "<numeric column> of <number>": that value.
    ("how many repairs had a grade of 4?", "SELECT count(*) FROM repairs WHERE grade = 4"),
    # Both extremes of one column.
    ("minimum and maximum cost", "SELECT min(cost), max(cost) FROM repairs"),
    ("min and max cost of repairs", "SELECT min(cost), max(cost) FROM repairs"),
    # A quarter named with an ordinal.
    ("number of repairs opened in the second quarter of 2024",
     "SELECT count(*) FROM repairs WHERE opened_on >= DATE '2024-04-01' AND opened_on < DATE '2024-07-01'"),
])
def test_questions_match_hand_written_sql(
        tables: dict[str, tuple[dataset_pb2.Dataset, duckdb.DuckDBPyConnection]], question: str, expected_sql: str) -> None:
    dataset, connection = tables["repairs"]
    plan = plan_question(question, dataset)
    assert sorted_rows(connection, compile_plan(plan, dataset)) == sorted_rows(connection, expected_sql), plan.explanation


def test_a_number_followed_by_a_bound_is_never_an_equal_value(
        tables: dict[str, tuple[dataset_pb2.Dataset, duckdb.DuckDBPyConnection]]) -> None:
    dataset, connection = tables["repairs"]
    try:
        plan = plan_question("how many repairs had a grade of 3 at most?", dataset)
    except PlannerError:
        return
    assert connection.execute(compile_plan(plan, dataset)).fetchall() == [(2,)]


def test_only_a_date_with_gaps_named_by_the_participle_is_an_event(
        tables: dict[str, tuple[dataset_pb2.Dataset, duckdb.DuckDBPyConnection]]) -> None:
    columns = SchemaIndex.build(tables["repairs"][0]).columns
    assert event_column("fixed", columns).name == "fixed_on"  # type: ignore[union-attr]
    assert event_column("opened", columns) is None  # every repair has an opening date: no event to filter on
    assert event_column("fixing", columns) is None


def test_a_negated_event_is_never_read_as_happened(
        tables: dict[str, tuple[dataset_pb2.Dataset, duckdb.DuckDBPyConnection]]) -> None:
    dataset, connection = tables["repairs"]
    try:
        plan = plan_question("how many repairs were not fixed?", dataset)
    except PlannerError:
        return
    assert connection.execute(compile_plan(plan, dataset)).fetchall() == [(2,)]


def test_a_named_quarter_over_year_and_quarter_columns(
        tables: dict[str, tuple[dataset_pb2.Dataset, duckdb.DuckDBPyConnection]]) -> None:
    dataset, connection = tables["quarters"]
    for question in ("output in the second quarter of 2020", "output in q2 2020"):
        plan = plan_question(question, dataset)
        assert sorted_rows(connection, compile_plan(plan, dataset)) == [(2020.0, 2.0, 7.0)], plan.explanation


def test_separate_periods_are_never_all_required_of_one_row(
        tables: dict[str, tuple[dataset_pb2.Dataset, duckdb.DuckDBPyConnection]]) -> None:
    dataset = tables["repairs"][0]
    for question in ("total cost in January 2024 compared with May 2024", "how many repairs were opened in January 2024 "
                                                                         "and in February 2024?"):
        with pytest.raises(PlannerError, match="separate periods"):
            plan_question(question, dataset)
    plan_question("total cost between January 2024 and May 2024", dataset)  # one period


@pytest.mark.parametrize(("table", "question", "expected_sql"), [
    # A whole number right after a word for identified things is one of them.
    ("repairs", "what was the cost of repair 3?", "SELECT * FROM repairs WHERE repair_id = 3"),
    ("cases", "show case 1002", "SELECT * FROM cases WHERE case_id = 1002"),  # an id, not the year 1002
    ("cases", "fee of case 1003", "SELECT * FROM cases WHERE case_id = 1003"),
])
def test_a_number_after_a_thing_is_its_id(
        tables: dict[str, tuple[dataset_pb2.Dataset, duckdb.DuckDBPyConnection]],
        table: str, question: str, expected_sql: str) -> None:
    dataset, connection = tables[table]
    plan = plan_question(question, dataset)
    result = sorted_rows(connection, compile_plan(plan, dataset))
    expected = sorted_rows(connection, expected_sql)
    assert all(any(set(e) <= set(r) or set(r) <= set(e) for r in result) for e in expected) and len(result) == len(expected), \
        plan.explanation


def test_an_unknown_event_over_dated_events_is_asked_about(
        tables: dict[str, tuple[dataset_pb2.Dataset, duckdb.DuckDBPyConnection]]) -> None:
    # The table records when repairs were fixed; "inspected" names no column, and dropping it would count every repair.
    with pytest.raises(PlannerError):
        plan_question("how many repairs were inspected?", tables["repairs"][0])
