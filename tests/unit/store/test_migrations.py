"""Schema migrations: from an empty file and from every earlier version to the latest."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlite_utils

from outguard.errors import StoreError
from outguard.store import SQLiteStore
from outguard.store.schema import LATEST, MIGRATIONS, current_version, migrate
from outguard.store.writer import connect


def _schema(path: Path) -> list[tuple[str, str]]:
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name"
        ).fetchall()
    finally:
        conn.close()
    return [(name, sql or "") for name, sql in rows]


def _fresh_schema(tmp_path: Path) -> list[tuple[str, str]]:
    path = tmp_path / "fresh.db"
    SQLiteStore(path).close()
    return _schema(path)


def test_migrations_are_numbered_in_ascending_order_gaps_allowed() -> None:
    numbers = [m[0] for m in MIGRATIONS]
    assert numbers == sorted(set(numbers)) and numbers[0] == 1
    assert len(numbers) >= 2 and LATEST == numbers[-1]


def test_migrate_applies_every_number_above_the_current_version_in_order(
    db_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from outguard.store import schema

    applied: list[int] = []

    def step(n: int) -> schema.Migration:
        return lambda db: applied.append(n)

    # listed out of order and with gaps, as parallel branches leave them
    monkeypatch.setattr(schema, "MIGRATIONS", (
        *schema.MIGRATIONS[:1], (20, "b", step(20)), (4, "a", step(4)), (12, "c", step(12))))
    monkeypatch.setattr(schema, "LATEST", 20)
    conn = connect(str(db_path))
    assert schema.migrate(conn, target=4) == 4
    assert schema.migrate(conn) == 20
    assert applied == [4, 12, 20]
    conn.close()


def test_a_migration_numbered_below_one_already_applied_still_runs(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Parallel branches number migrations in separate ranges: a database that already
    has a higher-numbered one (from another branch, above every migration here) still gets
    every missing one."""
    from outguard.store import schema

    elsewhere = schema.LATEST + 10
    conn = connect(str(db_path))
    migrate(conn, target=3)
    conn.execute("INSERT INTO migrations (version, name, applied_at) VALUES (?, 'elsewhere', 0)",
                 (elsewhere,))

    def later(db: sqlite_utils.Database) -> None:
        db.table("from_another_branch").create({"id": int}, pk="id")

    steps = (*MIGRATIONS, (elsewhere, "elsewhere", later))
    monkeypatch.setattr(schema, "MIGRATIONS", steps)
    monkeypatch.setattr(schema, "LATEST", elsewhere)
    assert migrate(conn) == elsewhere
    applied = [r[0] for r in conn.execute("SELECT version FROM migrations ORDER BY version")]
    assert applied == [*(m[0] for m in MIGRATIONS), elsewhere]
    assert "released_at" in {c[1] for c in conn.execute("PRAGMA table_info(lists)")}
    conn.close()


def test_migrates_an_empty_file_to_the_latest_version(db_path: Path) -> None:
    store = SQLiteStore(db_path)
    store.close()
    conn = sqlite3.connect(db_path)
    assert current_version(conn) == LATEST
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


@pytest.mark.parametrize("start", [m[0] for m in MIGRATIONS][:-1])
def test_migrates_from_each_earlier_version_keeping_data(tmp_path: Path, start: int) -> None:
    path = tmp_path / f"v{start}.db"
    conn = connect(str(path))
    assert migrate(conn, target=start) == start
    conn.execute("INSERT INTO tenants (id, name, state, created_at) VALUES ('t1', 'T', 'active', 1)")
    conn.execute("INSERT INTO lists (name, kind, scope, created_at) VALUES ('dnc', 'dnc', 'global', 1)")
    conn.execute("INSERT INTO list_entries (list_id, e164, created_at) VALUES (1, '+8613800138000', 1)")
    conn.execute("INSERT INTO calls (decision_id, verdict, at) VALUES ('d1', 'allow', 5)")
    conn.close()

    store = SQLiteStore(path)
    try:
        assert store.get_tenant("t1").name == "T"
        assert store.count_entries("dnc") == 1
        assert store.get_call("d1").call.at == 5
    finally:
        store.close()
    conn = sqlite3.connect(path)
    assert current_version(conn) == LATEST
    conn.close()
    assert _schema(path) == _fresh_schema(tmp_path)


def test_reopening_a_current_database_changes_nothing(db_path: Path) -> None:
    SQLiteStore(db_path).close()
    before = _schema(db_path)
    SQLiteStore(db_path).close()
    assert _schema(db_path) == before


def test_a_database_from_a_newer_outguard_is_refused(db_path: Path) -> None:
    SQLiteStore(db_path).close()
    conn = sqlite3.connect(db_path)
    conn.execute("INSERT INTO migrations (version, name, applied_at) VALUES (?, 'future', 0)",
                 (LATEST + 1,))
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="newer"):
        SQLiteStore(db_path)


def test_a_failing_migration_leaves_the_previous_version(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from outguard.store import schema

    def broken(db: sqlite_utils.Database) -> None:
        db.table("half_done").create({"id": int}, pk="id")
        db.table("calls").create_index(["at"])
        raise RuntimeError("boom")

    monkeypatch.setattr(schema, "MIGRATIONS", (*schema.MIGRATIONS[:1], (2, "broken", broken)))
    conn = connect(str(db_path))
    with pytest.raises(RuntimeError):
        schema.migrate(conn, target=2)
    assert current_version(conn) == 1
    assert not sqlite_utils.Database(conn)["half_done"].exists()
    conn.close()
