"""runner.engine in-process: lock-down, row cap with honest truncation, value conversion, limits.

These run DuckDB in the test process, so they prove what DuckDB itself refuses; the sandbox tests
(tests/unit/runner_service/test_bwrap_executor.py) prove the same from inside bubblewrap.
"""

from __future__ import annotations

import datetime
import decimal
import math
import uuid
from pathlib import Path

import duckdb
import pytest
from google.protobuf import duration_pb2

from csv_analyst.v1 import run_pb2, value_pb2
from csv_analyst.runner.v1 import sandbox_pb2
from runner.engine import execute_task, open_connection, run_query, to_value

ORDERS = "order_id,status,total,order_date\n" + "".join(
    f"{i},{'completed' if i % 3 else 'pending'},{i * 1.5},2024-01-{i:02d}\n" for i in range(1, 11))


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "data"
    directory.mkdir()
    (directory / "t0.csv").write_text(ORDERS)
    (directory / "t1.csv").write_text("k,v\n1,x\n2,y\n")
    (tmp_path / "secret.csv").write_text("secret\nhunter2\n")
    return directory


def make_task(data_dir: Path, sql: str, **limits: object) -> sandbox_pb2.SandboxTask:
    return sandbox_pb2.SandboxTask(
        run_id="run-test", sql=sql, data_dir=str(data_dir),
        tables=[sandbox_pb2.TableSource(name="orders", path=str(data_dir / "t0.csv")),
                sandbox_pb2.TableSource(name="kv", path=str(data_dir / "t1.csv"))],
        limits=run_pb2.ResourceLimits(**limits),  # type: ignore[arg-type]
    )


def run(data_dir: Path, sql: str, **limits: object) -> sandbox_pb2.SandboxResult:
    return execute_task(make_task(data_dir, sql, **limits))


def cells(result: sandbox_pb2.SandboxResult) -> list[list[object]]:
    return [[getattr(v, v.WhichOneof("kind")) if v.WhichOneof("kind") != "null_value" else None for v in row.values]
            for row in result.result.rows]


def assert_refused(result: sandbox_pb2.SandboxResult, *markers: str) -> None:
    assert result.error.code == run_pb2.ERROR_CODE_QUERY_ERROR, result
    assert result.error.reason == "QUERY_ERROR"
    assert not result.result.rows
    assert any(m in result.error.message for m in markers), result.error.message


# --- happy path ----------------------------------------------------------------------------------

def test_query_over_views(data_dir: Path) -> None:
    result = run(data_dir, "SELECT status, COUNT(*) AS n, SUM(total) AS s FROM orders GROUP BY status ORDER BY status")
    assert not result.HasField("error")
    assert [(c.name, c.type) for c in result.result.columns] == [("status", "VARCHAR"), ("n", "BIGINT"),
                                                                  ("s", "DOUBLE")]
    assert cells(result) == [["completed", 7, pytest.approx(55.5)], ["pending", 3, pytest.approx(27.0)]]
    assert result.result.row_count == 2 and not result.result.truncated
    assert result.rows_produced == 2
    assert result.setup_seconds > 0 and result.query_seconds > 0


def test_join_of_two_tables(data_dir: Path) -> None:
    result = run(data_dir, "SELECT o.order_id, kv.v FROM orders o JOIN kv ON kv.k = o.order_id ORDER BY 1")
    assert cells(result) == [[1, "x"], [2, "y"]]


# --- lock-down -------------------------------------------------------------------------------------

@pytest.mark.parametrize("sql", [
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_text('/etc/passwd')",
    "SELECT * FROM read_csv('{secret}')",
    "SELECT * FROM read_csv('{data}/../secret.csv')",
    "SELECT * FROM glob('/etc/*')",
    "COPY (SELECT 1) TO '{out}'",
    "ATTACH '{out}' AS evil",
    "INSTALL httpfs",
    "LOAD httpfs",
    "SELECT * FROM read_csv('https://example.com/x.csv')",
])
def test_no_file_or_network_access_outside_the_data_dir(data_dir: Path, sql: str) -> None:
    out = data_dir.parent / "written.out"
    sql = sql.format(secret=data_dir.parent / "secret.csv", data=data_dir, out=out)
    result = run(data_dir, sql)
    assert result.error.code == run_pb2.ERROR_CODE_QUERY_ERROR, result
    assert "hunter2" not in str(result)
    assert "root:" not in str(result)
    assert not out.exists()


