"""The native DuckDB CLI runner answers exactly what the Python runner answers.

Both run in real bubblewrap sandboxes through BwrapExecutor on the same materialised dataset
(built by the runner's own materialisation code): every registry prompt (planned and compiled
by the offline planner), typed edge cases (decimals, dates, timestamps with zones, NULL against
the string 'NULL', NaN, huge integers, unicode, newlines and quotes), truncation and errors must
give the same columns, types, values, flags and error codes.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from google.protobuf import duration_pb2

from analyst_service.catalog import load_registry, table_path
from analyst_service.compiler import compile_plan
from analyst_service.planning.base import PlanningContext
from analyst_service.planning.offline import OfflinePlanner
from csv_analyst.runner.v1 import sandbox_pb2
from csv_analyst.v1 import dataset_pb2, run_pb2
from runner.engine import materialize
from runner_service import metrics
from runner_service.executors import native_sql
from runner_service.executors.base import SandboxRequest, TableFile
from runner_service.executors.bwrap import BwrapExecutor
from runner_service.executors.pool import PoolSettings
from tests.conftest import require, require_bwrap

pytestmark = [pytest.mark.bwrap, pytest.mark.timeout(600)]

EDGE_CASES = [
    "SELECT 123.45::DECIMAL(10,2) AS d, -0.5::DECIMAL(4,1) AS n, 12345678901234567890.12::DECIMAL(38,2) AS wide",
    "SELECT DATE '2024-02-29' AS day, TIME '01:02:03.5' AS t, TIMESTAMP '2024-01-02 03:04:05' AS ts, "
    "TIMESTAMP '2024-01-02 03:04:05.123456' AS micro, TIMESTAMP_NS '2024-01-01 00:00:00.123456789' AS nano",
    "SELECT TIMESTAMPTZ '2024-01-02 03:04:05.25+02' AS zoned, TIMESTAMPTZ '2024-07-01 00:00:00-07:30' AS odd_zone",
    # An untyped NULL column is "NULL" to the Python client and INTEGER through query(): typed here.
    "SELECT NULL::INTEGER AS nothing, 'NULL' AS word, NULL::VARCHAR AS typed_null, '' AS empty, 'null' AS lower",
    "SELECT 'nan'::DOUBLE AS nan, 'inf'::DOUBLE AS inf, '-inf'::DOUBLE AS minus_inf, 1.1::FLOAT AS single, "
    "0.1 + 0.2 AS sum, 1e-7::DOUBLE AS tiny, 1.5e300 AS huge, -0.0::DOUBLE AS minus_zero",
    "SELECT 170141183460469231731687303715884105727::HUGEINT AS hmax, -9223372036854775808 AS i64min, "
    "9223372036854775807 AS i64max, 9223372036854775808::HUGEINT AS past_i64, 18446744073709551615::UBIGINT AS u64, "
    "5::TINYINT AS tiny, 1::UHUGEINT << 100 AS u128",
    "SELECT 'é ü 你好 🙂' AS unicode, E'line one\\nline two' AS newline, 'say \"hi\"' AS dq, 'it''s' AS sq, "
    "E'tab\\there\\\\back' AS escapes, chr(1) || 'x' AS control, '{\"a\": 1}' AS json_text",
    "SELECT true AS yes, false AS no, NULL::BOOLEAN AS unknown",
    "SELECT INTERVAL 3 DAY AS days, INTERVAL '1 year 2 months 3 days 04:05:06.5' AS mixed, "
    "INTERVAL '-3 hours' AS negative",
    "SELECT '6a1e9c4e-0d7b-4f41-9f1a-8e4a2b1c3d5e'::UUID AS id, '\\x00\\xFF a'::BLOB AS blob",
    "SELECT [1, 2, NULL] AS list, {'a': 1, 'b': 'x'} AS struct, ['x', 'y'] AS words",
    "SELECT * FROM (VALUES (1, 'a'), (2, NULL), (NULL, 'NULL')) AS t(n, s) ORDER BY n NULLS LAST",
    "SELECT i, i * 1.5 AS x FROM range(10) AS r(i) ORDER BY i DESC",  # truncated at max_rows
    "SELECT repeat('x', 70000) AS long_cell",  # cut at the cell cap
    "-- a comment first\nSELECT 1 AS one -- and last",
    "WITH t AS (SELECT 1 AS a) SELECT a, 'it''s; -- not a comment' AS s FROM t",
    "SELECT 1 AS x WHERE false",
]
ERROR_CASES = [
    "SELECT nosuch FROM range(3)",
    "SELECT FROM WHERE",
    "SELECT * FROM no_such_table",
    "SELECT 'abc'::INTEGER",
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT 1; SELECT 2",
]
MAX_ROWS = 5


@dataclass
class Dataset:
    dataset: dataset_pb2.Dataset
    tables: tuple[TableFile, ...]
    database: str


@pytest.fixture(scope="module")
def materialised(datasets_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Dataset]:
    """Every demo dataset materialised by the runner's own materialisation code."""
    out: dict[str, Dataset] = {}
    for dataset in load_registry(datasets_dir):
        build = tmp_path_factory.mktemp(f"native-{dataset.dataset_id}")
        build.chmod(0o755)
        tables = tuple(TableFile(t.name, str(table_path(datasets_dir, t))) for t in dataset.tables)
        target = build / "dataset.duckdb"
        task = sandbox_pb2.SandboxTask(
            tables=[sandbox_pb2.TableSource(name=t.name, path=t.host_path) for t in tables],
            data_dir=str(tmp_path_factory.getbasetemp()),
            materialize_to=str(target), limits=run_pb2.ResourceLimits(memory_bytes=512 << 20, threads=1))
        built = materialize(task)
        assert not built.HasField("error"), built.error
        target.chmod(0o644)
        out[dataset.dataset_id] = Dataset(dataset, tables, str(target))
    return out


