"""A process's presence in a shared PostgreSQL store, for telling a dead replica's runs from a live one's.

A process on another host cannot be checked through /proc. Instead each store holds a shared
advisory lock keyed by its process's owner token on a session of its own: the lock lives exactly as
long as the session, and the session as long as the process (a killed process's connection is
closed by the kernel, and the server drops the lock). Another replica asks whether the key can be
locked exclusively: only when no store of that process holds it any more. A keeper thread
checks the session every few seconds and takes the lock again on a new session after the server
restarted, so a live process is seen as present again within that time.
"""

from __future__ import annotations

import hashlib
import threading

import psycopg

KEEP_SECONDS = 2.0


def owner_key(token: str) -> int:
    """The advisory lock key of an owner token (a signed 64-bit number)."""
    return int.from_bytes(hashlib.sha256(f"csv-analyst-owner|{token}".encode()).digest()[:8], "big", signed=True)


class Presence:
    """Holds the shared presence lock of one owner token until closed."""

    def __init__(self, url: str, token: str) -> None:
        self._url = url
        self._key = owner_key(token)
        self._session: psycopg.Connection | None = None
        self._stop = threading.Event()
        self._hold()
        self._keeper = threading.Thread(target=self._keep, name="capsule-store-presence", daemon=True)
        self._keeper.start()

    def _hold(self) -> None:
        """Check the session; open a new one and take the lock when it is gone."""
        if self._session is not None:
            try:
                self._session.execute("SELECT 1")
                return
            except psycopg.Error:
                self._session.close()
                self._session = None
        try:
            session = psycopg.connect(self._url, autocommit=True, connect_timeout=10)
        except psycopg.Error:
            return  # the server is away: the pool's own errors report it; try again soon
        session.execute("SELECT pg_advisory_lock_shared(%s)", (self._key,))
        self._session = session

    def _keep(self) -> None:
        while not self._stop.wait(KEEP_SECONDS):
            self._hold()

    def close(self) -> None:
        """Release the lock (by closing the session) and stop the keeper."""
        self._stop.set()
        self._keeper.join(KEEP_SECONDS + 15)
        if self._session is not None:
            self._session.close()
