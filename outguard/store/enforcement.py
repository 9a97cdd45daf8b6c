"""Plain CRUD for suspensions, appeals, complaints/callee marks and the audit trail.

The lifecycle (thresholds, grading, what an approved appeal lifts) belongs to the
enforcement engine; these methods only store and fetch, each change with its audit record.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from outguard.errors import Conflict, InvalidInput, NotFound
from outguard.store.audit import write_audit
from outguard.store.base import (
    COMPLAINT_CATEGORIES, Appeal, AppealState, AuditRecord, Complaint, Suspension, Where, to_dt,
    to_ts,
)
from rules.model import PartyKind

logger = logging.getLogger(__name__)

T = TypeVar("T")


def _kind(value: PartyKind | str) -> PartyKind:
    try:
        return PartyKind(value)
    except ValueError as exc:
        raise InvalidInput(f"unknown party kind {value!r}", field="party_kind") from exc


def _still_open(conn: sqlite3.Connection, sql: str, kind: str, key: int, done: int,
                already: str) -> Any:
    """The row ``sql`` selects by ``key``: NotFound when there is none, Conflict (``"<kind>
    <key> <already>"``) when its column ``done`` (a time) is set: lifted, closed."""
    row = conn.execute(sql, (key,)).fetchone()
    if row is None:
        raise NotFound(kind, key)
    if row[done] is not None:
        raise Conflict(f"{kind} {key} {already}", kind=kind, key=key)
    return row


def _suspension(row: Any) -> Suspension:
    return Suspension(
        id=row["id"], party_kind=PartyKind(row["party_kind"]), party_key=row["party_key"],
        reason=row["reason"], trigger=row["trigger"] or "",
        started_at=to_dt(row["started_at"]),  # type: ignore[arg-type]
        ends_at=to_dt(row["ends_at"]), created_by=row["created_by"],
        lifted_by=row["lifted_by"], lift_reason=row["lift_reason"],
        lifted_at=to_dt(row["lifted_at"]),
    )


def _appeal(row: Any) -> Appeal:
    return Appeal(
        id=row["id"], party_kind=PartyKind(row["party_kind"]), party_key=row["party_key"],
        suspension_id=row["suspension_id"], text=row["text"], evidence=row["evidence"] or "",
        state=AppealState(row["state"]), reviewer=row["reviewer"], decision=row["decision"],
        created_at=to_dt(row["created_at"]),  # type: ignore[arg-type]
        decided_at=to_dt(row["decided_at"]),
    )


def _complaint(row: Any) -> Complaint:
    return Complaint(
        id=row["id"], kind=row["kind"], caller_id=row["caller_id"], reporter=row["reporter"],
        category=row["category"], source=row["source"],
        at=to_dt(row["at"]),  # type: ignore[arg-type]
        note=row["note"] or "", tenant_id=row["tenant_id"],
        account_id=row["account_id"] if "account_id" in row.keys() else None,
        received_at=to_dt(row["received_at"]), due_at=to_dt(row["due_at"]),
        closed_at=to_dt(row["closed_at"]), closed_by=row["closed_by"],
        resolution=row["resolution"], alerted=row["alerted"],
        calendar_unknown=bool(row["calendar_unknown"]) if "calendar_unknown" in row.keys()
        else False,
    )


def _audit(row: Any) -> AuditRecord:
    return AuditRecord(
        id=row["id"], at=to_dt(row["at"]),  # type: ignore[arg-type]
        actor=row["actor"], action=row["action"], party_kind=row["party_kind"],
        party_key=row["party_key"],
        before=None if row["before"] is None else json.loads(row["before"]),
        after=None if row["after"] is None else json.loads(row["after"]),
    )


class EnforcementMixin:
    if TYPE_CHECKING:
        def _write(self, job: Callable[[sqlite3.Connection], T], *, changes_data: bool = False) -> T: ...
        def _query(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> list[sqlite3.Row]: ...
        def _one(self, sql: str, params: tuple[Any, ...], kind: str, key: object) -> sqlite3.Row: ...

    # -- suspensions ---------------------------------------------------------------------

    def create_suspension(self, party_kind: PartyKind | str, party_key: str, *, reason: str,
                          created_by: str, trigger: str = "", started_at: datetime | None = None,
                          ends_at: datetime | None = None) -> Suspension:
        """Suspend a party until ``ends_at`` (None = permanently, i.e. disabled)."""
        kind = _kind(party_kind)
        start = to_ts(started_at) if started_at is not None else time.time()
        end = to_ts(ends_at)
        if end is not None and start is not None and end <= start:
            raise InvalidInput("a suspension must end after it starts", field="ends_at")

        def job(conn: sqlite3.Connection) -> int:
            cur = conn.execute(
                "INSERT INTO suspensions (party_kind, party_key, reason, trigger, started_at,"
                " ends_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (kind.value, party_key, reason, trigger, start, end, created_by),
            )
            sid = int(cur.lastrowid or 0)
            write_audit(conn, created_by, "suspension.create", party_kind=kind.value,
                        party_key=party_key,
                        after={"id": sid, "reason": reason, "trigger": trigger,
                               "started_at": start, "ends_at": end})
            return sid

        return self.get_suspension(self._write(job, changes_data=True))

    def lift_suspension(self, suspension_id: int, *, lifted_by: str, lift_reason: str,
                        lifted_at: datetime | None = None) -> Suspension:
        at = to_ts(lifted_at) if lifted_at is not None else time.time()

        def job(conn: sqlite3.Connection) -> None:
            row = _still_open(conn, "SELECT party_kind, party_key, lifted_at FROM suspensions"
                              " WHERE id = ?", "suspension", suspension_id, 2,
                              "was already lifted")
            conn.execute("UPDATE suspensions SET lifted_by = ?, lift_reason = ?, lifted_at = ?"
                         " WHERE id = ?", (lifted_by, lift_reason, at, suspension_id))
            write_audit(conn, lifted_by, "suspension.lift", party_kind=row[0], party_key=row[1],
                        before={"id": suspension_id, "lifted_at": None},
                        after={"id": suspension_id, "lifted_at": at, "lift_reason": lift_reason})

        self._write(job, changes_data=True)
        return self.get_suspension(suspension_id)

    def get_suspension(self, suspension_id: int) -> Suspension:
        return _suspension(self._one("SELECT * FROM suspensions WHERE id = ?", (suspension_id,),
                                     "suspension", suspension_id))

    def list_suspensions(self, *, party_kind: PartyKind | str | None = None,
                         party_key: str | None = None,
                         active_at: datetime | None = None) -> list[Suspension]:
        now = to_ts(active_at)
        where = (Where()
                 .add("party_kind = ?", None if party_kind is None else _kind(party_kind).value)
                 .add("party_key = ?", party_key)
                 .add("started_at <= ? AND (ends_at IS NULL OR ends_at > ?)"
                      " AND (lifted_at IS NULL OR lifted_at > ?)", now, now, now))
        rows = self._query(f"SELECT * FROM suspensions WHERE {where.sql()} ORDER BY id",
                           where.params)
        return [_suspension(r) for r in rows]

    # -- appeals -------------------------------------------------------------------------

    def create_appeal(self, party_kind: PartyKind | str, party_key: str, *, text: str,
                      evidence: str = "", suspension_id: int | None = None,
                      actor: str = "system") -> Appeal:
        kind = _kind(party_kind)
        if not text.strip():
            raise InvalidInput("an appeal needs a text", field="text")

        def job(conn: sqlite3.Connection) -> int:
            if suspension_id is not None and conn.execute(
                "SELECT 1 FROM suspensions WHERE id = ?", (suspension_id,)
            ).fetchone() is None:
                raise NotFound("suspension", suspension_id)
            cur = conn.execute(
                "INSERT INTO appeals (party_kind, party_key, suspension_id, text, evidence,"
                " state, created_at) VALUES (?, ?, ?, ?, ?, 'pending', ?)",
                (kind.value, party_key, suspension_id, text, evidence, time.time()),
            )
            aid = int(cur.lastrowid or 0)
            write_audit(conn, actor, "appeal.create", party_kind=kind.value, party_key=party_key,
                        after={"id": aid, "suspension_id": suspension_id, "text": text})
            return aid

        return self.get_appeal(self._write(job))

    def decide_appeal(self, appeal_id: int, *, approved: bool, reviewer: str,
                      decision: str) -> Appeal:
        """Record a reviewer's decision on a pending appeal (Conflict if already decided)."""
        state = AppealState.APPROVED if approved else AppealState.REJECTED

        def job(conn: sqlite3.Connection) -> None:
            row = conn.execute("SELECT state, party_kind, party_key FROM appeals WHERE id = ?",
                               (appeal_id,)).fetchone()
            if row is None:
                raise NotFound("appeal", appeal_id)
            if row[0] != AppealState.PENDING.value:
                raise Conflict(f"appeal {appeal_id} was already {row[0]}", kind="appeal",
                               key=appeal_id, state=row[0])
            conn.execute("UPDATE appeals SET state = ?, reviewer = ?, decision = ?,"
                         " decided_at = ? WHERE id = ?",
                         (state.value, reviewer, decision, time.time(), appeal_id))
            write_audit(conn, reviewer, f"appeal.{state.value}", party_kind=row[1],
                        party_key=row[2], before={"id": appeal_id, "state": row[0]},
                        after={"id": appeal_id, "state": state.value, "decision": decision})

        self._write(job)
        return self.get_appeal(appeal_id)

    def get_appeal(self, appeal_id: int) -> Appeal:
        return _appeal(self._one("SELECT * FROM appeals WHERE id = ?", (appeal_id,),
                                 "appeal", appeal_id))

    def list_appeals(self, *, state: AppealState | str | None = None,
                     party_key: str | None = None) -> list[Appeal]:
        where = (Where().add("state = ?", None if state is None else AppealState(state).value)
                 .add("party_key = ?", party_key))
        rows = self._query(f"SELECT * FROM appeals WHERE {where.sql()} ORDER BY id",
                           where.params)
        return [_appeal(r) for r in rows]

    # -- complaints and callee marks -----------------------------------------------------

    def add_complaint(self, caller_id: str, *, category: str, source: str,
                      reporter: str | None = None, kind: str = "complaint", note: str = "",
                      tenant_id: str | None = None, at: datetime | None = None,
                      actor: str = "system", account_id: str | None = None,
                      received_at: datetime | None = None,
                      due_at: datetime | None = None,
                      calendar_unknown: bool = False) -> Complaint:
        """Record a complaint or a callee's mark. ``received_at`` / ``due_at``: when the
        company received a complaint from a regulator's channel and when its time to act
        ends (``outguard.enforcement.deadlines``)."""
        if category not in COMPLAINT_CATEGORIES:
            raise InvalidInput(f"category must be one of {', '.join(COMPLAINT_CATEGORIES)}",
                               field="category", value=category)
        if kind not in ("complaint", "mark"):
            raise InvalidInput("kind must be complaint or mark", field="kind", value=kind)
        when = to_ts(at) if at is not None else time.time()
        values = {"kind": kind, "caller_id": caller_id, "reporter": reporter,
                  "category": category, "source": source, "note": note,
                  "tenant_id": tenant_id, "account_id": account_id, "at": when,
                  "received_at": to_ts(received_at) if received_at is not None else None,
                  "due_at": to_ts(due_at) if due_at is not None else None,
                  "closed_at": None, "closed_by": None, "resolution": None, "alerted": None,
                  "calendar_unknown": 1 if calendar_unknown else 0}

        def job(conn: sqlite3.Connection) -> int:
            cur = conn.execute(
                f"INSERT INTO complaints ({', '.join(values)}) VALUES"
                f" ({', '.join('?' * len(values))})", tuple(values.values()),
            )
            cid = int(cur.lastrowid or 0)
            write_audit(conn, actor, f"{kind}.add", party_kind="caller_id", party_key=caller_id,
                        after={"id": cid, **values})
            return cid

        cid = self._write(job)
        return _complaint({"id": cid, **values})

    def list_complaints(self, *, caller_id: str | None = None,
                        since: datetime | None = None) -> list[Complaint]:
        where = Where().add("caller_id = ?", caller_id).add("at >= ?", to_ts(since))
        rows = self._query(f"SELECT * FROM complaints WHERE {where.sql()} ORDER BY at",
                           where.params)
        return [_complaint(r) for r in rows]

    def complaints_after(self, after_id: int, *, since: datetime | None = None,
                         upto_id: int | None = None, limit: int = 1000) -> list[Complaint]:
        """Complaints and marks with ``after_id < id <= upto_id`` (and ``at >= since``),
        in id order: the feed a running service reads what any process added from.
        Ids grow in commit order (one writer at a time), so a watermark misses nothing."""
        where, params = ["id > ?"], [after_id]  # type: tuple[list[str], list[Any]]
        if upto_id is not None:
            where.append("id <= ?")
            params.append(upto_id)
        if since is not None:
            where.append("at >= ?")
            params.append(to_ts(since))
        rows = self._query(f"SELECT * FROM complaints WHERE {' AND '.join(where)} "
                           "ORDER BY id LIMIT ?", [*params, limit])
        return [_complaint(r) for r in rows]

    def get_complaint(self, complaint_id: int) -> Complaint:
        rows = self._query("SELECT * FROM complaints WHERE id = ?", (complaint_id,))
        if not rows:
            raise NotFound("complaint", complaint_id)
        return _complaint(rows[0])

    def open_complaints_due(self, before: datetime | None = None) -> list[Complaint]:
        """Open complaints that have a deadline (due before ``before`` when given), the
        nearest deadline first."""
        sql = "SELECT * FROM complaints WHERE closed_at IS NULL AND due_at IS NOT NULL"
        params: list[Any] = []
        if before is not None:
            sql += " AND due_at < ?"
            params.append(to_ts(before))
        return [_complaint(r) for r in self._query(sql + " ORDER BY due_at, id", params)]

    def close_complaint(self, complaint_id: int, *, resolution: str, actor: str,
                        at: datetime | None = None) -> Complaint:
        """Record how a complaint was handled, by whom and when (audited). Conflict when it
        is already closed; InvalidInput without a resolution."""
        if not resolution.strip():
            raise InvalidInput("say what was done (resolution)", field="resolution")
        when = to_ts(at) if at is not None else time.time()

        def job(conn: sqlite3.Connection) -> None:
            row = _still_open(conn, "SELECT caller_id, closed_at, due_at FROM complaints"
                              " WHERE id = ?", "complaint", complaint_id, 1, "is already closed")
            conn.execute("UPDATE complaints SET closed_at = ?, closed_by = ?, resolution = ?"
                         " WHERE id = ?", (when, actor, resolution, complaint_id))
            write_audit(conn, actor, "complaint.close", party_kind="caller_id",
                        party_key=row[0], before={"id": complaint_id, "closed_at": None},
                        after={"id": complaint_id, "closed_at": when, "resolution": resolution,
                               "due_at": row[2],
                               "late": row[2] is not None and when > row[2]})

        self._write(job)
        return self.get_complaint(complaint_id)

    def reschedule_complaint(self, complaint_id: int, *, due_at: datetime,
                             calendar_unknown: bool, actor: str = "system") -> Complaint | None:
        """Set an open complaint's deadline again (its holiday calendar learned a year it
        was counted on): audited (``complaint.reschedule``, before and after). None when
        the row already holds these values (another instance did it first): one audit
        record and one announcement per change, whatever the number of instances."""

        def job(conn: sqlite3.Connection) -> bool:
            row = conn.execute("SELECT caller_id, due_at, calendar_unknown FROM complaints"
                               " WHERE id = ?", (complaint_id,)).fetchone()
            if row is None:
                raise NotFound("complaint", complaint_id)
            after = {"id": complaint_id, "due_at": to_ts(due_at),
                     "calendar_unknown": 1 if calendar_unknown else 0}
            if (row[1], row[2]) == (after["due_at"], after["calendar_unknown"]):
                return False
            # a deadline that moved is announced again as it nears and passes
            reset = ", alerted = NULL" if row[1] != after["due_at"] else ""
            conn.execute(f"UPDATE complaints SET due_at = ?, calendar_unknown = ?{reset}"
                         " WHERE id = ?", (after["due_at"], after["calendar_unknown"],
                                           complaint_id))
            write_audit(conn, actor, "complaint.reschedule", party_kind="caller_id",
                        party_key=row[0], before={"id": complaint_id, "due_at": row[1],
                                                  "calendar_unknown": row[2]}, after=after)
            return True

        if not self._write(job):
            return None
        return self.get_complaint(complaint_id)

    def mark_complaint_alerted(self, complaint_id: int, stage: str,
                               previous: str | None) -> bool:
        """Record that the ``stage`` alert (due_soon, overdue) of an open complaint was
        announced, if its last one is still ``previous``: True for the one writer (of any
        instance) that moved it, so each alert goes out once per cluster."""
        def job(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(
                "UPDATE complaints SET alerted = ? WHERE id = ? AND closed_at IS NULL AND "
                + ("alerted IS NULL" if previous is None else "alerted = ?"),
                (stage, complaint_id) if previous is None else (stage, complaint_id, previous))
            return bool(cur.rowcount == 1)

        return self._write(job)

    def max_complaint_id(self) -> int:
        """The newest complaint's id (0 when there is none)."""
        return int(self._query("SELECT coalesce(max(id), 0) FROM complaints")[0][0])

    # -- rule hit counts -----------------------------------------------------------------

    def add_rule_hits(self, counts: dict[tuple[str, str], int]) -> None:
        """Add counts (what a service counted since its last flush) to the durable ones."""
        rows = [(rule, outcome, n) for (rule, outcome), n in counts.items() if n]
        if not rows:
            return

        def job(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "INSERT INTO rule_hits (rule_id, outcome, count) VALUES (?, ?, ?) "
                "ON CONFLICT (rule_id, outcome) DO UPDATE SET count = rule_hits.count + excluded.count",
                rows)

        self._write(job)

    def load_rule_hits(self) -> dict[tuple[str, str], int]:
        """The durable per-rule hit counts."""
        return {(r["rule_id"], r["outcome"]): int(r["count"])
                for r in self._query("SELECT rule_id, outcome, count FROM rule_hits")}

    # -- PBX claims (outguard.pbx_claims) ----------------------------------------------------

    def claim_pbx(self, pbx: str, entity_id: str, instance: str, kind: str, now: float,
                  stale_before: float) -> tuple[str, str, str, float] | None:
        """Claim the PBX name ``pbx`` for the Asterisk ``entity_id`` (renewing the lease):
        None when granted; else who holds it, (entity id, instance, kind, seen_at). A claim
        is granted when the name is free, names the same Asterisk, was not renewed since
        ``stale_before``, or is this target's own (the same instance and kind: its
        Asterisk was replaced). Atomic on both engines (one upsert, then a read)."""

        def job(conn: sqlite3.Connection) -> tuple[str, str, str, float] | None:
            conn.execute(
                "INSERT INTO pbx_claims (pbx, entity_id, instance, kind, seen_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (pbx) DO UPDATE SET"
                " entity_id = excluded.entity_id, instance = excluded.instance,"
                " kind = excluded.kind, seen_at = excluded.seen_at"
                " WHERE pbx_claims.entity_id = excluded.entity_id"
                " OR pbx_claims.seen_at < ?"
                " OR (pbx_claims.instance = excluded.instance"
                " AND pbx_claims.kind = excluded.kind)",
                (pbx, entity_id, instance, kind, now, stale_before))
            row = conn.execute("SELECT entity_id, instance, kind, seen_at FROM pbx_claims"
                               " WHERE pbx = ?", (pbx,)).fetchone()
            if row is None or row[0] == entity_id:
                return None
            return str(row[0]), str(row[1]), str(row[2]), float(row[3])

        return self._write(job)

    def pbx_claim(self, pbx: str) -> tuple[str, str, str, float] | None:
        """Who claims the PBX name ``pbx``: (entity id, instance, kind, seen_at), or None."""

        def job(conn: sqlite3.Connection) -> tuple[str, str, str, float] | None:
            row = conn.execute("SELECT entity_id, instance, kind, seen_at FROM pbx_claims"
                               " WHERE pbx = ?", (pbx,)).fetchone()
            return None if row is None else (str(row[0]), str(row[1]), str(row[2]),
                                             float(row[3]))

        return self._write(job)

    # -- audit ---------------------------------------------------------------------------

    def add_audit(self, actor: str, action: str, *, party_kind: str | None = None,
                  party_key: str | None = None, before: Any = None, after: Any = None) -> int:
        """Record a change made elsewhere (e.g. by a trigger) that has no CRUD method here."""
        return self._write(lambda conn: write_audit(
            conn, actor, action, party_kind=party_kind, party_key=party_key,
            before=before, after=after,
        ))

    def list_audit(self, *, since: datetime | None = None, party_key: str | None = None,
                   limit: int = 1000, before_id: int | None = None,
                   newest_first: bool = False, actor: str | None = None,
                   action: str | None = None) -> list[AuditRecord]:
        """Audit records oldest first (``newest_first``: newest first), filtered; page
        backwards through them with ``before_id`` (the last id of the page before)."""
        where = (Where().add("at >= ?", to_ts(since)).add("party_key = ?", party_key)
                 .add("id < ?", before_id).add("actor = ?", actor)
                 # "list" matches list.create, list.import, ...
                 .add("(action = ? OR action LIKE ?)", action, f"{action}.%"))
        order = "DESC" if newest_first else "ASC"
        rows = self._query(
            f"SELECT * FROM audit WHERE {where.sql()} ORDER BY id {order} LIMIT ?",
            [*where.params, limit],
        )
        return [_audit(r) for r in rows]

