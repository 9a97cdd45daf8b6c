"""Complaint deadlines in the store, on SQLite and on PostgreSQL: open complaints by
deadline, closing (audited, once), and each alert stage claimed by one writer of the
cluster."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from outguard.errors import Conflict, NotFound
from outguard.store import SQLiteStore

T0 = 1_800_000_000.0


def dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def add(store: SQLiteStore, due: float | None, source: str = "12321") -> int:
    return store.add_complaint(
        "+861088886666", category="harassment", source=source, reporter="+8613900139000",
        at=dt(T0), received_at=dt(T0) if due else None, due_at=dt(due) if due else None,
        actor="ops").id


def test_open_complaints_by_deadline_and_closing_once(store: SQLiteStore) -> None:
    late, soon, none = add(store, T0 + 30 * 86400), add(store, T0 + 86400), add(store, None)
    got = store.get_complaint(soon)
    assert got.due_at == dt(T0 + 86400) and got.received_at == dt(T0) and got.closed_at is None
    assert [c.id for c in store.open_complaints_due()] == [soon, late]  # nearest first
    assert [c.id for c in store.open_complaints_due(dt(T0 + 2 * 86400))] == [soon]
    closed = store.close_complaint(soon, resolution="on dnc", actor="rita", at=dt(T0 + 2 * 86400))
    assert (closed.closed_by, closed.resolution, closed.closed_at) == \
        ("rita", "on dnc", dt(T0 + 2 * 86400))
    with pytest.raises(Conflict):
        store.close_complaint(soon, resolution="again", actor="rita")
    with pytest.raises(NotFound):
        store.close_complaint(9999, resolution="x", actor="rita")
    assert [c.id for c in store.open_complaints_due()] == [late]
    audit = [a for a in store.list_audit() if a.action == "complaint.close"]
    assert len(audit) == 1 and audit[0].actor == "rita"
    assert audit[0].after == {"id": soon, "closed_at": T0 + 2 * 86400, "resolution": "on dnc",
                              "due_at": T0 + 86400, "late": True}
    assert store.get_complaint(none).due_at is None


def test_each_alert_stage_is_claimed_once_across_instances(
    store: SQLiteStore, open_store_at: Callable[..., SQLiteStore]
) -> None:
    other = open_store_at(batch_interval=0.01)  # a second instance on the same database
    cid = add(store, T0 + 86400)
    assert store.mark_complaint_alerted(cid, "due_soon", None)
    assert not other.mark_complaint_alerted(cid, "due_soon", None)
    assert other.mark_complaint_alerted(cid, "overdue", "due_soon")
    assert not store.mark_complaint_alerted(cid, "overdue", "due_soon")
    assert store.get_complaint(cid).alerted == "overdue"
    store.close_complaint(cid, resolution="done", actor="rita")
    closed = add(store, T0)
    store.close_complaint(closed, resolution="done", actor="rita")
    assert not store.mark_complaint_alerted(closed, "overdue", None)  # closed: no alert
