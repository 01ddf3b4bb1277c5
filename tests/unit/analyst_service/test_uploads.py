"""The upload store: limits, names, content addressing and persistence across restarts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from analyst_service.datasets import DatasetRegistry
from analyst_service.errors import InvalidRequestError
from analyst_service.uploads import MAX_FILES, UploadStore, UploadTooLargeError


def receive(store: UploadStore, messages: list[tuple[str, bytes]]):  # type: ignore[no-untyped-def]
    async def stream() -> AsyncIterator[tuple[str, bytes]]:
        for message in messages:
            yield message
    return asyncio.run(store.receive(stream()))


def test_over_the_size_limit_is_resource_exhausted_and_leaves_nothing(tmp_path: Path) -> None:
    store = UploadStore(tmp_path / "uploads", max_bytes=10)
    with pytest.raises(UploadTooLargeError) as caught:
        receive(store, [("big.csv", b"a,b\n"), ("", b"1,2\n"), ("", b"3,4\n")])
    assert caught.value.status_code.name == "RESOURCE_EXHAUSTED"
    assert list((tmp_path / "uploads").iterdir()) == []
    receive(store, [("small.csv", b"a\n1\n")])  # within the limit


def test_too_many_files(tmp_path: Path) -> None:
    store = UploadStore(tmp_path / "uploads")
    with pytest.raises(UploadTooLargeError):
        receive(store, [(f"t{i}.csv", b"a\n1\n") for i in range(MAX_FILES + 1)])


@pytest.mark.parametrize("name", ["../x.csv", "a/b.csv", ".hidden.csv", "", "x" * 101 + ".csv", "nul\0.csv"])
def test_bad_names_are_refused(tmp_path: Path, name: str) -> None:
    store = UploadStore(tmp_path / "uploads")
    with pytest.raises(InvalidRequestError):
        receive(store, [(name, b"a\n1\n")] if name else [("", b"a\n1\n")])


def test_same_content_same_dataset_and_it_survives_a_restart(tmp_path: Path) -> None:
    store = UploadStore(tmp_path / "uploads")
    first = receive(store, [("orders.csv", b"id\n1\n"), ("items.csv", b"id\n2\n")])
    again = receive(store, [("orders.csv", b"id\n"), ("", b"1\n"), ("items.csv", b"id\n2\n")])
    renamed = receive(store, [("orders2.csv", b"id\n1\n"), ("items.csv", b"id\n2\n")])
    assert first.dataset_id == again.dataset_id != renamed.dataset_id
    assert [t.name for t in first.tables] == ["orders", "items"]
    registry = DatasetRegistry(tmp_path / "no-registry", uploads=UploadStore(tmp_path / "uploads"))
    assert {d.dataset_id for d in registry.list()} == {first.dataset_id, renamed.dataset_id}
    assert registry.get(first.dataset_id).version_hash == first.version_hash
    assert Path(registry.host_path(registry.get(first.dataset_id).tables[0])).read_bytes() == b"id\n1\n"
