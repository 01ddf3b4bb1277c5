"""First and last rows by the date of a named event (`planning/event_order.py`) and the position checks
of `planning/plan_shapes.py`, on small list-style tables whose file order is not the order of events."""

from __future__ import annotations

import duckdb
import pytest

from analyst_service.compiler import compile_plan
from analyst_service.planning.base import ClarificationNeededError
from analyst_service.planning.event_order import event_words
from analyst_service.planning.offline import plan_question
from tests.unit.analyst_service.planning.profiled_tables import profiled_tables
from csv_analyst.v1 import dataset_pb2

TABLES: dict[str, str] = {
    # Listed by name, not by the year each library opened.
    "libraries": "Library,Town,Opening,Branches\nAshdown,Kelby,1962,3\nBrookfield,Orton,1931,5\n"
                 "Cedar Lane,Kelby,1975,2\nDunmore,Pellam,1948,4\n",
    # Listed by name; the maker column dates nothing.
    "engines": "Engine,Builder,Gauge,Year\nBetsy,Ridley,2 ft,1921\nCoaster,Hallam,3 ft,1899\n"
               "Dapper,Ridley,2 ft,1910\nEmber,Hallam,3 ft,1934\n",
    "fixtures": "Round,Opponent,Result\n1,Kelby Town,Won\n2,Orton Rovers,Lost\n3,Pellam United,Drawn\n",
    "governors": "Governor,Party,Years in office\nA. Marsh,Liberal,6\nB. Stone,Labour,4\nC. Reed,Liberal,9\n"
                 "D. Hale,Labour,3\n",
}


@pytest.fixture(scope="module")
def tables(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[dataset_pb2.Dataset, duckdb.DuckDBPyConnection]]:
    return profiled_tables(TABLES, tmp_path_factory.mktemp("events"))


def _answer(tables: dict, table: str, question: str) -> list[tuple[object, ...]]:
    dataset, connection = tables[table]
    return connection.execute(compile_plan(plan_question(question, dataset), dataset)).fetchall()


def test_event_words_hold_the_verb_and_the_noun_made_from_it() -> None:
    assert {"open", "opening"} <= event_words("opened")
    assert "establishment" in event_words("established")


def test_the_last_row_by_the_named_event_is_the_latest_event(tables: dict) -> None:
    rows = _answer(tables, "libraries", "which library was opened last?")
    assert [r[0] for r in rows] == ["Cedar Lane"]


def test_the_first_row_by_the_named_event_is_the_earliest_event(tables: dict) -> None:
    rows = _answer(tables, "libraries", "what was the first library opened?")
    assert [r[0] for r in rows] == ["Brookfield"]


def test_without_an_event_the_first_row_is_the_first_in_the_file(tables: dict) -> None:
    rows = _answer(tables, "libraries", "what is the first library on this list?")
    assert [r[0] for r in rows] == ["Ashdown"]


def test_an_event_named_by_a_column_that_dates_nothing_is_asked_about(tables: dict) -> None:
    # "built" -> build -> Builder: the order asked for is by date of building, which the file order
    # need not follow, and the builder column holds no dates.
    dataset, _ = tables["engines"]
    with pytest.raises(ClarificationNeededError) as raised:
        plan_question("which engine was built first?", dataset)
    assert "built" in raised.value.message


def test_the_first_rows_are_not_dropped_from_a_total(tables: dict) -> None:
    dataset, _ = tables["governors"]
    with pytest.raises(ClarificationNeededError) as raised:
        plan_question("how many years in office did the first two governors serve combined?", dataset)
    assert "first" in raised.value.message


def test_a_noun_after_first_or_last_names_the_rows_picked(tables: dict) -> None:
    # "game" names no column: after "last" it is what one row is, so the last row answers.
    rows = _answer(tables, "fixtures", "what was the result of the last game?")
    assert [r[2] for r in rows] == ["Drawn"]