@pytest.fixture(scope="module")
def executors() -> Iterator[tuple[BwrapExecutor, BwrapExecutor]]:
    """(Python runner, native runner) executors, cold sandboxes."""
    require_bwrap()
    cli = native_sql.find_cli()
    require(cli is not None, "duckdb-cli is not installed (pip install duckdb-cli)")
    python = BwrapExecutor(pool_settings=PoolSettings(size_per_key=0), native_cli=None)
    native = BwrapExecutor(pool_settings=PoolSettings(size_per_key=0), native_cli=cli)
    yield python, native
    asyncio.run(python.close())
    asyncio.run(native.close())


def request(sql: str, data: Dataset, max_rows: int = MAX_ROWS, timeout: int = 30) -> SandboxRequest:
    return SandboxRequest(
        run_id=f"native-{uuid.uuid4().hex[:10]}", sql=sql, tables=data.tables, database_path=data.database,
        limits=run_pb2.ResourceLimits(timeout=duration_pb2.Duration(seconds=timeout), memory_bytes=256 << 20,
                                      max_rows=max_rows, threads=1, max_processes=32, max_output_bytes=64 * 1024))


def answer(executor: BwrapExecutor, sql: str, data: Dataset, max_rows: int = MAX_ROWS) -> sandbox_pb2.SandboxResult:
    outcome = asyncio.run(executor.execute(request(sql, data, max_rows), lambda: None))
    result = outcome.result
    result.ClearField("setup_seconds")
    result.ClearField("query_seconds")
    return result


def both(executors: tuple[BwrapExecutor, BwrapExecutor], sql: str, data: Dataset,
         max_rows: int = MAX_ROWS) -> tuple[sandbox_pb2.SandboxResult, sandbox_pb2.SandboxResult]:
    python, native = executors
    return answer(python, sql, data, max_rows), answer(native, sql, data, max_rows)


