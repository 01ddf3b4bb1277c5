"""The upload store: limits, names, content addressing and persistence across restarts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from analyst_service.datasets import DatasetRegistry
from analyst_service.errors import DatasetNotDeletableError, InvalidRequestError, NotFoundError
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


def test_delete_removes_the_files_and_the_listing_for_good(tmp_path: Path) -> None:
    store = UploadStore(tmp_path / "uploads")
    kept = receive(store, [("kept.csv", b"id\n1\n")])
    doomed = receive(store, [("doomed.csv", b"id\n2\n")])
    registry = DatasetRegistry(tmp_path / "no-registry", uploads=store)
    host_file = Path(registry.host_path(registry.get(doomed.dataset_id).tables[0]))

    deleted = registry.delete_upload(f"datasets/{doomed.dataset_id}")

    assert deleted.dataset_id == doomed.dataset_id
    assert not host_file.exists() and not host_file.parent.exists()
    assert [d.dataset_id for d in registry.list()] == [kept.dataset_id]
    with pytest.raises(NotFoundError):
        registry.get(doomed.dataset_id)
    with pytest.raises(NotFoundError):
        registry.delete_upload(doomed.dataset_id)  # a second delete: gone
    restarted = DatasetRegistry(tmp_path / "no-registry", uploads=UploadStore(tmp_path / "uploads"))
    assert [d.dataset_id for d in restarted.list()] == [kept.dataset_id]
    assert sorted(p.name for p in (tmp_path / "uploads").iterdir()) == [kept.version_hash]


def test_an_interrupted_delete_does_not_come_back(tmp_path: Path) -> None:
    store = UploadStore(tmp_path / "uploads")
    doomed = receive(store, [("doomed.csv", b"id\n2\n")])
    # What a crash between the rename and the removal leaves.
    (tmp_path / "uploads" / doomed.version_hash).rename(tmp_path / "uploads" / ".deleting-0123")
    restarted = DatasetRegistry(tmp_path / "no-registry", uploads=UploadStore(tmp_path / "uploads"))
    assert restarted.list() == []
    assert list((tmp_path / "uploads").iterdir()) == []


def test_only_uploads_can_be_deleted(datasets_dir: Path, tmp_path: Path) -> None:
    registry = DatasetRegistry(datasets_dir, uploads=UploadStore(tmp_path / "uploads"))
    with pytest.raises(DatasetNotDeletableError) as caught:
        registry.delete_upload("ecommerce")
    assert caught.value.status_code.name == "FAILED_PRECONDITION"
    assert caught.value.reason == "DATASET_NOT_DELETABLE"
    assert registry.get("ecommerce").dataset_id == "ecommerce"  # still there
    with pytest.raises(NotFoundError):
        registry.delete_upload("upload-0000000000000000")


def test_a_file_that_is_not_utf8_is_stored_as_utf8_with_a_problem(tmp_path: Path) -> None:
    latin = "name,city\nJosé,Málaga\nFrançois,Besançon\nJürgen,Köln\n".encode("latin-1")
    store = UploadStore(tmp_path / "uploads")
    dataset = receive(store, [("people.csv", latin[:12]), ("", latin[12:])])
    stored = Path(dataset.tables[0].file)
    assert stored.read_text(encoding="utf-8") == latin.decode("latin-1")
    [problem] = dataset.ingestion_problems
    assert (problem.table, problem.kind) == ("people", "encoding_fixed")
    first_bad = latin.index("é".encode("latin-1")) + 1
    assert f"byte {first_bad}" in problem.message  # the first byte that is not UTF-8
    again = receive(store, [("people.csv", latin)])  # content addressed by the bytes as sent
    assert again.dataset_id == dataset.dataset_id
    restarted = UploadStore(tmp_path / "uploads").list()
    assert [p.kind for p in restarted[0].ingestion_problems] == ["encoding_fixed"]


def test_utf8_files_have_no_encoding_problem_even_when_a_character_spans_two_chunks(tmp_path: Path) -> None:
    text = "name\nJosé\n".encode()
    cut = text.index(b"\xc3") + 1  # between the two bytes of é
    dataset = receive(UploadStore(tmp_path / "uploads"), [("p.csv", text[:cut]), ("", text[cut:])])
    assert list(dataset.ingestion_problems) == []
    assert Path(dataset.tables[0].file).read_bytes() == text


def test_undetectable_bytes_are_refused(tmp_path: Path) -> None:
    store = UploadStore(tmp_path / "uploads")
    with pytest.raises(InvalidRequestError) as caught:
        receive(store, [("junk.csv", b"a,b\n\xff\xfe\x00\x01,\x80\x81\n")])
    assert "not valid UTF-8" in caught.value.message and "could not be detected" in caught.value.message
    assert list((tmp_path / "uploads").iterdir()) == []
