"""The shared capsule store: PostgreSQL through a psycopg 3 connection pool, one row per run.

Same layout and semantics as the SQLite store (capsules.sqlite): the binary protobuf is the
source of truth next to indexed, searchable columns; put is idempotent on run_id and clears the
in-flight record in the same transaction; pages are keyset pages on an insert sequence.

Several analyst replicas may share one database, so nothing here is process-local:
- whole results (capsules.results) live in the database too (table result_files, keyed by
  digest), because a file written beside one replica is not beside another;
- puts take a transaction-scoped advisory lock, so insert sequence order is commit order and a
  page token never skips a capsule committed late by another replica;
- the schema is created or migrated at start under an advisory lock (replicas starting together
  take turns), with its version in csv_analyst_schema;
- whether the owner of an in-flight run is gone is asked of the database, not of this host's
  /proc alone: every process holds a shared advisory lock keyed by its owner token on a session of
  its own (capsules.liveness) for as long as it lives, so a replica on another host, or a pod
  restarted under a new name, sees the runs of a dead replica as orphaned and records them.
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
from collections.abc import Iterator, Sequence

import psycopg
from google.protobuf import json_format
from psycopg import conninfo
from psycopg_pool import ConnectionPool, PoolTimeout

from analyst_service.capsules.base import CapsulePage, InFlight, RunPage, RunQuery
from analyst_service.capsules.liveness import Presence, owner_key
from analyst_service.capsules.owners import Owner
from analyst_service.capsules.results import ResultFileError
from analyst_service.capsules.sqlite import _decode_token, _encode_token  # noqa: PLC2701 - one token format
from analyst_service.capsules.stores import CapsuleStoreError, CapsuleStoreUnavailableError
from csv_analyst.v1 import capsule_pb2, result_pb2, run_pb2

# Advisory lock keys (any 64-bit numbers no other application on the database uses).
_MIGRATION_LOCK = 0x63737661_00000001
_PUT_LOCK = 0x63737661_00000002

# Each entry moves the schema one version up; a released entry is never edited, only appended to.
_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE IF NOT EXISTS capsules (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        run_id TEXT NOT NULL UNIQUE,
        create_time TEXT NOT NULL,
        end_time TEXT NOT NULL,
        create_micros BIGINT NOT NULL,
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
        capsule BYTEA NOT NULL
    );
    CREATE INDEX IF NOT EXISTS capsules_dataset ON capsules (dataset_id, seq);
    CREATE INDEX IF NOT EXISTS capsules_time ON capsules (create_micros);
    CREATE INDEX IF NOT EXISTS capsules_succeeded ON capsules (seq) WHERE status = 'RUN_STATE_SUCCEEDED';
    CREATE TABLE IF NOT EXISTS runs_in_flight (
        run_id TEXT PRIMARY KEY,
        seq BIGSERIAL NOT NULL,
        run BYTEA NOT NULL,
        owner TEXT NOT NULL DEFAULT ''
    );
    CREATE TABLE IF NOT EXISTS result_files (
        sha256 TEXT PRIMARY KEY,
        size_bytes BIGINT NOT NULL,
        data BYTEA NOT NULL
    );
    """,
)
SCHEMA_VERSION = len(_MIGRATIONS)
# How long a call waits for a pooled connection while the server is away, before it fails as
# unavailable (the pool keeps reconnecting in the background).
CONNECTION_WAIT_SECONDS = 5.0


@contextlib.contextmanager
def connected(pool: ConnectionPool, url: str) -> Iterator[psycopg.Connection]:
    """A pooled connection; a server that is away (down, restarting, cut off) is a
    CapsuleStoreUnavailableError rather than a driver error."""
    try:
        with pool.connection(timeout=CONNECTION_WAIT_SECONDS) as db:
            yield db
    except (psycopg.OperationalError, PoolTimeout) as error:
        raise CapsuleStoreUnavailableError(f"the capsule store {url} is unavailable: "
                                           f"{type(error).__name__}") from error


