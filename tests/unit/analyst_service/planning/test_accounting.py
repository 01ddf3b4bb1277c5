"""Word accounting: what a plan leaves out of the question makes the offline planner ask."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from analyst_service.compiler import compile_plan
from analyst_service.planning import accounting
from analyst_service.planning.base import ClarificationNeededError
from analyst_service.planning.builder import build_plan
from analyst_service.planning.offline import plan_question
from analyst_service.planning.question import parse_question_traced
from analyst_service.planning.schema_linking import SchemaIndex
from tests.unit.analyst_service.planning.profiled_tables import profiled_tables
from csv_analyst.v1 import dataset_pb2, plan_pb2

TABLES = {
    "shop": "region,product,units,price,sold_at\nnorth,pen,3,1.5,2024-01-05 10:00:00\n"
            "south,ink,5,7.0,2024-01-06 15:30:00\nnorth,ink,2,7.5,2024-02-01 09:15:00\n"
            "east,pad,9,3.0,2024-02-03 18:45:00\n",
    "kennel": "breed,coat,weight,pen\nbeagle,short,10,A1\npoodle,curly,20,B2\nterrier,wiry,8,C3\n",
}


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> tuple[dataset_pb2.Dataset, duckdb.DuckDBPyConnection]:
    return profiled_tables({"shop": TABLES["shop"]}, tmp_path_factory.mktemp("accounting"))["shop"]


@pytest.fixture(scope="module")
def kennel(tmp_path_factory: pytest.TempPathFactory) -> tuple[dataset_pb2.Dataset, duckdb.DuckDBPyConnection]:
    return profiled_tables({"kennel": TABLES["kennel"]}, tmp_path_factory.mktemp("kennel"))["kennel"]


def _leftovers(question: str, dataset: dataset_pb2.Dataset, plan: plan_pb2.Plan | None = None
               ) -> list[accounting.Leftover]:
    index = SchemaIndex.build(dataset)
    spec, parser = parse_question_traced(question, index)
    return accounting.leftovers(parser, plan if plan is not None else build_plan(spec, index))


def test_a_fully_explained_question_has_no_leftovers(shop: tuple[dataset_pb2.Dataset, object]) -> None:
    assert _leftovers("average price per region", shop[0]) == []
    assert _leftovers("please show the total units sold in the north", shop[0]) == []


def test_an_unknown_word_is_left_over(shop: tuple[dataset_pb2.Dataset, object]) -> None:
    found = _leftovers("average price of the warehouse", shop[0])
    assert [item.words for item in found] == ["warehouse"]


@pytest.mark.parametrize("question", [
    "how many units were bought in the north?",  # a verb ("bought")
    "how many rows have units of 3 pieces or more?",  # a unit after a compared number
    "how many customers bought ink?",  # a noun naming the rows counted
    "total units of all the shipments",  # a plural noun of things: the rows of the one table
    "average price for each type of product",  # "type of" introduces the column
    "sum of the north's units",  # a possessive
])
def test_function_words_are_not_left_over(shop: tuple[dataset_pb2.Dataset, object], question: str) -> None:
    assert _leftovers(question, shop[0]) == []


def test_a_dropped_aggregation_is_left_over(shop: tuple[dataset_pb2.Dataset, object]) -> None:
    plan = plan_question("average price per region", shop[0])
    del plan.select[:]
    plan.select.add(column="region")
    assert any("summary" in item.reason for item in _leftovers("average price per region", shop[0], plan))


def test_a_dropped_grouping_and_an_unused_column_are_left_over(shop: tuple[dataset_pb2.Dataset, object]) -> None:
    plan = plan_pb2.Plan(dataset_id=shop[0].dataset_id, base_table="shop",
                         select=[plan_pb2.SelectItem(column="price", aggregation=plan_pb2.AGGREGATION_AVG)])
    reasons = {item.words: item.reason for item in _leftovers("average price per region", shop[0], plan)}
    assert "breakdown" in reasons["per"] and "region" in reasons


def test_an_unasked_grouping_is_left_over(shop: tuple[dataset_pb2.Dataset, object]) -> None:
    plan = plan_question("average price per region", shop[0])
    found = _leftovers("average price in the north region", shop[0], plan)
    assert any("breakdown the question does not ask for" in item.reason for item in found)


def test_a_calendar_part_is_left_over(shop: tuple[dataset_pb2.Dataset, object]) -> None:
    found = _leftovers("average units by hour of the day", shop[0], plan_question("average units", shop[0]))
    assert any(item.words == "hour of the day" for item in found)


def test_the_planner_asks_with_a_reading_that_runs(shop: tuple[dataset_pb2.Dataset, duckdb.DuckDBPyConnection]) -> None:
    dataset, connection = shop
    with pytest.raises(ClarificationNeededError) as raised:
        plan_question("average price of the warehouse", dataset)
    assert raised.value.reason == "CLARIFICATION_NEEDED"
    assert raised.value.metadata["left_out"] == "warehouse"
    (reading,) = raised.value.options
    assert "warehouse" in reading.explanation
    assert connection.execute(compile_plan(reading, dataset)).fetchall() == [(4.75,)]


def test_plan_columns_reads_every_part(tmp_path: Path) -> None:
    plan = plan_pb2.Plan(base_table="t", select=[plan_pb2.SelectItem(column="t.a", minus_column="b")],
                         filters=[plan_pb2.Filter(column="c")], group_by=[plan_pb2.GroupBy(column="d")])
    assert {"t.a", "a", "b", "c", "d"} <= accounting.plan_columns(plan)


def test_a_gerund_before_a_column_is_left_over(shop: tuple[dataset_pb2.Dataset, object]) -> None:
    # "handling price" is not the price column: the qualifier changes which price is meant.
    found = _leftovers("average handling price per region", shop[0])
    assert [item.words for item in found] == ["handling"]


def test_the_verb_after_an_auxiliary_is_not_left_over(shop: tuple[dataset_pb2.Dataset, object]) -> None:
    assert _leftovers("how many rows did the north region place", shop[0]) == []  # "place": as much a noun as a verb


def test_a_broader_kind_of_the_values_names_the_rows(kennel: tuple[dataset_pb2.Dataset, object]) -> None:
    # beagle, poodle and terrier are kinds of dog (WordNet): "dog" names what the rows are.
    assert _leftovers("average weight of a dog", kennel[0]) == []
    assert [item.words for item in _leftovers("average weight of a boat", kennel[0])] == ["boat"]


def test_an_opening_command_verb_is_not_left_over(kennel: tuple[dataset_pb2.Dataset, object]) -> None:
    assert "rank" not in [item.words for item in _leftovers("rank the pens by weight", kennel[0])]
    assert "rank" in [item.words for item in _leftovers("average weight of the rank", kennel[0])]


def test_a_kind_word_after_a_column_is_not_left_over(kennel: tuple[dataset_pb2.Dataset, object]) -> None:
    assert _leftovers("how many different coat types are there", kennel[0]) == []


def test_words_pointing_at_other_rows_are_never_excused(shop: tuple[dataset_pb2.Dataset, object]) -> None:
    assert "other" in [item.words for item in _leftovers("in what other region were units sold", shop[0])]


def test_a_negated_verb_is_left_over(shop: tuple[dataset_pb2.Dataset, object]) -> None:
    assert "place" in [item.words for item in _leftovers("how many rows did the north region not place", shop[0])]


def test_pronouns_and_units_of_a_count_column_are_not_left_over(kennel: tuple[dataset_pb2.Dataset, object]) -> None:
    assert _leftovers("his average weight", kennel[0]) == []  # whom the one table is about
    assert _leftovers("average weight units", kennel[0]) == []  # "units" counted by the weight column
