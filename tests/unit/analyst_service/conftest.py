"""The capsule store tests run against every store: SQLite (a file) and PostgreSQL (a private server)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from analyst_service.capsules.base import CapsuleStore
from analyst_service.capsules.stores import open_capsule_store
from tests.postgres_server import postgres_server, postgres_url  # noqa: F401 - fixtures


@pytest.fixture(params=["sqlite", "postgres"])
def store_location(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """Where an empty store lives: a SQLite file in a folder still to create, or a fresh database."""
    if request.param == "sqlite":
        return tmp_path / "nested" / "dir" / "capsules.sqlite3"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def store(store_location: Path | str) -> Iterator[CapsuleStore]:
    s = open_capsule_store(store_location)
    yield s
    s.close()
