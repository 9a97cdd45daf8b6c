"""Fixtures for the store tests: a fresh store per test, on each engine.

``store`` runs every test that takes it twice: on SQLite (a file in tmp_path) and on
PostgreSQL (a fresh database in the session's cluster, see tests/conftest.py), so both
engines are held to one behaviour. ``open_store_at`` opens another store on the same
database (the CLI in another process, or a restart).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from outguard.store import SQLiteStore, open_store
from outguard.testing.servers import PostgresServer

ENGINES = ("sqlite", "postgresql")


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "outguard.db"


@contextlib.contextmanager
def fresh_database(pg: PostgresServer) -> Iterator[str]:
    """A new database in the session's cluster, dropped afterwards; its URL."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    url = pg.create_database(name)
    try:
        yield url
    finally:
        pg.drop_database(name)


@pytest.fixture(params=ENGINES)
def store_target(request: pytest.FixtureRequest, db_path: Path) -> Iterator[str]:
    """Where the test's store lives: an SQLite path or a PostgreSQL URL."""
    if request.param == "sqlite":
        yield str(db_path)
        return
    with fresh_database(request.getfixturevalue("pg_server")) as url:
        yield url


@pytest.fixture
def pg_url(pg_server: PostgresServer) -> Iterator[str]:
    """A fresh PostgreSQL database for a test of that engine only."""
    with fresh_database(pg_server) as url:
        yield url


@pytest.fixture
def open_store_at(store_target: str) -> Iterator[Callable[..., SQLiteStore]]:
    """Open (another) store on the test's database; all are closed after the test."""
    opened: list[SQLiteStore] = []

    def open_(**options: Any) -> SQLiteStore:
        store = open_store(store_target, **options)
        opened.append(store)
        return store

    yield open_
    for store in opened:
        store.close()


@pytest.fixture
def store(open_store_at: Callable[..., SQLiteStore]) -> SQLiteStore:
    return open_store_at(batch_interval=0.01)
