"""Numbered schema migrations for the SQLite store.

Each migration is a function of a ``sqlite_utils.Database``; ``migrate`` applies the ones a
database has not seen yet, each in its own transaction together with its row in the
``migrations`` table, so a crash mid-migration leaves the previous version intact.

Times are stored as REAL seconds since the epoch (UTC); JSON documents as TEXT.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable

import sqlite_utils

logger = logging.getLogger(__name__)

Migration = Callable[[sqlite_utils.Database], None]


def _core_schema(db: sqlite_utils.Database) -> None:
    """1: parties, lists, enforcement, audit and the call log."""
    db.table("meta").create({"key": str, "value": int}, pk="key", not_null={"value"})
    db.execute("INSERT INTO meta (key, value) VALUES ('data_version', 0)")

    db.table("tenants").create(
        {"id": str, "name": str, "state": str, "settings": str, "created_at": float},
        pk="id",
        not_null={"name", "state", "created_at"},
        defaults={"state": "active", "settings": "{}"},
    )
    db.table("accounts").create(
        {
            "id": str, "tenant_id": str, "kind": str, "name": str, "state": str,
            "created_at": float,
        },
        pk="id",
        not_null={"tenant_id", "kind", "state", "created_at"},
        defaults={"kind": "agent", "state": "active", "name": ""},
        foreign_keys=[("tenant_id", "tenants", "id")],
    )
    db.table("account_map").create(
        {"id": int, "match_kind": str, "pattern": str, "account_id": str, "priority": int},
        pk="id",
        not_null={"match_kind", "pattern", "account_id", "priority"},
        defaults={"priority": 0},
        foreign_keys=[("account_id", "accounts", "id")],
    )
    db.table("account_map").create_index(["match_kind", "pattern"], unique=True)
    db.table("caller_ids").create(
        {
            "e164": str, "tenant_id": str, "type": str, "verification": str,
            "verified_until": float, "state": str, "created_at": float,
        },
        pk="e164",
        not_null={"tenant_id", "type", "verification", "state", "created_at"},
        defaults={"type": "unknown", "verification": "missing", "state": "active"},
        foreign_keys=[("tenant_id", "tenants", "id")],
    )
    db.table("users").create(
        {"id": int, "name": str, "role": str, "disabled": int, "created_at": float},
        pk="id",
        not_null={"name", "role", "disabled", "created_at"},
        defaults={"disabled": 0},
    )
    db.table("users").create_index(["name"], unique=True)
    db.table("tokens").create(
        {
            "id": str, "user_id": int, "salt": bytes, "hash": bytes, "label": str,
            "created_at": float, "last_used_at": float, "revoked_at": float,
        },
        pk="id",
        not_null={"user_id", "salt", "hash", "created_at"},
        foreign_keys=[("user_id", "users", "id")],
    )
    db.table("lists").create(
        {
            "id": int, "name": str, "kind": str, "scope": str, "scope_key": str,
            "description": str, "created_at": float, "imported_at": float,
        },
        pk="id",
        not_null={"name", "kind", "scope", "created_at"},
        defaults={"scope": "global", "description": ""},
    )
    db.table("lists").create_index(["name"], unique=True)
    # WITHOUT ROWID: the (list, number) key is the row; imports append in key order.
    db.execute(
        """CREATE TABLE list_entries (
            list_id INTEGER NOT NULL REFERENCES lists(id),
            e164 TEXT NOT NULL,
            expires_at REAL,
            created_at REAL NOT NULL,
            source TEXT,
            reason TEXT,
            evidence TEXT,
            PRIMARY KEY (list_id, e164)
        ) WITHOUT ROWID"""
    )
    db.table("suspensions").create(
        {
            "id": int, "party_kind": str, "party_key": str, "reason": str, "trigger": str,
            "started_at": float, "ends_at": float, "created_by": str, "lifted_by": str,
            "lift_reason": str, "lifted_at": float,
        },
        pk="id",
        not_null={"party_kind", "party_key", "reason", "started_at", "created_by"},
        defaults={"trigger": ""},
    )
    db.table("appeals").create(
        {
            "id": int, "party_kind": str, "party_key": str, "suspension_id": int,
            "text": str, "evidence": str, "state": str, "reviewer": str, "decision": str,
            "created_at": float, "decided_at": float,
        },
        pk="id",
        not_null={"party_kind", "party_key", "text", "state", "created_at"},
        defaults={"state": "pending", "evidence": ""},
        foreign_keys=[("suspension_id", "suspensions", "id")],
    )
    db.table("complaints").create(
        {
            "id": int, "kind": str, "caller_id": str, "reporter": str, "category": str,
            "source": str, "note": str, "tenant_id": str, "at": float,
        },
        pk="id",
        not_null={"kind", "caller_id", "category", "source", "at"},
        defaults={"kind": "complaint", "note": ""},
    )
    db.table("audit").create(
        {
            "id": int, "at": float, "actor": str, "action": str, "party_kind": str,
            "party_key": str, "before": str, "after": str,
        },
        pk="id",
        not_null={"at", "actor", "action"},
    )
    db.table("calls").create(
        {
            "decision_id": str, "channel_id": str, "adapter": str, "tenant": str,
            "account": str, "caller_id": str, "destination": str, "verdict": str,
            "rule": str, "reason": str, "shadow": str, "decision_us": int, "at": float,
            "answered_at": float, "ended_at": float, "duration": float, "cause": int,
        },
        pk="decision_id",
        not_null={"verdict", "at"},
    )


def _lookup_indexes(db: sqlite_utils.Database) -> None:
    """2: indexes for counter replay, reports and per-party enforcement lookups."""
    db.table("calls").create_index(["at"])
    db.table("calls").create_index(["tenant", "at"])
    db.table("suspensions").create_index(["party_kind", "party_key"])
    db.table("appeals").create_index(["state", "created_at"])
    db.table("complaints").create_index(["caller_id", "at"])
    db.table("audit").create_index(["at"])


def _entry_expiry(db: sqlite_utils.Database) -> None:
    """3: expired entries are swept and skipped by expiry; index the few that expire."""
    db.execute(
        "CREATE INDEX idx_list_entries_expires_at ON list_entries (expires_at) "
        "WHERE expires_at IS NOT NULL"
    )


def _list_release_date(db: sqlite_utils.Database) -> None:
    """4: a register's copy has a release date (given at import); its age runs from it."""
    db.execute("ALTER TABLE lists ADD COLUMN released_at REAL")


