"""Plan shapes that answer another question (`planning/plan_shapes.py`) and value links by letters only.

Small encyclopedia-style tables (a league table with text-typed numbers, a list of lighthouses, a
squad list, a register of codes): each question is planned for real; a shape the plan cannot carry
out must come back as a clarification, while the same table still answers its plain questions.
"""

from __future__ import annotations

import duckdb
import pytest

from analyst_service.compiler import compile_plan
from analyst_service.planning.base import ClarificationNeededError
from analyst_service.planning.offline import plan_question
from tests.unit.analyst_service.planning.profiled_tables import profiled_tables
from csv_analyst.v1 import dataset_pb2

TABLES: dict[str, str] = {
    "league": "Club,Played,Wins,Draws,Defeats,Points\nRiverside,\"1,204\",610,300,294,\"2,130\"\n"
              "Hilltop,\"1,180\",540,320,320,\"1,940\"\nLakeview,\"1,020\",430,250,340,\"1,540\"\n"
              "Northgate,900,300,260,340,\"1,160\"\n",
    "lighthouses": "Lighthouse,County,Year lit,Height\nSouth Point,Kerry,1841,28\nGull Rock,Cork,1875,19\n"
                   "Black Head,Clare,1902,15\nOld Quay,Cork,1933,11\n",
    "squad": "Player,Position,Caps,Team\nTomas Berg,Keeper,12,Falcons\nAnders Lund,Defender,30,Harriers\n"
             "Rune Dahl,Defender,8,Falcons\nOla Nes,Forward,21,Harriers\nDan Holm,Forward,5,Falcons\n",
    "carriers": "Carrier,Code,Permit\nBlue Sky Air,BSA,410\nNorthwind,PRM,388\nPolar Jet,PLJ,512\n",
}


@pytest.fixture(scope="module")
def tables(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[dataset_pb2.Dataset, duckdb.DuckDBPyConnection]]:
    return profiled_tables(TABLES, tmp_path_factory.mktemp("shapes"))


def _answer(tables: dict[str, tuple[dataset_pb2.Dataset, duckdb.DuckDBPyConnection]], table: str,
            question: str) -> list[tuple[object, ...]]:
    dataset, connection = tables[table]
    return connection.execute(compile_plan(plan_question(question, dataset), dataset)).fetchall()


def _asks(tables: dict[str, tuple[dataset_pb2.Dataset, duckdb.DuckDBPyConnection]], table: str,
          question: str) -> str:
    dataset, _ = tables[table]
    with pytest.raises(ClarificationNeededError) as raised:
        plan_question(question, dataset)
    return raised.value.message


def test_a_verb_naming_an_unused_column_is_asked_about(tables: dict) -> None:
    # "won" is the verb of the Wins column; comparing Points instead answers another question.
    message = _asks(tables, "league", "how many clubs have won more than 1,600 points?")
    assert "Wins" in message


def test_the_same_table_still_answers_a_comparison_on_the_named_column(tables: dict) -> None:
    assert _answer(tables, "league", "how many clubs have more than 1,600 points?")[0][0] == 2


def test_how_many_more_is_a_difference_and_is_asked_about(tables: dict) -> None:
    message = _asks(tables, "squad", "how many more caps does anders lund have than rune dahl?")
    assert "difference" in message


def test_which_answered_with_one_total_is_asked_about(tables: dict) -> None:
    # "undertaking" names no column, so the plan counts positions over the whole table.
    message = _asks(tables, "squad", "which undertaking had the greatest number of positions?")
    assert "label" in message


def test_a_year_column_is_never_the_sum_asked_for(tables: dict) -> None:
    message = _asks(tables, "lighthouses", "what is the sum of year lit?")
    assert "add up years" in message


def test_a_year_column_is_not_compared_with_a_small_number(tables: dict) -> None:
    message = _asks(tables, "lighthouses", "what was the first year lit lower than 2nd?")
    assert "no year" in message


def test_a_year_column_compared_with_a_year_still_answers(tables: dict) -> None:
    rows = _answer(tables, "lighthouses", "how many lighthouses were lit before 1900?")
    assert rows[0][0] == 2


def test_a_word_sharing_letters_with_a_first_name_is_no_value(tables: dict) -> None:
    # "dawn" holds the letters d-a-n of `Dan Holm`: it must not become Player = 'Dan Holm'.
    dataset, _ = tables["squad"]
    with pytest.raises(ClarificationNeededError) as raised:
        plan_question("which forward trained at dawn?", dataset)
    assert "dawn" in raised.value.message


def test_a_code_is_not_read_as_an_abbreviation_of_a_word(tables: dict) -> None:
    # `PRM` keeps the opening and consonants of "permit", yet a code is only ever written as it is:
    # the question ranks all carriers by Permit, not those with code PRM.
    rows = _answer(tables, "carriers", "which carrier has the highest permit")
    assert [r[0] for r in rows] == ["Polar Jet"]
