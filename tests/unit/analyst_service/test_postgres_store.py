"""What only the PostgreSQL store has: the schema version and migration at start (replicas starting
together), a clear error for an unreachable server or a newer schema, whole results kept in the
database, reconnecting after the server restarts, and store selection by URL."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import psycopg
import pytest

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


def test_the_store_reconnects_after_the_server_restarts(postgres_server: PostgresServer, postgres_url: str) -> None:
    store = PostgresCapsuleStore(postgres_url)
    try:
        store.put(make_capsule("before"))
        postgres_server.stop("immediate")  # every pooled connection dies
        postgres_server.start_again()
        store.begin(run_pb2.Run(run_id="after"), owner="me")
        store.put(make_capsule("after"))
        assert store.get("before") == make_capsule("before") and store.in_flight() == []
    finally:
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
