"""The profile cache: keyed by version, table names and file identity; bounded LRU."""

from __future__ import annotations

from pathlib import Path

from analyst_service.profiling import ProfileCache, profile_key
from csv_analyst.v1 import dataset_pb2


def dataset(name: str, path: Path, version: str = "v1") -> dataset_pb2.Dataset:
    return dataset_pb2.Dataset(dataset_id="d", version_hash=version,
                               tables=[dataset_pb2.Table(name=name, file=str(path))])


def test_profile_key_names_the_table_and_the_files_state(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("x\n1\n")
    key = profile_key(dataset("sales_a", path), [str(path)])
    assert profile_key(dataset("sales_a", path), [str(path)]) == key
    assert profile_key(dataset("budget_b", path), [str(path)]) != key
    path.write_text("x\n2\n")  # an edit under the same registry version hash
    assert profile_key(dataset("sales_a", path), [str(path)]) != key


def test_profile_cache_is_bounded_by_entries_and_bytes() -> None:
    cache = ProfileCache(max_entries=2, max_bytes=1 << 20)
    for index in range(3):
        cache.put(str(index), dataset_pb2.Dataset(dataset_id=f"d{index}"))
    assert len(cache) == 2 and cache.get("0") is None and cache.get("2") is not None
    big = ProfileCache(max_entries=10, max_bytes=1000)
    for index in range(3):
        big.put(str(index), dataset_pb2.Dataset(description="x" * 600))
    assert len(big) == 1 and big.get("2") is not None
