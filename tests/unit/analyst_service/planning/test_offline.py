"""The offline planner answers every registry prompt correctly, refines follow-ups and asks back.

Each prompt is planned, compiled with the real compiler and run on DuckDB views over a small
generated dataset; the rows must equal those of an independent hand-written SQL query.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from analyst_service.catalog import load_registry, table_path
from analyst_service.compiler import compile_plan
from analyst_service.errors import PlannerError
from analyst_service.planning.base import PlanningContext
from analyst_service.planning.offline import OfflinePlanner
from csv_analyst.v1 import dataset_pb2, plan_pb2
from datasets.generator import generate

EXPECTED: dict[str, dict[str, str]] = {
    "ecommerce": {
        "What is the total revenue by month?":
            "SELECT date_trunc('month', order_date), sum(total) FROM orders GROUP BY 1 ORDER BY 1",
        "How many orders are there per status?": "SELECT status, count(*) FROM orders GROUP BY status",
        "What is the average order total for completed orders?":
            "SELECT avg(total) FROM orders WHERE status = 'completed'",
        "Top 5 categories by quantity sold":
            "SELECT category, sum(quantity) AS q FROM order_items GROUP BY 1 ORDER BY q DESC, category LIMIT 5",
        "How many orders were returned in 2024?":
            "SELECT count(*) FROM orders WHERE returned AND year(order_date) = 2024",
        "What is the total quantity sold per order status?":
            "SELECT o.status, sum(i.quantity) FROM order_items i JOIN orders o USING (order_id) GROUP BY 1",
        "Top 10 product names by quantity sold":
            "SELECT p.name, sum(i.quantity) AS q FROM order_items i JOIN inventory p USING (product_id) "
            "GROUP BY 1 ORDER BY q DESC, p.name LIMIT 10",
        "How many orders have a total of more than 500?": "SELECT count(*) FROM orders WHERE total > 500",
        "Which products have fewer than 10 in stock?": "SELECT * FROM inventory WHERE stock < 10",
    },
    "support": {
        "How many tickets were created per month?":
            "SELECT date_trunc('month', created_at), count(*) FROM tickets GROUP BY 1 ORDER BY 1",
        "What is the average CSAT score by priority?": "SELECT priority, avg(csat_score) FROM tickets GROUP BY 1",
        "How many tickets are still open?": "SELECT count(*) FROM tickets WHERE resolved_at IS NULL",
        "How many tickets met the SLA per category?":
            "SELECT category, count(*) FROM tickets WHERE sla_met GROUP BY 1",
        "Top 3 categories by number of urgent tickets":
            "SELECT category, count(*) AS n FROM tickets WHERE priority = 'urgent' GROUP BY 1 "
            "ORDER BY n DESC, category LIMIT 3",
        "Average CSAT score per week in 2024":
            "SELECT date_trunc('week', created_at), avg(csat_score) FROM tickets WHERE year(created_at) = 2024 "
            "GROUP BY 1 ORDER BY 1",
        "Daily number of high priority tickets in December 2024":
            "SELECT CAST(CAST(created_at AS DATE) AS TIMESTAMP), count(*) FROM tickets WHERE priority = 'high' "
            "AND strftime(created_at, '%Y-%m') = '2024-12' GROUP BY 1 ORDER BY 1",
        "How many tickets are there per category and priority?":
            "SELECT category, priority, count(*) FROM tickets GROUP BY ALL",
    },
    "sensors": {
        "What is the average temperature per location?": "SELECT location, avg(temp) FROM sensors GROUP BY 1",
        "What is the maximum humidity by month?":
            "SELECT date_trunc('month', timestamp), max(humidity) FROM sensors GROUP BY 1 ORDER BY 1",
        "How many anomalies were flagged per sensor?":
            "SELECT sensor_id, count(*) FROM sensors WHERE anomaly_flag GROUP BY 1",
        "Top 5 locations with the highest average humidity":
            "SELECT location, avg(humidity) AS h FROM sensors GROUP BY 1 ORDER BY h DESC LIMIT 5",
        "Average temperature in Berlin by week":
            "SELECT date_trunc('week', timestamp), avg(temp) FROM sensors WHERE location = 'Berlin' GROUP BY 1 ORDER BY 1",
        "How many readings have a temperature above 30?": "SELECT count(*) FROM sensors WHERE temp > 30",
        "What is the minimum temperature recorded in Oslo in 2024?":
            "SELECT min(temp) FROM sensors WHERE location = 'Oslo' AND year(timestamp) = 2024",
        "How many distinct sensors are there per location?":
            "SELECT location, count(DISTINCT sensor_id) FROM sensors GROUP BY 1",
    },
}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, dataset_pb2.Dataset]]]:
    out = tmp_path_factory.mktemp("planner")
    generate(out, 0.05)
    yield out, {d.dataset_id: d for d in load_registry(out)}


def _connection(out: Path, dataset: dataset_pb2.Dataset) -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    for table in dataset.tables:
        connection.execute(f"CREATE VIEW {table.name} AS SELECT * FROM read_csv('{table_path(out, table)}', header=true)")
    return connection


def _normal(rows: list[tuple[object, ...]], ordered: bool) -> list[tuple[object, ...]]:
    def cell(value: object) -> object:
        if isinstance(value, float):
            return None if math.isnan(value) else round(value, 6)
        return str(value) if value is not None else None

    normal = [tuple(cell(v) for v in row) for row in rows]
    return normal if ordered else sorted(normal, key=repr)


def _plan(question: str, dataset: dataset_pb2.Dataset, previous: plan_pb2.Plan | None = None) -> plan_pb2.Plan:
    return asyncio.run(OfflinePlanner().plan(question, dataset, PlanningContext(previous_plan=previous)))


def _answer(out: Path, dataset: dataset_pb2.Dataset, plan: plan_pb2.Plan) -> list[tuple[object, ...]]:
    return _connection(out, dataset).execute(compile_plan(plan, dataset)).fetchall()


def test_expectations_cover_every_registry_prompt(demo: tuple[Path, dict[str, dataset_pb2.Dataset]]) -> None:
    _, datasets = demo
    assert {d: list(p) for d, p in EXPECTED.items()} == {d.dataset_id: list(d.prompts) for d in datasets.values()}


@pytest.mark.parametrize(("dataset_id", "question"), [(d, q) for d, qs in EXPECTED.items() for q in qs])
def test_every_registry_prompt_is_answered_correctly(
    demo: tuple[Path, dict[str, dataset_pb2.Dataset]], dataset_id: str, question: str
) -> None:
    out, datasets = demo
    dataset = datasets[dataset_id]
    plan = _plan(question, dataset)
    assert plan.dataset_id == dataset_id
    assert plan.explanation.endswith(".") and len(plan.explanation) > 20
    expected_sql = EXPECTED[dataset_id][question]
    expected = _connection(out, dataset).execute(expected_sql).fetchall()
    assert expected and any(v not in (0, None) for row in expected for v in row), "the check must not be trivial"
    ordered = "ORDER BY" in expected_sql
    assert _normal(_answer(out, dataset, plan), ordered) == _normal(expected, ordered)


def test_plans_are_deterministic(demo: tuple[Path, dict[str, dataset_pb2.Dataset]]) -> None:
    _, datasets = demo
    for dataset in datasets.values():
        for question in dataset.prompts:
            assert _plan(question, dataset) == _plan(question, dataset)


def test_explanation_describes_the_plan(demo: tuple[Path, dict[str, dataset_pb2.Dataset]]) -> None:
    _, datasets = demo
    plan = _plan("Top 3 categories by number of urgent tickets", datasets["support"])
    assert plan.explanation == "Count of rows per category over tickets where priority = urgent, highest 3 by count."


def test_follow_ups_refine_the_previous_plan(demo: tuple[Path, dict[str, dataset_pb2.Dataset]]) -> None:
    out, datasets = demo
    dataset = datasets["ecommerce"]
    first = _plan("What is the total revenue by status?", dataset)
    by_month = _plan("now by month", dataset, first)
    assert [(g.column, g.bucket) for g in by_month.group_by] == [("order_date", plan_pb2.TIME_BUCKET_MONTH)]
    completed = _plan("only completed ones", dataset, by_month)
    top = _plan("top 3 instead", dataset, completed)
    expected = _connection(out, dataset).execute(
        "SELECT date_trunc('month', order_date) AS m, sum(total) AS s FROM orders WHERE status = 'completed' "
        "GROUP BY 1 ORDER BY s DESC LIMIT 3").fetchall()
    assert _normal(_answer(out, dataset, top), True) == _normal(expected, True)
    other = _plan("what about cancelled orders?", dataset, top)
    assert [(f.column, f.values[0].string_value) for f in other.filters] == [("status", "cancelled")]
    assert other.limit == 3


def test_follow_up_on_sensors_filters_location(demo: tuple[Path, dict[str, dataset_pb2.Dataset]]) -> None:
    out, datasets = demo
    dataset = datasets["sensors"]
    first = _plan("What is the maximum humidity by month?", dataset)
    berlin = _plan("what about sensors in Berlin?", dataset, first)
    expected = _connection(out, dataset).execute(
        "SELECT date_trunc('month', timestamp), max(humidity) FROM sensors WHERE location = 'Berlin' GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert _normal(_answer(out, dataset, berlin), True) == _normal(expected, True)


def test_a_new_full_question_is_not_treated_as_follow_up(demo: tuple[Path, dict[str, dataset_pb2.Dataset]]) -> None:
    _, datasets = demo
    dataset = datasets["support"]
    first = _plan("How many tickets are still open?", dataset)
    second = _plan("What is the average CSAT score by priority?", dataset, first)
    assert second == _plan("What is the average CSAT score by priority?", dataset)


@pytest.mark.parametrize(("dataset_id", "question", "named"), [
    ("ecommerce", "what is the meaning of life", "meaning"),
    ("ecommerce", "How many unicorns are there?", "unicorns"),
    ("support", "Average salary by department", "department"),
    ("sensors", "", "empty"),
    # orders.total is per order; summing it per item category would double count.
    ("ecommerce", "What is the total revenue by category?", "orders.total"),
])
def test_unmappable_questions_raise_planner_error(
    demo: tuple[Path, dict[str, dataset_pb2.Dataset]], dataset_id: str, question: str, named: str
) -> None:
    _, datasets = demo
    with pytest.raises(PlannerError) as raised:
        _plan(question, datasets[dataset_id])
    assert raised.value.reason == "PLANNER_ERROR"
    assert named in raised.value.message


def test_clarification_names_candidate_columns(demo: tuple[Path, dict[str, dataset_pb2.Dataset]]) -> None:
    _, datasets = demo
    with pytest.raises(PlannerError) as raised:
        _plan("what is the meaning of life", datasets["sensors"])
    assert "sensors.temp" in raised.value.metadata["candidates"]


@pytest.mark.parametrize(("question", "expected_sql"), [
    ("How many customers are there?", "SELECT count(DISTINCT customer_id) FROM orders"),
    ("How many orders per category?",
     "SELECT category, count(DISTINCT order_id) FROM order_items GROUP BY 1"),
    ("Total quantity sold per month in 2024",
     "SELECT date_trunc('month', o.order_date) AS m, sum(i.quantity) FROM order_items i JOIN orders o USING (order_id) "
     "WHERE year(o.order_date) = 2024 GROUP BY 1 ORDER BY 1"),
    ("Which category has the highest total quantity?",
     "SELECT category, sum(quantity) AS q FROM order_items GROUP BY 1 ORDER BY q DESC LIMIT 1"),
    ("Top 5 orders by total", "SELECT * FROM orders ORDER BY total DESC LIMIT 5"),
    ("Number of orders that were not returned",
     "SELECT count(*) FROM orders WHERE NOT returned"),
    ("average price of Electronics or Books items",
     "SELECT avg(price) FROM order_items WHERE category IN ('Electronics', 'Books')"),
])
def test_other_questions(demo: tuple[Path, dict[str, dataset_pb2.Dataset]], question: str, expected_sql: str) -> None:
    out, datasets = demo
    dataset = datasets["ecommerce"]
    expected = _connection(out, dataset).execute(expected_sql).fetchall()
    ordered = "ORDER BY" in expected_sql
    assert _normal(_answer(out, dataset, _plan(question, dataset)), ordered) == _normal(expected, ordered)
