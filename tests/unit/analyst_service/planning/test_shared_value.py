"""Several named rows and "which <column>" (`planning/shared_value.py`): the column's values once each."""

from __future__ import annotations

import duckdb
import pytest

from analyst_service.compiler import compile_plan
from analyst_service.planning.offline import plan_question
from tests.unit.analyst_service.planning.profiled_tables import profiled_tables
from csv_analyst.v1 import dataset_pb2

TABLES = {"villages": "Village,Parish,Population\nAldmoor,St Brannock,310\nBexley Cross,St Brannock,145\n"
                      "Carrow,Hollin,520\nDunstable End,Hollin,98\n"}


@pytest.fixture(scope="module")
def tables(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[dataset_pb2.Dataset, duckdb.DuckDBPyConnection]]:
    return profiled_tables(TABLES, tmp_path_factory.mktemp("shared"))


def _answer(tables: dict, question: str) -> list[tuple[object, ...]]:
    dataset, connection = tables["villages"]
    return connection.execute(compile_plan(plan_question(question, dataset), dataset)).fetchall()


def test_two_named_rows_sharing_the_asked_value_give_it_once(tables: dict) -> None:
    assert _answer(tables, "aldmoor and bexley cross are both in which parish?") == [("St Brannock",)]


def test_named_rows_with_different_values_give_each(tables: dict) -> None:
    assert _answer(tables, "aldmoor and carrow are in which parish?") == [("Hollin",), ("St Brannock",)]