def _complaint_account(db: sqlite_utils.Database) -> None:
    """10: the account a complaint was attributed to when it came in (explicit, or the
    last call from the caller ID to the callee), so every process counts it alike."""
    db.execute("ALTER TABLE complaints ADD COLUMN account_id TEXT")


def _rule_hits(db: sqlite_utils.Database) -> None:
    """11: per-rule hit counts (block / shadow / exempt, totals under rule ""), durable
    across restarts; each service adds what it counted since its last flush."""
    db.execute(
        """CREATE TABLE rule_hits (
            rule_id TEXT NOT NULL,
            outcome TEXT NOT NULL,
            count INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (rule_id, outcome)
        ) WITHOUT ROWID"""
    )


def _open_calls(db: sqlite_utils.Database) -> None:
    """30: calls in progress across a restart. ``end_note`` says how an outcome was known
    when no hangup was seen (e.g. "unknown after restart"); the partial index finds the
    open rows (allowed calls with no outcome yet) at start."""
    db.execute("ALTER TABLE calls ADD COLUMN end_note TEXT")
    db.execute("CREATE INDEX idx_calls_open ON calls (at) WHERE ended_at IS NULL")


def _consent_ledger(db: sqlite_utils.Database) -> None:
    """50: the consent ledger: every grant and revocation of consent, append-only.

    ``action`` grant | revoke. Scope: ``tenant`` (NULL on a revocation: every tenant),
    ``campaign`` and ``purpose`` (NULL: all). ``list_name``: grants, the consent list whose
    ``exempts`` apply. ``channel`` is how it reached outguard (api, cli, import, dialplan);
    ``source`` what the person did (web_form, ivr, call, sms, letter, ...); ``at`` when they
    did it, ``recorded_at`` when outguard learnt it.
    """
    db.execute(
        """CREATE TABLE consent_events (
            id INTEGER PRIMARY KEY,
            e164 TEXT NOT NULL,
            action TEXT NOT NULL CHECK (action IN ('grant', 'revoke')),
            tenant TEXT,
            campaign TEXT,
            purpose TEXT,
            list_name TEXT,
            source TEXT NOT NULL,
            channel TEXT NOT NULL,
            evidence TEXT NOT NULL DEFAULT '',
            at REAL NOT NULL,
            expires_at REAL,
            recorded_at REAL NOT NULL,
            actor TEXT NOT NULL
        )"""
    )
    db.execute("CREATE INDEX idx_consent_events_e164 ON consent_events (e164, at)")


def _entry_disconnected(db: sqlite_utils.Database) -> None:
    """51: reassigned lists: the date the number was permanently disconnected."""
    db.execute("ALTER TABLE list_entries ADD COLUMN disconnected_at REAL")


def _call_purpose(db: sqlite_utils.Database) -> None:
    """52: the call log keeps each attempt's purpose and campaign (policy replay)."""
    db.execute("ALTER TABLE calls ADD COLUMN purpose TEXT")
    db.execute("ALTER TABLE calls ADD COLUMN campaign TEXT")