def registry_prompts() -> list[tuple[str, str]]:
    from datasets.generator import DATASETS

    return [(dataset_id, prompt) for dataset_id, spec in DATASETS.items() for prompt in spec["prompts"]]


def test_the_native_path_serves_only_sql_on_materialised_data(materialised: dict[str, Dataset]) -> None:
    data = materialised["ecommerce"]
    assert native_sql.serves(request("SELECT 1", data))
    csv_only = request("SELECT 1", data)
    assert not native_sql.serves(SandboxRequest(csv_only.run_id, "SELECT 1", csv_only.tables, csv_only.limits))
    assert not native_sql.serves(SandboxRequest(csv_only.run_id, "", data.tables, csv_only.limits, data.database,
                                                python_code="result = 1"))


@pytest.mark.parametrize(("dataset_id", "prompt"), registry_prompts())
def test_every_registry_prompt_answers_the_same(executors: tuple[BwrapExecutor, BwrapExecutor],
                                                materialised: dict[str, Dataset], dataset_id: str,
                                                prompt: str) -> None:
    data = materialised[dataset_id]
    plan = asyncio.run(OfflinePlanner().plan(prompt, data.dataset, PlanningContext()))
    sql = compile_plan(plan, data.dataset)
    python, native = both(executors, sql, data, max_rows=1000)
    assert not python.HasField("error"), python.error
    assert python.result.row_count > 0
    assert native == python


@pytest.mark.parametrize("sql", EDGE_CASES)
def test_typed_edge_cases_answer_the_same(executors: tuple[BwrapExecutor, BwrapExecutor],
                                          materialised: dict[str, Dataset], sql: str) -> None:
    python, native = both(executors, sql, materialised["ecommerce"])
    assert not python.HasField("error"), python.error
    assert native == python


def test_truncation_is_honest(executors: tuple[BwrapExecutor, BwrapExecutor], materialised: dict[str, Dataset]) -> None:
    _, native = both(executors, "SELECT * FROM orders", materialised["ecommerce"], max_rows=3)
    assert native.result.truncated and native.result.row_count == 3 and native.rows_produced == 4
    exact = answer(executors[1], "SELECT * FROM range(3)", materialised["ecommerce"], max_rows=3)
    assert not exact.result.truncated and exact.result.row_count == 3 and exact.rows_produced == 3


@pytest.mark.parametrize("sql", ERROR_CASES)
def test_errors_have_the_same_codes(executors: tuple[BwrapExecutor, BwrapExecutor],
                                    materialised: dict[str, Dataset], sql: str) -> None:
    python, native = both(executors, sql, materialised["ecommerce"])
    assert native.error.code == run_pb2.ERROR_CODE_QUERY_ERROR
    assert native.error.message.startswith("DuckDB rejected the query: ")
    if python.HasField("error"):
        assert (native.error.code, native.error.status_code) == (python.error.code, python.error.status_code)


def test_the_native_sandbox_is_locked_down(executors: tuple[BwrapExecutor, BwrapExecutor],
                                           materialised: dict[str, Dataset]) -> None:
    settings = ("enable_external_access", "lock_configuration", "autoload_known_extensions",
                "autoinstall_known_extensions", "allow_community_extensions", "allow_unsigned_extensions",
                "allow_persistent_secrets", "threads", "memory_limit", "allowed_directories")
    sql = "SELECT " + ", ".join(f"current_setting('{name}')::VARCHAR AS {name}" for name in settings)
    python, native = both(executors, sql, materialised["ecommerce"])
    values = dict(zip(settings, (v.string_value for v in native.result.rows[0].values), strict=True))
    assert values["enable_external_access"] == "false" and values["lock_configuration"] == "true"
    assert values["autoload_known_extensions"] == values["autoinstall_known_extensions"] == "false"
    assert values["allow_community_extensions"] == values["allow_unsigned_extensions"] == "false"
    assert values["allow_persistent_secrets"] == "false" and values["threads"] == "1"
    # DuckDB adds the spill directory (the sandbox's private /tmp) to the allowed ones itself.
    assert set(values["allowed_directories"].strip("[]").split(", ")) <= {"/data/", "/tmp/duckdb-spill/"}
    assert native.result.rows == python.result.rows


