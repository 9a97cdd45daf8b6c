"""Remediation tasks in the store, on SQLite and on the real PostgreSQL: open (once per
caller ID), note, close, each audited; an open task throttles its caller ID in the
snapshot's parties, a closed one no longer does."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from outguard.errors import Conflict, InvalidInput, NotFound
from outguard.store import SQLiteStore
from outguard.store.postgres import PostgresStore
from outguard.testing.servers import PostgresServer
from rules.model import PartyKind

CID = "+861088886666"


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "sqlite":
        s: Any = SQLiteStore(tmp_path / "h.db", batch_interval=0.01)
        yield s
        s.close()
        return
    pg: PostgresServer = request.getfixturevalue("pg_server")
    name = f"health_{uuid.uuid4().hex[:8]}"
    url = pg.create_database(name)
    s = PostgresStore(url, batch_interval=0.01)
    try:
        yield s
    finally:
        s.close()
        pg.drop_database(name)


def throttle_of(store: Any, caller_id: str) -> tuple[float, int | None]:
    data = store.load_store_data(datetime.now(UTC))
    data.entries.close()
    for p in data.parties:
        if (p.kind, p.key) == (PartyKind.CALLER_ID, caller_id):
            return p.cap_factor, p.throttle_task
    raise AssertionError(f"{caller_id} is not among the parties")


def test_a_task_throttles_until_closed_and_every_step_is_audited(store: Any) -> None:
    store.create_tenant("t1", "T1")
    store.upsert_caller_id(CID, "t1")
    before = store.data_version()
    task = store.open_health_task(CID, reason="connect rate 10% against 50%",
                                  figures={"rate": 0.1, "baseline_rate": 0.5},
                                  cap_factor=0.5, actor="health:connect_rate_drop",
                                  tenant_id="t1")
    assert (task.state, task.cap_factor, task.throttles) == ("open", 0.5, True)
    assert task.figures == {"rate": 0.1, "baseline_rate": 0.5}
    assert store.data_version() > before  # the call path rebuilds its snapshot
    assert throttle_of(store, CID) == (0.5, task.id)

    with pytest.raises(Conflict):  # one task per caller ID until it is closed
        store.open_health_task(CID, reason="again", figures={}, cap_factor=0.5, actor="x")

    worked = store.note_health_task(task.id, text="号码认证 submitted to 腾讯号码公众平台",
                                    actor="ops")
    assert worked.state == "working" and worked.notes[-1]["text"].startswith("号码认证")
    assert throttle_of(store, CID) == (0.5, task.id)  # working is still not closed

    closed = store.close_health_task(task.id, resolution="标记申诉 accepted by 360 and Tencent",
                                     actor="ops")
    assert (closed.state, closed.closed_by, closed.throttles) == ("closed", "ops", False)
    assert throttle_of(store, CID) == (1.0, None)
    with pytest.raises(Conflict):
        store.close_health_task(task.id, resolution="twice", actor="ops")
    with pytest.raises(Conflict):
        store.note_health_task(task.id, text="late", actor="ops")

    actions = [(a.action, a.actor) for a in store.list_audit(party_key=CID)
               if a.action.startswith("health_task.")]
    assert actions == [("health_task.open", "health:connect_rate_drop"),
                       ("health_task.note", "ops"), ("health_task.close", "ops")]
    # a new one may open after the close
    again = store.open_health_task(CID, reason="dropped again", figures={}, cap_factor=0.25,
                                   actor="health:connect_rate_drop")
    assert [t.id for t in store.list_health_tasks(state="active")] == [again.id]
    assert [t.id for t in store.list_health_tasks(caller_id=CID)] == [task.id, again.id]
    assert store.list_health_tasks(state="closed")[0].resolution.startswith("标记申诉")


def test_unknown_caller_ids_are_throttled_too(store: Any) -> None:
    task = store.open_health_task("+8613900000009", reason="r", figures={}, cap_factor=0.5,
                                  actor="a")
    assert throttle_of(store, "+8613900000009") == (0.5, task.id)


def test_bad_input_is_refused_and_changes_nothing(store: Any) -> None:
    with pytest.raises(InvalidInput):
        store.open_health_task(CID, reason="r", figures={}, cap_factor=0.0, actor="a")
    with pytest.raises(NotFound):
        store.note_health_task(999, text="x", actor="a")
    with pytest.raises(InvalidInput):
        store.list_health_tasks(state="paused")
    task = store.open_health_task(CID, reason="r", figures={}, cap_factor=0.5, actor="a")
    with pytest.raises(InvalidInput):
        store.close_health_task(task.id, resolution="  ", actor="a")
    assert store.get_health_task(task.id).state == "open"
