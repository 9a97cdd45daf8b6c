"""Caller-ID health tasks: a connect-rate warning and the remediation it asks for.

A task is ``open`` when the detector raises it, ``working`` once someone records a step
(号码认证 applied for, 标记申诉 filed), ``closed`` with a resolution. While it is not
closed its caller ID's caps are throttled (``cap_factor``): every change bumps the data
version, so the call path's snapshot follows. Each change writes its audit record in
the same transaction. At most one task per caller ID is not closed (a unique index).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from outguard.errors import Conflict, InvalidInput, NotFound
from outguard.store.audit import write_audit
from outguard.store.base import Where, to_dt

T = TypeVar("T")

TASK_STATES = ("open", "working", "closed")


@dataclass(frozen=True, slots=True)
class HealthTask:
    id: int
    caller_id: str
    tenant_id: str | None
    state: str  # open | working | closed
    reason: str
    figures: dict[str, Any]
    cap_factor: float
    opened_at: datetime
    opened_by: str
    notes: tuple[dict[str, Any], ...]  # {"at": iso, "by": actor, "text": ...}
    closed_at: datetime | None = None
    closed_by: str | None = None
    resolution: str | None = None

    @property
    def throttles(self) -> bool:
        """Whether its caller ID's caps are reduced now (until it is closed)."""
        return self.state != "closed"


def _task(row: Any) -> HealthTask:
    return HealthTask(
        id=int(row["id"]), caller_id=row["caller_id"], tenant_id=row["tenant_id"],
        state=row["state"], reason=row["reason"], figures=json.loads(row["figures"] or "{}"),
        cap_factor=float(row["cap_factor"]),
        opened_at=to_dt(row["opened_at"]),  # type: ignore[arg-type]
        opened_by=row["opened_by"], notes=tuple(json.loads(row["notes"] or "[]")),
        closed_at=to_dt(row["closed_at"]), closed_by=row["closed_by"],
        resolution=row["resolution"],
    )


class HealthMixin:
    if TYPE_CHECKING:
        def _write(self, job: Callable[[sqlite3.Connection], T], *, changes_data: bool = False) -> T: ...
        def _query(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> list[sqlite3.Row]: ...
        def _one(self, sql: str, params: tuple[Any, ...], kind: str, key: object) -> sqlite3.Row: ...

    def open_health_task(self, caller_id: str, *, reason: str, figures: dict[str, Any],
                         cap_factor: float, actor: str, tenant_id: str | None = None,
                         at: datetime | None = None) -> HealthTask:
        """Open a task (and so the throttle). Conflict when the caller ID has one that is
        not closed (whichever instance opened it)."""
        if not 0 < cap_factor <= 1:
            raise InvalidInput("cap_factor must be above 0 and at most 1", field="cap_factor")
        when = at.timestamp() if at is not None else time.time()

        def job(conn: sqlite3.Connection) -> int:
            if conn.execute("SELECT 1 FROM health_tasks WHERE caller_id = ? AND state <> 'closed'",
                            (caller_id,)).fetchone() is not None:
                raise Conflict(f"caller ID {caller_id} already has an open health task",
                               kind="health_task", key=caller_id)
            try:
                cur = conn.execute(
                    "INSERT INTO health_tasks (caller_id, tenant_id, state, reason, figures,"
                    " cap_factor, opened_at, opened_by, notes) VALUES (?, ?, 'open', ?, ?, ?, ?, ?,"
                    " '[]') RETURNING id",
                    (caller_id, tenant_id, reason, json.dumps(figures, ensure_ascii=False),
                     cap_factor, when, actor))
                tid = int(cur.fetchone()[0])
            except sqlite3.IntegrityError as exc:  # another instance, same moment
                raise Conflict(f"caller ID {caller_id} already has an open health task",
                               kind="health_task", key=caller_id) from exc
            write_audit(conn, actor, "health_task.open", party_kind="caller_id",
                        party_key=caller_id,
                        after={"id": tid, "reason": reason, "cap_factor": cap_factor,
                               "figures": figures})
            return tid

        return self.get_health_task(self._write(job, changes_data=True))

    def note_health_task(self, task_id: int, *, text: str, actor: str) -> HealthTask:
        """Record a remediation step; an open task becomes ``working``. Conflict when
        it is closed."""
        if not text.strip():
            raise InvalidInput("a note needs a text", field="text")

        def job(conn: sqlite3.Connection) -> None:
            row = self._locked(conn, task_id)
            notes = [*json.loads(row[2] or "[]"),
                     {"at": datetime.fromtimestamp(time.time(), UTC).isoformat(),
                      "by": actor, "text": text}]
            conn.execute("UPDATE health_tasks SET state = 'working', notes = ? WHERE id = ?",
                         (json.dumps(notes, ensure_ascii=False), task_id))
            write_audit(conn, actor, "health_task.note", party_kind="caller_id",
                        party_key=row[1], before={"id": task_id, "state": row[0]},
                        after={"id": task_id, "state": "working", "note": text})

        self._write(job)
        return self.get_health_task(task_id)

    def close_health_task(self, task_id: int, *, resolution: str, actor: str,
                          at: datetime | None = None) -> HealthTask:
        """Close the task with what was done: the throttle ends. Conflict when closed."""
        if not resolution.strip():
            raise InvalidInput("closing a task needs a resolution", field="resolution")
        when = at.timestamp() if at is not None else time.time()

        def job(conn: sqlite3.Connection) -> None:
            row = self._locked(conn, task_id)
            conn.execute("UPDATE health_tasks SET state = 'closed', closed_at = ?, closed_by = ?,"
                         " resolution = ? WHERE id = ?", (when, actor, resolution, task_id))
            write_audit(conn, actor, "health_task.close", party_kind="caller_id",
                        party_key=row[1], before={"id": task_id, "state": row[0]},
                        after={"id": task_id, "state": "closed", "resolution": resolution})

        self._write(job, changes_data=True)
        return self.get_health_task(task_id)

    @staticmethod
    def _locked(conn: sqlite3.Connection, task_id: int) -> Any:
        row = conn.execute("SELECT state, caller_id, notes FROM health_tasks WHERE id = ?",
                           (task_id,)).fetchone()
        if row is None:
            raise NotFound("health task", task_id)
        if row[0] == "closed":
            raise Conflict(f"health task {task_id} is closed", kind="health_task",
                           key=task_id, state="closed")
        return row

    def get_health_task(self, task_id: int) -> HealthTask:
        return _task(self._one("SELECT * FROM health_tasks WHERE id = ?", (task_id,),
                               "health task", task_id))

    def list_health_tasks(self, *, state: str | None = None,
                          caller_id: str | None = None) -> list[HealthTask]:
        """Tasks, oldest first; ``state="active"`` = every task not closed."""
        if state is not None and state != "active" and state not in TASK_STATES:
            raise InvalidInput(f"state must be one of active, {', '.join(TASK_STATES)}",
                               field="state", value=state)
        active = state == "active"
        where = (Where().add("state <> ?", "closed" if active else None)
                 .add("state = ?", None if active else state).add("caller_id = ?", caller_id))
        rows = self._query(f"SELECT * FROM health_tasks WHERE {where.sql()} ORDER BY id",
                           where.params)
        return [_task(r) for r in rows]
