"""A store written by a newer outguard is refused the same way on SQLite and PostgreSQL.

A newer outguard records migrations this one does not know. Whatever their numbers (above
this outguard's latest, or a gap below it: parallel branches number theirs in ranges),
both engines refuse to open the store with one message that names the unknown migrations
and the outguard version that applied them, and change nothing.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from outguard import version
from outguard.errors import StoreError
from outguard.store import SQLiteStore, pg_schema, schema
from outguard.store.postgres import PostgresStore
from outguard.testing.servers import PostgresServer

GAP = next(n for n in range(1, schema.LATEST) if n not in {m[0] for m in schema.MIGRATIONS})

# (open the store, run SQL on it, migrate up to a number) per engine
Engine = tuple[Callable[[], object], Callable[[str, tuple[object, ...]], list[tuple[object, ...]]],
               Callable[[int], int]]


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        path = tmp_path / "store.db"

        def sql_lite(statement: str, args: tuple[object, ...]) -> list[tuple[object, ...]]:
            conn = sqlite3.connect(path)
            try:
                rows = conn.execute(statement.replace("%s", "?"), args).fetchall()
                conn.commit()
                return rows
            finally:
                conn.close()

        def to_lite(target: int) -> int:
            from outguard.store.writer import connect

            conn = connect(str(path))
            try:
                return schema.migrate(conn, target)
            finally:
                conn.close()

        yield (lambda: SQLiteStore(path)), sql_lite, to_lite
        return
    server: PostgresServer = request.getfixturevalue("pg_server")
    url = server.create_database("newer_store")

    def sql_pg(statement: str, args: tuple[object, ...]) -> list[tuple[object, ...]]:
        with psycopg.connect(url, autocommit=True) as conn:
            cur = conn.execute(statement, args)
            return cur.fetchall() if cur.description else []

    def to_pg(target: int) -> int:
        with psycopg.connect(url, autocommit=True) as conn:
            return pg_schema.migrate(conn, target)

    try:
        yield (lambda: PostgresStore(url)), sql_pg, to_pg
    finally:
        server.drop_database("newer_store")


def _close(store: object) -> None:
    store.close()  # type: ignore[attr-defined]


def test_each_migration_records_the_outguard_that_applied_it(engine: Engine) -> None:
    open_store, sql, _ = engine
    _close(open_store())
    rows = sql("SELECT version, outguard FROM migrations ORDER BY version", ())
    assert [r[0] for r in rows] == [m[0] for m in schema.MIGRATIONS]
    assert {r[1] for r in rows} == {version()}


@pytest.mark.parametrize("number", [schema.LATEST + 1, GAP], ids=["above_latest", "in_a_gap"])
def test_a_store_with_an_unknown_migration_is_refused_naming_it_and_the_version_needed(
    engine: Engine, number: int
) -> None:
    open_store, sql, _ = engine
    _close(open_store())
    sql("INSERT INTO migrations (version, name, applied_at, outguard)"
        " VALUES (%s, 'call notes', 0, '9.4.0')", (number,))
    with pytest.raises(StoreError) as refused:
        open_store()
    assert refused.value.message == (
        f"this store was written by a newer outguard: it records migration {number}"
        f" (call notes) that this outguard ({version()}, schema {schema.LATEST}) does not"
        " know; run outguard 9.4.0 or later on it, or restore the backup made before the"
        " upgrade")
    assert refused.value.details["unknown"] == [number]
    assert refused.value.details["needed"] == ["9.4.0"]
    # nothing changed: the unknown row is still there, nothing else was recorded
    assert len(sql("SELECT version FROM migrations", ())) == len(schema.MIGRATIONS) + 1


def test_unknown_migrations_without_a_recorded_version_are_named_by_number(
    engine: Engine,
) -> None:
    """A row written before migrations recorded their outguard (or by hand) still names
    what is needed: an outguard that knows those numbers."""
    open_store, sql, _ = engine
    _close(open_store())
    for n in (schema.LATEST + 2, schema.LATEST + 1):
        sql("INSERT INTO migrations (version, name, applied_at) VALUES (%s, %s, 0)",
            (n, f"future {n}"))
    with pytest.raises(StoreError) as refused:
        open_store()
    first, second = schema.LATEST + 1, schema.LATEST + 2
    assert (f"records migrations {first} (future {first}), {second} (future {second})"
            in refused.value.message)
    assert f"run an outguard that knows migrations {first}, {second} on it" \
        in refused.value.message


def test_a_store_from_before_the_version_column_gains_it_and_opens(engine: Engine) -> None:
    """An existing store whose ``migrations`` table has no ``outguard`` column (written by
    an outguard from before it) opens; its old rows keep no version, new ones get it."""
    open_store, sql, migrate_to = engine
    assert migrate_to(1) == 1
    sql("ALTER TABLE migrations DROP COLUMN outguard", ())
    _close(open_store())
    rows = dict(sql("SELECT version, outguard FROM migrations", ()))
    assert rows.pop(1) is None
    assert sorted(rows) == [m[0] for m in schema.MIGRATIONS[1:]]
    assert set(rows.values()) == {version()}


def test_both_engines_share_the_one_refusal() -> None:
    assert pg_schema.refuse_unknown is schema.refuse_unknown