def _complaint_deadlines(db: sqlite_utils.Database) -> None:
    """53: complaints from regulators' channels: when the company received each, its
    response deadline, and how it was closed (who, when, what was done); ``alerted`` is the
    last deadline alert announced (due_soon, overdue), so each is announced once."""
    for column in ("received_at REAL", "due_at REAL", "closed_at REAL", "closed_by TEXT",
                   "resolution TEXT", "alerted TEXT"):
        db.execute(f"ALTER TABLE complaints ADD COLUMN {column}")
    db.execute("CREATE INDEX idx_complaints_open_due ON complaints (due_at)"
               " WHERE closed_at IS NULL AND due_at IS NOT NULL")


def _health_tasks(db: sqlite_utils.Database) -> None:
    """60: caller-ID health warnings and their remediation tasks (号码认证 / 标记申诉). While a
    task is not closed its caller ID's caps are throttled by ``cap_factor``; at most one
    such task per caller ID (the partial unique index: one per cluster too)."""
    db.execute(
        """CREATE TABLE health_tasks (
            id INTEGER PRIMARY KEY,
            caller_id TEXT NOT NULL,
            tenant_id TEXT,
            state TEXT NOT NULL DEFAULT 'open',
            reason TEXT NOT NULL,
            figures TEXT NOT NULL DEFAULT '{}',
            cap_factor REAL NOT NULL,
            opened_at REAL NOT NULL,
            opened_by TEXT NOT NULL,
            notes TEXT NOT NULL DEFAULT '[]',
            closed_at REAL,
            closed_by TEXT,
            resolution TEXT
        )"""
    )
    db.execute("CREATE UNIQUE INDEX idx_health_tasks_open ON health_tasks (caller_id)"
               " WHERE state <> 'closed'")
    db.execute("CREATE INDEX idx_health_tasks_caller_id_opened_at"
               " ON health_tasks (caller_id, opened_at)")


def _call_pbx(db: sqlite_utils.Database) -> None:
    """80: the PBX each call came from (one outguard may serve several); rows logged
    before have "" (one PBX). Reports group by it."""
    db.execute("ALTER TABLE calls ADD COLUMN pbx TEXT NOT NULL DEFAULT ''")
    db.execute("CREATE INDEX idx_calls_pbx_at ON calls (pbx, at)")


def _entry_list_check(db: sqlite_utils.Database) -> None:
    """120: nothing to change in SQLite. Its twin on PostgreSQL makes list_entries.e164
    compare bytewise, as SQLite's TEXT already does, and checks the entries' list once per
    statement, as SQLite's imports already do (one BEGIN IMMEDIATE holds the list; the
    import connection does not check foreign keys row by row)."""



def _entry_list_check_lean(db: sqlite_utils.Database) -> None:
    """121: nothing to change in SQLite (its twin on PostgreSQL rewrites 120's check)."""


def _entries_per_list(db: sqlite_utils.Database) -> None:
    """140: nothing to change in SQLite. Its twin on PostgreSQL gives each list's entries a
    partition of their own, which a big import builds without an index, indexes in bulk and
    swaps in (SQLite's import already holds the whole database for its merge)."""


def _deadline_calendar_unknown(db: sqlite_utils.Database) -> None:
    """90: a complaint's deadline was counted, at least in part, on a year its holiday
    calendar did not know (Monday-Friday then): shown with the deadline, recomputed when
    the calendar learns the year."""
    db.execute("ALTER TABLE complaints ADD COLUMN calendar_unknown INTEGER NOT NULL DEFAULT 0")


def _pbx_claims(db: sqlite_utils.Database) -> None:
    """160: which Asterisk server each PBX name is (``outguard.pbx_claims``): its entity id,
    the instance and the kind of target (ari / ami) that last claimed it, and when (a lease:
    a claim not renewed for its lease may be taken by another Asterisk)."""
    db.execute("""CREATE TABLE pbx_claims (
        pbx TEXT PRIMARY KEY,
        entity_id TEXT NOT NULL,
        instance TEXT NOT NULL,
        kind TEXT NOT NULL,
        seen_at REAL NOT NULL)""")


