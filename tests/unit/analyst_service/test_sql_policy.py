"""check_sql, driven case by case by tests/fixtures/sql/{allowed,rejected}.sql.

File format: each case starts with a line `-- case: <name>`; the lines up to the next case are
one statement. Directive lines right after the case line (removed before checking):
`-- rule: <rule>[|<rule>...]` names the SqlPolicyError.metadata["rule"] a rejected case must trip;
`-- xfail: <reason>` marks a known policy defect (strict: it fails once the defect is fixed).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from sqlglot import exp

from analyst_service.errors import SqlPolicyError
from analyst_service.compiler import MAX_LIMIT
from analyst_service.validation.exfiltration import WIDE_COLUMN_FRACTION, WIDE_QUERY_MAX_LIMIT
from analyst_service.validation.sql import (
    ALLOWED_FUNCTION_NAMES,
    MAX_SQL_CHARS,
    check_sql,
)
from csv_analyst.v1 import run_pb2

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "sql"
TABLES = ["orders", "order_items", "inventory", "tickets"]
RULES = {"empty", "too_long", "unparsable", "statement_count", "statement_type", "too_deep", "table_function",
         "table", "function", "exfiltration"}

_CASE = re.compile(r"^-- case: (?P<name>[a-z0-9_]+)[ \t]*$", re.MULTILINE)
_DIRECTIVE = re.compile(r"^-- (?P<key>rule|xfail): (?P<value>.+)$")


@dataclass(frozen=True)
class Case:
    name: str
    sql: str
    rules: tuple[str, ...]
    xfail: str


def load_cases(filename: str) -> list[Case]:
    text = (FIXTURES / filename).read_text()
    matches = list(_CASE.finditer(text))
    assert matches, f"{filename} has no cases"
    cases = []
    for match, following in zip(matches, [*matches[1:], None], strict=True):
        body = text[match.end():following.start() if following else len(text)].lstrip("\n").split("\n")
        directives: dict[str, str] = {}
        while body and (directive := _DIRECTIVE.match(body[0])):
            directives[directive["key"]] = directive["value"].strip()
            body.pop(0)
        rules = tuple(directives["rule"].split("|")) if "rule" in directives else ()
        cases.append(Case(match["name"], "\n".join(body).strip("\n"), rules, directives.get("xfail", "")))
    return cases


def params(cases: list[Case]) -> list[object]:
    return [pytest.param(case, id=case.name,
                         marks=[pytest.mark.xfail(strict=True, reason=case.xfail)] if case.xfail else [])
            for case in cases]


ALLOWED = load_cases("allowed.sql")
REJECTED = load_cases("rejected.sql")


def test_fixture_files_are_well_formed() -> None:
    for cases in (ALLOWED, REJECTED):
        names = [case.name for case in cases]
        assert len(names) == len(set(names)), "case names must be unique"
    assert len(ALLOWED) >= 30
    assert len(REJECTED) >= 40
    assert all(case.sql.strip() for case in ALLOWED)
    assert all(not case.rules for case in ALLOWED)
    for case in REJECTED:
        assert case.rules, f"rejected case {case.name} must name its rule"
        assert set(case.rules) <= RULES, f"{case.name}: unknown rule {case.rules}"
    # The empty-SQL case really is empty once its directives are removed.
    assert next(c for c in REJECTED if c.name == "empty").sql == ""


@pytest.mark.parametrize("case", params(ALLOWED))
def test_allowed(case: Case) -> None:
    statement = check_sql(case.sql, TABLES)
    assert isinstance(statement, (exp.Select, exp.Union, exp.Intersect, exp.Except))


@pytest.mark.parametrize("case", params(REJECTED))
def test_rejected(case: Case) -> None:
    with pytest.raises(SqlPolicyError) as info:
        check_sql(case.sql, TABLES)
    error = info.value
    assert error.metadata["rule"] in case.rules
    assert error.violations and error.violations[0][0] == "sql"
    run_error = error.to_run_error()
    assert run_error.code == run_pb2.ERROR_CODE_SQL_POLICY_VIOLATION
    assert run_error.reason == "SQL_POLICY_VIOLATION"
    assert error.status_code == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize(("sql", "subject"), [
    ("SELECT * FROM read_csv('/etc/passwd')", "read_csv"),
    ("SELECT getenv('HOME') FROM orders", "getenv"),
    ("SELECT * FROM customers", "customers"),
    ("SELECT * FROM '/etc/passwd'", "/etc/passwd"),
])
def test_rejection_names_its_subject(sql: str, subject: str) -> None:
    with pytest.raises(SqlPolicyError) as info:
        check_sql(sql, TABLES)
    assert info.value.metadata["subject"] == subject


def test_table_allowlist_is_per_dataset() -> None:
    check_sql("SELECT * FROM sensors", ["sensors"])
    with pytest.raises(SqlPolicyError) as info:
        check_sql("SELECT * FROM orders", ["sensors"])
    assert info.value.metadata == {"rule": "table", "subject": "orders"}


def test_table_names_are_case_insensitive() -> None:
    check_sql("SELECT * FROM ORDERS JOIN Order_Items USING (order_id)", ["Orders", "order_items"])


def test_length_limit() -> None:
    padding = " " * (MAX_SQL_CHARS - len("SELECT 1 FROM orders"))
    check_sql("SELECT 1 FROM orders" + padding, TABLES)
    with pytest.raises(SqlPolicyError) as info:
        check_sql("SELECT 1 FROM orders" + padding + " ", TABLES)
    assert info.value.metadata["rule"] == "too_long"


@pytest.mark.parametrize("depth", [150, 400, 1200])
def test_deep_nesting_is_refused_not_crashing(depth: int) -> None:
    nested_parens = "SELECT " + "(" * depth + "1" + ")" * depth + " FROM orders"
    nested_queries = "SELECT * FROM " + "(SELECT * FROM " * depth + "orders" + ")" * depth
    for sql in (nested_parens, nested_queries):
        with pytest.raises(SqlPolicyError) as info:
            check_sql(sql, TABLES)
        assert info.value.metadata["rule"] in {"unparsable", "too_deep"}


def test_moderate_nesting_is_fine() -> None:
    check_sql("SELECT " + "(" * 10 + "1" + ")" * 10 + " FROM orders", TABLES)
    check_sql("SELECT * FROM " + "(SELECT * FROM " * 5 + "orders" + ")" * 5, TABLES)


def test_long_but_flat_query_is_fine() -> None:
    check_sql("SELECT * FROM orders WHERE " + " OR ".join(f"order_id = {i}" for i in range(500)), TABLES)


def test_returns_the_parsed_statement() -> None:
    statement = check_sql("WITH t AS (SELECT 1 AS x FROM orders) SELECT x FROM t", TABLES)
    assert isinstance(statement, exp.Select)
    assert statement.find(exp.CTE) is not None


def test_every_allowlisted_function_name_is_accepted() -> None:
    refused = {}
    for name in sorted(ALLOWED_FUNCTION_NAMES):
        for arguments in ("total", "total, 1", "total, 1, 2", ""):
            sql = f"SELECT {name}({arguments}) FROM orders"
            try:
                check_sql(sql, TABLES)
                break
            except SqlPolicyError as error:
                last = error.metadata
        else:
            refused[name] = last
    assert refused == {}


# The exfiltration heuristic runs when check_sql gets each table's columns.
COLUMNS = {
    "orders": ["order_id", "customer_id", "order_date", "total", "status", "returned"],
    "order_items": ["item_id", "order_id", "product_id", "category", "quantity", "price", "discount"],
    "adhoc": [],  # an ad-hoc CSV whose columns are not known yet
}


@pytest.mark.parametrize(("sql", "wide"), [
    ("SELECT * FROM orders", True),
    ("SELECT * FROM orders LIMIT 10", False),
    (f"SELECT * FROM orders LIMIT {WIDE_QUERY_MAX_LIMIT}", False),
    (f"SELECT * FROM orders LIMIT {WIDE_QUERY_MAX_LIMIT + 1}", True),
    ("SELECT * FROM orders LIMIT 5 * 5", True),
    ("SELECT order_id, total FROM orders", False),
    ("SELECT order_id, customer_id, order_date, total FROM orders", True),
    ("SELECT order_id, customer_id, order_date FROM orders", False),
    ("SELECT count(*) FROM orders", False),
    ("SELECT status, count(*), sum(total), avg(total), min(order_date), max(order_date) FROM orders GROUP BY status", False),
    ("SELECT order_id, customer_id, order_date, total, count(*) FROM orders GROUP BY ALL", True),
    ("WITH t AS (SELECT * FROM orders) SELECT * FROM t", True),
    ("WITH t AS (SELECT * FROM orders) SELECT count(*) FROM t", False),
    ("WITH t AS (SELECT * FROM orders LIMIT 5) SELECT * FROM t", False),
    ("SELECT * FROM (SELECT * FROM orders) LIMIT 5", False),
    ("SELECT x.* FROM (SELECT * FROM orders) x", True),
    ("SELECT a FROM (SELECT order_id AS a, customer_id AS b, total AS c, status AS d FROM orders) x", False),
    ("SELECT orders FROM orders", True),
    ("SELECT concat_ws(',', *) FROM orders", True),
    ("SELECT string_agg(concat_ws(',', *), ';') FROM orders LIMIT 1", True),
    ("SELECT list(orders) FROM orders", True),
    ("SELECT string_agg(status, ',') FROM orders", False),
    ("SELECT (SELECT string_agg(orders::VARCHAR, ';') FROM orders)", True),
    ("SELECT o.* FROM orders o JOIN order_items i USING (order_id)", True),
    ("SELECT i.category, o.total FROM orders o JOIN order_items i USING (order_id)", False),
    ("SELECT * FROM orders UNION ALL SELECT * FROM orders", True),
    ("SELECT * FROM orders UNION ALL SELECT * FROM orders LIMIT 3", False),
    ("SELECT * EXCLUDE (order_id, customer_id, order_date, total) FROM orders", False),
    ("SELECT order_id, lag(total) OVER (ORDER BY order_id), customer_id, status FROM orders", True),
    ("SELECT order_id, rank() OVER (ORDER BY total), sum(total) OVER () FROM orders", False),
    ("SELECT * FROM adhoc", True),
    ("SELECT a, b FROM adhoc", False),
])
def test_exfiltration_heuristic(sql: str, wide: bool) -> None:
    check_sql(sql, list(COLUMNS))  # names only: the heuristic is off, the policy passes
    if not wide:
        check_sql(sql, COLUMNS)
        return
    with pytest.raises(SqlPolicyError) as info:
        check_sql(sql, COLUMNS)
    assert info.value.metadata["rule"] == "exfiltration"
    assert info.value.metadata["suggestion"]
    assert "LIMIT" in info.value.message


def test_exfiltration_thresholds_let_every_compiled_plan_through() -> None:
    # Compiled plans always carry a LIMIT of at most the compiler's MAX_LIMIT.
    assert WIDE_QUERY_MAX_LIMIT >= MAX_LIMIT
    assert 0 < WIDE_COLUMN_FRACTION < 1
    check_sql(f'SELECT "orders"."order_id", "orders"."customer_id", "orders"."order_date", "orders"."total", '
              f'"orders"."status", "orders"."returned" FROM "orders" LIMIT {MAX_LIMIT}', COLUMNS)


def test_nesting_limit_counts_parentheses_not_string_contents() -> None:
    from analyst_service.validation.sql import MAX_NESTING

    at_limit = "SELECT " + "(" * MAX_NESTING + "1" + ")" * MAX_NESTING + " FROM orders"
    check_sql(at_limit, TABLES)
    with pytest.raises(SqlPolicyError) as info:
        check_sql("SELECT " + "(" * (MAX_NESTING + 1) + "1" + ")" * (MAX_NESTING + 1) + " FROM orders", TABLES)
    assert info.value.metadata["rule"] == "too_deep"
    check_sql("SELECT '" + "(" * 500 + "' AS s FROM orders -- " + "(" * 500, TABLES)
