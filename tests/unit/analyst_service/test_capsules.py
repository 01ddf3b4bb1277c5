"""Every capsule store (SQLite and PostgreSQL, see conftest.store): idempotent put, get, newest-first
keyset pagination, bad tokens, reopen, searchable columns, concurrent writers and two stores sharing
one database."""

from __future__ import annotations

import base64
import contextlib
import sqlite3
import threading
from pathlib import Path

import pytest

from analyst_service.capsules.base import CapsuleStore
from analyst_service.capsules.sqlite import SqliteCapsuleStore
from analyst_service.capsules.stores import is_postgres_url, open_capsule_store
from csv_analyst.v1 import capsule_pb2, plan_pb2, result_pb2, run_pb2, value_pb2


def make_capsule(run_id: str, dataset_id: str = "ecommerce", state: int = run_pb2.RUN_STATE_SUCCEEDED,
                 question: str = "how many orders?") -> capsule_pb2.Capsule:
    run = run_pb2.Run(
        name=f"runs/{run_id}", run_id=run_id, state=state, dataset_id=dataset_id, question=question,
        plan=plan_pb2.Plan(dataset_id=dataset_id, base_table="orders",
                           select=[plan_pb2.SelectItem(column="*", aggregation=plan_pb2.AGGREGATION_COUNT)]),
        sql='SELECT COUNT(*) AS "count" FROM "orders" LIMIT 200',
        limits=run_pb2.ResourceLimits(memory_bytes=256 << 20, max_rows=500, threads=1),
        result=result_pb2.ResultTable(columns=[result_pb2.ResultColumn(name="count", type="BIGINT")],
                                      rows=[result_pb2.ResultRow(values=[value_pb2.Value(int_value=42)])],
                                      row_count=1),
        runner_mode="bwrap", dataset_version_hash="ab" * 32,
        stats=run_pb2.RunStats(rows_produced=1, stdout="", stderr="warning: x"),
    )
    run.create_time.FromSeconds(1_700_000_000)
    run.end_time.FromSeconds(1_700_000_001)
    run.limits.timeout.FromSeconds(10)
    if state != run_pb2.RUN_STATE_SUCCEEDED:
        run.ClearField("result")
        run.error.CopyFrom(run_pb2.RunError(code=run_pb2.ERROR_CODE_SQL_POLICY_VIOLATION, reason="SQL_POLICY_VIOLATION",
                                            message="only SELECT", status_code=3,
                                            violations=[run_pb2.FieldViolation(field="sql", description="no")]))
    return capsule_pb2.Capsule(name=f"capsules/{run_id}", run=run, plan_json='{"baseTable": "orders"}',
                               planner="offline",
                               events=[run_pb2.RunEvent(run_id=run_id, sequence=1, stage=run_pb2.STAGE_PLANNING),
                                       run_pb2.RunEvent(run_id=run_id, sequence=2, stage=run_pb2.STAGE_DONE)])


def raw_row(location: Path | str, query: str) -> tuple[object, ...]:
    """One row of a query run on the store's database directly (not through the store)."""
    if is_postgres_url(location):
        import psycopg

        with psycopg.connect(str(location)) as db:
            row = db.execute(query).fetchone()
    else:
        with contextlib.closing(sqlite3.connect(location)) as raw:
            row = raw.execute(query).fetchone()
    assert row is not None
    return tuple(row)


def all_ids(store: CapsuleStore, page_size: int, dataset_id: str = "") -> list[list[str]]:
    pages, token = [], ""
    while True:
        page = store.list(page_size, token, dataset_id)
        pages.append([c.run.run_id for c in page.capsules])
        token = page.next_page_token
        if not token:
            return pages
        assert len(pages) < 100, "pagination does not terminate"


def test_put_then_get_round_trips_every_field(store: CapsuleStore) -> None:
    capsule = make_capsule("run-1")
    store.put(capsule)
    assert store.get("run-1") == capsule
    failed = make_capsule("run-2", state=run_pb2.RUN_STATE_REJECTED)
    store.put(failed)
    got = store.get("run-2")
    assert got == failed
    assert got is not None and got.run.error.violations[0].field == "sql"


