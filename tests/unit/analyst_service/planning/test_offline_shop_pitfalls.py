"""Questions a newcomer once got wrong answers to, in this project's own wording, on a small shop.

The shop has orders (one row per order, with its total), order lines (several per order) and a
product catalogue, linked by declared relationships. Each answer must equal a hand-written query;
questions that cannot be answered right must not be answered at all.
"""

from __future__ import annotations


import duckdb
import pytest

from analyst_service.compiler import compile_plan
from analyst_service.errors import PlannerError
from analyst_service.planning.offline import plan_question
from tests.unit.analyst_service.planning.profiled_tables import profiled_dataset, sorted_rows
from csv_analyst.v1 import dataset_pb2

FILES = {
    "orders": ("order_id,buyer_id,placed_on,total,status\n"
               "1,10,2024-01-03,40.0,completed\n2,,2024-01-15,15.5,completed\n3,11,2024-02-02,99.0,cancelled\n"
               "4,,2024-01-20,20.0,completed\n5,10,2024-03-05,12.0,pending\n6,12,2024-03-09,30.0,completed\n"
               "7,11,2024-03-28,8.0,completed\n",
               {"order_id": "Order identifier (unique).", "buyer_id": "Buyer account; empty for guest purchases.",
                "total": "Order revenue: the amount paid for the whole order."}),
    "lines": ("line_id,order_id,product_id,category,quantity,price\n"
              "1,1,100,Books,2,10.0\n2,1,101,Toys,1,20.0\n3,2,100,Books,1,15.5\n4,3,102,Garden,3,33.0\n"
              "5,4,101,Toys,1,20.0\n6,5,100,Books,1,12.0\n7,6,102,Garden,1,30.0\n8,7,101,Toys,1,8.0\n",
              {"product_id": "The product sold (catalogue.product_id)."}),
    "catalogue": ("product_id,title,stock\n100,Atlas,0\n101,Kite,4\n102,Rake,0\n103,Globe,7\n",
                  {"product_id": "Product identifier (unique).", "stock": "Units in stock."}),
}
RELATIONSHIPS = [("lines", "order_id", "orders", "order_id"), ("lines", "product_id", "catalogue", "product_id")]


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> tuple[dataset_pb2.Dataset, duckdb.DuckDBPyConnection]:
    return profiled_dataset("shop", FILES, RELATIONSHIPS, tmp_path_factory.mktemp("shop"))


@pytest.mark.parametrize(("question", "expected_sql"), [
    # Rows with an empty buyer are the guest purchases the description names.
    ("how many orders did guest buyers make", "SELECT count(*) FROM orders WHERE buyer_id IS NULL"),
    # "out of <quantity>": the quantity is zero; products are counted in the catalogue, not in the lines.
    ("count the products that are out of stock", "SELECT count(*) FROM catalogue WHERE stock <= 0"),
    ("how many products are listed", "SELECT count(*) FROM catalogue"),
    # An amount named on its own with a period is its total, not a listing.
    ("revenue in March 2024", "SELECT sum(total) FROM orders WHERE placed_on >= '2024-03-01' AND placed_on < '2024-04-01'"),
    ("revenue last month", "SELECT sum(total) FROM orders WHERE placed_on >= '2024-03-01' AND placed_on < '2024-04-01'"),
    # "which <time unit>": the one bucket that ranks first.
    ("in which month were the fewest orders placed",
     "SELECT date_trunc('month', placed_on), count(*) FROM orders GROUP BY 1 ORDER BY 2 LIMIT 1"),
])
def test_answers_match_hand_written_sql(shop: tuple[dataset_pb2.Dataset, duckdb.DuckDBPyConnection],
                                        question: str, expected_sql: str) -> None:
    dataset, connection = shop
    plan = plan_question(question, dataset)
    assert sorted_rows(connection, compile_plan(plan, dataset)) == sorted_rows(connection, expected_sql), plan.explanation


@pytest.mark.parametrize("question", [
    "average packaging cost per order",  # no such column: never answered with another cost
    "what share of revenue came from Books",  # order totals would be counted once per order line
    "which category brought in the highest revenue",  # the same double counting, ranked
])
def test_questions_that_cannot_be_answered_right_are_not_answered(
        shop: tuple[dataset_pb2.Dataset, duckdb.DuckDBPyConnection], question: str) -> None:
    with pytest.raises(PlannerError):
        plan_question(question, shop[0])