MIGRATIONS: tuple[tuple[int, str, Migration], ...] = (
    (1, "core schema", _core_schema),
    (2, "lookup indexes", _lookup_indexes),
    (3, "entry expiry index", _entry_expiry),
    (4, "list release date", _list_release_date),
    (10, "complaint account", _complaint_account),
    (11, "rule hits", _rule_hits),
    (30, "open calls: end note and index", _open_calls),
    (50, "consent ledger", _consent_ledger),
    (51, "reassigned numbers: disconnect dates", _entry_disconnected),
    (52, "call log: purpose and campaign", _call_purpose),
    (53, "complaint deadlines", _complaint_deadlines),
    (60, "caller-ID health tasks", _health_tasks),
    (80, "call pbx", _call_pbx),
    (90, "complaint deadlines: calendar unknown", _deadline_calendar_unknown),
    (120, "list entries: bytewise numbers, list checked per statement", _entry_list_check),
    (121, "list entries: the statement's list check in one query", _entry_list_check_lean),
    (140, "list entries: a partition per list", _entries_per_list),
    (160, "pbx claims: one Asterisk per PBX name", _pbx_claims),
)
LATEST = max(number for number, _, _ in MIGRATIONS)


def current_version(conn: sqlite3.Connection) -> int:
    """The highest applied migration, 0 for an empty database."""
    return max(applied_versions(conn), default=0)


def applied_versions(conn: sqlite3.Connection) -> set[int]:
    """Every migration number recorded in the ``migrations`` table."""
    return {number for number, _, _ in applied_rows(conn)}


def applied_rows(conn: sqlite3.Connection) -> list[tuple[int, str, str | None]]:
    """(number, name, outguard version that applied it or None) of every recorded
    migration; empty for a new database."""
    row = conn.execute(
        "SELECT name FROM sqlite_master WHERE type='table' AND name='migrations'"
    ).fetchone()
    if row is None:
        return []
    columns = {r[1] for r in conn.execute("PRAGMA table_info(migrations)")}
    who = "outguard" if "outguard" in columns else "NULL"
    return [(int(v), str(n), w) for v, n, w in
            conn.execute(f"SELECT version, name, {who} FROM migrations ORDER BY version")]


def refuse_unknown(applied: list[tuple[int, str, str | None]], known: set[int]) -> None:
    """Refuse a store that records migrations this outguard does not know (``known``): it
    was written by a newer outguard (or a build with migrations of its own), and running
    on it could misread or damage what those migrations changed. One check and one
    message for both engines: the unknown migrations by number and name, and the outguard
    needed (the version that applied them, recorded with each migration)."""
    unknown = [(n, name, who) for n, name, who in applied if n not in known]
    if not unknown:
        return
    from outguard import version
    from outguard.errors import StoreError

    needed = sorted({who for _, _, who in unknown if who})
    listed = ", ".join(f"{n} ({name})" for n, name, _ in unknown)
    need = (f"outguard {' or '.join(needed)} or later" if needed
            else f"an outguard that knows migration{'s' if len(unknown) > 1 else ''} "
                 + ", ".join(str(n) for n, _, _ in unknown))
    raise StoreError(
        f"this store was written by a newer outguard: it records migration"
        f"{'s' if len(unknown) > 1 else ''} {listed} that this outguard ({version()},"
        f" schema {LATEST}) does not know; run {need} on it, or restore the backup made"
        " before the upgrade",
        version=unknown[-1][0], unknown=[n for n, _, _ in unknown], needed=needed or None)


def migrate(conn: sqlite3.Connection, target: int | None = None) -> int:
    """Bring the database up to ``target`` (default: the latest); return the new version.

    Migration numbers have gaps (parallel branches number theirs in ranges of their own), so
    every known migration not yet recorded and not above ``target`` is applied, in
    ascending order, whatever the highest applied number is: a database that saw 60 before
    50 existed still gets 50. A recorded number this outguard does not know means the file
    was written by a newer outguard: refused (``refuse_unknown``). Each migration records
    the outguard version that applied it, so a later refusal can name the version needed.
    ``conn`` must be in autocommit mode (``isolation_level=None``).
    """
    from outguard import version

    db = sqlite_utils.Database(conn)
    if not db.table("migrations").exists():
        db.table("migrations").create(
            {"version": int, "name": str, "applied_at": float, "outguard": str},
            pk="version", if_not_exists=True,
        )
    elif "outguard" not in db.table("migrations").columns_dict:
        conn.execute("ALTER TABLE migrations ADD COLUMN outguard TEXT")
    refuse_unknown(applied_rows(conn), {number for number, _, _ in MIGRATIONS})
    applied = applied_versions(conn)
    goal = LATEST if target is None else target
    for number, name, step in sorted(MIGRATIONS, key=lambda m: m[0]):
        if number in applied or number > goal:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            step(db)
            conn.execute(
                "INSERT INTO migrations (version, name, applied_at, outguard)"
                " VALUES (?, ?, ?, ?)",
                (number, name, time.time(), version()),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        logger.info("applied store migration %d (%s)", number, name)
        applied.add(number)
    return max(applied, default=0)
