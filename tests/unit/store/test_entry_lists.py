"""Every list entry names an existing list, on both engines.

SQLite keeps it with its foreign key; PostgreSQL with a partition per list (migration 140;
120 and 121 checked it per statement before): a row naming a list without a partition
falls into the default partition, which refuses it (inserted or moved there); deleting a
list drops its partition and refuses while it still has entries, including when the two
happen at the same time in two transactions.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from outguard.errors import StoreError
from outguard.store import SQLiteStore
from outguard.store.postgres import PostgresStore
from outguard.testing.servers import PostgresServer
from tests.waiting import eventually

ENTRY = ("INSERT INTO list_entries (list_id, e164, created_at, source)"
         " VALUES (?, ?, 1.0, 'test')")


def _write(store: SQLiteStore, *statements: tuple[str, tuple[Any, ...]]) -> None:
    def job(conn: sqlite3.Connection) -> None:
        for sql, args in statements:
            conn.execute(sql, args)

    store._write(job)


def _entries(store: SQLiteStore) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in store._query("SELECT list_id, e164 FROM list_entries ORDER BY e164")]


@pytest.fixture
def listed(store: SQLiteStore) -> int:
    store.create_list("dnc", "dnc")
    store.add_entries("dnc", ["13800138000"])
    return int(store._query("SELECT id FROM lists WHERE name = 'dnc'")[0][0])


def test_an_entry_naming_no_list_is_refused_with_its_whole_statement(
    store: SQLiteStore, listed: int
) -> None:
    with pytest.raises(StoreError, match="(?i)foreign key|not in lists"):
        _write(store, (ENTRY, (listed, "+8613900139000")), (ENTRY, (listed + 99, "+8613900139001")))
    with pytest.raises(StoreError, match="(?i)foreign key|not in lists"):
        _write(store, ("INSERT INTO list_entries (list_id, e164, created_at)"
                       " SELECT ?, '+8613900139003', 1.0 UNION ALL SELECT ?, '+8613900139002', 1.0",
                       (listed, listed + 99)))
    assert _entries(store) == [(listed, "+8613800138000")]


def test_an_entry_cannot_move_to_a_missing_list(store: SQLiteStore, listed: int) -> None:
    with pytest.raises(StoreError, match="(?i)foreign key|not in lists"):
        _write(store, ("UPDATE list_entries SET list_id = ? WHERE list_id = ?", (listed + 99, listed)))
    assert _entries(store) == [(listed, "+8613800138000")]


def test_a_list_with_entries_cannot_be_deleted_alone(store: SQLiteStore, listed: int) -> None:
    with pytest.raises(StoreError, match="(?i)foreign key|still has entries"):
        _write(store, ("DELETE FROM lists WHERE id = ?", (listed,)))
    store.delete_list("dnc")  # entries first, then the list: allowed
    assert _entries(store) == []


def _waiting_for_a_lock(url: str, pid: int) -> bool:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s",
                           (pid,)).fetchone()
    return row is not None and row[0] == "Lock"


def _in_thread(fn: Callable[[], None]) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, errors


@pytest.fixture
def pg_listed(pg_server: PostgresServer) -> Iterator[tuple[str, PostgresStore, int]]:
    name = f"t_{uuid.uuid4().hex[:16]}"
    url = pg_server.create_database(name)
    store = PostgresStore(url, batch_interval=0.01)
    try:
        store.create_list("dnc", "dnc")
        store.add_entries("dnc", ["13800138000"])
        yield url, store, int(store._query("SELECT id FROM lists WHERE name = 'dnc'")[0][0])
    finally:
        store.close()
        pg_server.drop_database(name)


@pytest.mark.parametrize("first", ["insert", "delete"])
def test_postgresql_a_list_deleted_during_an_insert_leaves_no_orphan(
    pg_listed: tuple[str, PostgresStore, int], first: str
) -> None:
    """Two transactions: one inserts entries of the list, the other deletes the list; the
    one that comes second waits for the first, then fails; never both succeed."""
    url, store, listed = pg_listed
    inserter = psycopg.connect(url)
    deleter = psycopg.connect(url)
    try:
        insert = ("INSERT INTO list_entries (list_id, e164, created_at) VALUES (%s, %s, 1.0)",
                  (listed, "+8613900139000"))
        delete = [("DELETE FROM list_entries WHERE list_id = %s", (listed,)),
                  ("DELETE FROM lists WHERE id = %s", (listed,))]
        if first == "insert":
            inserter.execute(*insert)
            second, errors = _in_thread(lambda: [deleter.execute(*s) for s in delete] and None)
            waiter, holder = deleter, inserter
        else:
            for s in delete:
                deleter.execute(*s)
            second, errors = _in_thread(lambda: inserter.execute(*insert) and None)
            waiter, holder = inserter, deleter
        asyncio.run(eventually(lambda: _waiting_for_a_lock(url, waiter.info.backend_pid),
                               "the second transaction to wait for the first"))
        holder.commit()
        second.join(30)
        assert not second.is_alive()
        assert len(errors) == 1 and isinstance(errors[0], psycopg.errors.ForeignKeyViolation), errors
        waiter.rollback()
    finally:
        inserter.close()
        deleter.close()
    lists = store._query("SELECT count(*) FROM lists WHERE id = ?", (listed,))[0][0]
    entries = _entries(store)
    if first == "insert":
        assert lists == 1 and entries == [(listed, "+8613800138000"), (listed, "+8613900139000")]
    else:
        assert lists == 0 and entries == []