@pytest.mark.parametrize("attempt", [
    "SELECT 1 AS a');\n.shell touch /tmp/pwned\nSELECT ('1",
    "SELECT 1 AS a\n.shell touch /tmp/pwned",
    "SELECT '\\'); .shell touch /tmp/pwned; --' AS a",
])
def test_sql_cannot_reach_the_cli_dot_commands(executors: tuple[BwrapExecutor, BwrapExecutor],
                                                materialised: dict[str, Dataset], attempt: str) -> None:
    """The run's SQL is one string literal given to query(): never CLI input of its own."""
    result = answer(executors[1], attempt, materialised["ecommerce"])
    assert result.HasField("error") or [c.name for c in result.result.columns] == ["a"]
    assert not os.path.exists("/tmp/pwned")


def test_a_warm_native_sandbox_answers_the_same(materialised: dict[str, Dataset],
                                                executors: tuple[BwrapExecutor, BwrapExecutor]) -> None:
    data = materialised["support"]
    warm = BwrapExecutor(pool_settings=PoolSettings(size_per_key=1), native_cli=executors[1].native_cli)

    hits = metrics.WARM_POOL.labels(result="hit")

    async def scenario() -> tuple[list[sandbox_pb2.SandboxResult], float]:
        results, served_warm = [], 0.0
        for _ in range(3):
            before = hits._value.get()
            results.append((await warm.execute(request("SELECT count(*) AS n FROM tickets", data), lambda: None)).result)
            served_warm += hits._value.get() - before
            await warm.replenish()
        await warm.close()
        return results, served_warm

    results, served_warm = asyncio.run(scenario())
    assert served_warm == 2, "after the first (cold) run, each run must be served by a warm sandbox"
    cold = answer(executors[0], "SELECT count(*) AS n FROM tickets", data)
    for result in results:
        assert result.result == cold.result


def test_a_warm_sandbox_reads_ahead_only_when_left_waiting(materialised: dict[str, Dataset],
                                                          executors: tuple[BwrapExecutor, BwrapExecutor]) -> None:
    """A pool sandbox taken at once (back-to-back runs) is never given the read-ahead, which the
    CLI cannot stop; one left waiting through a quiet spell is, and then answers the same."""
    data = materialised["ecommerce"]
    warm = BwrapExecutor(pool_settings=PoolSettings(size_per_key=1), native_cli=executors[1].native_cli)
    read_aheads = metrics.READ_AHEADS.labels(executor="bwrap")
    sql = "SELECT status, count(*) AS n FROM orders GROUP BY status ORDER BY status"

    async def scenario() -> tuple[float, float, list[sandbox_pb2.SandboxResult]]:
        results = []
        try:
            results.append((await warm.execute(request(sql, data), lambda: None)).result)  # cold
            before = read_aheads._value.get()
            await warm.replenish()
            results.append((await warm.execute(request(sql, data), lambda: None)).result)  # taken at once
            taken_at_once = read_aheads._value.get() - before
            await warm.replenish()
            for _ in range(200):  # the quiet spell, then the read-ahead (bounded wait, not a timing)
                if read_aheads._value.get() - before > taken_at_once:
                    break
                await asyncio.sleep(0.05)
            left_waiting = read_aheads._value.get() - before - taken_at_once
            results.append((await warm.execute(request(sql, data), lambda: None)).result)
        finally:
            await warm.close()
        return taken_at_once, left_waiting, results

    taken_at_once, left_waiting, results = asyncio.run(scenario())
    assert taken_at_once == 0
    assert left_waiting == 1
    cold = answer(executors[0], sql, data)
    for result in results:
        assert not result.HasField("error"), result.error
        assert result.result == cold.result


