"""The call log: batched writes, outcomes, replay into counters after a restart."""

from __future__ import annotations

import sqlite3
import time
from datetime import datetime, timezone
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from outguard.store import CallRecord, SQLiteStore
from outguard.store.writer import statement_runs
from rules.counters import InMemoryCounters
from rules.model import CallAttempt, Verdict

NOW = 1_800_000_000.0
DAY = 86400


def _call(i: int, at: float, *, verdict: str = "allow", account: str = "a1") -> CallRecord:
    return CallRecord(
        decision_id=f"d{i}", channel_id=f"PJSIP/1001-{i:08x}", adapter="ari", tenant="t1",
        account=account, caller_id="+8613800138000", destination=f"+86139{i % 7:08d}",
        verdict=verdict, rule="" if verdict == "allow" else "dnc", reason="ok",
        shadow=("quiet",) if i % 5 == 0 else (), decision_us=90 + i, at=at,
    )


def test_decisions_and_outcomes_are_committed_on_flush(store: SQLiteStore) -> None:
    store.record_decision(_call(1, NOW))
    store.record_outcome("d1", answered_at=NOW + 2, ended_at=NOW + 30, duration=28, cause=16)
    store.record_outcome("unknown", answered_at=None, ended_at=NOW, duration=0, cause=17)
    store.flush()
    row = store.get_call("d1")
    assert row.call == _call(1, NOW)
    assert (row.answered_at, row.ended_at, row.duration, row.cause) == (NOW + 2, NOW + 30, 28, 16)


def test_a_calls_end_is_written_once_the_first_report_wins_on_both_engines(
    open_store_at: Callable[..., SQLiteStore],
) -> None:
    """Two processes may report one call's end (cluster mode: an instance that restored
    another's call from the shared call log, two instances following one PBX over AMI):
    the end written first stays. A late report (an end "never seen ending" 6 h on, an
    answer after the end) used to overwrite it, or reopen the row (ended_at NULL again:
    restored as live at the next start)."""
    one, other = open_store_at(batch_interval=0.01), open_store_at(batch_interval=0.01)
    one.record_decision(_call(1, NOW))
    one.record_outcome("d1", answered_at=NOW + 2, ended_at=None, duration=None, cause=None)
    one.record_outcome("d1", answered_at=NOW + 2, ended_at=NOW + 30, duration=28, cause=16)
    one.flush()
    other.record_outcome("d1", answered_at=None, ended_at=NOW + 6 * 3600, duration=None,
                         cause=None, note="never seen ending")
    other.record_outcome("d1", answered_at=NOW + 9, ended_at=None, duration=None, cause=None)
    other.flush()
    for store in (one, other):
        row = store.get_call("d1")
        assert (row.answered_at, row.ended_at, row.duration, row.cause, row.end_note) == (
            NOW + 2, NOW + 30, 28, 16, None)
    assert "d1" not in {c.call.decision_id for c in other.open_calls()}


def test_a_redo_replaces_the_row_of_a_decision_never_carried_out_on_both_engines(
    store: SQLiteStore,
) -> None:
    """A call decided again (its first decision was never carried out: outguard died first)
    takes the row whole, the first decision's outcome included; its own outcome closes
    it. A plain decision of an id already logged changes nothing (a replayed spool)."""
    from dataclasses import replace

    store.record_decision(_call(1, NOW, verdict="block"))
    store.record_outcome("d1", answered_at=None, ended_at=NOW, duration=0, cause=21)
    store.flush()
    again = replace(_call(1, NOW + 9), reason="ok", account="a2")
    store.record_decision(again, redo=True)
    store.flush()
    row = store.get_call("d1")
    assert row.call == again and (row.ended_at, row.cause) == (None, None)
    store.record_outcome("d1", answered_at=NOW + 10, ended_at=NOW + 40, duration=30, cause=16)
    store.record_decision(_call(1, NOW, verdict="block"))  # ignored: the id is logged
    store.record_decision(_call(2, NOW), redo=True)  # nothing to replace: a new row
    # another channel's (another PBX's) call with a colliding id is never replaced
    store.record_decision(replace(_call(1, NOW + 20), channel_id="other", pbx="sh-1"),
                          redo=True)
    store.flush()
    row = store.get_call("d1")
    assert row.call == again and (row.answered_at, row.ended_at, row.cause) == (
        NOW + 10, NOW + 40, 16)
    assert store.get_call("d2").call == _call(2, NOW)
    assert [c.call.decision_id for c in store.open_calls()] == ["d2"]


