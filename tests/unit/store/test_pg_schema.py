"""The PostgreSQL schema mirrors the SQLite one: same migrations, tables, columns, indexes.

A migration added to ``outguard/store/schema.py`` without its twin in
``outguard/store/pg_schema.py`` (or the other way round) fails here.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg
import pytest

from outguard.store import SQLiteStore, pg_schema, schema
from outguard.store.postgres import PostgresStore
from outguard.testing.servers import PostgresServer

Catalogue = dict[str, dict[str, bool]]  # table -> column -> NOT NULL


def _sqlite_catalogue(path: Path) -> tuple[Catalogue, set[tuple[str, tuple[str, ...]]]]:
    SQLiteStore(path).close()
    conn = sqlite3.connect(path)
    try:
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
        columns = {
            t: {r[1]: bool(r[3]) or bool(r[5]) for r in conn.execute(f"PRAGMA table_info({t})")}
            for t in tables
        }
        indexes = set()
        for t in tables:
            for _seq, name, _unique, origin, _partial in conn.execute(f"PRAGMA index_list({t})"):
                if origin == "c":
                    cols = tuple(r[2] for r in conn.execute(f"PRAGMA index_info({name})"))
                    indexes.add((t, cols))
    finally:
        conn.close()
    return columns, indexes


def _pg_catalogue(url: str) -> tuple[Catalogue, set[tuple[str, tuple[str, ...]]]]:
    """Tables, columns and indexes; partitions (migration 140: list_entries is stored in a
    partition per list and a default one) are storage of their table, not tables."""
    PostgresStore(url).close()
    with psycopg.connect(url) as conn:
        columns: Catalogue = {}
        for table, column, nullable in conn.execute(
            "SELECT table_name, column_name, is_nullable FROM information_schema.columns"
            " WHERE table_schema = 'public' AND NOT EXISTS (SELECT FROM pg_class c"
            " WHERE c.oid = to_regclass(quote_ident(table_name)) AND c.relispartition)"
        ):
            columns.setdefault(table, {})[column] = nullable == "NO"
        indexes = set()
        for table, cols in conn.execute(
            "SELECT t.relname, array_agg(a.attname ORDER BY k.n) FROM pg_index i"
            " JOIN pg_class t ON t.oid = i.indrelid JOIN pg_namespace ns ON ns.oid = t.relnamespace"
            " CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n)"
            " JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum"
            " WHERE ns.nspname = 'public' AND NOT i.indisprimary AND NOT t.relispartition"
            " GROUP BY i.indexrelid, t.relname"
        ):
            indexes.add((table, tuple(cols)))
    return columns, indexes


def test_both_engines_have_the_same_migration_numbers() -> None:
    assert [(n, name) for n, name, _ in pg_schema.MIGRATIONS] == \
        [(n, name) for n, name, _ in schema.MIGRATIONS]


def test_both_engines_have_the_same_tables_columns_and_indexes(
    tmp_path: Path, pg_server: PostgresServer
) -> None:
    url = pg_server.create_database("mirror_check")
    try:
        pg_columns, pg_indexes = _pg_catalogue(url)
    finally:
        pg_server.drop_database("mirror_check")
    lite_columns, lite_indexes = _sqlite_catalogue(tmp_path / "mirror.db")
    assert sorted(pg_columns) == sorted(lite_columns), "tables differ between engines"
    for table, columns in lite_columns.items():
        assert pg_columns[table] == columns, f"columns of {table} differ between engines"
    assert pg_indexes == lite_indexes


def test_migrate_applies_numbers_missing_below_the_current_version(
    pg_server: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A migration from a branch that landed later with a lower number is still applied."""
    late, first = pg_schema.LATEST + 5, pg_schema.LATEST + 7
    monkeypatch.setattr(pg_schema, "MIGRATIONS", (
        *pg_schema.MIGRATIONS,
        (late, "from a branch that landed late", ["CREATE TABLE late_table (x TEXT)"]),
        (first, "from a branch that landed first", ["CREATE TABLE early_table (x TEXT)"])))
    monkeypatch.setattr(pg_schema, "LATEST", first)
    url = pg_server.create_database("gap_check")
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            assert pg_schema.migrate(conn, target=3) == 3
            conn.execute("CREATE TABLE early_table (x TEXT)")  # saw `first`, not `late`
            conn.execute("INSERT INTO migrations (version, name) VALUES (%s, 'first')", (first,))
            assert pg_schema.migrate(conn) == first
            assert conn.execute("SELECT to_regclass('late_table')").fetchone()[0] is not None
            assert [r[0] for r in conn.execute("SELECT version FROM migrations ORDER BY 1")] \
                == sorted(n for n, _, _ in pg_schema.MIGRATIONS)
    finally:
        pg_server.drop_database("gap_check")