def redacted(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        params = conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "postgresql://(unparsable URL)"
    user = f"{params['user']}@" if params.get("user") else ""
    port = f":{params['port']}" if params.get("port") else ""
    return f"postgresql://{user}{params.get('host', '')}{port}/{params.get('dbname', '')}"


class PostgresCapsuleStore:
    """Capsules in one PostgreSQL database, safe to use from several threads and processes."""

    def __init__(self, url: str, min_connections: int = 1, max_connections: int = 8,
                 connect_timeout_seconds: float = 10.0, owner: str = "") -> None:
        """Connect, then create or migrate the schema.

        Args:
            url: The database.
            min_connections: Connections the pool keeps open.
            max_connections: Most connections the pool opens.
            connect_timeout_seconds: How long to wait for the first connection.
            owner: This process's owner token (default: Owner.current()), held as present.

        Raises:
            CapsuleStoreError: When the database cannot be reached within connect_timeout_seconds,
                or its schema is newer than this version knows.
        """
        self.url = redacted(url)
        self._pool = ConnectionPool(url, min_size=min_connections, max_size=max_connections, open=False,
                                    kwargs={"autocommit": True}, check=ConnectionPool.check_connection,
                                    name="capsules")
        try:
            self._pool.open(wait=True, timeout=connect_timeout_seconds)
            self._migrate()
        except PoolTimeout as error:
            self._pool.close()
            raise CapsuleStoreError(f"cannot connect to the capsule store {self.url} within "
                                    f"{connect_timeout_seconds:g} s") from error
        except BaseException:
            self._pool.close()
            raise
        self.results = PostgresResults(self._pool, self.url)
        self._presence = Presence(url, owner or Owner.current().token())

    def _migrate(self) -> None:
        with self._pool.connection() as db, db.transaction():  # at start: a failure is CapsuleStoreError
            db.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            db.execute("CREATE TABLE IF NOT EXISTS csv_analyst_schema (version INTEGER NOT NULL)")
            row = db.execute("SELECT version FROM csv_analyst_schema").fetchone()
            current = 0 if row is None else row[0]
            if current > SCHEMA_VERSION:
                raise CapsuleStoreError(f"the capsule store {self.url} has schema version {current}, newer than "
                                        f"this csv-analyst knows ({SCHEMA_VERSION}): upgrade csv-analyst")
            for statement in _MIGRATIONS[current:]:
                db.execute(statement)
            if row is None:
                db.execute("INSERT INTO csv_analyst_schema (version) VALUES (%s)", (SCHEMA_VERSION,))
            elif current != SCHEMA_VERSION:
                db.execute("UPDATE csv_analyst_schema SET version = %s", (SCHEMA_VERSION,))

    def begin(self, run: run_pb2.Run, owner: str = "") -> None:
        """Record that a run started and which process runs it (see capsules.owners)."""
        with connected(self._pool, self.url) as db:
            db.execute("INSERT INTO runs_in_flight (run_id, run, owner) VALUES (%s, %s, %s) "
                       "ON CONFLICT (run_id) DO UPDATE SET run = EXCLUDED.run, owner = EXCLUDED.owner, "
                       "seq = nextval(pg_get_serial_sequence('runs_in_flight', 'seq'))",
                       (run.run_id, run.SerializeToString(), owner))

    def owner_is_gone(self, token: str) -> bool:
        """Whether the process that wrote this owner token is certainly gone: no session holds its
        presence lock any more and, on this host, no process has its pid and start time."""
        owner = Owner.parse(token)
        if owner is None:
            return True  # a record of an older version, without an owner
        if owner.host == Owner.current().host and not owner.is_gone():
            return False
        with connected(self._pool, self.url) as db:
            # Taken only when no session holds it shared: every store of that process is gone.
            row = db.execute("SELECT pg_try_advisory_lock(%s)", (owner_key(token),)).fetchone()
            free = bool(row and row[0])
            if free:
                db.execute("SELECT pg_advisory_unlock(%s)", (owner_key(token),))
        return free

    def in_flight(self) -> list[InFlight]:
        """Runs that began but have no capsule yet, newest first, with their owners."""
        with connected(self._pool, self.url) as db:
            rows = db.execute("SELECT run, owner FROM runs_in_flight ORDER BY seq DESC").fetchall()
        return [InFlight(run_pb2.Run.FromString(run), owner) for run, owner in rows]

    def in_flight_run(self, run_id: str) -> InFlight | None:
        """The in-flight record of run_id, or None."""
        with connected(self._pool, self.url) as db:
            row = db.execute("SELECT run, owner FROM runs_in_flight WHERE run_id = %s", (run_id,)).fetchone()
        return None if row is None else InFlight(run_pb2.Run.FromString(row[0]), row[1])

    def put(self, capsule: capsule_pb2.Capsule) -> None:
        """Store a capsule (idempotent on run_id) and clear its in-flight record, in one transaction."""
        run = capsule.run

        def as_json(message: object) -> str:
            return json_format.MessageToJson(message, indent=None, sort_keys=True)  # type: ignore[arg-type]

        with connected(self._pool, self.url) as db, db.transaction():
            db.execute("SELECT pg_advisory_xact_lock(%s)", (_PUT_LOCK,))
            db.execute(
                "INSERT INTO capsules (run_id, create_time, end_time, create_micros, dataset_id, dataset_version_hash,"
                " question, plan_json, sql, runner_mode, limits_json, stats_json, status, error_json, capsule)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (run_id) DO NOTHING",
                (run.run_id, run.create_time.ToJsonString(), run.end_time.ToJsonString(),
                 run.create_time.ToMicroseconds(), run.dataset_id, run.dataset_version_hash, run.question,
                 capsule.plan_json, run.sql, run.runner_mode, as_json(run.limits), as_json(run.stats),
                 run_pb2.RunState.Name(run.state), as_json(run.error), capsule.SerializeToString()),
            )
            db.execute("DELETE FROM runs_in_flight WHERE run_id = %s", (run.run_id,))

    def get(self, run_id: str) -> capsule_pb2.Capsule | None:
        """Return the capsule of run_id, or None."""
        with connected(self._pool, self.url) as db:
            row = db.execute("SELECT capsule FROM capsules WHERE run_id = %s", (run_id,)).fetchone()
        return None if row is None else capsule_pb2.Capsule.FromString(row[0])

    def in_thread(self, thread_id: str, count: int, scan: int = 2000) -> builtins.list[capsule_pb2.Capsule]:
        """The newest `count` capsules of a conversation thread, any state, newest first (among the
        last `scan`)."""
        with connected(self._pool, self.url) as db:
            rows = db.execute("SELECT capsule FROM capsules ORDER BY seq DESC LIMIT %s", (scan,)).fetchall()
        found: builtins.list[capsule_pb2.Capsule] = []
        for (blob,) in rows:
            capsule = capsule_pb2.Capsule.FromString(blob)
            if capsule.run.thread_id == thread_id:
                found.append(capsule)
                if len(found) >= count:
                    break
        return found

    def list(self, page_size: int, page_token: str, dataset_id: str = "", max_bytes: int = 0) -> CapsulePage:
        """Return a page of capsules, newest first; see SqliteCapsuleStore.list for the byte bound."""
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
        return CapsulePage(capsules, _encode_token(last_seq) if len(rows) > page_size else "")

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
        return RunPage(runs, _encode_token(rows[page_size - 1][0]) if len(rows) > page_size else "")

    def _select(self, page_size: int, page_token: str, dataset_id: str = "", states: Sequence[str] = (),
                min_micros: int | None = None, max_micros: int | None = None) -> Sequence[tuple[int, bytes]]:
        query = "SELECT seq, capsule FROM capsules WHERE seq < %s"
        parameters: builtins.list[object] = [_decode_token(page_token)]
        if dataset_id:
            query += " AND dataset_id = %s"
            parameters.append(dataset_id)
        if states:
            query += " AND status = ANY(%s)"
            parameters.append(builtins.list(states))
        if min_micros is not None:
            query += " AND create_micros >= %s"
            parameters.append(min_micros)
        if max_micros is not None:
            query += " AND create_micros < %s"
            parameters.append(max_micros)
        query += " ORDER BY seq DESC LIMIT %s"
        parameters.append(page_size + 1)
        with connected(self._pool, self.url) as db:
            # type: ignore[arg-type]: the query is built from fixed fragments, not a LiteralString to mypy
            return db.execute(query, parameters).fetchall()  # type: ignore[arg-type]

    def close(self) -> None:
        """Close every pooled connection and leave (this store's share of) the presence lock."""
        self._presence.close()
        self._pool.close()


class PostgresResults:
    """Whole results by digest in table result_files (the ResultStore of a shared store)."""

    def __init__(self, pool: ConnectionPool, url: str) -> None:
        self._pool = pool
        self.url = url

    def put(self, result: result_pb2.ResultTable) -> capsule_pb2.StoredResult:
        """Store result once (same content, same row) and describe it."""
        data = result.SerializeToString(deterministic=True)
        sha256 = hashlib.sha256(data).hexdigest()
        with connected(self._pool, self.url) as db:
            db.execute("INSERT INTO result_files (sha256, size_bytes, data) VALUES (%s, %s, %s) "
                       "ON CONFLICT (sha256) DO NOTHING", (sha256, len(data), data))
        return capsule_pb2.StoredResult(sha256=sha256, size_bytes=len(data), row_count=len(result.rows))

    def get(self, stored: capsule_pb2.StoredResult) -> result_pb2.ResultTable:
        """Read a stored result back, checking its digest.

        Raises:
            ResultFileError: When it is missing or does not match its digest.
        """
        with connected(self._pool, self.url) as db:
            row = db.execute("SELECT data FROM result_files WHERE sha256 = %s", (stored.sha256,)).fetchone()
        if row is None:
            raise ResultFileError(f"the result file {stored.sha256} is not in the capsule store")
        data = bytes(row[0])
        if hashlib.sha256(data).hexdigest() != stored.sha256:
            raise ResultFileError(f"the result file {stored.sha256} does not match its digest")
        return result_pb2.ResultTable.FromString(data)
