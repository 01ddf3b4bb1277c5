"""The embedded default capsule store: SQLite in WAL mode, one row per run.

The capsule is stored as its binary protobuf (the source of truth) next to indexed columns
that make it searchable with plain SQL (run_id, times, dataset, status, question, SQL, plan JSON).
"""

from __future__ import annotations

import base64
import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

from google.protobuf import json_format

from analyst_service.capsules.base import CapsulePage
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


class SqliteCapsuleStore:
    """Capsules in one SQLite file (WAL), safe to use from several threads."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def begin(self, run: run_pb2.Run) -> None:
        """Record that a run started, so a crash before its capsule is stored is not silent."""
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO runs_in_flight (run_id, run) VALUES (?, ?)",
                             (run.run_id, run.SerializeToString()))

    def interrupted(self) -> list[run_pb2.Run]:
        """Runs that began but never got a capsule (the service stopped in between)."""
        with self._lock:
            rows = self._db.execute("SELECT run FROM runs_in_flight").fetchall()
        return [run_pb2.Run.FromString(row[0]) for row in rows]

    def put(self, capsule: capsule_pb2.Capsule) -> None:
        """Store a capsule (idempotent on run_id) and clear its in-flight record."""
        run = capsule.run

        def as_json(message: object) -> str:
            return json_format.MessageToJson(message, indent=None, sort_keys=True)  # type: ignore[arg-type]

        with self._lock, self._transaction():
            self._db.execute(
                "INSERT OR IGNORE INTO capsules (run_id, create_time, end_time, dataset_id, dataset_version_hash,"
                " question, plan_json, sql, runner_mode, limits_json, stats_json, status, error_json, capsule)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (run.run_id, run.create_time.ToJsonString(), run.end_time.ToJsonString(), run.dataset_id,
                 run.dataset_version_hash, run.question, capsule.plan_json, run.sql, run.runner_mode,
                 as_json(run.limits), as_json(run.stats), run_pb2.RunState.Name(run.state),
                 as_json(run.error), capsule.SerializeToString()),
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

    def latest_in_thread(self, thread_id: str, scan: int = 2000) -> capsule_pb2.Capsule | None:
        """The newest succeeded capsule of a conversation thread that has a plan (among the last `scan`)."""
        with self._lock:
            rows = self._db.execute("SELECT capsule FROM capsules WHERE status = 'RUN_STATE_SUCCEEDED' "
                                    "AND plan_json != '' ORDER BY seq DESC LIMIT ?", (scan,)).fetchall()
        for (blob,) in rows:
            capsule = capsule_pb2.Capsule.FromString(blob)
            if capsule.run.thread_id == thread_id:
                return capsule
        return None

    def list(self, page_size: int, page_token: str, dataset_id: str = "") -> CapsulePage:
        """Return a page of capsules, newest first (keyset pagination on the insert sequence)."""
        before = _decode_token(page_token)
        query = "SELECT seq, capsule FROM capsules WHERE seq < ?"
        parameters: list[object] = [before]
        if dataset_id:
            query += " AND dataset_id = ?"
            parameters.append(dataset_id)
        query += " ORDER BY seq DESC LIMIT ?"
        parameters.append(page_size + 1)
        with self._lock:
            rows = self._db.execute(query, parameters).fetchall()
        page = rows[:page_size]
        token = _encode_token(page[-1][0]) if len(rows) > page_size else ""
        return CapsulePage([capsule_pb2.Capsule.FromString(r[1]) for r in page], token)

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
