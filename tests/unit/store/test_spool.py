"""No call-log write lost in silence: a store that refuses writes (disk full, read-only)
spools the rows durably, says so, and writes them when it recovers; a restart meanwhile
still counts them toward the caps."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from outguard.store import CallRecord, SQLiteStore
from outguard.store.spool import Spool
from rules.counters import InMemoryCounters
from tests import faults

NOW = time.time()


def _call(i: int, *, verdict: str = "allow", at: float = NOW) -> CallRecord:
    return CallRecord(
        decision_id=f"d{i:06d}", channel_id=f"PJSIP/1001-{i:08x}", adapter="ari", tenant="t1",
        account="a1", caller_id="+8613800138000", destination=f"+86139{i % 7:08d}",
        verdict=verdict, rule="", reason="ok", shadow=(), decision_us=90, at=at + i * 1e-3,
    )


def _wait(predicate: object, timeout: float = 10.0) -> None:
    """A readiness wait: poll until the writer reports the state, bounded."""
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the writer")
        time.sleep(0.01)


def _count(store: SQLiteStore) -> int:
    return int(store._query("SELECT count(*) FROM calls")[0][0])


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    with faults.small_disk(tmp_path / "disk") as disk:
        yield disk


def test_a_full_disk_spools_rows_and_writes_them_when_space_returns(
    small_disk: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = SQLiteStore(small_disk / "og.db", spool_dir=tmp_path / "spool", retry_s=0.05,
                        batch_interval=0.01)
    try:
        for i in range(10):
            store.record_decision(_call(i))
        store.flush()
        filler = faults.fill(small_disk)
        for i in range(10, 410):
            store.record_decision(_call(i))
            store.record_outcome(f"d{i:06d}", answered_at=NOW, ended_at=NOW + 5, duration=5.0,
                                 cause=16)
        store.flush()
        health = store.write_health()
        assert health["write_failures"] >= 1
        assert "full" in str(health["degraded"])
        assert health["spool_rows"] > 0 and health["rows_dropped"] == 0
        assert "refuses call-log writes (database or disk is full)" in caplog.text
        filler.unlink()
        _wait(lambda: store.write_health()["degraded"] is None)
        assert store.write_health()["spool_rows"] == 0
        assert _count(store) == 410
        assert store.get_call("d000409").cause == 16  # the outcome followed its decision
        assert not (tmp_path / "spool" / Spool.FILE).exists()
    finally:
        store.close()


def test_a_restart_on_a_still_full_disk_counts_the_spooled_calls(
    small_disk: Path, tmp_path: Path
) -> None:
    spool_dir = tmp_path / "spool"
    store = SQLiteStore(small_disk / "og.db", spool_dir=spool_dir, retry_s=3600)
    filler = faults.fill(small_disk)
    try:
        for i in range(300):
            store.record_decision(_call(i))
        store.record_decision(_call(999, verdict="block"))
        store.flush()
        spooled = store.write_health()["spool_rows"]
        assert spooled > 0
    finally:
        store.close()  # still full: the rows stay in the spool
    left = Spool(spool_dir)  # the lock is free again after close
    try:
        assert len(left.read()) == spooled
    finally:
        left.close()

    again = SQLiteStore(small_disk / "og.db", spool_dir=spool_dir, retry_s=0.05)
    try:
        assert again.write_health()["degraded"] is not None  # still full at start
        counters = InMemoryCounters(lambda: NOW + 1)
        replayed = counters.rebuild(again.iter_counter_rows_since(NOW - 3600))
        assert replayed == 300  # stored + spooled allowed calls, each once
        assert counters.attempts("account", "a1", 3600, NOW + 1) == 300
        assert sum(1 for _ in again.iter_calls_since(NOW - 3600, allowed_only=False)) == 301
        filler.unlink()
        _wait(lambda: again.write_health()["degraded"] is None)
        assert _count(again) == 301
        counters = InMemoryCounters(lambda: NOW + 1)
        assert counters.rebuild(again.iter_counter_rows_since(NOW - 3600)) == 300
    finally:
        again.close()


def test_a_read_only_store_spools_rows_and_writes_them_after(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """SQLite refusing writes on the writer's connection (SQLITE_READONLY), as a store on a
    file system remounted read-only does; the writer reconnects on each retry."""
    store = SQLiteStore(tmp_path / "og.db", spool_dir=tmp_path / "spool", retry_s=3600)
    try:
        store.writer.submit(lambda conn: conn.execute("PRAGMA query_only = 1")).result()
        for i in range(50):
            store.record_decision(_call(i))
        store.flush()
        health = store.write_health()
        assert "readonly" in str(health["degraded"])
        assert health["spool_rows"] == 50 and _count(store) == 0
        assert "refuses call-log writes (attempt to write a readonly database)" in caplog.text
    finally:
        store.close()  # a last retry on a fresh connection: the store takes the rows
    again = SQLiteStore(tmp_path / "og.db", spool_dir=tmp_path / "spool")
    try:
        assert _count(again) == 50 and again.write_health()["spool_rows"] == 0
    finally:
        again.close()


def test_without_a_spool_refused_rows_are_dropped_and_counted(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "og.db")
    try:
        store.writer.submit(lambda conn: conn.execute("PRAGMA query_only = 1")).result()
        store.record_decision(_call(1))
        store.flush()
        health = store.write_health()
        assert health["rows_dropped"] == 1 and health["write_failures"] == 1
    finally:
        store.close()


def test_one_spool_directory_serves_one_process(tmp_path: Path) -> None:
    first = Spool(tmp_path)
    try:
        with pytest.raises(Exception, match="in use by another outguard"):
            Spool(tmp_path)
    finally:
        first.close()


def test_a_torn_last_line_is_skipped(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    try:
        spool.append([(0, _call(1).as_row()), (1, (None, NOW, 0.0, 17, "d000001"))])
        with open(spool.path, "ab") as f:
            f.write(b'{"kind":"call","row":["d0000')
        assert [kind for kind, _ in spool.read()] == [0, 1]
    finally:
        spool.close()


def test_an_outcome_spooled_before_the_end_note_column_reads_with_no_note(
    tmp_path: Path,
) -> None:
    spool = Spool(tmp_path / "spool")
    spool.path.write_text('{"kind":"outcome","row":[1.0,2.0,1.0,16,"d000001"]}\n')
    assert spool.read() == [(1, (1.0, 2.0, 1.0, 16, None, "d000001"))]


@pytest.mark.parametrize("width", [13, 15], ids=["before_purpose", "before_pbx"])
def test_call_rows_spooled_by_an_older_version_are_written_with_the_columns_they_lack(
    tmp_path: Path, width: int,
) -> None:
    """A spool left by an older outguard (13 columns: before purpose/campaign; 15: before
    pbx) flushes into today's call log, the missing columns at their defaults."""
    import json

    row = _call(1).as_row()[:width]
    spool_dir = tmp_path / "spool"
    spool_dir.mkdir()
    (spool_dir / Spool.FILE).write_text(json.dumps({"kind": "call", "row": list(row)}) + "\n")
    store = SQLiteStore(tmp_path / "og.db", spool_dir=spool_dir)
    try:
        _wait(lambda: store.write_health()["spool_rows"] == 0)
        logged = store.get_call("d000001")
        assert logged is not None
        assert (logged.call.purpose, logged.call.campaign, logged.call.pbx) == ("", "", "")
        assert logged.call.caller_id == "+8613800138000"
    finally:
        store.close()