def test_reading_etc_passwd_names_the_permission_error(data_dir: Path) -> None:
    assert_refused(run(data_dir, "SELECT * FROM read_csv('/etc/passwd')"), "Permission Error", "disabled")


def test_file_path_as_table_is_not_resolved(data_dir: Path) -> None:
    assert_refused(run(data_dir, "SELECT * FROM '/etc/passwd'"), "Permission Error", "Catalog Error", "disabled")


def test_files_inside_the_data_dir_stay_readable(data_dir: Path) -> None:
    result = run(data_dir, f"SELECT COUNT(*) FROM read_csv('{data_dir}/t1.csv')")
    assert cells(result) == [[2]]


@pytest.mark.parametrize("sql", [
    "SET enable_external_access = true",
    "SET lock_configuration = false",
    "RESET enable_external_access",
    "SET allowed_directories = ['/']",
    "SET memory_limit = '10GB'",
    "SET max_execution_time = 0",
    "SET threads = 64",
    "SET autoload_known_extensions = true",
    "SET GLOBAL enable_external_access = true",
])
def test_configuration_is_locked(data_dir: Path, sql: str) -> None:
    assert_refused(run(data_dir, sql), "configuration has been locked", "Cannot change")


def test_lock_holds_on_the_connection_itself(data_dir: Path) -> None:
    connection = open_connection(make_task(data_dir, "SELECT 1"))
    try:
        with pytest.raises(duckdb.Error, match="locked"):
            connection.execute("SET enable_external_access = true")
        with pytest.raises(duckdb.Error):
            connection.execute("SELECT * FROM read_csv('/etc/passwd')").fetchall()
        settings = dict(connection.execute(
            "SELECT name, value FROM duckdb_settings() WHERE name IN ('enable_external_access', "
            "'lock_configuration', 'autoload_known_extensions', 'autoinstall_known_extensions', 'threads')"
        ).fetchall())
        assert settings == {"enable_external_access": "false", "lock_configuration": "true",
                            "autoload_known_extensions": "false", "autoinstall_known_extensions": "false",
                            "threads": "1"}
    finally:
        connection.close()


def test_table_outside_the_data_dir_is_a_setup_failure(data_dir: Path) -> None:
    task = make_task(data_dir, "SELECT 1")
    task.tables.append(sandbox_pb2.TableSource(name="evil", path="/etc/passwd"))
    result = execute_task(task)
    assert result.error.code == run_pb2.ERROR_CODE_RUNNER_INTERNAL_ERROR
    assert "outside the data directory" in result.error.message


def test_data_dir_prefix_is_not_a_sibling_directory(data_dir: Path) -> None:
    sibling = data_dir.parent / (data_dir.name + "-evil")
    sibling.mkdir()
    (sibling / "x.csv").write_text("a\n1\n")
    task = make_task(data_dir, "SELECT 1")
    task.tables.append(sandbox_pb2.TableSource(name="evil", path=str(sibling / "x.csv")))
    assert execute_task(task).error.code == run_pb2.ERROR_CODE_RUNNER_INTERNAL_ERROR
    assert run(data_dir, f"SELECT * FROM read_csv('{sibling}/x.csv')").error.code == run_pb2.ERROR_CODE_QUERY_ERROR


def test_hostile_table_name_is_quoted(data_dir: Path) -> None:
    task = make_task(data_dir, 'SELECT COUNT(*) FROM "we""ird; DROP"')
    task.tables.append(sandbox_pb2.TableSource(name='we"ird; DROP', path=str(data_dir / "t1.csv")))
    assert cells(execute_task(task)) == [[2]]


