"""What only the PostgreSQL store has: the schema version and migration at start (replicas starting
together), a clear error for an unreachable server or a newer schema, whole results kept in the
database, reconnecting after the server restarts, owners on other hosts told dead or alive through
the database, and store selection by URL."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest

from analyst_service.capsules.owners import Owner
from analyst_service.capsules.postgres import SCHEMA_VERSION, CapsuleStoreError, PostgresCapsuleStore, redacted
from analyst_service.capsules.records import build_capsule
from analyst_service.capsules.results import ResultFileError
from analyst_service.capsules.sqlite import SqliteCapsuleStore
from analyst_service.capsules.stores import capsule_location, describe, open_capsule_store
from csv_analyst.v1 import run_pb2
from tests.postgres_server import PostgresServer
from tests.unit.analyst_service.test_capsule_records import big_result, finished_run
from tests.unit.analyst_service.test_capsules import make_capsule


def test_replicas_starting_together_create_the_schema_once(postgres_url: str) -> None:
    stores: list[PostgresCapsuleStore] = []
    errors: list[BaseException] = []

    def start() -> None:
        try:
            stores.append(PostgresCapsuleStore(postgres_url))
        except BaseException as error:  # noqa: BLE001 - surfaced below
            errors.append(error)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    try:
        assert errors == [] and len(stores) == 4
        with psycopg.connect(postgres_url) as db:
            assert db.execute("SELECT version FROM csv_analyst_schema").fetchall() == [(SCHEMA_VERSION,)]
        stores[0].put(make_capsule("r0"))
        assert stores[3].get("r0") == make_capsule("r0")
    finally:
        for store in stores:
            store.close()


def test_a_schema_from_a_newer_version_is_refused(postgres_url: str) -> None:
    PostgresCapsuleStore(postgres_url).close()
    with psycopg.connect(postgres_url) as db:
        db.execute("UPDATE csv_analyst_schema SET version = %s", (SCHEMA_VERSION + 1,))
    with pytest.raises(CapsuleStoreError, match="newer than this csv-analyst knows"):
        PostgresCapsuleStore(postgres_url)


def test_an_unreachable_server_is_a_clear_error_without_the_password() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens there once closed
    with pytest.raises(CapsuleStoreError, match=f"cannot connect to the capsule store postgresql://analyst@127.0.0.1:{port}/capsules") as caught:
        PostgresCapsuleStore(f"postgresql://analyst:s3cret@127.0.0.1:{port}/capsules", connect_timeout_seconds=1)
    assert "s3cret" not in str(caught.value)
    assert redacted("postgresql://u:pw@db.example:5433/caps?sslmode=require") == "postgresql://u@db.example:5433/caps"


def test_whole_results_live_in_the_database_and_are_checked(postgres_url: str, tmp_path: Path) -> None:
    store = PostgresCapsuleStore(postgres_url)
    try:
        run, events = finished_run(big_result(600))
        capsule = build_capsule(run, events, store.results, preview_max_bytes=64 << 10)
        with psycopg.connect(postgres_url, autocommit=True) as db:
            assert db.execute("SELECT sha256, size_bytes FROM result_files").fetchall() == [
                (capsule.full_result.sha256, capsule.full_result.size_bytes)]
            db.execute("UPDATE result_files SET data = data || '\\x00'::bytea")
        with pytest.raises(ResultFileError, match="does not match its digest"):
            store.results.get(capsule.full_result)
        assert not list(tmp_path.iterdir()) and not Path("results").exists()  # no file anywhere
    finally:
        store.close()


ELSEWHERE = Owner("replica-on-another-host", "boot", 7, "123").token()
REPLICA = """
import sys
from analyst_service.capsules.postgres import PostgresCapsuleStore
from csv_analyst.v1 import run_pb2
store = PostgresCapsuleStore(sys.argv[1], owner=sys.argv[2])
store.begin(run_pb2.Run(run_id="orphan"), sys.argv[2])
print("begun", flush=True)
sys.stdin.read()
"""


def eventually(condition: object, what: str, seconds: float = 60) -> None:
    """Wait for condition() (a generous bound: correctness does not depend on the machine's speed)."""
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_a_replica_on_another_host_is_alive_until_its_process_dies(postgres_url: str) -> None:
    store = PostgresCapsuleStore(postgres_url)
    with subprocess.Popen([sys.executable, "-c", REPLICA, postgres_url, ELSEWHERE],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as replica:
        try:
            check_replica(store, replica)
        finally:
            replica.kill()
            replica.wait(30)
            store.close()


def check_replica(store: PostgresCapsuleStore, replica: subprocess.Popen[str]) -> None:
    """While the replica lives its runs are not orphans; once it is killed they are."""
    assert replica.stdout is not None and replica.stdout.readline() == "begun\n"
    [record] = store.in_flight()
    assert record.owner == ELSEWHERE and not store.owner_is_gone(ELSEWHERE)  # its presence lock is held
    assert not store.owner_is_gone(ELSEWHERE)  # asking does not take the lock away
    assert not store.owner_is_gone(Owner.current().token())
    assert store.owner_is_gone(Owner("a-host-never-seen", "b", 1, "1").token())
    assert store.owner_is_gone("") and store.owner_is_gone("garbage")
    replica.kill()  # kill -9: its session ends with it, and so does the lock
    replica.wait(30)
    eventually(lambda: store.owner_is_gone(ELSEWHERE), "a killed replica's runs are orphaned")


def test_the_store_reconnects_after_the_server_restarts(postgres_server: PostgresServer, postgres_url: str) -> None:
    store = PostgresCapsuleStore(postgres_url, owner=ELSEWHERE)
    observer = PostgresCapsuleStore(postgres_url)
    try:
        store.put(make_capsule("before"))
        assert not observer.owner_is_gone(ELSEWHERE)
        postgres_server.stop("immediate")  # every pooled connection dies, and the presence session
        postgres_server.start_again()
        store.begin(run_pb2.Run(run_id="after"), owner="me")
        store.put(make_capsule("after"))
        assert store.get("before") == make_capsule("before") and store.in_flight() == []
        # The live store takes its presence lock again: its runs are not taken for orphans.
        eventually(lambda: not observer.owner_is_gone(ELSEWHERE), "presence is held again after a restart")
    finally:
        observer.close()
        store.close()


def test_the_location_chooses_the_store(postgres_url: str, tmp_path: Path) -> None:
    assert capsule_location("postgresql://u@h:5/db") == "postgresql://u@h:5/db"
    assert capsule_location("postgres://u@h/db") == "postgres://u@h/db"
    assert capsule_location(str(tmp_path / "c.sqlite3")) == tmp_path / "c.sqlite3"
    assert describe("postgresql://u:pw@h:5/db") == "postgresql://u@h:5/db"
    store = open_capsule_store(postgres_url)
    assert isinstance(store, PostgresCapsuleStore)
    store.close()
    store = open_capsule_store(capsule_location(str(tmp_path / "c.sqlite3")))
    assert isinstance(store, SqliteCapsuleStore)
    store.close()
