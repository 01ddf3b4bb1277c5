"""compile_plan: every operator, aggregation and bucket runs in a real in-process DuckDB over tiny
CSVs; every rejection names its exact field path; the same plan always gives the same SQL."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from analyst_service.compiler import DEFAULT_LIMIT, MAX_LIMIT, compile_plan
from analyst_service.errors import ValidationError
from analyst_service.validation.sql import check_sql
from csv_analyst.v1 import dataset_pb2, plan_pb2, value_pb2

P = plan_pb2

ORDERS_CSV = """\
order_id,customer_id,order_date,placed_at,total,status,returned
1,10,2024-01-01,2024-01-01 09:15:00,10.50,completed,false
2,10,2024-01-07,2024-01-07 09:45:00,20.00,completed,true
3,11,2024-01-08,2024-01-08 10:05:00,5.25,pending,false
4,12,2024-02-15,2024-02-15 23:59:59,100.00,cancelled,false
5,11,2024-04-01,2024-04-01 00:00:00,,completed,false
6,13,2025-06-30,2025-06-30 12:30:00,42.00,O'Brien's,false
"""

ITEMS_CSV = """\
item_id,order_id,category,quantity,price
100,1,Books,1,10.50
101,2,Books,2,5.00
102,2,Toys,1,10.00
103,3,Garden,5,1.05
104,4,Toys,10,10.00
105,99,Orphan,1,1.00
"""

CUSTOMERS_CSV = """\
customer_id,name,region
10,Ann,north
11,Bob,south
12,Cy,north
14,Dee,west
"""


def _columns(*pairs: tuple[str, str]) -> list[dataset_pb2.Column]:
    return [dataset_pb2.Column(name=n, type=t) for n, t in pairs]


def make_dataset() -> dataset_pb2.Dataset:
    """orders (many) -> customers (one); items (many) -> orders (one)."""
    return dataset_pb2.Dataset(
        dataset_id="shop",
        tables=[
            dataset_pb2.Table(name="orders", file="orders.csv", columns=_columns(
                ("order_id", "BIGINT"), ("customer_id", "BIGINT"), ("order_date", "DATE"),
                ("placed_at", "TIMESTAMP"), ("total", "DECIMAL(10,2)"), ("status", "VARCHAR"),
                ("returned", "BOOLEAN"))),
            dataset_pb2.Table(name="items", file="items.csv", columns=_columns(
                ("item_id", "BIGINT"), ("order_id", "BIGINT"), ("category", "VARCHAR"),
                ("quantity", "INTEGER"), ("price", "DOUBLE"))),
            dataset_pb2.Table(name="customers", file="customers.csv", columns=_columns(
                ("customer_id", "BIGINT"), ("name", "VARCHAR"), ("region", "VARCHAR"))),
        ],
        relationships=[
            dataset_pb2.Relationship(from_table="items", from_column="order_id", to_table="orders", to_column="order_id"),
            dataset_pb2.Relationship(from_table="orders", from_column="customer_id", to_table="customers",
                                     to_column="customer_id"),
        ],
    )


Run = Callable[[plan_pb2.Plan], list[tuple[object, ...]]]


@pytest.fixture
def dataset() -> dataset_pb2.Dataset:
    return make_dataset()


@pytest.fixture
def run(tmp_path: Path, dataset: dataset_pb2.Dataset) -> Run:
    """Compile a plan, check it passes the SQL policy, and run it in DuckDB over the tiny CSVs."""
    files = {"orders": ORDERS_CSV, "items": ITEMS_CSV, "customers": CUSTOMERS_CSV}
    connection = duckdb.connect(":memory:")
    for table in dataset.tables:
        path = tmp_path / table.file
        path.write_text(files[table.name])
        types = {c.name: c.type for c in table.columns}
        connection.execute(
            f"CREATE TABLE \"{table.name}\" AS SELECT * FROM read_csv(?, header = true, columns = ?)",
            [str(path), types])

    def execute(plan: plan_pb2.Plan) -> list[tuple[object, ...]]:
        sql = compile_plan(plan, dataset)
        check_sql(sql, [t.name for t in dataset.tables])  # every compiled plan must pass the policy
        return connection.execute(sql).fetchall()

    return execute


def V(value: object = None) -> value_pb2.Value:  # noqa: N802 - reads like a literal
    if value is None:
        return value_pb2.Value(null_value=0)
    if isinstance(value, bool):
        return value_pb2.Value(bool_value=value)
    if isinstance(value, int):
        return value_pb2.Value(int_value=value)
    if isinstance(value, float):
        return value_pb2.Value(double_value=value)
    return value_pb2.Value(string_value=str(value))


def col(name: str, agg: int = 0, alias: str = "", bucket: int = 0) -> plan_pb2.SelectItem:
    return P.SelectItem(column=name, aggregation=agg, alias=alias, bucket=bucket)


def flt(column: str, op: int, *values: object) -> plan_pb2.Filter:
    return P.Filter(column=column, op=op, values=[V(v) for v in values])


def ids_where(run: Run, *filters: plan_pb2.Filter) -> list[object]:
    plan = P.Plan(base_table="orders", select=[col("order_id")], filters=list(filters),
                  order_by=[P.OrderBy(key="order_id")])
    return [row[0] for row in run(plan)]


def violations(plan: plan_pb2.Plan, dataset: dataset_pb2.Dataset, **kwargs: int) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as info:
        compile_plan(plan, dataset, **kwargs)
    assert info.value.violations, "a ValidationError must list its violations"
    assert info.value.metadata["field"] == info.value.violations[0][0]
    return info.value.violations


def paths(plan: plan_pb2.Plan, dataset: dataset_pb2.Dataset, **kwargs: int) -> list[str]:
    return [field for field, _ in violations(plan, dataset, **kwargs)]


# --- filters: every operator -------------------------------------------------------------------

@pytest.mark.parametrize(("flt_", "expected"), [
    (flt("status", P.FILTER_OPERATOR_EQ, "completed"), [1, 2, 5]),
    (flt("status", P.FILTER_OPERATOR_NE, "completed"), [3, 4, 6]),
    (flt("total", P.FILTER_OPERATOR_LT, 10.5), [3]),
    (flt("total", P.FILTER_OPERATOR_LE, 10.5), [1, 3]),
    (flt("total", P.FILTER_OPERATOR_GT, 20), [4, 6]),
    (flt("total", P.FILTER_OPERATOR_GE, 20), [2, 4, 6]),
    (flt("customer_id", P.FILTER_OPERATOR_IN, 11, 13), [3, 5, 6]),
    (flt("status", P.FILTER_OPERATOR_IN, "pending"), [3]),
    (flt("total", P.FILTER_OPERATOR_BETWEEN, 5.25, 20), [1, 2, 3]),
    (flt("order_date", P.FILTER_OPERATOR_BETWEEN, "2024-01-07", "2024-02-15"), [2, 3, 4]),
    (flt("order_date", P.FILTER_OPERATOR_GE, "2024-04-01"), [5, 6]),
    (flt("status", P.FILTER_OPERATOR_CONTAINS, "PLET"), [1, 2, 5]),
    (flt("status", P.FILTER_OPERATOR_STARTSWITH, "Pen"), [3]),
    (flt("status", P.FILTER_OPERATOR_ENDSWITH, "LED"), [4]),
    (flt("order_date", P.FILTER_OPERATOR_STARTSWITH, "2024-01"), [1, 2, 3]),
    (flt("total", P.FILTER_OPERATOR_IS_NULL), [5]),
    (flt("total", P.FILTER_OPERATOR_NOT_NULL), [1, 2, 3, 4, 6]),
    (flt("returned", P.FILTER_OPERATOR_EQ, True), [2]),
    (flt("returned", P.FILTER_OPERATOR_NE, True), [1, 3, 4, 5, 6]),
    (flt("placed_at", P.FILTER_OPERATOR_LT, "2024-01-07 09:45:00"), [1]),
], ids=lambda v: plan_pb2.FilterOperator.Name(v.op) + ":" + v.column if isinstance(v, plan_pb2.Filter) else None)
def test_every_filter_operator_selects_the_right_rows(run: Run, flt_: plan_pb2.Filter, expected: list[int]) -> None:
    assert ids_where(run, flt_) == expected


def test_filters_are_combined_with_and(run: Run) -> None:
    assert ids_where(run, flt("status", P.FILTER_OPERATOR_EQ, "completed"),
                     flt("total", P.FILTER_OPERATOR_GT, 15)) == [2]


def test_every_filter_operator_is_covered() -> None:
    covered = {P.FILTER_OPERATOR_EQ, P.FILTER_OPERATOR_NE, P.FILTER_OPERATOR_LT, P.FILTER_OPERATOR_LE,
               P.FILTER_OPERATOR_GT, P.FILTER_OPERATOR_GE, P.FILTER_OPERATOR_IN, P.FILTER_OPERATOR_BETWEEN,
               P.FILTER_OPERATOR_CONTAINS, P.FILTER_OPERATOR_STARTSWITH, P.FILTER_OPERATOR_ENDSWITH,
               P.FILTER_OPERATOR_IS_NULL, P.FILTER_OPERATOR_NOT_NULL}
    assert covered == set(plan_pb2.FilterOperator.values()) - {P.FILTER_OPERATOR_UNSPECIFIED}


# --- literals are escaped, never concatenated ---------------------------------------------------

@pytest.mark.parametrize("text", [
    "O'Brien's",
    "x' OR '1'='1",
    "'; DROP TABLE orders; --",
    "\\' OR 1=1 --",
    "completed\" OR \"1\"=\"1",
    "a'' OR ''b",
])
def test_quotes_in_literals_are_escaped(run: Run, text: str, dataset: dataset_pb2.Dataset) -> None:
    # Equality with a hostile string matches only the row holding exactly that string (or none).
    expected = [6] if text == "O'Brien's" else []
    assert ids_where(run, flt("status", P.FILTER_OPERATOR_EQ, text)) == expected
    assert ids_where(run, flt("status", P.FILTER_OPERATOR_CONTAINS, text)) == expected
    assert ids_where(run, flt("status", P.FILTER_OPERATOR_IN, "pending", text)) == [3, *expected]
    # ...and the table is still there with all its rows.
    assert len(ids_where(run)) == 6


def test_quote_in_literal_is_a_single_string_literal(dataset: dataset_pb2.Dataset) -> None:
    sql = compile_plan(P.Plan(base_table="orders", filters=[flt("status", P.FILTER_OPERATOR_EQ, "x' OR '1'='1")]),
                       dataset)
    assert "'x'' OR ''1''=''1'" in sql
    assert " OR " not in sql.replace("'x'' OR ''1''=''1'", "")


def test_null_literal_with_in(run: Run) -> None:
    # NULL inside IN never matches, but must not break the query.
    assert ids_where(run, flt("customer_id", P.FILTER_OPERATOR_IN, 12, None)) == [4]


# --- aggregations -----------------------------------------------------------------------------

def test_every_aggregation_without_group_by(run: Run) -> None:
    plan = P.Plan(base_table="orders", select=[
        col("total", P.AGGREGATION_SUM), col("total", P.AGGREGATION_AVG), col("total", P.AGGREGATION_MIN),
        col("total", P.AGGREGATION_MAX), col("total", P.AGGREGATION_COUNT), col("*", P.AGGREGATION_COUNT),
        col("customer_id", P.AGGREGATION_COUNT_DISTINCT), col("order_date", P.AGGREGATION_MAX, alias="last_day"),
    ])
    [row] = run(plan)
    total_sum, total_avg, total_min, total_max, total_count, count_star, customers, last_day = row
    assert float(total_sum) == pytest.approx(177.75)  # type: ignore[arg-type]
    assert float(total_avg) == pytest.approx(177.75 / 5)  # type: ignore[arg-type]
    assert float(total_min) == pytest.approx(5.25)  # type: ignore[arg-type]
    assert float(total_max) == pytest.approx(100.0)  # type: ignore[arg-type]
    assert (total_count, count_star, customers) == (5, 6, 4)  # COUNT(col) skips the NULL total
    assert last_day == datetime.date(2025, 6, 30)


def test_default_aliases(dataset: dataset_pb2.Dataset) -> None:
    plan = P.Plan(base_table="orders", select=[
        col("status"), col("total", P.AGGREGATION_SUM), col("*", P.AGGREGATION_COUNT),
        col("customer_id", P.AGGREGATION_COUNT_DISTINCT), col("orders.total", P.AGGREGATION_AVG),
        col("order_date", bucket=P.TIME_BUCKET_MONTH), col("placed_at", alias="when"),
    ], group_by=[P.GroupBy(column="status"), P.GroupBy(column="order_date", bucket=P.TIME_BUCKET_MONTH),
                 P.GroupBy(column="placed_at")])
    sql = compile_plan(plan, dataset)
    for alias in ('AS "status"', 'AS "sum_total"', 'AS "count"', 'AS "count_distinct_customer_id"',
                  'AS "avg_total"', 'AS "order_date_month"', 'AS "when"'):
        assert alias in sql


def test_group_by_with_order_by_alias_and_limit(run: Run) -> None:
    plan = P.Plan(base_table="orders", select=[col("status"), col("*", P.AGGREGATION_COUNT, alias="n"),
                                                col("total", P.AGGREGATION_SUM, alias="revenue")],
                  group_by=[P.GroupBy(column="status")],
                  order_by=[P.OrderBy(key="n", descending=True), P.OrderBy(key="status")], limit=3)
    rows = run(plan)
    assert [(r[0], r[1]) for r in rows] == [("completed", 3), ("O'Brien's", 1), ("cancelled", 1)]
    assert float(rows[0][2]) == pytest.approx(30.5)  # type: ignore[arg-type]


def test_order_by_grouped_column_and_descending_nulls_last(run: Run) -> None:
    plan = P.Plan(base_table="orders", select=[col("order_id"), col("total")],
                  order_by=[P.OrderBy(key="total", descending=True)])
    assert [r[0] for r in run(plan)] == [4, 6, 2, 1, 3, 5]
    plan = P.Plan(base_table="orders", select=[col("status"), col("*", P.AGGREGATION_COUNT)],
                  group_by=[P.GroupBy(column="status"), P.GroupBy(column="customer_id")],
                  order_by=[P.OrderBy(key="customer_id", descending=True), P.OrderBy(key="status")])
    assert [r[0] for r in run(plan)] == ["O'Brien's", "cancelled", "completed", "pending", "completed"]


def test_limit_default_and_explicit(dataset: dataset_pb2.Dataset, run: Run) -> None:
    assert compile_plan(P.Plan(base_table="orders"), dataset).endswith(f"LIMIT {DEFAULT_LIMIT + 1}")
    assert compile_plan(P.Plan(base_table="orders", limit=MAX_LIMIT), dataset).endswith(f"LIMIT {MAX_LIMIT}")
    assert len(run(P.Plan(base_table="orders", limit=2))) == 2
    rows = run(P.Plan(base_table="orders"))
    assert len(rows) == 6 and len(rows[0]) == 7  # empty select = every column of the base table


# --- time buckets -----------------------------------------------------------------------------

@pytest.mark.parametrize(("bucket", "column", "expected"), [
    (P.TIME_BUCKET_YEAR, "order_date", [("2024", 5), ("2025", 1)]),  # years are integers
    (P.TIME_BUCKET_QUARTER, "order_date", [("2024-01-01", 4), ("2024-04-01", 1), ("2025-04-01", 1)]),
    (P.TIME_BUCKET_MONTH, "order_date",
     [("2024-01-01", 3), ("2024-02-01", 1), ("2024-04-01", 1), ("2025-06-01", 1)]),
    # 2024-01-07 is a Sunday: it belongs to the week starting Monday 2024-01-01.
    (P.TIME_BUCKET_WEEK, "order_date",
     [("2024-01-01", 2), ("2024-01-08", 1), ("2024-02-12", 1), ("2024-04-01", 1), ("2025-06-30", 1)]),
    (P.TIME_BUCKET_DAY, "placed_at",
     [("2024-01-01", 1), ("2024-01-07", 1), ("2024-01-08", 1), ("2024-02-15", 1), ("2024-04-01", 1),
      ("2025-06-30", 1)]),
    (P.TIME_BUCKET_HOUR, "placed_at",
     [("2024-01-01 09", 1), ("2024-01-07 09", 1), ("2024-01-08 10", 1), ("2024-02-15 23", 1),
      ("2024-04-01 00", 1), ("2025-06-30 12", 1)]),
    # Calendar parts put every day's (week's, year's) same hour (weekday, month) together.
    (P.TIME_BUCKET_HOUR_OF_DAY, "placed_at", [("0", 1), ("9", 2), ("10", 1), ("12", 1), ("23", 1)]),
    (P.TIME_BUCKET_DAY_OF_WEEK, "placed_at", [("1", 4), ("4", 1), ("7", 1)]),
    (P.TIME_BUCKET_MONTH_OF_YEAR, "placed_at", [("1", 3), ("2", 1), ("4", 1), ("6", 1)]),
])
def test_time_buckets(run: Run, bucket: int, column: str, expected: list[tuple[str, int]]) -> None:
    plan = P.Plan(base_table="orders", select=[col(column, bucket=bucket, alias="b"), col("*", P.AGGREGATION_COUNT)],
                  group_by=[P.GroupBy(column=column, bucket=bucket)], order_by=[P.OrderBy(key="b")])
    rows = run(plan)
    width = 13 if bucket == P.TIME_BUCKET_HOUR else 10
    got = [(str(b).replace("T", " ")[:width], n) for b, n in rows]
    assert got == expected


def test_every_time_bucket_is_covered() -> None:
    assert set(plan_pb2.TimeBucket.values()) - {P.TIME_BUCKET_UNSPECIFIED} == {
        P.TIME_BUCKET_HOUR, P.TIME_BUCKET_DAY, P.TIME_BUCKET_WEEK, P.TIME_BUCKET_MONTH, P.TIME_BUCKET_QUARTER,
        P.TIME_BUCKET_YEAR, P.TIME_BUCKET_HOUR_OF_DAY, P.TIME_BUCKET_DAY_OF_WEEK, P.TIME_BUCKET_MONTH_OF_YEAR}


def test_bucketed_select_needs_the_same_bucket_in_group_by(dataset: dataset_pb2.Dataset) -> None:
    plan = P.Plan(base_table="orders", select=[col("order_date", bucket=P.TIME_BUCKET_MONTH),
                                               col("*", P.AGGREGATION_COUNT)],
                  group_by=[P.GroupBy(column="order_date", bucket=P.TIME_BUCKET_YEAR)])
    assert paths(plan, dataset) == ["plan.select[0].column"]


# --- joins ------------------------------------------------------------------------------------

def test_join_many_to_one(run: Run) -> None:
    # items.order_id -> orders.order_id, joined from the referencing side.
    plan = P.Plan(base_table="items", joins=[P.Join(table="orders")],
                  select=[col("orders.status"), col("quantity", P.AGGREGATION_SUM, alias="units")],
                  group_by=[P.GroupBy(column="status")], order_by=[P.OrderBy(key="status")])
    assert run(plan) == [("cancelled", 10), ("completed", 4), ("pending", 5)]


def test_join_reverse_direction(run: Run) -> None:
    # orders is the referenced side; joining items from orders walks the relationship backwards.
    plan = P.Plan(base_table="orders", joins=[P.Join(table="items")],
                  select=[col("orders.order_id", alias="order_id"), col("items.item_id", P.AGGREGATION_COUNT, alias="n")],
                  group_by=[P.GroupBy(column="orders.order_id")], order_by=[P.OrderBy(key="order_id")])
    assert run(plan) == [(1, 1), (2, 2), (3, 1), (4, 1)]  # inner join: orders 5, 6 and item 105 drop


def test_left_join_keeps_unmatched_rows(run: Run) -> None:
    plan = P.Plan(base_table="orders", joins=[P.Join(table="items", type=P.JOIN_TYPE_LEFT)],
                  select=[col("orders.order_id", alias="order_id"), col("items.item_id", P.AGGREGATION_COUNT, alias="n")],
                  group_by=[P.GroupBy(column="orders.order_id")], order_by=[P.OrderBy(key="order_id")])
    assert run(plan) == [(1, 1), (2, 2), (3, 1), (4, 1), (5, 0), (6, 0)]


def test_chain_of_joins_through_an_intermediate_table(run: Run) -> None:
    # items -> orders -> customers: customers is only reachable through orders.
    plan = P.Plan(base_table="items", joins=[P.Join(table="orders"), P.Join(table="customers")],
                  select=[col("region"), col("price", P.AGGREGATION_SUM, alias="revenue")],
                  group_by=[P.GroupBy(column="region")], order_by=[P.OrderBy(key="region")])
    rows = run(plan)
    assert [r[0] for r in rows] == ["north", "south"]
    assert [float(r[1]) for r in rows] == pytest.approx([35.5, 1.05])  # type: ignore[arg-type]


def test_join_order_matters_for_reachability(dataset: dataset_pb2.Dataset) -> None:
    plan = P.Plan(base_table="items", joins=[P.Join(table="customers"), P.Join(table="orders")])
    assert paths(plan, dataset) == ["plan.joins[0].table"]


def test_join_without_relationship_unknown_or_repeated_table(dataset: dataset_pb2.Dataset) -> None:
    plan = P.Plan(base_table="orders", joins=[P.Join(table="nope"), P.Join(table="orders"),
                                              P.Join(table="items"), P.Join(table="items")])
    assert paths(plan, dataset) == ["plan.joins[0].table", "plan.joins[1].table", "plan.joins[3].table"]


def test_qualified_columns_resolve_only_for_joined_tables(dataset: dataset_pb2.Dataset) -> None:
    plan = P.Plan(base_table="orders", select=[col("customers.region")])
    assert paths(plan, dataset) == ["plan.select[0].column"]


# --- rejections with exact field paths ----------------------------------------------------------

def test_unknown_base_table(dataset: dataset_pb2.Dataset) -> None:
    [(field, description)] = violations(P.Plan(base_table="order", select=[col("x")]), dataset)
    assert field == "plan.base_table"
    assert "orders" in description  # names the known tables


def test_dataset_mismatch(dataset: dataset_pb2.Dataset) -> None:
    assert paths(P.Plan(dataset_id="other", base_table="orders"), dataset) == ["plan.dataset_id"]
    assert compile_plan(P.Plan(dataset_id="shop", base_table="orders"), dataset)


def test_unknown_columns_everywhere_are_all_reported(dataset: dataset_pb2.Dataset) -> None:
    plan = P.Plan(
        base_table="orders",
        select=[col("status"), col("bogus"), col("amount", P.AGGREGATION_SUM)],
        filters=[flt("status", P.FILTER_OPERATOR_EQ, "x"), flt("ghost", P.FILTER_OPERATOR_EQ, 1)],
        group_by=[P.GroupBy(column="status"), P.GroupBy(column="region")],
        order_by=[P.OrderBy(key="nowhere")],
    )
    assert paths(plan, dataset) == [
        "plan.group_by[1].column", "plan.select[1].column", "plan.select[2].column",
        "plan.filters[1].column", "plan.order_by[0].key",
    ]


def test_unknown_column_message_lists_known_columns(dataset: dataset_pb2.Dataset) -> None:
    [(field, description)] = violations(P.Plan(base_table="orders", select=[col("totl")]), dataset)
    assert field == "plan.select[0].column"
    assert "total" in description and "totl" in description


def test_ambiguous_column(dataset: dataset_pb2.Dataset) -> None:
    plan = P.Plan(base_table="orders", joins=[P.Join(table="items")], select=[col("order_id")],
                  filters=[flt("order_id", P.FILTER_OPERATOR_EQ, 1)])
    found = violations(plan, dataset)
    assert [f for f, _ in found] == ["plan.select[0].column", "plan.filters[0].column"]
    assert all("ambiguous" in d for _, d in found)
    plan.select[0].column = "items.order_id"
    plan.filters[0].column = "orders.order_id"
    assert compile_plan(plan, dataset)


def test_non_grouped_column(dataset: dataset_pb2.Dataset) -> None:
    plan = P.Plan(base_table="orders", select=[col("status"), col("customer_id"), col("total", P.AGGREGATION_SUM)],
                  group_by=[P.GroupBy(column="status")])
    assert paths(plan, dataset) == ["plan.select[1].column"]
    # An aggregate without group_by makes every plain column illegal too.
    plan = P.Plan(base_table="orders", select=[col("status"), col("total", P.AGGREGATION_SUM)])
    assert paths(plan, dataset) == ["plan.select[0].column"]


def test_order_by_non_grouped_column(dataset: dataset_pb2.Dataset) -> None:
    plan = P.Plan(base_table="orders", select=[col("status"), col("*", P.AGGREGATION_COUNT)],
                  group_by=[P.GroupBy(column="status")], order_by=[P.OrderBy(key="total")])
    assert paths(plan, dataset) == ["plan.order_by[0].key"]


def test_aggregating_plan_needs_select(dataset: dataset_pb2.Dataset) -> None:
    assert paths(P.Plan(base_table="orders", group_by=[P.GroupBy(column="status")]), dataset) == ["plan.select"]


@pytest.mark.parametrize("limit", [-1, MAX_LIMIT + 1, 2**31 - 1])
def test_bad_limit(dataset: dataset_pb2.Dataset, limit: int) -> None:
    assert paths(P.Plan(base_table="orders", limit=limit), dataset) == ["plan.limit"]


def test_limit_respects_max_limit_argument(dataset: dataset_pb2.Dataset) -> None:
    assert paths(P.Plan(base_table="orders", limit=51), dataset, max_limit=50) == ["plan.limit"]
    assert compile_plan(P.Plan(base_table="orders", limit=50), dataset, max_limit=50).endswith("LIMIT 50")


@pytest.mark.parametrize("column", ["status", "total", "order_id", "returned"])
def test_bucket_on_non_date_column(dataset: dataset_pb2.Dataset, column: str) -> None:
    plan = P.Plan(base_table="orders", select=[col(column, bucket=P.TIME_BUCKET_MONTH, alias="b"),
                                               col("*", P.AGGREGATION_COUNT)],
                  group_by=[P.GroupBy(column=column, bucket=P.TIME_BUCKET_MONTH)])
    assert paths(plan, dataset) == ["plan.group_by[0].bucket", "plan.select[0].bucket"]


def test_numeric_aggregation_on_text(dataset: dataset_pb2.Dataset) -> None:
    plan = P.Plan(base_table="orders", select=[col("status", P.AGGREGATION_SUM), col("order_date", P.AGGREGATION_AVG),
                                               col("status", P.AGGREGATION_MAX, alias="m")])
    assert paths(plan, dataset) == ["plan.select[0].aggregation", "plan.select[1].aggregation"]


@pytest.mark.parametrize("agg", [P.AGGREGATION_SUM, P.AGGREGATION_COUNT_DISTINCT, P.AGGREGATION_UNSPECIFIED])
def test_star_only_with_count(dataset: dataset_pb2.Dataset, agg: int) -> None:
    assert paths(P.Plan(base_table="orders", select=[col("*", agg)]), dataset) == ["plan.select[0].column"]


def test_duplicate_output_names(dataset: dataset_pb2.Dataset) -> None:
    plan = P.Plan(base_table="orders", select=[col("total", P.AGGREGATION_SUM), col("total", P.AGGREGATION_SUM)])
    assert paths(plan, dataset) == ["plan.select[1].alias"]


@pytest.mark.parametrize(("filter_", "path"), [
    (P.Filter(column="status", values=[V("x")]), "plan.filters[0].op"),
    (flt("status", P.FILTER_OPERATOR_EQ), "plan.filters[0].values"),
    (flt("status", P.FILTER_OPERATOR_EQ, "a", "b"), "plan.filters[0].values"),
    (flt("status", P.FILTER_OPERATOR_IN), "plan.filters[0].values"),
    (flt("total", P.FILTER_OPERATOR_BETWEEN, 1), "plan.filters[0].values"),
    (flt("total", P.FILTER_OPERATOR_BETWEEN, 1, 2, 3), "plan.filters[0].values"),
    (flt("total", P.FILTER_OPERATOR_IS_NULL, 1), "plan.filters[0].values"),
    (flt("total", P.FILTER_OPERATOR_NOT_NULL, 1), "plan.filters[0].values"),
    (flt("status", P.FILTER_OPERATOR_CONTAINS), "plan.filters[0].values"),
])
def test_bad_filter_arity_or_operator(dataset: dataset_pb2.Dataset, filter_: plan_pb2.Filter, path: str) -> None:
    assert paths(P.Plan(base_table="orders", filters=[filter_]), dataset) == [path]


def test_validation_error_is_invalid_argument_with_reason(dataset: dataset_pb2.Dataset) -> None:
    with pytest.raises(ValidationError) as info:
        compile_plan(P.Plan(base_table="orders", select=[col("bogus")]), dataset)
    error = info.value.to_run_error()
    assert error.reason == "VALIDATION_ERROR"
    assert error.status_code == 3  # INVALID_ARGUMENT
    assert [v.field for v in error.violations] == ["plan.select[0].column"]
    assert info.value.metadata["dataset_id"] == "shop"


# --- determinism --------------------------------------------------------------------------------

def _rich_plan() -> plan_pb2.Plan:
    return P.Plan(
        dataset_id="shop", base_table="items", joins=[P.Join(table="orders"), P.Join(table="customers")],
        select=[col("region"), col("orders.order_date", bucket=P.TIME_BUCKET_MONTH, alias="month"),
                col("price", P.AGGREGATION_SUM, alias="revenue"), col("orders.order_id", P.AGGREGATION_COUNT_DISTINCT)],
        filters=[flt("category", P.FILTER_OPERATOR_IN, "Books", "Toys"), flt("status", P.FILTER_OPERATOR_NE, "x'y")],
        group_by=[P.GroupBy(column="region"), P.GroupBy(column="orders.order_date", bucket=P.TIME_BUCKET_MONTH)],
        order_by=[P.OrderBy(key="revenue", descending=True)], limit=10,
    )


def test_same_plan_same_sql(dataset: dataset_pb2.Dataset) -> None:
    first = compile_plan(_rich_plan(), dataset)
    again = [compile_plan(_rich_plan(), make_dataset()) for _ in range(5)]
    assert again == [first] * 5
    # A plan that went through the wire format compiles identically.
    roundtrip = plan_pb2.Plan.FromString(_rich_plan().SerializeToString())
    assert compile_plan(roundtrip, dataset) == first
    # Notes and explanation are not part of the SQL.
    annotated = _rich_plan()
    annotated.notes = "assumed revenue = price"
    annotated.explanation = "Revenue by region and month."
    assert compile_plan(annotated, dataset) == first


def test_rich_plan_runs(run: Run) -> None:
    rows = run(_rich_plan())
    assert [(r[0], str(r[1])[:7], r[3]) for r in rows] == [
        ("north", "2024-01", 2), ("north", "2024-02", 1)]
    assert float(rows[0][2]) == pytest.approx(25.5)  # type: ignore[arg-type]


# --- booleans and non-finite numbers -------------------------------------------------------------

def test_sum_and_avg_of_a_boolean_count_true_rows(run: Run) -> None:
    plan = P.Plan(base_table="orders", select=[col("returned", P.AGGREGATION_AVG, alias="rate"),
                                               col("returned", P.AGGREGATION_SUM, alias="n")])
    [(rate, n)] = run(plan)
    assert rate == pytest.approx(1 / 6)
    assert n == 1


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")])
def test_non_finite_double_literal_is_rejected(dataset: dataset_pb2.Dataset, value: float) -> None:
    plan = P.Plan(base_table="orders", filters=[flt("total", P.FILTER_OPERATOR_GT, 1.0),
                                                flt("total", P.FILTER_OPERATOR_BETWEEN, 1.0, value)])
    assert paths(plan, dataset) == ["plan.filters[1].values[1]"]
