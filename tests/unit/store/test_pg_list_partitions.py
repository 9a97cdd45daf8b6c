"""A list's entries in a partition of their own (PostgreSQL, migration 140), and the import
that rebuilds it in bulk (``outguard.store.pg_imports``).

What must hold, against the real server: entries stored before the migration are all
there after it; an import that rebuilds a list swaps it whole (a snapshot never reads it
half-built or empty), loses no write made to the list meanwhile, and leaves the other
lists writable; a failed rebuild leaves the list and no table behind. The adds that take
the row-by-row way and the ones that rebuild give the same list on both engines.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import psycopg
import pytest

from outguard.errors import ImportFailed, StoreError
from outguard.store import SQLiteStore, imports, pg_imports, pg_schema
from outguard.store.postgres import PostgresStore
from tests.waiting import eventually

FILE_NUMBERS = [f"+86138{i:08d}" for i in range(1, 2001)]


@pytest.fixture
def pg_store(pg_url: str) -> Iterator[PostgresStore]:
    store = PostgresStore(pg_url, batch_interval=0.01)
    try:
        yield store
    finally:
        store.close()


def _file(tmp_path: Path, numbers: list[str], name: str = "n.txt") -> Path:
    path = tmp_path / name
    path.write_text("".join(n + "\n" for n in numbers))
    return path


def _numbers(store: SQLiteStore, name: str) -> list[str]:
    return [e.e164 for e in store.iter_entries(name)]


def _waiting(url: str, application: str, sessions: int = 1) -> bool:
    """Whether (at least ``sessions``) sessions of ``application`` wait for a lock."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
                           " AND wait_event_type = 'Lock'", (application,)).fetchone()
    return row is not None and row[0] >= sessions


def _leaves(url: str) -> list[str]:
    with psycopg.connect(url, autocommit=True) as conn:
        return [r[0] for r in conn.execute(
            "SELECT relname FROM pg_class WHERE relname ~ '^list_entries_[0-9]+_[0-9]+$'"
            " ORDER BY relname")]


