"""The offline planner on row anchors, written dates, empty cells, spreads, ratios and distinct listings.

"Who is listed before X" (RowAnchor), "before 1980" on a text column of dates (as_year), "the
ozone reading is missing" (IS NULL), "the widest gap between best and worst paid" (RANGE), "tips as
a percentage of bills" (ratio_of), "what ford models exist" (distinct values), "which 2 X"
(a limit), and a counted noun that is also a cell value. Each question is planned against a small
synthetic table profiled the way `analyst_service.profiling` does, compiled with the real compiler,
run on DuckDB (loaded in file order, like the runner), and compared with a hand-written query.
"""

from __future__ import annotations


import duckdb
import pytest

from analyst_service.compiler import compile_plan
from analyst_service.errors import PlannerError
from analyst_service.planning.base import ClarificationNeededError
from analyst_service.planning.offline import plan_question
from tests.unit.analyst_service.planning.profiled_tables import numeric_cell, profiled_tables
from csv_analyst.v1 import dataset_pb2, plan_pb2

TABLES: dict[str, str] = {
    "draft": "Pick,Player,Position,College\n1,Ann Lee,QB,Ohio State\n2,Bo Diaz,LB,Iowa\n3,Cy Moss,WR,Utah\n"
             "4,Dee Park,LB,Texas\n5,Eli Ford,QB,Duke\n",
    "sites": "Name,Date listed,City\nOld Mill,10 August 1975,Ames\nGrand Hotel,\"March 3, 1982\",Boone\n"
             "Stone Bridge,1 May 1989,Ames\nRiver House,12 June 1995,Adel\nTown Hall,2001,Ames\n",
    "air": "Ozone,Temp,Month,Day\n41,67,5,1\n,72,5,2\n12,74,5,3\n,62,5,4\n28,66,6,1\n",
    "riots": "first_name,age,race,death_date,type,neighborhood\nAl,15,Black,1992-04-30,Homicide,Watts\n"
             "Bea,40,White,1992-04-30,Death,Watts\nCal,22,Latino,1992-05-01,Homicide,Pico\n"
             "Dan,31,Black,1992-05-02,Homicide,Hyde Park\nEd,55,Black,1992-05-03,Death,Pico\n",
    "cars": "manufacturer,model,hwy\ntoyota,camry,30\ntoyota,corolla,35\ntoyota,camry,31\nford,focus,32\n"
            "ford,mustang,25\nford,focus,33\naudi,a4,29\n",
    "faculty": "rank,sex,salary\nProf,Male,139750\nProf,Female,120000\nAsstProf,Male,79750\n"
               "AsstProf,Female,77500\nProf,Male,101000\nAssocProf,Male,95000\n",
    "meals": "total_bill,tip,sex\n16.99,1.01,Female\n10.34,1.66,Male\n21.01,3.5,Male\n23.68,3.31,Male\n",
    "power": "year,source,net_generation\n2001,Fossil Fuels,100\n2001,Nuclear Energy,40\n2002,Fossil Fuels,130\n"
             "2002,Nuclear Energy,45\n2003,Fossil Fuels,120\n2003,Nuclear Energy,50\n",
}


@pytest.fixture(scope="module")
def tables(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[dataset_pb2.Dataset, duckdb.DuckDBPyConnection]]:
    return profiled_tables(TABLES, tmp_path_factory.mktemp("anchors"))




def _contains(got: list[tuple[object, ...]], expected: list[tuple[object, ...]]) -> bool:
    """Same row count, and each expected column equals some result column (extra columns allowed)."""
    if len(got) != len(expected):
        return False
    got_columns = [sorted((numeric_cell(r[j]) for r in got), key=repr) for j in range(len(got[0]))] if got else []
    for j in range(len(expected[0]) if expected else 0):
        column = sorted((numeric_cell(r[j]) for r in expected), key=repr)
        if column not in got_columns:
            return False
    return True