# --- row cap ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("max_rows", "rows", "truncated", "produced"), [
    (3, 3, True, 4),
    (9, 9, True, 10),
    (10, 10, False, 10),
    (50, 10, False, 10),
])
def test_truncation_flag(data_dir: Path, max_rows: int, rows: int, truncated: bool, produced: int) -> None:
    result = run(data_dir, "SELECT order_id FROM orders ORDER BY order_id", max_rows=max_rows)
    assert result.result.row_count == rows == len(result.result.rows)
    assert result.result.truncated is truncated
    assert result.rows_produced == produced
    assert [r[0] for r in cells(result)] == list(range(1, rows + 1))


def test_default_row_cap_is_200(data_dir: Path) -> None:
    result = run(data_dir, "SELECT * FROM range(1000)")
    assert result.result.row_count == 200 and result.result.truncated


def test_empty_result_keeps_columns(data_dir: Path) -> None:
    result = run(data_dir, "SELECT order_id, status FROM orders WHERE false")
    assert [c.name for c in result.result.columns] == ["order_id", "status"]
    assert result.result.row_count == 0 and not result.result.truncated and not result.HasField("error")


# --- value conversion ------------------------------------------------------------------------------

def test_value_conversion_through_duckdb(data_dir: Path) -> None:
    result = run(data_dir, """
        SELECT DATE '2024-02-29' AS d, TIMESTAMP '2024-01-02 03:04:05.123' AS ts, TIME '12:34:56' AS t,
               1.25::DECIMAL(10, 2) AS dec, NULL AS n, 'nan'::DOUBLE AS nan, 'inf'::DOUBLE AS inf,
               9223372036854775807::BIGINT AS max_big, (-9223372036854775808)::BIGINT AS min_big,
               9223372036854775808::UBIGINT AS over_big, 170141183460469231731687303715884105727::HUGEINT AS huge,
               true AS b, 1.5::FLOAT AS f, [1, 2] AS l, '\\xAA'::BLOB AS blob, 'héllo' AS s
    """)
    assert not result.HasField("error"), result.error
    [row] = result.result.rows
    kinds = [(v.WhichOneof("kind"), getattr(v, v.WhichOneof("kind"))) for v in row.values]
    assert kinds == [
        ("string_value", "2024-02-29"),
        ("string_value", "2024-01-02T03:04:05.123000"),
        ("string_value", "12:34:56"),
        ("double_value", 1.25),
        ("null_value", 0),
        ("string_value", "nan"),
        ("string_value", "inf"),
        ("int_value", 2**63 - 1),
        ("int_value", -(2**63)),
        ("string_value", "9223372036854775808"),
        ("string_value", str(2**127 - 1)),
        ("bool_value", True),
        ("double_value", 1.5),
        ("string_value", "[1, 2]"),
        ("string_value", "aa"),
        ("string_value", "héllo"),
    ]
    types = [c.type for c in result.result.columns]
    assert types[:4] == ["DATE", "TIMESTAMP", "TIME", "DECIMAL(10,2)"]
    assert types[10] == "HUGEINT"


def test_nulls_in_csv_columns(data_dir: Path) -> None:
    (data_dir / "t1.csv").write_text("k,v\n1,\n,y\n")
    result = run(data_dir, "SELECT k, v FROM kv ORDER BY k NULLS LAST")
    assert [[v.WhichOneof("kind") for v in row.values] for row in result.result.rows] == [
        ["int_value", "null_value"], ["null_value", "string_value"]]


