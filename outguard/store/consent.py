"""The consent ledger: grants and revocations of consent, append-only, with provenance.

Every record says who consented or refused (the number), to whom (tenant, and optionally
one campaign and one purpose), how it was given (``source``: web_form, ivr, call, sms,
letter, ...), how it reached outguard (``channel``: api, cli, import, dialplan), when
(``at``), the evidence reference, and (grants) when it expires and which consent list's
``exempts`` it carries.

A revocation ends every earlier grant it covers (its tenant or every tenant; its campaign
and purpose, or all). It takes effect on the next call: the write bumps ``data_version``,
which makes every running service rebuild its snapshot. In the same transaction a
revocation that is not narrowed to one campaign or purpose puts the number on the
do-not-call list ``optout-<tenant>`` (``optout`` when it names no tenant; lists created
on demand), so that the company's own do-not-call list holds it (47 CFR 64.1200(d); the
FCC's 2024 order: a revocation made by any reasonable means is honoured), and a refusal of
a Chinese number (+86) puts it on ``cn_refused`` for ``REFUSAL_DAYS`` (at least six months,
as the ``cn`` preset requires; an existing later expiry is kept).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from outguard.errors import InvalidInput
from outguard.store.audit import write_audit
from outguard.store.base import Normaliser, default_normaliser, number_error_types, to_dt, to_ts
from rules.model import ConsentGrant, ListKind, Purpose, Scope

T = TypeVar("T")

REFUSAL_DAYS = 183  # "not called again for at least six months"
REFUSED_LIST = "cn_refused"
ACTIONS = ("grant", "revoke")
CHANNELS = ("api", "cli", "import", "dialplan")
EVENT_COLUMNS = (
    "id, e164, action, tenant, campaign, purpose, list_name, source, channel, evidence, at,"
    " expires_at, recorded_at, actor"
)


def optout_list_name(tenant: str | None) -> str:
    """The do-not-call list a revocation feeds: ``optout-<tenant>``, or ``optout``."""
    return f"optout-{tenant}" if tenant else "optout"


@dataclass(frozen=True, slots=True)
class ConsentEvent:
    """One ledger record (a grant or a revocation), as stored."""

    id: int
    e164: str
    action: str  # grant | revoke
    tenant: str | None
    campaign: str | None
    purpose: str | None
    list_name: str | None
    source: str
    channel: str
    evidence: str
    at: datetime
    expires_at: datetime | None
    recorded_at: datetime
    actor: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "number": self.e164, "action": self.action, "tenant": self.tenant,
            "campaign": self.campaign, "purpose": self.purpose, "list": self.list_name,
            "source": self.source, "channel": self.channel, "evidence": self.evidence,
            "at": self.at.isoformat(), "recorded_at": self.recorded_at.isoformat(),
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "actor": self.actor,
        }


@dataclass(frozen=True, slots=True)
class ConsentInput:
    """A grant or revocation to record (validated by ``check_consent``)."""

    number: str
    action: str
    source: str
    channel: str
    tenant: str | None = None
    campaign: str | None = None
    purpose: str | None = None
    list_name: str | None = None
    evidence: str = ""
    at: datetime | None = None  # default: now
    expires_at: datetime | None = None


def _event(row: Sequence[Any]) -> ConsentEvent:
    return ConsentEvent(
        id=row[0], e164=row[1], action=row[2], tenant=row[3], campaign=row[4], purpose=row[5],
        list_name=row[6], source=row[7], channel=row[8], evidence=row[9] or "",
        at=to_dt(row[10]), expires_at=to_dt(row[11]),  # type: ignore[arg-type]
        recorded_at=to_dt(row[12]), actor=row[13],  # type: ignore[arg-type]
    )


def check_consent(item: ConsentInput, region: str, norm: Normaliser | None = None) -> ConsentInput:
    """The input with its number in E.164, or InvalidInput naming what is wrong."""
    if item.action not in ACTIONS:
        raise InvalidInput(f"action must be grant or revoke, not {item.action!r}", field="action")
    if item.channel not in CHANNELS:
        raise InvalidInput(f"channel must be one of {', '.join(CHANNELS)}", field="channel")
    if not item.source.strip():
        raise InvalidInput("say how the person consented or refused (source: web_form, ivr,"
                           " call, sms, letter, ...)", field="source")
    if item.purpose is not None and item.purpose not in {p.value for p in Purpose}:
        raise InvalidInput(f"purpose must be one of {', '.join(p.value for p in Purpose)}",
                           field="purpose", value=item.purpose)
    if item.action == "grant":
        if not item.tenant:
            raise InvalidInput("a consent is given to a tenant (--tenant)", field="tenant")
        if not item.list_name:
            raise InvalidInput("a consent names the consent list whose exemptions it carries",
                               field="list")
    elif item.list_name or item.expires_at is not None:
        raise InvalidInput("a revocation has no list and no expiry", field="list")
    for name, t in (("at", item.at), ("expires_at", item.expires_at)):
        if t is not None and t.tzinfo is None:
            raise InvalidInput(f"{name} needs a time zone", field=name)
    if item.expires_at is not None and item.at is not None and item.expires_at <= item.at:
        raise InvalidInput("the consent expires before it was given", field="expires_at")
    try:
        e164 = (norm or default_normaliser())(item.number, region)
    except number_error_types() as exc:
        raise InvalidInput(f"number {item.number!r}: {exc}", field="number") from exc
    return replace(item, number=e164)


def _ensure_list(conn: sqlite3.Connection, name: str, kind: ListKind, tenant: str | None,
                 now: float, actor: str) -> int:
    row = conn.execute("SELECT id FROM lists WHERE name = ?", (name,)).fetchone()
    if row is not None:
        return int(row[0])
    scope = Scope.TENANT if tenant else Scope.GLOBAL
    cur = conn.execute(
        "INSERT INTO lists (name, kind, scope, scope_key, description, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (name, kind.value, scope.value, tenant, "fed by the consent ledger", now),
    )
    write_audit(conn, actor, "list.create", party_kind="list", party_key=name,
                after={"kind": kind.value, "scope": scope.value, "scope_key": tenant})
    return int(cur.lastrowid or 0)


def _list_number(conn: sqlite3.Connection, lid: int, e164: str, expires: float | None,
                 now: float, source: str, reason: str, evidence: str) -> None:
    """Add or extend an entry; a longer (or no) expiry already there is kept."""
    row = conn.execute("SELECT expires_at FROM list_entries WHERE list_id = ? AND e164 = ?",
                       (lid, e164)).fetchone()
    if row is None:
        conn.execute(
            "INSERT INTO list_entries (list_id, e164, expires_at, created_at, source, reason,"
            " evidence) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (lid, e164, expires, now, source, reason, evidence),
        )
    elif row[0] is not None and (expires is None or expires > row[0]):
        conn.execute("UPDATE list_entries SET expires_at = ?, reason = ? WHERE list_id = ?"
                     " AND e164 = ?", (expires, reason, lid, e164))


def write_consent(conn: sqlite3.Connection, item: ConsentInput, actor: str,
                  now: float) -> tuple[int, list[str]]:
    """Insert one checked record and its list effects; (event id, lists it put the number on)."""
    at = to_ts(item.at) if item.at is not None else now
    cur = conn.execute(
        "INSERT INTO consent_events (e164, action, tenant, campaign, purpose, list_name,"
        " source, channel, evidence, at, expires_at, recorded_at, actor)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (item.number, item.action, item.tenant, item.campaign, item.purpose, item.list_name,
         item.source, item.channel, item.evidence, at, to_ts(item.expires_at), now, actor),
    )
    eid = int(cur.lastrowid or 0)
    listed: list[str] = []
    if item.action == "revoke":
        why = f"consent revoked ({item.source}, via {item.channel}, #{eid})"
        if item.campaign is None and item.purpose is None:
            name = optout_list_name(item.tenant)
            lid = _ensure_list(conn, name, ListKind.DO_NOT_CALL, item.tenant, now, actor)
            _list_number(conn, lid, item.number, None, now, "consent", why, item.evidence)
            listed.append(name)
        if item.number.startswith("+86"):
            lid = _ensure_list(conn, REFUSED_LIST, ListKind.COMPLAINT, None, now, actor)
            assert at is not None
            _list_number(conn, lid, item.number, at + REFUSAL_DAYS * 86400, now, "consent",
                         why, item.evidence)
            listed.append(REFUSED_LIST)
    write_audit(conn, actor, f"consent.{item.action}", party_kind="number",
                party_key=item.number,
                after={"id": eid, "tenant": item.tenant, "campaign": item.campaign,
                       "purpose": item.purpose, "list": item.list_name, "source": item.source,
                       "channel": item.channel, "evidence": item.evidence, "at": at,
                       "expires_at": to_ts(item.expires_at), "listed_on": listed})
    return eid, listed


def _revokes(rev: tuple[Any, ...], grant: tuple[Any, ...]) -> bool:
    """Whether a revocation row covers a grant row (tenant, campaign, purpose at 1..3)."""
    return all(r is None or r == g for r, g in zip(rev[1:4], grant[1:4]))


def load_consents(conn: sqlite3.Connection, now_ts: float,
                  e164: str | None = None) -> list[ConsentGrant]:
    """The grants in force at ``now_ts`` (of one number, or all): not expired, not revoked
    by a later revocation that covers them."""
    only = "" if e164 is None else " AND e164 = ?"
    rows = conn.execute(
        "SELECT id, tenant, campaign, purpose, e164, action, list_name, at, expires_at,"
        " source, evidence FROM consent_events WHERE e164 IN (SELECT e164 FROM"
        " consent_events WHERE action = 'grant' AND (expires_at IS NULL OR expires_at > ?)"
        f"{only}) ORDER BY e164, at, id", (now_ts,) if e164 is None else (now_ts, e164),
    ).fetchall()
    out: list[ConsentGrant] = []
    live: list[tuple[Any, ...]] = []
    number = None

    def flush() -> None:
        for g in live:
            if g[8] is None or g[8] > now_ts:
                out.append(ConsentGrant(
                    id=g[0], e164=g[4], list_name=g[6], tenant=g[1],
                    given_at=to_dt(g[7]),  # type: ignore[arg-type]
                    campaign=g[2], purpose=Purpose(g[3]) if g[3] else None,
                    expires_at=to_dt(g[8]), source=g[9], evidence=g[10] or "",
                ))

    for row in rows:
        if row[4] != number:
            flush()
            live, number = [], row[4]
        if row[7] > now_ts:
            continue  # recorded ahead of time: not in force yet
        if row[5] == "grant":
            live.append(row)
        else:
            live = [g for g in live if not _revokes(row, g)]
    flush()
    return out


class ConsentMixin:
    """Store methods for the consent ledger (SQLiteStore mixes this in)."""

    if TYPE_CHECKING:
        def _write(self, job: Callable[[sqlite3.Connection], T], *, changes_data: bool = False) -> T: ...
        def _query(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> list[sqlite3.Row]: ...
        def open_reader(self) -> sqlite3.Connection: ...

    def record_consent(self, item: ConsentInput, *, region: str = "CN",
                       actor: str = "system") -> tuple[ConsentEvent, list[str]]:
        """Record one grant or revocation; (the record, lists the number was put on)."""
        checked = check_consent(item, region)
        now = time.time()
        eid, listed = self._write(lambda conn: write_consent(conn, checked, actor, now),
                                  changes_data=True)
        return self.get_consent_event(eid), listed

    def import_consents(self, items: Sequence[ConsentInput], *,
                        actor: str = "system") -> list[int]:
        """Record already checked inputs in one transaction (all or nothing)."""
        now = time.time()

        def job(conn: sqlite3.Connection) -> list[int]:
            return [write_consent(conn, item, actor, now)[0] for item in items]

        return self._write(job, changes_data=True)

    def add_reassigned(self, list_name: str, rows: Sequence[tuple[str, float]], *,
                       source: str = "rnd", actor: str = "system") -> int:
        """Put E.164 numbers with their disconnect times on a reassigned list (created on
        demand; InvalidInput if the name is a list of another kind). A later date on a
        number already listed wins. Returns how many rows were written."""
        now = time.time()

        def job(conn: sqlite3.Connection) -> int:
            row = conn.execute("SELECT id, kind FROM lists WHERE name = ?", (list_name,)).fetchone()
            if row is not None and row[1] != ListKind.REASSIGNED.value:
                raise InvalidInput(f"list {list_name!r} is a {row[1]} list, not reassigned",
                                   field="list")
            lid = _ensure_list(conn, list_name, ListKind.REASSIGNED, None, now, actor)
            for e164, when in rows:
                conn.execute(
                    "INSERT INTO list_entries (list_id, e164, created_at, source, disconnected_at)"
                    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (list_id, e164) DO UPDATE SET"
                    " disconnected_at = CASE WHEN list_entries.disconnected_at IS NULL"
                    " OR list_entries.disconnected_at < excluded.disconnected_at"
                    " THEN excluded.disconnected_at ELSE list_entries.disconnected_at END",
                    (lid, e164, now, source, when),
                )
            conn.execute("UPDATE lists SET imported_at = ? WHERE id = ?", (now, lid))
            write_audit(conn, actor, "list.reassigned", party_kind="list", party_key=list_name,
                        after={"count": len(rows), "numbers": [r[0] for r in rows[:100]]})
            return len(rows)

        return self._write(job, changes_data=True)

    def get_consent_event(self, event_id: int) -> ConsentEvent:
        rows = self._query(f"SELECT {EVENT_COLUMNS} FROM consent_events WHERE id = ?",
                           (event_id,))
        if not rows:
            from outguard.errors import NotFound

            raise NotFound("consent record", event_id)
        return _event(tuple(rows[0]))

    def consent_history(self, e164: str) -> list[ConsentEvent]:
        """Every grant and revocation for one number, oldest first."""
        return [_event(tuple(r)) for r in self._query(
            f"SELECT {EVENT_COLUMNS} FROM consent_events WHERE e164 = ? ORDER BY at, id",
            (e164,))]

    def consents_in_force(self, e164: str, now: datetime) -> list[ConsentGrant]:
        ts = to_ts(now)
        assert ts is not None
        conn = self.open_reader()
        try:
            return load_consents(conn, ts, e164)
        finally:
            conn.close()
