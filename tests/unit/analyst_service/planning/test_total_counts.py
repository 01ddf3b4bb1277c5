""""How many <things>" beside a column named <thing> <more words> counts the rows (`counted_rows`), and
"the total number of X" and "how many total X" are one count (`Recognizers._total_of_a_count`): the
word "total" adds nothing to the count, so it is not read as a second aggregation (a sum) that then
finds no numeric column. Small list tables of my own; each answer is checked by running it."""

from __future__ import annotations

import duckdb
import pytest

from analyst_service.compiler import compile_plan
from analyst_service.planning.offline import plan_question
from tests.unit.analyst_service.planning.profiled_tables import profiled_tables
from csv_analyst.v1 import dataset_pb2

TABLES: dict[str, str] = {
    "monuments": "Monument,Island,Built\nStone Arch,Kerrin,1820\nOld Beacon,Mull Ross,1851\n"
                 "Watch Tower,Kerrin,1799\nSea Gate,Kerrin,1902\nHigh Cross,Mull Ross,1760\n",
    "derbies": "Round,Match venue,Attendance\n1,Elm Park,\"12,400\"\n2,Elm Park,\"9,800\"\n3,Kings Road,\"15,100\"\n"
               "4,Elm Park,\"13,050\"\n5,Kings Road,\"8,200\"\n",
    "assembly": "Delegate,Party,Age\nR. Voss,Green,44\nT. Amari,Blue,51\nK. Lind,Green,38\n",
}


@pytest.fixture(scope="module")
def tables(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[dataset_pb2.Dataset, duckdb.DuckDBPyConnection]]:
    return profiled_tables(TABLES, tmp_path_factory.mktemp("totals"))


def _answer(tables: dict, table: str, question: str) -> list[tuple[object, ...]]:
    dataset, connection = tables[table]
    return connection.execute(compile_plan(plan_question(question, dataset), dataset)).fetchall()


def test_the_total_number_of_rows_named_is_their_count(tables: dict) -> None:
    assert _answer(tables, "assembly", "what is the total number of delegates?")[0][0] == 3


def test_the_total_number_with_a_value_filter_counts_the_matching_rows(tables: dict) -> None:
    assert _answer(tables, "monuments", "what is the total number of monuments on kerrin?")[0][0] == 3


def test_how_many_total_counts_once(tables: dict) -> None:
    assert _answer(tables, "monuments", "how many total monuments are on mull ross?")[0][0] == 2


def test_a_plural_naming_part_of_a_column_counts_the_rows(tables: dict) -> None:
    # "matches" opens the name `Match venue`, but the rows are the matches: three drew 10,000 or more,
    # played at two distinct venues.
    assert _answer(tables, "derbies", "how many matches had at least 10,000 people in attendance?")[0][0] == 3


def test_a_plural_naming_a_whole_column_still_counts_its_values(tables: dict) -> None:
    assert _answer(tables, "monuments", "how many islands are there?")[0][0] == 2