def test_a_spooled_redo_replaces_its_row_when_the_spool_is_written(tmp_path: Path) -> None:
    """The spool keeps a redo a redo: replayed, it replaces the row (outcome included) and
    is followed by its own outcome; the open calls read from the spool agree."""
    import json

    store = SQLiteStore(tmp_path / "og.db")
    try:
        store.record_decision(_call(1, verdict="block"))
        store.record_outcome("d000001", answered_at=None, ended_at=NOW, duration=0, cause=21)
        store.flush()
    finally:
        store.close()
    spool_dir = tmp_path / "spool"
    spool_dir.mkdir()
    again = _call(1, at=NOW + 5)
    (spool_dir / Spool.FILE).write_text(
        json.dumps({"kind": "redo", "row": list(again.as_row())}) + "\n")
    spool = Spool(spool_dir)
    try:
        assert [kind for kind, _ in spool.read()] == [2]
    finally:
        spool.close()
    store = SQLiteStore(tmp_path / "og.db", spool_dir=spool_dir)
    try:
        _wait(lambda: store.write_health()["spool_rows"] == 0)
        logged = store.get_call("d000001")
        assert logged.call == again and (logged.ended_at, logged.cause) == (None, None)
        assert [c.call.decision_id for c in store.open_calls()] == ["d000001"]
    finally:
        store.close()


def test_a_spooled_call_keeps_its_first_end_in_the_spool_and_after_it_is_written(
    tmp_path: Path,
) -> None:
    """The first end reported wins (writer.UPDATE_OUTCOME) on the spool's path too: what
    the spool says while the store refuses writes (replays, open calls) and what the
    store holds once it takes them agree."""
    store = SQLiteStore(tmp_path / "og.db", spool_dir=tmp_path / "spool", retry_s=3600)
    first = (NOW + 2, NOW + 30, 28.0, 16, None)
    try:
        store.writer.submit(lambda conn: conn.execute("PRAGMA query_only = 1")).result()
        store.record_decision(_call(1))
        store.record_outcome("d000001", answered_at=NOW + 2, ended_at=None, duration=None,
                             cause=None)
        store.record_outcome("d000001", answered_at=NOW + 2, ended_at=NOW + 30, duration=28,
                             cause=16)
        store.record_outcome("d000001", answered_at=None, ended_at=NOW + 99, duration=None,
                             cause=None, note="never seen ending")
        store.record_outcome("d000001", answered_at=NOW + 50, ended_at=None, duration=None,
                             cause=None)
        store.flush()
        assert store.write_health()["spool_rows"] == 5
        [spooled] = store.iter_calls_since(NOW - 1)
        assert (spooled.answered_at, spooled.ended_at, spooled.duration, spooled.cause,
                spooled.end_note) == first
        assert store.open_calls() == []
    finally:
        store.close()  # a last retry on a fresh connection: the store takes the rows
    again = SQLiteStore(tmp_path / "og.db", spool_dir=tmp_path / "spool")
    try:
        row = again.get_call("d000001")
        assert (row.answered_at, row.ended_at, row.duration, row.cause, row.end_note) == first
        assert again.open_calls() == []
    finally:
        again.close()
