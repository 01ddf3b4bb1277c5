"""Which capsule store a location names: a postgresql:// URL (shared) or a SQLite file path."""

from __future__ import annotations

from pathlib import Path

from analyst_service.capsules.base import CapsuleStore

_URL_SCHEMES = ("postgresql://", "postgres://")


class CapsuleStoreError(Exception):
    """The capsule store cannot be used (a server unreachable, or a schema from a newer version)."""


class CapsuleStoreUnavailableError(CapsuleStoreError):
    """The capsule store's server went away after the store opened (restarting, network cut):
    the same call can work again once it is back."""


def is_postgres_url(location: Path | str) -> bool:
    """Whether location is a PostgreSQL URL rather than a file path."""
    return isinstance(location, str) and location.startswith(_URL_SCHEMES)


def capsule_location(text: str) -> Path | str:
    """The --capsule-db value: a URL stays text, anything else is a SQLite file path."""
    return text if is_postgres_url(text) else Path(text).expanduser()


def describe(location: Path | str) -> str:
    """The location for messages (a URL without its password)."""
    if is_postgres_url(location):
        from analyst_service.capsules.postgres import redacted

        return redacted(str(location))
    return str(location)


def open_capsule_store(location: Path | str) -> CapsuleStore:
    """Open (and create or migrate) the store at location.

    Raises:
        CapsuleStoreError: When a PostgreSQL store cannot be
            reached or has a newer schema.
    """
    if is_postgres_url(location):
        from analyst_service.capsules.postgres import PostgresCapsuleStore  # psycopg only when used

        return PostgresCapsuleStore(str(location))
    from analyst_service.capsules.sqlite import SqliteCapsuleStore

    return SqliteCapsuleStore(Path(location))
