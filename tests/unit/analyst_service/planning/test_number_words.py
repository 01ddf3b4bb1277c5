"""A number word before a numeric column is a value of it (`planning/number_words.py`)."""

from __future__ import annotations

import duckdb
import pytest

from analyst_service.compiler import compile_plan
from analyst_service.planning.offline import plan_question
from tests.unit.analyst_service.planning.profiled_tables import profiled_tables
from csv_analyst.v1 import dataset_pb2

TABLES = {"cups": "Club,Titles,Finals lost\nAshby Town,3,1\nBrent Rovers,5,2\nCorfe United,5,0\nDale Athletic,1,4\n"}


@pytest.fixture(scope="module")
def tables(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[dataset_pb2.Dataset, duckdb.DuckDBPyConnection]]:
    return profiled_tables(TABLES, tmp_path_factory.mktemp("numberwords"))


def _answer(tables: dict, question: str) -> list[tuple[object, ...]]:
    dataset, connection = tables["cups"]
    return connection.execute(compile_plan(plan_question(question, dataset), dataset)).fetchall()


def test_a_number_word_before_a_count_column_filters_it(tables: dict) -> None:
    rows = _answer(tables, "which club was the first to have five titles?")
    assert [r[0] for r in rows] == ["Brent Rovers"]


def test_a_number_word_outside_the_column_range_is_not_a_value(tables: dict) -> None:
    dataset, _ = tables["cups"]
    with pytest.raises(Exception):
        plan_question("which club was the first to have seven titles?", dataset)


def test_a_trailing_or_more_repeats_at_least(tables: dict) -> None:
    # "at least 3 titles or more" is "at least 3": the trailing words are no part left over.
    assert _answer(tables, "how many clubs won at least 3 titles or more?")[0][0] == 3
