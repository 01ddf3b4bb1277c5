"""Money units, averages per row, readable labels and participles, on a small lodging dataset.

Bookings (one row per booking, with the amount paid), stays (several nights of a room per
booking, each with its nightly rate) and rooms (with a name), linked by declared relationships.
Each answer must equal a hand-written query; a question that would be read wrongly is not answered.
The wording and tables are this project's own.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from analyst_service.compiler import compile_plan
from analyst_service.errors import PlannerError
from analyst_service.planning.offline import plan_question
from analyst_service.planning.participles import opposite_participles
from tests.unit.analyst_service.planning.profiled_tables import profiled_dataset, profiled_table, sorted_rows
from csv_analyst.v1 import dataset_pb2

FILES = {
    "bookings": ("booking_id,guest_id,booked_on,amount,renewed\n"
                 "1,7,2024-05-01,80.0,true\n2,8,2024-05-03,240.0,false\n3,7,2024-06-11,120.0,false\n"
                 "4,9,2024-06-20,45.0,true\n",
                 {"booking_id": "Booking identifier (unique).", "amount": "Booking revenue: the amount paid."}),
    "stays": ("stay_id,booking_id,room_id,kind,nights,rate\n"
              "1,1,20,single,1,80.0\n2,2,21,double,2,95.0\n3,2,20,single,1,50.0\n4,3,22,suite,1,120.0\n"
              "5,4,21,double,3,15.0\n",
              {"stay_id": "Stay identifier (unique).", "rate": "Price of one night in the room."}),
    "rooms": ("room_id,name,beds\n20,Heron,1\n21,Otter,2\n22,Lynx,4\n",
              {"room_id": "Room identifier (unique).", "name": "Name of the room."}),
}
RELATIONSHIPS = [("stays", "booking_id", "bookings", "booking_id"), ("stays", "room_id", "rooms", "room_id")]


@pytest.fixture(scope="module")
def lodging(tmp_path_factory: pytest.TempPathFactory) -> tuple[dataset_pb2.Dataset, duckdb.DuckDBPyConnection]:
    return profiled_dataset("lodging", FILES, RELATIONSHIPS, tmp_path_factory.mktemp("lodging"))


@pytest.mark.parametrize(("question", "expected_sql"), [
    # An amount of money named with its unit compares with the money column of the rows counted.
    ("how many bookings were between 60 and 150 dollars?", "SELECT count(*) FROM bookings WHERE amount BETWEEN 60 AND 150"),
    ("how many bookings over $100?", "SELECT count(*) FROM bookings WHERE amount > 100"),
    # An average per row (its own unique id) is the plain average; the other grouping stays.
    ("mean nights per stay for each kind", "SELECT kind, avg(nights) FROM stays GROUP BY kind"),
    ("average nights per stay", "SELECT avg(nights) FROM stays"),
    # Things named by a table with a name column are shown by name as well as by id.
    ("total nights per room",
     "SELECT r.room_id, r.name, sum(s.nights) FROM stays s JOIN rooms r USING (room_id) GROUP BY ALL"),
])
def test_questions_match_hand_written_sql(
        lodging: tuple[dataset_pb2.Dataset, duckdb.DuckDBPyConnection], question: str, expected_sql: str) -> None:
    dataset, connection = lodging
    plan = plan_question(question, dataset)
    assert sorted_rows(connection, compile_plan(plan, dataset)) == sorted_rows(connection, expected_sql), plan.explanation


def test_a_money_unit_with_no_single_money_column_is_not_answered(
        lodging: tuple[dataset_pb2.Dataset, duckdb.DuckDBPyConnection]) -> None:
    # Both the booking amount and the nightly rate hold 50-90 dollars, and no table is named.
    with pytest.raises(PlannerError):
        plan_question("how many cost between 50 and 90 dollars?", lodging[0])


def test_an_active_participle_never_names_a_passive_column(
        lodging: tuple[dataset_pb2.Dataset, duckdb.DuckDBPyConnection]) -> None:
    assert opposite_participles("renewing", "renewed") and opposite_participles("booked", "booking")
    assert not opposite_participles("smoking", "smoker")
    # Guests who renew are not bookings that were renewed: asked back, never answered with `renewed`.
    with pytest.raises(PlannerError):
        plan_question("how many bookings did renewing guests make?", lodging[0])


def test_an_id_is_never_compared_as_an_amount(tmp_path: Path) -> None:
    # "more than 1 parcel" counts parcels per shipment; `parcel_id > 1` would answer something else.
    dataset, _ = profiled_table("shipments", _write(tmp_path / "shipments.csv",
                                                    "shipment_id,parcel_id,weight\n1,10,5\n1,11,3\n2,12,8\n"))
    try:
        plan = plan_question("how many shipments had more than 1 parcel?", dataset)
    except PlannerError:
        return
    assert not any(f.column.endswith("_id") for f in plan.filters), plan.explanation


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path
