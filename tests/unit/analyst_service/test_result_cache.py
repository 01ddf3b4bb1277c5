"""The exact result cache: keys that cannot go stale, a byte bound, a TTL."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from analyst_service.result_cache import ResultCache
from csv_analyst.v1 import dataset_pb2, result_pb2, run_pb2, value_pb2


def table(rows: int) -> result_pb2.ResultTable:
    return result_pb2.ResultTable(columns=[result_pb2.ResultColumn(name="n", type="BIGINT")], row_count=rows,
                                  rows=[result_pb2.ResultRow(values=[value_pb2.Value(int_value=i)]) for i in range(rows)])


@pytest.fixture
def files(tmp_path: Path) -> tuple[dataset_pb2.Dataset, list[str]]:
    path = tmp_path / "t.csv"
    path.write_text("a\n1\n")
    return dataset_pb2.Dataset(dataset_id="d", version_hash="v1", tables=[dataset_pb2.Table(name="t")]), [str(path)]


def sql_run(sql: str) -> run_pb2.Run:
    return run_pb2.Run(sql=sql, query_type=run_pb2.QUERY_TYPE_SQL)


def test_the_key_covers_version_files_query_and_limit(files: tuple[dataset_pb2.Dataset, list[str]]) -> None:
    dataset, paths = files
    key = ResultCache.key_for(dataset, paths, sql_run("SELECT 1"), 100)
    assert key == ResultCache.key_for(dataset, paths, sql_run("SELECT 1"), 100)
    assert key != ResultCache.key_for(dataset, paths, sql_run("SELECT 2"), 100)
    assert key != ResultCache.key_for(dataset, paths, sql_run("SELECT 1"), 10)
    other_version = dataset_pb2.Dataset(dataset_id="d", version_hash="v2", tables=dataset.tables)
    assert key != ResultCache.key_for(other_version, paths, sql_run("SELECT 1"), 100)
    python = run_pb2.Run(python_code="SELECT 1", query_type=run_pb2.QUERY_TYPE_PYTHON)
    assert key != ResultCache.key_for(dataset, paths, python, 100)
    stat = os.stat(paths[0])
    os.utime(paths[0], ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # an edit keeping the size
    assert key != ResultCache.key_for(dataset, paths, sql_run("SELECT 1"), 100)
    os.unlink(paths[0])
    assert ResultCache.key_for(dataset, paths, sql_run("SELECT 1"), 100) is None


@pytest.mark.parametrize("query", ["SELECT random()", "SELECT now()", "SELECT current_date", "SELECT uuid()",
                                   "SELECT gen_random_uuid()", "result = np.random.rand()"])
def test_volatile_queries_are_never_cached(files: tuple[dataset_pb2.Dataset, list[str]], query: str) -> None:
    assert ResultCache.key_for(files[0], files[1], sql_run(query), 100) is None


def test_bounded_by_bytes_least_recently_used_out() -> None:
    size = table(10).ByteSize()
    cache = ResultCache(max_bytes=size * 4 + 10)
    for name in "abcd":
        cache.put(name, table(10), f"run-{name}")
    assert cache.get("a") is not None  # a is now the most recent
    cache.put("e", table(10), "run-e")
    assert cache.get("b") is None and cache.get("a") is not None and len(cache) == 4
    cache.put("huge", table(100), "run-huge")  # over a quarter of the bound: not kept
    assert cache.get("huge") is None


def test_entries_expire(monkeypatch: pytest.MonkeyPatch) -> None:
    cache = ResultCache(ttl_seconds=60)
    clock = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    cache.put("k", table(1), "run-1")
    clock[0] += 59
    assert cache.get("k") is not None and cache.get("k").run_id == "run-1"  # type: ignore[union-attr]
    clock[0] += 2
    assert cache.get("k") is None and len(cache) == 0