def test_the_sql_string_survives_any_text() -> None:
    import duckdb

    connection = duckdb.connect()
    for text in ["plain", "it's", "back\\slash", "new\nline\r\n", "\t\x00\x01\x1f\x7f\x85", "é🙂\u2028", "E'x'", "\\'"]:
        text = text.replace("\x00", "")  # DuckDB strings hold no NUL
        assert connection.execute(f"SELECT {native_sql.sql_string(text)}").fetchall() == [(text,)]
        assert "\n" not in native_sql.sql_string(text) and "\r" not in native_sql.sql_string(text)


def test_a_native_run_past_its_time_limit_is_killed(executors: tuple[BwrapExecutor, BwrapExecutor],
                                                    materialised: dict[str, Dataset]) -> None:
    """The CLI has no max_execution_time (DuckDB 2.0 only): the executor's wall-clock kill stops it."""
    slow = request("SELECT COUNT(*) FROM range(100000000000) a, range(10) b", materialised["ecommerce"], timeout=1)
    outcome = asyncio.run(executors[1].execute(slow, lambda: None))
    assert outcome.result.error.code == run_pb2.ERROR_CODE_RUNNER_TIMEOUT, outcome.result
    assert outcome.result.error.status_code == 4


@pytest.mark.parametrize("sql", ["SELECT repeat('x', 2000000000)",
                                 "SELECT list(i) FROM range(200000000) AS r(i)"])
def test_a_native_run_past_its_memory_limit_is_a_resource_error(executors: tuple[BwrapExecutor, BwrapExecutor],
                                                                materialised: dict[str, Dataset], sql: str) -> None:
    heavy = request(sql, materialised["ecommerce"])
    heavy.limits.memory_bytes = 128 << 20
    outcome = asyncio.run(executors[1].execute(heavy, lambda: None))
    assert outcome.result.error.code == run_pb2.ERROR_CODE_RUNNER_RESOURCE_EXCEEDED, outcome.result
    assert outcome.result.error.status_code == 8


@pytest.mark.parametrize("sql", [
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_text('/data/../etc/passwd')",
    "ATTACH '/tmp/x.duckdb' AS x",
    "COPY (SELECT 1) TO '/tmp/out.csv'",
    "INSTALL httpfs",
    "LOAD httpfs",
    "SELECT * FROM 'https://example.com/x.csv'",
    "SET enable_external_access = true",
    "SELECT * FROM glob('/**')",
])
def test_duckdb_in_the_native_sandbox_cannot_escape(executors: tuple[BwrapExecutor, BwrapExecutor],
                                                    materialised: dict[str, Dataset], sql: str) -> None:
    result = answer(executors[1], sql, materialised["ecommerce"])
    assert result.error.code == run_pb2.ERROR_CODE_QUERY_ERROR, result
    assert "root:" not in str(result)


def test_a_warm_sandbox_reads_its_tables_ahead_silently(materialised: dict[str, Dataset]) -> None:
    script = native_sql.warm_up_script(materialised["ecommerce"].database).decode().splitlines()
    assert script[0] == ".mode trash" and script[-1] == ".mode jsonlines"
    reads = [line for line in script if "bit_xor(hash(" in line]
    # One table: the largest that fits (order_items, then orders, at this scale).
    assert len(reads) == 1 and reads[0].rsplit(" FROM ", 1)[1] in ('"order_items";', '"orders";')
    assert any("GROUP BY 1 ORDER BY 2 DESC LIMIT 10" in line for line in script)
    assert native_sql.warm_up_script(materialised["ecommerce"].database, max_cells=0) == b""
    assert native_sql.warm_up_script("/nonexistent/dataset.duckdb") == b""
