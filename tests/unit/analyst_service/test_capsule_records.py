"""Capsules hold every payload once and replay whole; stores page by bytes; in-flight records
carry owners and old stores migrate (every store: see conftest.store); result files are content-addressed and checked."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from analyst_service.capsules.base import CapsuleStore, RunQuery
from analyst_service.capsules.owners import Owner, owner_is_gone
from analyst_service.capsules.records import build_capsule, replay_events
from analyst_service.capsules.results import ResultFileError, ResultFiles, preview
from analyst_service.capsules.sqlite import SqliteCapsuleStore
from analyst_service.capsules.stores import open_capsule_store
from csv_analyst.v1 import capsule_pb2, result_pb2, run_pb2, value_pb2
from tests.unit.analyst_service.test_capsules import make_capsule


def big_result(rows: int, width: int = 1000) -> result_pb2.ResultTable:
    return result_pb2.ResultTable(
        columns=[result_pb2.ResultColumn(name="id", type="BIGINT"), result_pb2.ResultColumn(name="pad", type="VARCHAR")],
        rows=[result_pb2.ResultRow(values=[value_pb2.Value(int_value=i), value_pb2.Value(string_value="x" * width)])
              for i in range(rows)], row_count=rows)


def finished_run(result: result_pb2.ResultTable) -> tuple[run_pb2.Run, list[run_pb2.RunEvent]]:
    run = run_pb2.Run(name="runs/r1", run_id="r1", state=run_pb2.RUN_STATE_SUCCEEDED, sql="SELECT 1", result=result)
    events = [run_pb2.RunEvent(run_id="r1", sequence=1, stage=run_pb2.STAGE_VALIDATING, sql=run.sql),
              run_pb2.RunEvent(run_id="r1", sequence=2, stage=run_pb2.STAGE_QUEUED, sql=run.sql),
              run_pb2.RunEvent(run_id="r1", sequence=3, stage=run_pb2.STAGE_EXECUTING),
              run_pb2.RunEvent(run_id="r1", sequence=4, stage=run_pb2.STAGE_RESULT, result=result),
              run_pb2.RunEvent(run_id="r1", sequence=5, stage=run_pb2.STAGE_DONE, run=run)]
    return run, events


def test_a_small_result_is_stored_once_and_replayed_whole(tmp_path: Path) -> None:
    run, events = finished_run(big_result(3, 10))
    capsule = build_capsule(run, events, ResultFiles(tmp_path / "results"))
    assert not capsule.HasField("full_result") and capsule.run.result == run.result
    assert [e.WhichOneof("payload") for e in capsule.events] == [None, None, None, None, "run"]
    assert not capsule.events[-1].run.result.rows
    assert replay_events(capsule) == events
    assert not (tmp_path / "results").exists()


def test_a_large_result_keeps_a_bounded_preview_and_a_content_addressed_file(tmp_path: Path) -> None:
    result = big_result(600)
    run, events = finished_run(result)
    files = ResultFiles(tmp_path / "results")
    capsule = build_capsule(run, events, files, preview_max_bytes=64 << 10)
    assert capsule.run.result.ByteSize() <= 64 << 10 < result.ByteSize()
    assert capsule.full_result.row_count == 600 and capsule.full_result.preview_row_count == capsule.run.result.row_count
    assert list(capsule.run.result.rows) == list(result.rows[:capsule.run.result.row_count])
    assert files.get(capsule.full_result) == result
    again = build_capsule(run, events, files, preview_max_bytes=64 << 10)
    assert again.full_result == capsule.full_result  # same content, same file
    assert len(list((tmp_path / "results").rglob("*.pb"))) == 1
    replayed = replay_events(capsule)
    assert replayed[3].result == capsule.run.result and replayed[-1].run == capsule.run
    path = files.path_for(capsule.full_result.sha256)
    path.write_bytes(path.read_bytes()[:-1] + b"\0")
    with pytest.raises(ResultFileError):
        files.get(capsule.full_result)
    path.unlink()
    with pytest.raises(ResultFileError):
        files.get(capsule.full_result)


def test_preview_keeps_whole_rows_within_the_budget() -> None:
    result = big_result(10, 100)
    kept = preview(result, result.ByteSize() // 2)
    assert kept.ByteSize() <= result.ByteSize() // 2 and 0 < kept.row_count < 10
    assert preview(result, 10).row_count == 0


def test_list_pages_by_bytes_and_always_moves_on(store: CapsuleStore) -> None:
    for index in range(5):
        capsule = make_capsule(f"r{index}")
        capsule.run.result.CopyFrom(big_result(20, 1000))  # ~20 KB each
        store.put(capsule)
    size = len(store.get("r0").SerializeToString())  # type: ignore[union-attr]
    pages, token = [], ""
    while True:
        page = store.list(50, token, max_bytes=int(size * 2.5))
        pages.append([c.run.run_id for c in page.capsules])
        token = page.next_page_token
        if not token:
            break
    assert pages == [["r4", "r3"], ["r2", "r1"], ["r0"]]
    tiny = store.list(50, "", max_bytes=1)
    assert [c.run.run_id for c in tiny.capsules] == ["r4"] and tiny.next_page_token  # at least one per page


def test_list_runs_filters_by_state_dataset_and_time(store: CapsuleStore) -> None:
    for index, (dataset, state) in enumerate([("a", run_pb2.RUN_STATE_SUCCEEDED), ("b", run_pb2.RUN_STATE_SUCCEEDED),
                                              ("a", run_pb2.RUN_STATE_REJECTED), ("a", run_pb2.RUN_STATE_SUCCEEDED)]):
        capsule = make_capsule(f"r{index}", dataset_id=dataset, state=state)
        capsule.run.create_time.FromSeconds(1_700_000_000 + index)
        store.put(capsule)
    query = RunQuery(states=(run_pb2.RUN_STATE_SUCCEEDED,), dataset_id="a")
    assert [r.run_id for r in store.list_runs(10, "", query).runs] == ["r3", "r0"]
    first = store.list_runs(1, "", query)
    assert [r.run_id for r in first.runs] == ["r3"]
    assert [r.run_id for r in store.list_runs(1, first.next_page_token, query).runs] == ["r0"]
    timed = RunQuery(min_create_micros=1_700_000_001 * 10**6, max_create_micros=1_700_000_003 * 10**6)
    assert [r.run_id for r in store.list_runs(10, "", timed).runs] == ["r2", "r1"]
    assert all(not r.result.rows for r in store.list_runs(10, "", RunQuery()).runs)


def test_in_flight_records_carry_their_owner(store: CapsuleStore) -> None:
    me = Owner.current()
    store.begin(run_pb2.Run(run_id="mine"), me.token())
    [record] = store.in_flight()
    assert record.run.run_id == "mine" and not owner_is_gone(record.owner)
    assert store.in_flight_run("mine") == record and store.in_flight_run("nope") is None
    store.begin(run_pb2.Run(run_id="other"), "x")
    store.begin(run_pb2.Run(run_id="mine", question="again"), "y")  # begun again: its new owner, newest first
    assert [(r.run.run_id, r.run.question, r.owner) for r in store.in_flight()] == [("mine", "again", "y"),
                                                                                  ("other", "", "x")]
    store.put(capsule_pb2.Capsule(name="capsules/other", run=run_pb2.Run(run_id="other")))
    store.put(capsule_pb2.Capsule(name="capsules/mine", run=run_pb2.Run(run_id="mine")))
    assert store.in_flight() == []


def test_an_owner_is_gone_only_when_its_process_is() -> None:
    assert not Owner.current().is_gone()
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    owner = Owner(Owner.current().host, Owner.current().boot_id, child.pid,
                  Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    assert not owner.is_gone()
    child.communicate(b"")
    assert owner.is_gone()
    assert Owner(Owner.current().host, "another-boot", 1, "1").is_gone()
    assert not Owner("another-host", "x", 1, "1").is_gone()  # another machine: presumed alive
    assert owner_is_gone("") and owner_is_gone("garbage")  # records of older versions


def test_a_store_from_before_owners_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    db.executescript("CREATE TABLE runs_in_flight (run_id TEXT PRIMARY KEY, run BLOB NOT NULL);")
    db.execute("INSERT INTO runs_in_flight VALUES (?, ?)", ("rold", run_pb2.Run(run_id="rold").SerializeToString()))
    db.commit()
    db.close()
    store = SqliteCapsuleStore(path)
    try:
        [record] = store.in_flight()
        assert record.run.run_id == "rold" and record.owner == "" and owner_is_gone(record.owner)
        store.put(make_capsule("rnew"))
        assert store.list_runs(10, "", RunQuery()).runs[0].run_id == "rnew"
    finally:
        store.close()


def test_a_large_result_is_stored_once_and_read_back_by_another_store(store: CapsuleStore,
                                                                      store_location: Path | str) -> None:
    result = big_result(600)
    run, events = finished_run(result)
    capsule = build_capsule(run, events, store.results, preview_max_bytes=64 << 10)
    store.put(capsule)
    assert build_capsule(run, events, store.results, preview_max_bytes=64 << 10).full_result == capsule.full_result
    other = open_capsule_store(store_location)  # another replica on the same store
    try:
        stored = other.get("r1")
        assert stored == capsule and other.results.get(stored.full_result) == result
    finally:
        other.close()
    with pytest.raises(ResultFileError):
        store.results.get(capsule_pb2.StoredResult(sha256="0" * 64, size_bytes=1, row_count=1))


def test_in_thread_is_the_newest_capsules_of_the_thread_in_any_state(store: CapsuleStore) -> None:
    """Clarified and rejected turns are part of a thread too (its next question is planned knowing them)."""
    def in_thread(run_id: str, thread_id: str, state: int = run_pb2.RUN_STATE_SUCCEEDED) -> capsule_pb2.Capsule:
        capsule = make_capsule(run_id, state=state)
        capsule.run.thread_id = thread_id
        return capsule

    assert store.in_thread("t1", 3) == []
    store.put(in_thread("r0", "t1"))
    store.put(in_thread("r1", "t1"))
    store.put(in_thread("r2", "t2"))
    store.put(in_thread("r3", "t1", state=run_pb2.RUN_STATE_REJECTED))
    assert [c.run.run_id for c in store.in_thread("t1", 2)] == ["r3", "r1"]
    assert [c.run.run_id for c in store.in_thread("t1", 5)] == ["r3", "r1", "r0"]
    assert store.in_thread("t3", 3) == []