def test_get_unknown_is_none(store: CapsuleStore) -> None:
    assert store.get("nope") is None
    store.put(make_capsule("run-1"))
    assert store.get("run-") is None
    assert store.get("RUN-1") is None


def test_put_is_idempotent_and_capsules_are_immutable(store: CapsuleStore) -> None:
    original = make_capsule("run-1", question="first")
    store.put(original)
    store.put(original)
    store.put(make_capsule("run-1", question="rewritten"))
    assert store.get("run-1") == original
    assert all_ids(store, 10) == [["run-1"]]


def test_list_is_newest_first(store: CapsuleStore) -> None:
    for i in range(5):
        store.put(make_capsule(f"run-{i}"))
    page = store.list(10, "")
    assert [c.run.run_id for c in page.capsules] == ["run-4", "run-3", "run-2", "run-1", "run-0"]
    assert page.next_page_token == ""
    assert page.capsules[0] == make_capsule("run-4")


@pytest.mark.parametrize(("count", "page_size", "expected_pages"), [
    (0, 3, [[]]),
    (1, 1, [["r0"]]),
    (3, 3, [["r2", "r1", "r0"]]),  # exactly one full page: no token to an empty page
    (7, 3, [["r6", "r5", "r4"], ["r3", "r2", "r1"], ["r0"]]),
    (6, 2, [["r5", "r4"], ["r3", "r2"], ["r1", "r0"]]),
])
def test_pagination(store: CapsuleStore, count: int, page_size: int, expected_pages: list[list[str]]) -> None:
    for i in range(count):
        store.put(make_capsule(f"r{i}"))
    assert all_ids(store, page_size) == expected_pages


def test_pagination_is_stable_while_new_runs_arrive(store: CapsuleStore) -> None:
    for i in range(4):
        store.put(make_capsule(f"r{i}"))
    first = store.list(2, "")
    assert [c.run.run_id for c in first.capsules] == ["r3", "r2"]
    store.put(make_capsule("r-new"))
    second = store.list(2, first.next_page_token)
    assert [c.run.run_id for c in second.capsules] == ["r1", "r0"]
    assert second.next_page_token == ""


def test_list_filters_by_dataset(store: CapsuleStore) -> None:
    for i in range(6):
        store.put(make_capsule(f"r{i}", dataset_id="support" if i % 2 else "sensors"))
    assert all_ids(store, 2, "support") == [["r5", "r3"], ["r1"]]
    assert all_ids(store, 5, "sensors") == [["r4", "r2", "r0"]]
    assert all_ids(store, 5, "ecommerce") == [[]]


@pytest.mark.parametrize("token", [
    "garbage!",
    "abc",
    base64.urlsafe_b64encode(b"capsules:abc").decode(),
    base64.urlsafe_b64encode(b"datasets:5").decode(),
    base64.urlsafe_b64encode(b"capsules:").decode(),
    base64.urlsafe_b64encode(b"\xff\xfe\xfd").decode(),
    "5",
])
def test_bad_page_token_is_value_error(store: CapsuleStore, token: str) -> None:
    store.put(make_capsule("r0"))
    with pytest.raises(ValueError, match="invalid page token"):
        store.list(5, token)


def test_overflowing_page_token_is_value_error(store: CapsuleStore) -> None:
    with pytest.raises(ValueError):
        store.list(5, base64.urlsafe_b64encode(b"capsules:" + b"9" * 30).decode())


def test_persists_across_reopen(store_location: Path | str) -> None:
    first = open_capsule_store(store_location)
    first.put(make_capsule("r0"))
    first.put(make_capsule("r1"))
    first.close()
    reopened = open_capsule_store(store_location)
    try:
        assert reopened.get("r0") == make_capsule("r0")
        reopened.put(make_capsule("r2"))
        assert all_ids(reopened, 10) == [["r2", "r1", "r0"]]
    finally:
        reopened.close()
    row = raw_row(store_location, "SELECT dataset_id, status, question, sql, runner_mode, plan_json FROM capsules "
                                  "WHERE run_id = 'r1'")
    assert row == ("ecommerce", "RUN_STATE_SUCCEEDED", "how many orders?",
                   'SELECT COUNT(*) AS "count" FROM "orders" LIMIT 200', "bwrap", '{"baseTable": "orders"}')


