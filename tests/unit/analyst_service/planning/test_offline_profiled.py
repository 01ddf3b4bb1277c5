"""The offline planner on ad-hoc, profiled tables: value linking, date parts, abbreviations, safety.

Each question is planned against a small synthetic table whose profile is computed here the
way `analyst_service.profiling` computes it, compiled with the real compiler, and run on DuckDB;
the rows must equal those of a hand-written query.
"""

from __future__ import annotations

import math

import duckdb
import pytest

from analyst_service.compiler import compile_plan
from analyst_service.errors import PlannerError
from analyst_service.planning.offline import plan_question
from analyst_service.planning.vocabulary import abbreviates
from tests.unit.analyst_service.planning.profiled_tables import profiled_tables
from csv_analyst.v1 import dataset_pb2

TABLES: dict[str, str] = {
    "tips": "total_bill,tip,sex,smoker,day,time,size\n"
            "16.99,1.01,Female,No,Sun,Dinner,2\n10.34,1.66,Male,No,Sun,Dinner,3\n"
            "21.01,3.5,Male,Yes,Sat,Dinner,3\n23.68,3.31,Male,No,Sat,Dinner,2\n"
            "24.59,3.61,Female,No,Sat,Dinner,4\n8.77,2.0,Male,Yes,Thur,Lunch,2\n"
            "45.5,6.0,Female,Yes,Fri,Dinner,4\n41.2,5.0,Female,No,Sat,Dinner,3\n",
    "cars": "manufacturer,model,displ,year,cyl,hwy,drv\n"
            "audi,a4,1.8,1999,4,29,f\ntoyota,camry,2.2,1999,4,31,f\ntoyota,corolla,1.8,2008,4,35,f\n"
            "ford,mustang,4.6,2008,8,24,r\ntoyota,tacoma,2.7,2008,4,22,4\nford,focus,2.0,2008,4,30,f\n",
    "weather": "Ozone,Wind,Temp,Month,Day\n41,7.4,67,5,1\n,8.0,72,5,2\n12,12.6,92,6,3\n18,11.5,81,7,4\n"
               "28,14.9,94,7,5\n,8.6,78,8,6\n",
    "leaders": "name,start,end,party\nAdams,1953-01-20,1961-01-20,Republican\n"
               "Baker,1961-01-20,1963-11-22,Democratic\nCole,1963-11-22,1969-01-20,Democratic\n"
               "Dean,1969-01-20,1974-08-09,Republican\nEvans,1974-08-09,1977-01-20,Republican\n",
    "counties": "county,state,poptotal,percollege\nCOOK,IL,5105067,28.5\nADAMS,OH,25371,11.2\n"
                "ALLEN,OH,109755,16.3\nDANE,WI,367085,41.8\nBROWN,WI,194594,24.1\n",
}


@pytest.fixture(scope="module")
def tables(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[dataset_pb2.Dataset, duckdb.DuckDBPyConnection]]:
    return profiled_tables(TABLES, tmp_path_factory.mktemp("profiled"), "VIEW")



def _rows(rows: list[tuple[object, ...]]) -> list[tuple[object, ...]]:
    def cell(value: object) -> object:
        if isinstance(value, float):
            return None if math.isnan(value) else round(value, 6)
        return str(value) if value is not None else None

    return sorted((tuple(cell(v) for v in row) for row in rows), key=repr)


@pytest.mark.parametrize(("table", "question", "expected_sql"), [
    # Value linking from profile top values: prefixes, aliases, state names, negation.
    ("tips", "how many rows fall on a saturday?", "SELECT count(*) FROM tips WHERE day = 'Sat'"),
    ("tips", "number of female non-smokers at dinner",
     "SELECT count(*) FROM tips WHERE sex = 'Female' AND NOT smoker AND time = 'Dinner'"),
    ("tips", "how many women paid?", "SELECT count(*) FROM tips WHERE sex = 'Female'"),
    # A column wins over a table of (almost) the same name.
    ("tips", "avg tip?", "SELECT avg(tip) FROM tips"),
    ("tips", "sunday bills, added up", "SELECT sum(total_bill) FROM tips WHERE day = 'Sun'"),
    ("tips", "how many bills were above $40?", "SELECT count(*) FROM tips WHERE total_bill > 40"),
    # Integer year and month columns take year and month phrases.
    ("cars", "average hwy of cars from 2008", "SELECT avg(hwy) FROM cars WHERE year = 2008"),
    ("cars", "average hwy for each year", "SELECT year, avg(hwy) FROM cars GROUP BY year"),
    ("weather", "average Ozone during july", "SELECT avg(Ozone) FROM weather WHERE Month = 7"),
    ("weather", "mean temp by month", "SELECT Month, avg(Temp) FROM weather GROUP BY Month"),
    # Abbreviated column names and counted units.
    ("cars", "count 4-cylinder cars with hwy of at least 30 mpg",
     "SELECT count(*) FROM cars WHERE cyl = 4 AND hwy >= 30"),
    ("weather", "how many rows have a temp of 90 degrees or more?", "SELECT count(*) FROM weather WHERE Temp >= 90"),
    # Superlatives: two of one column, and a word that names its measure.
    ("tips", "lowest and highest tip?", "SELECT min(tip), max(tip) FROM tips"),
    ("weather", "What was the hottest day?", "SELECT * FROM weather ORDER BY Temp DESC LIMIT 1"),
    # Dates: decades and ranges on a DATE column.
    ("leaders", "How many leaders started in the 1960s?",
     "SELECT count(*) FROM leaders WHERE start >= DATE '1960-01-01' AND start < DATE '1970-01-01'"),
    ("leaders", "which leaders were democrats?", "SELECT * FROM leaders WHERE party = 'Democratic'"),
])
def test_profiled_questions(tables: dict[str, tuple[dataset_pb2.Dataset, duckdb.DuckDBPyConnection]],
                            table: str, question: str, expected_sql: str) -> None:
    dataset, connection = tables[table]
    plan = plan_question(question, dataset)
    expected = connection.execute(expected_sql).fetchall()
    assert _rows(connection.execute(compile_plan(plan, dataset)).fetchall()) == _rows(expected)


def test_a_number_that_fits_no_column_asks_back(
        tables: dict[str, tuple[dataset_pb2.Dataset, duckdb.DuckDBPyConnection]]) -> None:
    dataset, _ = tables["weather"]
    with pytest.raises(PlannerError) as raised:
        plan_question("how many days hit 90", dataset)
    assert raised.value.metadata["numbers"] == "90"


def test_year_range_on_integer_year_column(
        tables: dict[str, tuple[dataset_pb2.Dataset, duckdb.DuckDBPyConnection]]) -> None:
    dataset, connection = tables["cars"]
    plan = plan_question("average displ from 1999 to 2008", dataset)
    assert [(f.column, [v.int_value for v in f.values]) for f in plan.filters] == [("year", [1999, 2008])]
    assert connection.execute(compile_plan(plan, dataset)).fetchall()


@pytest.mark.parametrize(("short", "word", "expected"), [
    ("hwy", "highway", True), ("cty", "city", True), ("yrs", "years", True), ("asst", "assistant", True),
    ("sat", "smallest", False), ("fl", "fuel", False), ("drv", "drive", True), ("govt", "government", True),
    ("bale", "balance", False), ("bat", "boat", False),
])
def test_abbreviations(short: str, word: str, expected: bool) -> None:
    assert abbreviates(short, word) is expected