@pytest.mark.parametrize(("cell", "expected"), [
    (None, value_pb2.Value(null_value=0)),
    (False, value_pb2.Value(bool_value=False)),
    (0, value_pb2.Value(int_value=0)),
    (2**63, value_pb2.Value(string_value=str(2**63))),
    (-(2**63) - 1, value_pb2.Value(string_value=str(-(2**63) - 1))),
    (0.1, value_pb2.Value(double_value=0.1)),
    (-math.inf, value_pb2.Value(string_value="-inf")),
    (decimal.Decimal("12.50"), value_pb2.Value(double_value=12.5)),
    (datetime.date(2024, 1, 2), value_pb2.Value(string_value="2024-01-02")),
    (datetime.datetime(2024, 1, 2, 3, 4, 5), value_pb2.Value(string_value="2024-01-02T03:04:05")),
    (uuid.UUID(int=1), value_pb2.Value(string_value="00000000-0000-0000-0000-000000000001")),
    (b"\x00\xff", value_pb2.Value(string_value="00ff")),
    ({"a": [1, None]}, value_pb2.Value(string_value='{"a": [1, null]}')),
])
def test_to_value(cell: object, expected: value_pb2.Value) -> None:
    assert to_value(cell) == expected
    if cell is None:
        assert to_value(cell).HasField("null_value")  # explicitly NULL, not merely unset


# --- errors and limits ---------------------------------------------------------------------------------

def test_query_error_is_data_not_an_exception(data_dir: Path) -> None:
    result = run(data_dir, "SELECT no_such_column FROM orders")
    assert_refused(result, "no_such_column")
    assert result.error.status_code == 3


def test_timeout_with_a_tiny_limit(data_dir: Path) -> None:
    result = run(data_dir, "SELECT COUNT(*) FROM range(100000000000) a",
                 timeout=duration_pb2.Duration(nanos=100_000_000), threads=1)
    assert result.error.code == run_pb2.ERROR_CODE_RUNNER_TIMEOUT
    assert result.error.reason == "RUNNER_TIMEOUT"
    assert result.error.status_code == 4  # DEADLINE_EXCEEDED
    assert "0.1 s" in result.error.message
    assert result.query_seconds < 30


def test_the_same_query_finishes_without_the_tiny_limit(data_dir: Path) -> None:
    result = run(data_dir, "SELECT COUNT(*) FROM range(1000) a", timeout=duration_pb2.Duration(seconds=30))
    assert cells(result) == [[1000]]


def test_memory_limit(data_dir: Path) -> None:
    result = run(data_dir, "SELECT string_agg(i::VARCHAR, ',') FROM range(30000000) t(i)", memory_bytes=32 << 20)
    assert result.error.code == run_pb2.ERROR_CODE_RUNNER_RESOURCE_EXCEEDED
    assert result.error.status_code == 8  # RESOURCE_EXHAUSTED
    assert "run_memory" in result.error.message


def test_run_query_fetches_one_extra_row(data_dir: Path) -> None:
    connection = open_connection(make_task(data_dir, ""))
    try:
        table, produced = run_query(connection, "SELECT * FROM range(5)", 2)
    finally:
        connection.close()
    assert (table.row_count, table.truncated, produced) == (2, True, 3)


# --- defects found and fixed: keep them fixed ---

@pytest.mark.parametrize("data_dir_value", [""])
def test_unset_or_relative_data_dir_is_refused(data_dir_value: str) -> None:
    result = execute_task(sandbox_pb2.SandboxTask(
        sql="SELECT COUNT(*) FROM read_csv('/etc/passwd', header = false, sep = ':')", data_dir=data_dir_value))
    assert result.HasField("error")


@pytest.mark.parametrize("sql", ["", "-- only a comment", ";"])
def test_sql_without_a_statement_is_a_query_error(data_dir: Path, sql: str) -> None:
    result = run(data_dir, sql)
    assert result.error.code == run_pb2.ERROR_CODE_QUERY_ERROR


def test_a_multi_megabyte_csv_loads_whole(tmp_path: Path) -> None:
    """Regression: with a buffer barely above the line cap, DuckDB's parallel reader refused files
    of a few MB ("does not support a full read"), so materialisation failed on real datasets."""
    from runner.ingest import load_csv

    path = tmp_path / "big.csv"
    with path.open("w") as handle:
        handle.write("id,name,value\n")
        for i in range(150_000):
            handle.write(f"{i},name_{i},{i * 1.5}\n")
    assert path.stat().st_size > 2_000_000
    connection = duckdb.connect()
    report = load_csv(connection, "big", str(path))
    assert report.rows == 150_000
    assert connection.execute("SELECT max(id), count(DISTINCT name) FROM big").fetchone() == (149_999, 150_000)