def test_sqlite_uses_wal(tmp_path: Path) -> None:
    path = tmp_path / "capsules.sqlite3"
    SqliteCapsuleStore(path).close()
    assert raw_row(path, "PRAGMA journal_mode") == ("wal",)


def test_searchable_columns_record_failures(store: CapsuleStore, store_location: Path | str) -> None:
    store.put(make_capsule("bad", state=run_pb2.RUN_STATE_REJECTED))
    status, error_json = raw_row(store_location, "SELECT status, error_json FROM capsules WHERE run_id = 'bad'")
    assert status == "RUN_STATE_REJECTED"
    assert '"reason":"SQL_POLICY_VIOLATION"' in str(error_json).replace(" ", "")


def test_concurrent_puts_from_threads(store: CapsuleStore) -> None:
    errors: list[BaseException] = []

    def worker(offset: int) -> None:
        try:
            for i in range(25):
                store.put(make_capsule(f"t{offset}-{i}"))
                store.put(make_capsule(f"t{offset}-{i}"))  # duplicates race too
        except BaseException as error:  # noqa: BLE001 - surfaced below
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    ids = [run_id for page in all_ids(store, 7) for run_id in page]
    assert len(ids) == 100 and len(set(ids)) == 100


def test_two_stores_on_one_database_share_runs(store: CapsuleStore, store_location: Path | str) -> None:
    """Two replicas (two store objects, two connections or pools) begin and put runs at once,
    the same run ids from both too: every run is stored once, no in-flight record is left, each
    store sees the other's in-flight records and capsules, and paging visits every capsule once."""
    other = open_capsule_store(store_location)
    errors: list[BaseException] = []

    def worker(replica: CapsuleStore, name: str) -> None:
        try:
            for i in range(20):
                for run_id in (f"{name}-{i}", f"shared-{i}"):
                    replica.begin(run_pb2.Run(run_id=run_id), owner=name)
                    replica.put(make_capsule(run_id, question=f"from {name}"))
        except BaseException as error:  # noqa: BLE001 - surfaced below
            errors.append(error)

    try:
        other.begin(run_pb2.Run(run_id="pending"), owner="b")
        record = store.in_flight_run("pending")
        assert record is not None and record.owner == "b"
        threads = [threading.Thread(target=worker, args=(replica, name))
                   for replica, name in ((store, "a"), (other, "b"))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert errors == []
        assert [r.run.run_id for r in store.in_flight()] == ["pending"]
        ids = [run_id for page in all_ids(other, 7) for run_id in page]
        assert len(ids) == 60 and set(ids) == {f"{n}-{i}" for n in ("a", "b", "shared") for i in range(20)}
        assert ids == [run_id for page in all_ids(store, 60) for run_id in page]
        assert other.get("a-3") == make_capsule("a-3", question="from a")
        assert store.get("b-3") == make_capsule("b-3", question="from b")
        shared = store.get("shared-7")
        assert shared is not None and shared == other.get("shared-7")
    finally:
        other.close()


def test_a_failed_write_does_not_leave_the_store_inside_a_transaction(tmp_path: Path) -> None:
    db_path = tmp_path / "capsules.sqlite3"
    store = SqliteCapsuleStore(db_path)
    store._db.execute("PRAGMA busy_timeout = 50")  # noqa: SLF001 - fail fast instead of waiting 5 s
    blocker = sqlite3.connect(str(db_path), isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    with pytest.raises(sqlite3.OperationalError):
        store.put(make_capsule("r-blocked"))
    blocker.execute("ROLLBACK")
    blocker.close()
    assert not store._db.in_transaction  # noqa: SLF001
    store.put(make_capsule("r-after"))  # the store still writes, and others see it
    other = SqliteCapsuleStore(db_path)
    assert other.get("r-after") is not None and other.get("r-blocked") is None
