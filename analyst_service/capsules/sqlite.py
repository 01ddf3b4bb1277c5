"""The embedded default capsule store: SQLite in WAL mode, one row per run.

The capsule is stored as its binary protobuf (the source of truth) next to indexed columns
that make it searchable with plain SQL (run_id, times, dataset, status, question, SQL, plan JSON).
"""

from __future__ import annotations

import base64
import builtins
import contextlib
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from google.protobuf import json_format

from analyst_service.capsules.base import CapsulePage, InFlight, RunPage, RunQuery
from analyst_service.capsules.owners import owner_is_gone
from analyst_service.capsules.results import ResultFiles
from csv_analyst.v1 import capsule_pb2, run_pb2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS capsules (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL UNIQUE,
    create_time TEXT NOT NULL,
    end_time TEXT NOT NULL,
    dataset_id TEXT NOT NULL,
    dataset_version_hash TEXT NOT NULL,
    question TEXT NOT NULL,
    plan_json TEXT NOT NULL,
    sql TEXT NOT NULL,
    runner_mode TEXT NOT NULL,
    limits_json TEXT NOT NULL,
    stats_json TEXT NOT NULL,
    status TEXT NOT NULL,
    error_json TEXT NOT NULL,
    capsule BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS capsules_dataset ON capsules (dataset_id, seq);
CREATE TABLE IF NOT EXISTS runs_in_flight (
    run_id TEXT PRIMARY KEY,
    run BLOB NOT NULL
);
"""
# Columns added after the first release (a store from before gets them with their default).
_MIGRATIONS = (
    ("runs_in_flight", "owner", "TEXT NOT NULL DEFAULT ''"),
    ("capsules", "create_micros", "INTEGER NOT NULL DEFAULT 0"),
)


class SqliteCapsuleStore:
    """Capsules in one SQLite file (WAL), safe to use from several threads."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._migrate()
        self.results = ResultFiles(path.parent / "results")

    def _migrate(self) -> None:
        with self._lock, self._transaction():
            for table, column, definition in _MIGRATIONS:
                columns = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
                if column not in columns:
                    self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")
            self._db.execute("CREATE INDEX IF NOT EXISTS capsules_time ON capsules (create_micros)")

    def begin(self, run: run_pb2.Run, owner: str = "") -> None:
        """Record that a run started and which process runs it (see capsules.owners), so a
        crash before its capsule is stored is not silent."""
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO runs_in_flight (run_id, run, owner) VALUES (?, ?, ?)",
                             (run.run_id, run.SerializeToString(), owner))

    def owner_is_gone(self, token: str) -> bool:
        """Whether the process that wrote this owner token is certainly gone (see capsules.owners)."""
        return owner_is_gone(token)

    def in_flight(self) -> list[InFlight]:
        """Runs that began but have no capsule yet, newest first, with their owners."""
        with self._lock:
            rows = self._db.execute("SELECT run, owner FROM runs_in_flight ORDER BY rowid DESC").fetchall()
        return [InFlight(run_pb2.Run.FromString(run), owner) for run, owner in rows]

    def in_flight_run(self, run_id: str) -> InFlight | None:
        """The in-flight record of run_id, or None."""
        with self._lock:
            row = self._db.execute("SELECT run, owner FROM runs_in_flight WHERE run_id = ?", (run_id,)).fetchone()
        return None if row is None else InFlight(run_pb2.Run.FromString(row[0]), row[1])

    def put(self, capsule: capsule_pb2.Capsule) -> None:
        """Store a capsule (idempotent on run_id) and clear its in-flight record."""
        run = capsule.run

        def as_json(message: object) -> str:
            return json_format.MessageToJson(message, indent=None, sort_keys=True)  # type: ignore[arg-type]

        with self._lock, self._transaction():
            self._db.execute(
                "INSERT OR IGNORE INTO capsules (run_id, create_time, end_time, dataset_id, dataset_version_hash,"
                " question, plan_json, sql, runner_mode, limits_json, stats_json, status, error_json, capsule,"
                " create_micros) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (run.run_id, run.create_time.ToJsonString(), run.end_time.ToJsonString(), run.dataset_id,
                 run.dataset_version_hash, run.question, capsule.plan_json, run.sql, run.runner_mode,
                 as_json(run.limits), as_json(run.stats), run_pb2.RunState.Name(run.state),
                 as_json(run.error), capsule.SerializeToString(), run.create_time.ToMicroseconds()),
            )
            self._db.execute("DELETE FROM runs_in_flight WHERE run_id = ?", (run.run_id,))

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """One commit for several statements (the connection is in autocommit mode otherwise)."""
        self._db.execute("BEGIN")
        try:
            yield
            self._db.execute("COMMIT")
        except BaseException:
            # A failed COMMIT (disk full, busy) must not leave the connection inside a
            # transaction for good; SQLite may also have rolled back by itself already.
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise

    def get(self, run_id: str) -> capsule_pb2.Capsule | None:
        """Return the capsule of run_id, or None."""
        with self._lock:
            row = self._db.execute("SELECT capsule FROM capsules WHERE run_id = ?", (run_id,)).fetchone()
        return None if row is None else capsule_pb2.Capsule.FromString(row[0])

    def in_thread(self, thread_id: str, count: int, scan: int = 2000) -> builtins.list[capsule_pb2.Capsule]:
        """The newest `count` capsules of a conversation thread, any state, newest first (among the
        last `scan`)."""
        with self._lock:
            rows = self._db.execute("SELECT capsule FROM capsules ORDER BY seq DESC LIMIT ?", (scan,)).fetchall()
        found: builtins.list[capsule_pb2.Capsule] = []
        for (blob,) in rows:
            capsule = capsule_pb2.Capsule.FromString(blob)
            if capsule.run.thread_id == thread_id:
                found.append(capsule)
                if len(found) >= count:
                    break
        return found

    def list(self, page_size: int, page_token: str, dataset_id: str = "",
             max_bytes: int = 0) -> CapsulePage:
        """Return a page of capsules, newest first (keyset pagination on the insert sequence).

        The page ends at page_size capsules or before their encodings pass max_bytes (0: no
        byte bound); it always holds at least one capsule when any is left.
        """
        rows = self._select(page_size, page_token, dataset_id=dataset_id)
        capsules: builtins.list[capsule_pb2.Capsule] = []
        total = 0
        last_seq = 0
        for seq, blob in rows[:page_size]:
            size = len(blob) + 8  # tag and length prefix in the response
            if capsules and max_bytes and total + size > max_bytes:
                return CapsulePage(capsules, _encode_token(last_seq))
            capsules.append(capsule_pb2.Capsule.FromString(blob))
            total += size
            last_seq = seq
        token = _encode_token(last_seq) if len(rows) > page_size else ""
        return CapsulePage(capsules, token)

    def list_runs(self, page_size: int, page_token: str, query: RunQuery) -> RunPage:
        """Return a page of finished runs matching query, newest first, without result rows."""
        rows = self._select(page_size, page_token, dataset_id=query.dataset_id,
                            states=[run_pb2.RunState.Name(s) for s in query.states],
                            min_micros=query.min_create_micros, max_micros=query.max_create_micros)
        runs = []
        for _, blob in rows[:page_size]:
            run = capsule_pb2.Capsule.FromString(blob).run
            del run.result.rows[:]
            runs.append(run)
        token = _encode_token(rows[page_size - 1][0]) if len(rows) > page_size else ""
        return RunPage(runs, token)

    def _select(self, page_size: int, page_token: str, dataset_id: str = "", states: Sequence[str] = (),
                min_micros: int | None = None, max_micros: int | None = None) -> Sequence[tuple[int, bytes]]:
        query = "SELECT seq, capsule FROM capsules WHERE seq < ?"
        parameters: list[object] = [_decode_token(page_token)]
        if dataset_id:
            query += " AND dataset_id = ?"
            parameters.append(dataset_id)
        if states:
            query += f" AND status IN ({', '.join('?' for _ in states)})"
            parameters.extend(states)
        if min_micros is not None:
            query += " AND create_micros >= ?"
            parameters.append(min_micros)
        if max_micros is not None:
            query += " AND create_micros < ?"
            parameters.append(max_micros)
        query += " ORDER BY seq DESC LIMIT ?"
        parameters.append(page_size + 1)
        with self._lock:
            return self._db.execute(query, parameters).fetchall()

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()


def _encode_token(seq: int) -> str:
    return base64.urlsafe_b64encode(f"capsules:{seq}".encode()).decode()


def _decode_token(token: str) -> int:
    if not token:
        return 2**62
    try:
        kind, _, seq = base64.urlsafe_b64decode(token.encode()).decode().partition(":")
        value = int(seq)
        if kind != "capsules" or not 0 < value < 2**62:
            raise ValueError
        return value
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"invalid page token {token!r}") from error
