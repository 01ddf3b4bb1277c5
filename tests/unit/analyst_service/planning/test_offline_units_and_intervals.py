"""Units of measurement name the column they measure; a point in time falls inside a start-end span;
"across" a filtered set of rows adds nothing up per group.

Each question is planned against a small profiled table, compiled and run on DuckDB; its rows must
equal those of a hand-written query. The wording and tables are this project's own.
"""

from __future__ import annotations

import duckdb
import pytest

from analyst_service.compiler import compile_plan
from analyst_service.planning.offline import plan_question
from analyst_service.planning.schema_linking import SchemaIndex
from analyst_service.planning.intervals import span_columns
from analyst_service.planning.units import column_for_unit, measured_quantities
from tests.unit.analyst_service.planning.profiled_tables import profiled_tables, sorted_rows
from csv_analyst.v1 import dataset_pb2

TABLES = {
    "kilns": "Kiln,Hour,Temperature,Load\nK1,9,21,40\nK1,14,31,55\nK2,10,35,20\nK2,15,28,30\nK3,6,-8,10\nK4,7,2,10\n",
    "farms": "farm,Year,Area\nOak,1990,30\nElm,1992,55\nAsh,1995,80\n",
    "stewards": "steward,start_date,end_date,club\nAnna,1980-01-05,1984-06-30,Rovers\n"
                "Ben,1984-07-01,1991-02-11,United\nCara,1991-02-12,1999-12-31,Rovers\n",
    "districts": "district,pop,area\nNorth,120000,30\nSouth,800000,55\nEast,450000,20\n",
    "schools": "school,state,score\nA,Ohio,70\nB,Ohio,80\nC,Iowa,60\n",
    "parcels": "parcel,ordered,shipped\nP1,1990-03-01,1990-03-05\nP2,1990-03-03,1990-03-04\n",
}


@pytest.fixture(scope="module")
def tables(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[dataset_pb2.Dataset, duckdb.DuckDBPyConnection]]:
    return profiled_tables(TABLES, tmp_path_factory.mktemp("units"))


def test_units_name_the_quantity_they_measure() -> None:
    assert "temperature" in measured_quantities("degrees")
    assert measured_quantities("acres") == {"area"}
    assert measured_quantities("hours") == frozenset()  # a span of time, not a unit of a quantity column
    assert measured_quantities("kilns") == frozenset()
    assert measured_quantities("people") == {"population"}  # the number of inhabitants
    assert measured_quantities("teams") == frozenset()


def test_a_unit_picks_the_one_column_named_like_its_quantity(
        tables: dict[str, tuple[dataset_pb2.Dataset, duckdb.DuckDBPyConnection]]) -> None:
    columns = SchemaIndex.build(tables["kilns"][0]).columns
    assert column_for_unit("degrees", columns).name == "Temperature"  # type: ignore[union-attr]
    assert column_for_unit("acres", columns) is None


@pytest.mark.parametrize(("table", "question", "expected_sql"), [
    # The unit after the number, not the nearer "hours" column, says what is compared.
    ("kilns", "how many hours reached 30 degrees or more?", "SELECT count(*) FROM kilns WHERE Temperature >= 30"),
    ("kilns", "readings above 29 degrees", "SELECT * FROM kilns WHERE Temperature > 29"),
    # One day over rows that each span a period: the rows whose span holds the day.
    ("stewards", "which steward was in charge on March 3, 1990?",
     "SELECT * FROM stewards WHERE start_date <= DATE '1990-03-03' AND end_date >= DATE '1990-03-03'"),
    ("stewards", "steward on February 13, 1991", "SELECT * FROM stewards WHERE steward = 'Cara'"),
    # A unit inside a share is accounted for like any compared number's unit.
    ("kilns", "what percentage of readings were above 25 degrees?", "SELECT 50.0"),
    # People counted: the population column ("pop" abbreviates it), not the other number beside it.
    ("districts", "how many districts have over 300000 people?", "SELECT count(*) FROM districts WHERE pop > 300000"),
    # "across" before a filtering value: over all of those rows, not a breakdown.
    ("schools", "mean score across Ohio schools", "SELECT avg(score) FROM schools WHERE state = 'Ohio'"),
    ("schools", "what is the mean score across all schools?", "SELECT avg(score) FROM schools"),
    # A minus sign before a number (not a hyphen) keeps it negative.
    ("kilns", "readings below -5 degrees", "SELECT * FROM kilns WHERE Temperature < -5"),
    ("kilns", "how many readings were under −5 degrees?", "SELECT count(*) FROM kilns WHERE Temperature < -5"),
    ("farms", "how many farms cover more than 50 acres?", "SELECT count(*) FROM farms WHERE Area > 50"),
])
def test_questions_match_hand_written_sql(
        tables: dict[str, tuple[dataset_pb2.Dataset, duckdb.DuckDBPyConnection]],
        table: str, question: str, expected_sql: str) -> None:
    dataset, connection = tables[table]
    plan = plan_question(question, dataset)
    assert sorted_rows(connection, compile_plan(plan, dataset)) == sorted_rows(connection, expected_sql), plan.explanation


def test_only_a_start_and_an_end_date_make_a_span(
        tables: dict[str, tuple[dataset_pb2.Dataset, duckdb.DuckDBPyConnection]]) -> None:
    start, end = span_columns(SchemaIndex.build(tables["stewards"][0]).columns)  # type: ignore[misc]
    assert (start.name, end.name) == ("start_date", "end_date")
    assert span_columns(SchemaIndex.build(tables["parcels"][0]).columns) is None