@pytest.mark.parametrize(("table", "question", "expected_sql"), [
    # The row before or after a named row, in file order.
    ("draft", "who is listed before cy moss?", "SELECT 'Bo Diaz'"),
    ("draft", "which player was picked after bo diaz?", "SELECT 'Cy Moss'"),
    ("draft", "who was drafted previous to dee park?", "SELECT 'Cy Moss'"),
    # With a condition of its own: the nearest such row on that side.
    # Year phrases on a text column of written dates.
    ("sites", "how many sites were listed before 1985?", "SELECT 2"),
    ("sites", "how many places were listed in the 1980s?", "SELECT 2"),
    ("sites", "how many sites were listed after 1990?", "SELECT 2"),
    # Empty cells.
    ("air", "count the rows where ozone is missing", "SELECT 2"),
    # A counted noun that is also a cell value, and "at least one" of the rows' own subject.
    ("riots", "how many victims are recorded?", "SELECT 5"),
    ("riots", "count per race", "SELECT race, count(*) FROM riots GROUP BY race"),
    ("riots", "number of distinct neighborhoods", "SELECT 3"),
    ("riots", "number of victims from April 30 to May 1, 1992", "SELECT 3"),
    # Limits, distinct listings, spreads, ratios, peaks.
    ("cars", "which 2 manufacturers have the most rows?", "SELECT * FROM (VALUES ('toyota'), ('ford'))"),
    ("cars", "what ford models exist?", "SELECT model, count(*) FROM cars WHERE manufacturer = 'ford' GROUP BY model"),
    ("faculty", "which rank has the biggest salary range?", "SELECT 'Prof'"),
    ("faculty", "show me the 2 top salaries with sex, highest first",
     "SELECT salary, sex FROM faculty ORDER BY salary DESC LIMIT 2"),
    ("meals", "tips as a percentage of total bills",
     "SELECT 100.0 * sum(tip) / sum(total_bill) FROM meals"),
    ("power", "which year had the peak fossil fuels net generation?", "SELECT 2002"),
])
def test_questions(tables: dict[str, tuple[dataset_pb2.Dataset, duckdb.DuckDBPyConnection]],
                   table: str, question: str, expected_sql: str) -> None:
    dataset, connection = tables[table]
    plan = plan_question(question, dataset)
    got = connection.execute(compile_plan(plan, dataset)).fetchall()
    expected = connection.execute(expected_sql).fetchall()
    assert _contains(got, expected), (plan, got, expected)


def test_anchor_is_exact_without_other_conditions(
        tables: dict[str, tuple[dataset_pb2.Dataset, duckdb.DuckDBPyConnection]]) -> None:
    dataset, _ = tables["draft"]
    plan = plan_question("who is listed before cy moss?", dataset)
    assert (plan.anchor.offset, plan.anchor.nearest) == (-1, False)
    assert [(f.column, f.values[0].string_value) for f in plan.anchor.match] == [("Player", "Cy Moss")]
    assert not plan.filters and "before" in plan.explanation


def test_counting_rows_before_an_anchor_asks_back(
        tables: dict[str, tuple[dataset_pb2.Dataset, duckdb.DuckDBPyConnection]]) -> None:
    dataset, _ = tables["draft"]
    with pytest.raises(PlannerError):
        plan_question("how many players were picked before dee park?", dataset)


def test_years_of_written_dates_use_as_year(
        tables: dict[str, tuple[dataset_pb2.Dataset, duckdb.DuckDBPyConnection]]) -> None:
    dataset, _ = tables["sites"]
    plan = plan_question("how many sites were listed before 1985?", dataset)
    assert [(f.column, f.as_year, f.as_number) for f in plan.filters] == [("Date listed", True, False)]


def test_spread_and_ratio_use_their_aggregations(
        tables: dict[str, tuple[dataset_pb2.Dataset, duckdb.DuckDBPyConnection]]) -> None:
    spread = plan_question("which rank has the biggest salary range?", tables["faculty"][0])
    assert [s.aggregation for s in spread.select if s.aggregation] == [plan_pb2.AGGREGATION_RANGE]
    ratio = plan_question("tips as a percentage of total bills", tables["meals"][0])
    assert [(s.column, s.ratio_of) for s in ratio.select] == [("tip", "total_bill")]


@pytest.mark.parametrize(("table", "question", "left_out"), [
    # A word that matches nothing ("lb" is no known value here) must not be dropped silently.
    ("draft", "before eli ford, who was the previous lb picked?", "lb"),
    # A column the question names ("hwy") that the plan would not use.
    ("cars", "toyota models with their hwy in the factory catalogue", "catalogue"),
])
def test_a_plan_that_leaves_words_out_asks_instead(
        tables: dict[str, tuple[dataset_pb2.Dataset, duckdb.DuckDBPyConnection]], table: str, question: str,
        left_out: str) -> None:
    with pytest.raises(ClarificationNeededError) as raised:
        plan_question(question, tables[table][0])
    assert left_out in raised.value.metadata["left_out"]
    assert raised.value.options
    for option in raised.value.options:
        compile_plan(option, tables[table][0])  # every reading offered runs


@pytest.mark.parametrize(("table", "question"), [
    ("cars", "average hwy for each engine"),  # no column for the breakdown asked for
    ("riots", "kurtosis of age"),  # an aggregation plans cannot express
])
def test_unmappable_parts_are_refused(
        tables: dict[str, tuple[dataset_pb2.Dataset, duckdb.DuckDBPyConnection]], table: str, question: str) -> None:
    with pytest.raises(PlannerError):
        plan_question(question, tables[table][0])