def test_a_batch_of_interleaved_decisions_and_outcomes_is_one_statement_run_of_each(
    open_store_at: Callable[..., SQLiteStore], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Decisions and outcomes arrive interleaved; a batch writes them as one run of each
    statement between redos (on PostgreSQL every run was a round trip: 2 a call), and
    writes what they write in their order: an outcome before a redo of its id is the
    redone row's no longer; one after it closes it; one enqueued before its own decision
    closes the row too (before: it found no row)."""
    from dataclasses import replace

    from outguard.store import writer

    seen: list[list[tuple[int, int]]] = []

    def spied(batch: list[tuple[int, tuple[Any, ...]]]) -> list[tuple[int, list[tuple[Any, ...]]]]:
        runs = statement_runs(batch)
        seen.append([(kind, len(rows)) for kind, rows in runs])
        return runs

    monkeypatch.setattr(writer, "statement_runs", spied)
    store = open_store_at(batch_interval=30)
    for i in range(1, 41):
        store.record_decision(_call(i, NOW + i))
        if i > 1:  # the previous call's outcome after this call's decision
            store.record_outcome(f"d{i - 1}", answered_at=None, ended_at=NOW + i, duration=0,
                                 cause=16)
    store.record_outcome("d41", answered_at=None, ended_at=NOW + 50, duration=0, cause=17)
    store.record_decision(_call(41, NOW + 41))  # its outcome came first (same batch)
    store.record_outcome("d40", answered_at=None, ended_at=NOW + 50, duration=0, cause=21)
    again = replace(_call(40, NOW + 60), account="a2")
    store.record_decision(again, redo=True)
    store.record_decision(_call(42, NOW + 42))
    store.record_outcome("d42", answered_at=NOW + 61, ended_at=NOW + 70, duration=9, cause=16)
    store.flush()
    CALL, OUTCOME, REDO = writer._CALL, writer._OUTCOME, writer._REDO
    assert seen == [[(CALL, 41), (OUTCOME, 41), (REDO, 1), (CALL, 1), (OUTCOME, 1)]]
    assert [store.get_call(f"d{i}").cause for i in range(1, 40)] == [16] * 39
    assert store.get_call("d41").cause == 17
    redone = store.get_call("d40")
    assert redone.call == again and (redone.ended_at, redone.cause) == (None, None)
    assert (store.get_call("d42").duration, store.get_call("d42").cause) == (9, 16)


def test_statement_runs_keep_each_kinds_order_and_every_redo_in_place() -> None:
    from outguard.store.writer import _CALL as C, _OUTCOME as O, _REDO as R

    batch = [(C, ("a",)), (O, ("x",)), (C, ("b",)), (O, ("y",)), (R, ("r1",)), (R, ("r2",)),
             (O, ("z",)), (C, ("c",)), (R, ("r3",))]
    assert statement_runs(batch) == [
        (C, [("a",), ("b",)]), (O, [("x",), ("y",)]), (R, [("r1",), ("r2",)]),
        (C, [("c",)]), (O, [("z",)]), (R, [("r3",)])]
    assert statement_runs([]) == []


def test_rows_are_enqueued_without_waiting_for_sqlite_then_written_in_batches(
    db_path: Path,
) -> None:
    """Recording a decision never waits for SQLite: with another process holding the write
    lock, 5,000 rows are still accepted (none can be committed yet); once the lock is
    released they are written in batches. (How fast enqueueing is: bench/store.py.)"""
    store = SQLiteStore(db_path, batch_rows=500, batch_interval=0.05)
    locker = sqlite3.connect(db_path, isolation_level=None)
    try:
        locker.execute("BEGIN IMMEDIATE")  # the write lock, as another process would hold it
        for i in range(5000):
            store.record_decision(_call(i, NOW + i))
        assert store.writer.rows_committed == 0  # the writer is stuck; the callers are not
        locker.execute("ROLLBACK")
        store.flush()
        assert store.writer.rows_committed == 5000
        assert store.writer.batches_committed <= 5000 // 100
    finally:
        locker.close()
        store.close()


def test_a_partial_batch_is_committed_within_the_interval(store: SQLiteStore) -> None:
    store.record_decision(_call(1, NOW))
    deadline = time.monotonic() + 5
    while store.writer.rows_committed == 0 and time.monotonic() < deadline:
        time.sleep(0.005)
    assert store.writer.rows_committed == 1


def test_close_commits_what_is_queued(open_store_at: Callable[..., SQLiteStore]) -> None:
    store = open_store_at(batch_interval=10)
    for i in range(10):
        store.record_decision(_call(i, NOW + i))
    store.close()
    store = open_store_at()
    assert len(list(store.iter_calls_since(0, allowed_only=False))) == 10


def test_iter_calls_since_an_end_time_skips_earlier_calls_that_did_not_end_since(
    store: SQLiteStore,
) -> None:
    """What the call feed's recovery reads: calls decided since ``ended_since``, and the
    earlier ones that ended since then (their outcomes), nothing else."""
    store.record_decision(_call(1, NOW - 600))  # ended long before
    store.record_decision(_call(2, NOW - 500))  # ended since
    store.record_decision(_call(3, NOW - 400))  # still up
    store.record_decision(_call(4, NOW + 5, verdict="block"))  # decided since
    store.record_outcome("d1", answered_at=None, ended_at=NOW - 300, duration=0, cause=16)
    store.record_outcome("d2", answered_at=None, ended_at=NOW + 9, duration=0, cause=16)
    store.flush()
    got = store.iter_calls_since(NOW - 3600, allowed_only=False, ended_since=NOW)
    assert [c.call.decision_id for c in got] == ["d2", "d4"]
    assert len(list(store.iter_calls_since(NOW - 3600, allowed_only=False))) == 4


def test_iter_calls_since_yields_allowed_calls_in_time_order(store: SQLiteStore) -> None:
    store.record_decision(_call(3, NOW - 10))
    store.record_decision(_call(1, NOW - 8 * DAY))
    store.record_decision(_call(2, NOW - 20, verdict="block"))
    store.record_decision(_call(4, NOW - 30))
    store.flush()
    assert [c.call.decision_id for c in store.iter_calls_since(NOW - 7 * DAY)] == ["d4", "d3"]
    assert len(list(store.iter_calls_since(NOW - 7 * DAY, allowed_only=False))) == 3


def test_counters_rebuilt_after_a_restart_equal_the_counters_before(
    open_store_at: Callable[..., SQLiteStore]
) -> None:
    before = InMemoryCounters(clock=lambda: NOW)
    store = open_store_at()
    for i in range(3000):
        at = NOW - (i * 197) % (6 * DAY)  # spread over six days, out of order
        account = f"a{i % 3}"
        verdict = "block" if i % 11 == 0 else "allow"
        call = _call(i, at, verdict=verdict, account=account)
        store.record_decision(call)
        if verdict == "allow":
            before.record(call.tenant, call.account, call.caller_id, call.destination, at)
    store.close()  # the restart

    store = open_store_at()
    after = InMemoryCounters(clock=lambda: NOW)
    replayed = after.rebuild(store.iter_counter_rows_since(NOW - 7 * DAY))
    assert replayed == sum(1 for i in range(3000) if i % 11)
    for window in (60, 3600, DAY, 7 * DAY):
        for scope, key in (("account", "a0"), ("account", "a2"), ("tenant", "t1"),
                           ("caller_id", "+8613800138000")):
            assert after.attempts(scope, key, window, NOW) == before.attempts(scope, key, window, NOW)
        for dest in range(7):
            e164 = f"+86139{dest:08d}"
            assert after.destination_attempts("t1", e164, window, NOW) == \
                before.destination_attempts("t1", e164, window, NOW)
    for account in ("a0", "a1", "a2"):
        assert after.distinct_callees(account, NOW) == before.distinct_callees(account, NOW)


def test_call_record_from_a_verdict(store: SQLiteStore) -> None:
    attempt = CallAttempt(tenant="t1", account="a1", caller_id="13800138000",
                          destination="139 0000 0000", at=datetime.fromtimestamp(NOW, timezone.utc),
                          channel_id="ch-1", call_id="abc")
    verdict = Verdict(allowed=False, rule_id="dnc", reason="dnc_listed", message="listed",
                      shadow=("quiet",), destination_e164="+8613900000000",
                      caller_id_e164="+8613800138000")
    store.record_decision(CallRecord.from_verdict(attempt, verdict, adapter="agi", decision_us=55))
    store.flush()
    call = store.get_call("abc").call
    assert (call.verdict, call.rule, call.destination, call.shadow, call.at) == (
        "block", "dnc", "+8613900000000", ("quiet",), NOW)


def test_writes_wait_while_another_process_holds_the_lock(db_path: Path) -> None:
    store = SQLiteStore(db_path, busy_timeout_s=0.05, batch_interval=0.005)
    other = sqlite3.connect(db_path, isolation_level=None)  # e.g. the CLI mid-import
    try:
        other.execute("BEGIN IMMEDIATE")
        for i in range(50):
            store.record_decision(_call(i, NOW + i))
        acked = store.flush_future()
        time.sleep(0.3)
        assert not acked.done()
        other.execute("COMMIT")
        assert acked.result(10) == 50
        assert len(list(store.iter_calls_since(0))) == 50
    finally:
        other.close()
        store.close()