def _buffered_bytes(connection: duckdb.DuckDBPyConnection) -> int:
    return connection.execute("SELECT sum(memory_usage_bytes) FROM duckdb_memory() WHERE tag = 'BASE_TABLE'").fetchone()[0]


def _persisted(tmp_path: Path, tables: dict[str, int]) -> duckdb.DuckDBPyConnection:
    """A read-only attached database file like a materialised dataset, with tables of these sizes."""
    path = tmp_path / "dataset.duckdb"
    with duckdb.connect(str(path)) as build:
        for name, rows in tables.items():
            # Values that do not compress away, so reading them fills buffers.
            build.execute(f'CREATE TABLE "{name}" AS SELECT hash(i) AS id, random() AS amount, '
                          f"md5(i::VARCHAR) AS label FROM range({rows}) t(i)")
    connection = duckdb.connect(":memory:")
    connection.execute(f"ATTACH '{path}' AS dataset (READ_ONLY)")
    connection.execute("USE dataset")
    return connection


def test_warm_up_reads_every_column_into_buffers(tmp_path: Path) -> None:
    from runner.engine import warm_up

    connection = _persisted(tmp_path, {"big": 300_000})
    before = _buffered_bytes(connection)
    warm_up(connection)
    after = _buffered_bytes(connection)
    # Three columns of 300k rows: well over a megabyte of blocks read, not just statistics.
    assert after - before > 1 << 20
    # and the data answers as before
    assert connection.execute("SELECT count(*), count(DISTINCT label) FROM big").fetchone() == (300_000, 300_000)


def test_warm_up_skips_tables_past_its_cell_budget(tmp_path: Path) -> None:
    from runner.engine import warm_up

    connection = _persisted(tmp_path, {"big": 300_000, "small": 1_000})
    warm_up(connection, max_cells=10_000)  # 3 columns: small (3,000 cells) fits, big (900,000) does not
    small_only = _buffered_bytes(connection)
    warm_up(connection, max_cells=1_000_000)
    assert _buffered_bytes(connection) > small_only + (1 << 20)


def test_framed_query_result_is_delivered_before_the_connection_closes(data_dir: Path) -> None:
    delivered: list[sandbox_pb2.SandboxResult] = []
    setup = make_task(data_dir, "")
    query = sandbox_pb2.SandboxTask(run_id="r1", sql="SELECT count(*) FROM orders")
    result = execute_task(setup, lambda: query, delivered.append)
    assert delivered == [result]
    assert cells(result) == [[10]]


def test_warm_up_stops_when_the_query_has_arrived(tmp_path: Path) -> None:
    from runner.engine import warm_up

    connection = _persisted(tmp_path, {"big": 300_000})
    before = _buffered_bytes(connection)
    warm_up(connection, query_waiting=lambda: True)
    assert _buffered_bytes(connection) == before
    asked = []

    def arrives_after_two_columns() -> bool:
        asked.append(True)
        return len(asked) > 2

    warm_up(connection, query_waiting=arrives_after_two_columns)
    assert len(asked) == 3  # asked before each column: stopped before the third, no rehearsal


def test_rehearsal_groups_by_a_text_column_and_sums_a_number(tmp_path: Path) -> None:
    from runner.engine import _rehearsal

    connection = _persisted(tmp_path, {"big": 1_000})
    sql = _rehearsal(connection, "big")
    assert sql == ('SELECT "label", count(*) AS n, sum("amount") AS total FROM "big" '
                   "GROUP BY 1 ORDER BY 2 DESC LIMIT 10")
    assert len(connection.execute(sql).fetchall()) == 10
    memory = duckdb.connect(":memory:")
    memory.execute('CREATE TABLE "odd ""name""" AS SELECT true AS flag UNION ALL SELECT false')
    sql = _rehearsal(memory, 'odd "name"')  # no text, no number: group by the first column
    assert sql.startswith('SELECT "flag", count(*) AS n FROM "odd ""name"""')
    assert len(memory.execute(sql).fetchall()) == 2