def _in_thread(fn: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []

    def run() -> None:
        try:
            out.append(fn())
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            out.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


class Paused:
    """Holds an import at the end of one of its phases until released."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, at: str = "loaded",
                 fail: bool = False) -> None:
        self.reached, self.release, self.at, self.fail = threading.Event(), threading.Event(), at, fail
        phase = pg_imports.PgStaging.phase

        def paused(staging: pg_imports.PgStaging, name: str) -> None:
            phase(staging, name)
            if name == self.at:
                self.reached.set()
                if self.fail:
                    raise RuntimeError("the import broke off here")
                assert self.release.wait(60), "the test never released the import"

        monkeypatch.setattr(pg_imports.PgStaging, "phase", paused)


def _join(thread: threading.Thread, out: list[Any]) -> Any:
    thread.join(60)
    assert not thread.is_alive()
    if isinstance(out[0], BaseException):
        raise out[0]
    return out[0]


# -- the migration -----------------------------------------------------------------------

def test_migration_140_moves_every_entry_of_every_list_into_its_partition(
    pg_url: str, tmp_path: Path
) -> None:
    entry = ("INSERT INTO list_entries (list_id, e164, expires_at, created_at, source, reason,"
             " evidence, disconnected_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)")
    with psycopg.connect(pg_url, autocommit=True) as conn:
        pg_schema.migrate(conn, target=121)
        for name in ("dnc", "reassigned", "empty"):
            conn.execute("INSERT INTO lists (name, kind, created_at) VALUES (%s, 'dnc', 1.0)",
                         (name,))
        ids: dict[str, int] = dict(conn.execute("SELECT name, id FROM lists").fetchall())
        rows: list[tuple[Any, ...]] = [(ids["dnc"], f"+86139{i:08d}", None if i % 3 else 2e9 + i, 100.0 + i, "f.txt",
                 "why" if i % 2 else None, None, None) for i in range(5000)]
        rows.append((ids["reassigned"], "+12025550123", None, 5.0, "rnd", None, "ev", 1.7e9))
        with conn.cursor() as cur:
            cur.executemany(entry, rows)
    store = PostgresStore(pg_url)
    try:
        stored = [tuple(r) for r in store._query(
            "SELECT list_id, e164, expires_at, created_at, source, reason, evidence,"
            " disconnected_at FROM list_entries ORDER BY list_id, e164")]
        assert stored == sorted(rows)
        assert [store.count_entries(n) for n in ("dnc", "reassigned", "empty")] == [5000, 1, 0]
        assert len(_leaves(pg_url)) == 3
        with psycopg.connect(pg_url, autocommit=True) as conn:
            assert conn.execute("SELECT to_regclass('list_entries_before_140'),"
                                " to_regprocedure('outguard_entries_have_lists()')").fetchone() \
                == (None, None)
            kinds = conn.execute("SELECT relkind FROM pg_class WHERE relname = 'list_entries'"
                                 ).fetchone()
            assert kinds == ("p",)
        # and the list works as before: a replace keeps the created_at of the rows it keeps
        result = store.import_list("dnc", _file(tmp_path, [r[1] for r in rows[:10]]))
        assert (result.added, result.removed, result.total) == (0, 4990, 10)
        assert [e.created_at.timestamp() for e in store.iter_entries("dnc")  # type: ignore[union-attr]
                ] == [100.0 + i for i in range(10)]
        store.add_entries("empty", ["13800138000"])
        store.remove_entries("reassigned", ["+12025550123"])
        store.delete_list("reassigned")
        assert _numbers(store, "empty") == ["+8613800138000"]
        assert len(_leaves(pg_url)) == 2
    finally:
        store.close()


# -- the rebuild seen from outside --------------------------------------------------------

def test_an_add_made_during_a_replace_waits_for_it_and_is_kept(
    pg_url: str, pg_store: PostgresStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pg_store.create_list("dnc", "dnc")
    pg_store.add_entries("dnc", ["+8613000000001"])
    pause = Paused(monkeypatch)
    importing, imported = _in_thread(
        lambda: pg_store.import_list("dnc", _file(tmp_path, FILE_NUMBERS)))
    assert pause.reached.wait(60)
    adding, added = _in_thread(lambda: pg_store.add_entries("dnc", ["+8613000000002"]))
    asyncio.run(eventually(lambda: _waiting(pg_url, "outguard-writer"),
                           "the add to wait for the import", interval=0.05))
    pause.release.set()
    assert _join(importing, imported).removed == 1
    assert _join(adding, added) == 1
    assert _numbers(pg_store, "dnc") == sorted([*FILE_NUMBERS, "+8613000000002"])


def test_other_lists_are_read_and_written_during_a_replace(
    pg_store: PostgresStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pg_store.create_list("dnc", "dnc")
    pg_store.create_list("other", "blacklist")
    pause = Paused(monkeypatch)
    importing, imported = _in_thread(
        lambda: pg_store.import_list("dnc", _file(tmp_path, FILE_NUMBERS)))
    assert pause.reached.wait(60)
    try:
        assert pg_store.add_entries("other", ["13900139000"]) == 1  # not waiting for the import
        assert _numbers(pg_store, "other") == ["+8613900139000"]
    finally:
        pause.release.set()
    assert _join(importing, imported).total == len(FILE_NUMBERS)


def test_a_snapshot_begun_before_a_replace_reads_the_old_list_and_holds_the_swap(
    pg_url: str, pg_store: PostgresStore, tmp_path: Path
) -> None:
    pg_store.create_list("dnc", "dnc")
    pg_store.add_entries("dnc", ["+8613000000001", "+8613000000002"])
    data = pg_store.load_store_data(datetime.now(timezone.utc))
    importing, imported = _in_thread(
        lambda: pg_store.import_list("dnc", _file(tmp_path, FILE_NUMBERS)))
    asyncio.run(eventually(lambda: _waiting(pg_url, "outguard-import"),
                           "the import to wait for the snapshot", interval=0.05))
    assert sorted(e.e164 for e in data.entries) == ["+8613000000001", "+8613000000002"]
    assert _join(importing, imported).total == len(FILE_NUMBERS)
    fresh = pg_store.load_store_data(datetime.now(timezone.utc))
    assert sorted(e.e164 for e in fresh.entries) == FILE_NUMBERS


def test_a_snapshot_asked_during_a_replace_waits_and_reads_the_new_list(
    pg_url: str, pg_store: PostgresStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pg_store.create_list("dnc", "dnc")
    pg_store.add_entries("dnc", ["+8613000000001"])
    pause = Paused(monkeypatch, at="indexed")  # the new leaf attached, the old one dropped
    importing, imported = _in_thread(
        lambda: pg_store.import_list("dnc", _file(tmp_path, FILE_NUMBERS)))
    assert pause.reached.wait(60)
    loading, loaded = _in_thread(
        lambda: sorted(e.e164 for e in
                       pg_store.load_store_data(datetime.now(timezone.utc)).entries))
    asyncio.run(eventually(lambda: _waiting(pg_url, "outguard-reader"),
                           "the snapshot to wait for the import", interval=0.05))
    pause.release.set()
    _join(importing, imported)
    assert _join(loading, loaded) == FILE_NUMBERS


def test_a_rebuild_that_fails_leaves_the_list_and_no_table(
    pg_url: str, pg_store: PostgresStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pg_store.create_list("dnc", "dnc")
    pg_store.add_entries("dnc", ["+8613000000001"])
    leaves, version = _leaves(pg_url), pg_store.data_version()
    Paused(monkeypatch, fail=True)
    with pytest.raises(RuntimeError, match="broke off"):
        pg_store.import_list("dnc", _file(tmp_path, FILE_NUMBERS))
    assert _numbers(pg_store, "dnc") == ["+8613000000001"]
    assert _leaves(pg_url) == leaves and pg_store.data_version() == version


def test_an_entry_of_a_list_without_partition_is_refused(pg_store: PostgresStore) -> None:
    def job(conn: Any) -> None:
        conn.execute("INSERT INTO list_entries (list_id, e164, created_at) VALUES (?, ?, 1.0)",
                     (424242, "+8613800138000"))

    with pytest.raises(StoreError, match="list_id 424242 is not in lists"):
        pg_store._write(job)


# -- both engines: the add's two ways agree -----------------------------------------------

@pytest.mark.parametrize("way", ["rows", "rebuild"])
def test_an_add_keeps_the_rows_there_whichever_way_it_merges(
    store: SQLiteStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, way: str
) -> None:
    """An add changes no row already listed (reason, expiry and created_at stay), adds the
    new numbers with the import's values, and counts the others as duplicates."""
    monkeypatch.setattr(pg_imports, "REBUILD_ADD_SHARE", 0.0 if way == "rebuild" else 1e9)
    store.create_list("dnc", "dnc")
    store.add_entries("dnc", ["+8613000000001", "+8613000000002"], reason="by hand",
                      expires_at=datetime(2030, 1, 1, tzinfo=timezone.utc))
    before = {e.e164: e for e in store.iter_entries("dnc")}
    path = _file(tmp_path, ["+8613000000002", "+8613000000003", "+8613000000003"])
    result = store.import_list("dnc", path, mode="add", reason="file")
    assert (result.accepted, result.added, result.duplicates, result.removed, result.total) == \
        (2, 1, 2, 0, 3)
    after = {e.e164: e for e in store.iter_entries("dnc")}
    assert {n: after[n] for n in before} == before
    new = after["+8613000000003"]
    assert (new.reason, new.source, new.expires_at) == ("file", "n.txt", None)


# -- deleting a list drops its partition ---------------------------------------------------

def _tables_of(url: str, lid: int) -> list[str]:
    with psycopg.connect(url, autocommit=True) as conn:
        return [r[0] for r in conn.execute(
            "SELECT relname FROM pg_class WHERE relkind IN ('r', 'p')"
            " AND (relname = %s OR relname LIKE %s) ORDER BY 1",
            (f"list_entries_{lid}", f"list_entries\\_{lid}\\_%"))]


def test_deleting_a_list_drops_its_partition_and_audits_its_entries(
    pg_url: str, pg_store: PostgresStore, tmp_path: Path
) -> None:
    pg_store.create_list("dnc", "dnc")
    pg_store.create_list("other", "blacklist")
    pg_store.import_list("dnc", _file(tmp_path, FILE_NUMBERS))
    pg_store.add_entries("other", ["13900139000"])
    lid = pg_store.get_list("dnc").id
    assert len(_tables_of(pg_url, lid)) == 2  # the list's partition and its leaf
    pg_store.delete_list("dnc", actor="alice")
    assert _tables_of(pg_url, lid) == []
    record = pg_store.list_audit(action="list.delete", newest_first=True)[0]
    assert (record.actor, record.party_key, record.before) == \
        ("alice", "dnc", {"entries": len(FILE_NUMBERS)})
    assert _numbers(pg_store, "other") == ["+8613900139000"]
    assert pg_store.count_entries("other") == 1
    pg_store.create_list("dnc", "dnc")  # the name again: a new list, empty, that works
    assert pg_store.count_entries("dnc") == 0
    assert pg_store.add_entries("dnc", [FILE_NUMBERS[0]]) == 1


def test_a_delete_waits_for_an_import_of_its_list_and_drops_what_it_made(
    pg_url: str, pg_store: PostgresStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pg_store.create_list("dnc", "dnc")
    pg_store.add_entries("dnc", ["+8613000000001"])
    lid = pg_store.get_list("dnc").id
    pause = Paused(monkeypatch)
    importing, imported = _in_thread(
        lambda: pg_store.import_list("dnc", _file(tmp_path, FILE_NUMBERS)))
    assert pause.reached.wait(60)
    deleting, deleted = _in_thread(lambda: pg_store.delete_list("dnc"))
    asyncio.run(eventually(lambda: _waiting(pg_url, "outguard-writer"),
                           "the delete to wait for the import", interval=0.05))
    pause.release.set()
    assert _join(importing, imported).total == len(FILE_NUMBERS)
    _join(deleting, deleted)
    record = pg_store.list_audit(action="list.delete", newest_first=True)[0]
    assert record.before == {"entries": len(FILE_NUMBERS)}
    assert _tables_of(pg_url, lid) == [] and _leaves(pg_url) == []


def test_a_snapshot_begun_before_a_delete_reads_the_list_whole_and_holds_the_drop(
    pg_url: str, pg_store: PostgresStore
) -> None:
    pg_store.create_list("dnc", "dnc")
    pg_store.add_entries("dnc", ["+8613000000001", "+8613000000002"])
    data = pg_store.load_store_data(datetime.now(timezone.utc))
    deleting, deleted = _in_thread(lambda: pg_store.delete_list("dnc"))
    asyncio.run(eventually(lambda: _waiting(pg_url, "outguard-writer"),
                           "the delete to wait for the snapshot", interval=0.05))
    assert sorted(e.e164 for e in data.entries) == ["+8613000000001", "+8613000000002"]
    _join(deleting, deleted)
    assert list(pg_store.load_store_data(datetime.now(timezone.utc)).entries) == []


def test_an_add_to_a_list_being_deleted_waits_and_then_finds_no_list(
    pg_url: str, pg_store: PostgresStore
) -> None:
    """Another instance's add (its own writer) to a list whose delete holds the lock waits
    for the delete's commit and then fails as an add to a missing list; nothing is left."""
    pg_store.create_list("dnc", "dnc")
    pg_store.add_entries("dnc", ["+8613000000001"])
    lid = pg_store.get_list("dnc").id
    other = PostgresStore(pg_url, batch_interval=0.01)
    holder = psycopg.connect(pg_url)  # holds the delete at its start: a reader's lock
    try:
        holder.execute("LOCK TABLE list_entries IN ACCESS SHARE MODE")
        deleting, deleted = _in_thread(lambda: pg_store.delete_list("dnc"))
        asyncio.run(eventually(lambda: _waiting(pg_url, "outguard-writer"),
                               "the delete to wait for the reader", interval=0.05))
        adding, added = _in_thread(lambda: other.add_entries("dnc", ["+8613000000002"]))
        asyncio.run(eventually(lambda: _waiting(pg_url, "outguard-writer", sessions=2),
                               "the add to wait for the delete", interval=0.05))
        holder.rollback()
        _join(deleting, deleted)
        with pytest.raises(StoreError, match="not in lists"):
            _join(adding, added)
    finally:
        holder.close()
        other.close()
    assert _tables_of(pg_url, lid) == []
    assert pg_store._query("SELECT count(*) FROM list_entries WHERE list_id = ?", (lid,))[0][0] == 0


# -- both engines: a replace keeps what it keeps ------------------------------------------

@pytest.mark.parametrize("shape", ["e164", "mixed"])
def test_a_replace_keeps_the_kept_rows_dates_and_is_all_or_nothing(
    store: SQLiteStore, tmp_path: Path, shape: str
) -> None:
    """Rows the file keeps keep their created_at and disconnected_at; the new ones are
    stamped with the import; the others are gone; a bad file changes nothing. ``mixed``:
    numbers of several lengths (mobiles, fixed lines, NANP) and a short code, whose
    integer and text orders differ."""
    extra = ["+861062345678", "+12025550123", "+86:95588"] if shape == "mixed" else []
    old = [f"+86138{i:08d}" for i in range(0, 3000, 2)] + extra[:2]
    new = [f"+86138{i:08d}" for i in range(0, 3000, 3)] + extra
    store.create_list("dnc", "dnc")
    store.import_list("dnc", _file(tmp_path, old, "old.txt"))

    def mark(conn: Any) -> None:  # dates of their own on some rows, as a replace finds them
        conn.execute("UPDATE list_entries SET created_at = 1000.0 + length(e164),"
                     " disconnected_at = 5000.0 WHERE e164 LIKE '%6' OR e164 = ?",
                     ("+12025550123",))

    store._write(mark)
    before = {e.e164: e for e in store.iter_entries("dnc")}
    path = _file(tmp_path, [n.replace("+86:", "") for n in reversed(new)] + new[:5], "new.txt")
    result = store.import_list("dnc", path)
    after = {e.e164: e for e in store.iter_entries("dnc")}
    assert sorted(after) == sorted(set(new))
    kept = set(new) & set(old)
    assert (result.added, result.removed, result.total) == \
        (len(set(new) - kept), len(set(old) - kept), len(set(new)))
    assert result.duplicates == 5
    for number in kept:
        assert (after[number].created_at, after[number].disconnected_at) == \
            (before[number].created_at, before[number].disconnected_at), number
    assert any(after[n].disconnected_at is not None for n in kept)
    stamps = {after[n].created_at for n in set(new) - kept}
    assert len(stamps) == 1 and stamps != {before[n].created_at for n in kept}
    assert all(after[n].disconnected_at is None for n in set(new) - kept)
    # a file with too many bad lines: refused, the list as it was
    bad = tmp_path / "bad.txt"
    bad.write_text("13800000001\nnot a number\nneither\n")
    with pytest.raises(ImportFailed, match="bad.txt"):
        store.import_list("dnc", bad)
    assert {e.e164: e for e in store.iter_entries("dnc")} == after


@pytest.mark.parametrize("mode", ["replace", "add"])
def test_batches_of_integers_and_of_text_stage_alike(
    store: SQLiteStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    """Batches of E.164 numbers (staged as integers on PostgreSQL) and batches holding a
    short code (staged as text) in one COPY: one list, in key order, each number once."""
    monkeypatch.setattr(imports, "BATCH", 3)
    monkeypatch.setattr(pg_imports, "REBUILD_ADD_SHARE", 0.0)
    store.create_list("dnc", "dnc")
    store.add_entries("dnc", ["+8613000000009", "95588"])
    lines = ["13800000003", "13800000001", "+12025550123", "95588", "13800000001",
             "010-62345678", "13800000002", "13800000002", "13800000004", "10086"]
    result = store.import_list("dnc", _file(tmp_path, lines), mode=mode)
    expected = {"+8613800000001", "+8613800000002", "+8613800000003", "+8613800000004",
                "+12025550123", "+861062345678", "+86:95588", "+86:10086"}
    if mode == "add":
        expected |= {"+8613000000009"}
    assert _numbers(store, "dnc") == sorted(expected)
    assert (result.accepted, result.duplicates, result.total) == \
        (8, 2 + (mode == "add"), len(expected))


@pytest.mark.parametrize("junk", ["+ 8613800000001", "+08613800000001", "x8613800000001",
                                  "+86 138 0000 0001", "+86138000000010000000000"])
def test_a_replace_keeps_nothing_of_rows_another_normaliser_wrote(
    store: SQLiteStore, tmp_path: Path, junk: str
) -> None:
    """A row whose text is not an E.164 number (written by a normaliser of the caller's)
    is not the number its digits spell: a replace by the number drops the row and stamps
    the number as new; the rows it keeps keep their dates."""
    store.create_list("dnc", "dnc")
    store.add_entries("dnc", ["+8613800000002"])
    store.add_entries("dnc", [junk], normalise=lambda raw, region: raw)

    def mark(conn: Any) -> None:
        conn.execute("UPDATE list_entries SET created_at = 1000.0")

    store._write(mark)
    result = store.import_list("dnc", _file(tmp_path, ["13800000001", "13800000002"]))
    after = {e.e164: e.created_at.timestamp() for e in store.iter_entries("dnc")}  # type: ignore[union-attr]
    assert (result.added, result.removed, result.total) == (1, 1, 2)
    assert after["+8613800000002"] == 1000.0 and after["+8613800000001"] > 1000.0
    assert junk not in after
