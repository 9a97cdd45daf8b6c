"""Reading the store into the shapes rules/ builds its snapshot from.

Party state is folded here, in one place: a permanent suspension or a disabled row is
DISABLED, a timed suspension is SUSPENDED with ``until``, a caller ID whose real-name
verification is missing or expired is UNVERIFIED; otherwise ACTIVE.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator
from datetime import datetime, timezone

from outguard.errors import StoreError
from outguard.store.base import AccountMapping, to_dt
from rules.model import ListEntry, ListInfo, ListKind, Party, PartyKind, PartyState, Scope

logger = logging.getLogger(__name__)

FETCH_ROWS = 10_000

_Fold = tuple[PartyState, float | None, str]


def active_suspensions(conn: sqlite3.Connection, now_ts: float) -> dict[tuple[str, str], _Fold]:
    """(party kind, key) -> strongest active suspension: permanent, else the latest end."""
    folded: dict[tuple[str, str], _Fold] = {}
    rows = conn.execute(
        "SELECT party_kind, party_key, reason, ends_at FROM suspensions"
        " WHERE started_at <= ? AND (ends_at IS NULL OR ends_at > ?)"
        " AND (lifted_at IS NULL OR lifted_at > ?)",
        (now_ts, now_ts, now_ts),
    )
    for kind, key, reason, ends_at in rows:
        prev = folded.get((kind, key))
        if ends_at is None:
            if prev is None or prev[0] is not PartyState.DISABLED:
                folded[(kind, key)] = (PartyState.DISABLED, None, reason)
        elif prev is None or (prev[0] is PartyState.SUSPENDED and (prev[1] or 0) < ends_at):
            folded[(kind, key)] = (PartyState.SUSPENDED, ends_at, reason)
    return folded


def _state(
    row_state: str, fold: _Fold | None, unverified: str | None
) -> tuple[PartyState, float | None, str]:
    if fold is not None and fold[0] is PartyState.DISABLED:
        return fold
    if row_state == "disabled":
        return PartyState.DISABLED, None, "disabled"
    if fold is not None:
        return fold
    if unverified is not None:
        return PartyState.UNVERIFIED, None, unverified
    return PartyState.ACTIVE, None, ""


def throttles(conn: sqlite3.Connection) -> dict[str, tuple[float, int]]:
    """caller ID -> (cap factor, task id) of every caller-ID health task not closed."""
    return {caller: (float(factor), int(tid)) for tid, caller, factor in conn.execute(
        "SELECT id, caller_id, cap_factor FROM health_tasks WHERE state <> 'closed'")}


def load_parties(conn: sqlite3.Connection, now_ts: float) -> list[Party]:
    folded = active_suspensions(conn, now_ts)
    throttled = throttles(conn)
    parties: list[Party] = []
    seen: set[tuple[str, str]] = set()

    def add(kind: PartyKind, key: str, tenant: str | None, row_state: str,
            unverified: str | None = None, verified_until: float | None = None) -> None:
        seen.add((kind.value, key))
        state, until, reason = _state(row_state, folded.get((kind.value, key)), unverified)
        factor, task = throttled.get(key, (1.0, None)) if kind is PartyKind.CALLER_ID \
            else (1.0, None)
        parties.append(Party(
            kind=kind, key=key, state=state, tenant=tenant, until=to_dt(until),
            reason=reason, verified_until=to_dt(verified_until), cap_factor=factor,
            throttle_task=task,
        ))

    for key, state in conn.execute("SELECT id, state FROM tenants"):
        add(PartyKind.TENANT, key, key, state)
    for key, tenant, state in conn.execute("SELECT id, tenant_id, state FROM accounts"):
        add(PartyKind.ACCOUNT, key, tenant, state)
    for key, tenant, state, verification, until in conn.execute(
        "SELECT e164, tenant_id, state, verification, verified_until FROM caller_ids"
    ):
        unverified: str | None = None
        if verification != "verified":
            unverified = f"real-name verification {verification}"
        elif until is not None and until <= now_ts:
            unverified = "real-name verification expired"
        add(PartyKind.CALLER_ID, key, tenant, state, unverified, until)
    unknown = [*folded, *((PartyKind.CALLER_ID.value, c) for c in throttled)]
    for kind, key in unknown:  # suspended or throttled parties the tables do not know
        if (kind, key) not in seen:
            try:
                add(PartyKind(kind), key, None, "active")
            except ValueError:
                logger.warning("suspension of unknown party kind %r (%s) ignored", kind, key)
    return parties


def load_lists(conn: sqlite3.Connection) -> tuple[list[ListInfo], dict[int, str]]:
    lists: list[ListInfo] = []
    names: dict[int, str] = {}
    for list_id, name, kind, scope, scope_key, imported_at, released_at in conn.execute(
        "SELECT id, name, kind, scope, scope_key, imported_at, released_at FROM lists"
        " ORDER BY id"
    ):
        names[list_id] = name
        lists.append(ListInfo(
            name=name, kind=ListKind(kind), scope=Scope(scope), scope_key=scope_key,
            imported_at=to_dt(imported_at), released_at=to_dt(released_at),
        ))
    return lists, names


def load_mappings(conn: sqlite3.Connection) -> tuple[AccountMapping, ...]:
    return tuple(
        AccountMapping(id=r[0], match_kind=r[1], pattern=r[2], account_id=r[3], priority=r[4])
        for r in conn.execute(
            "SELECT id, match_kind, pattern, account_id, priority FROM account_map"
        )
    )


class EntryStream:
    """Unexpired list entries streamed from an open read transaction; iterable once.

    Owns ``conn`` and closes it when the iteration ends (or on ``close()``), so the
    snapshot builder sees one consistent version without the rows being materialised.
    """

    def __init__(self, conn: sqlite3.Connection, names: dict[int, str], now_ts: float) -> None:
        self._conn: sqlite3.Connection | None = conn
        self._names = names
        self._now_ts = now_ts
        self._lock = threading.Lock()
        self._started = False

    def __iter__(self) -> Iterator[ListEntry]:
        with self._lock:
            if self._started or self._conn is None:
                raise StoreError("a store entry stream can be iterated only once")
            self._started = True
            conn = self._conn
        return self._generate(conn)

    def _generate(self, conn: sqlite3.Connection) -> Iterator[ListEntry]:
        names, utc, fromts = self._names, timezone.utc, datetime.fromtimestamp
        try:
            cur = conn.execute(
                "SELECT list_id, e164, expires_at, evidence, created_at, disconnected_at"
                " FROM list_entries WHERE expires_at IS NULL OR expires_at > ?",
                (self._now_ts,),
            )
            while rows := cur.fetchmany(FETCH_ROWS):
                for list_id, e164, expires_at, evidence, created_at, disconnected in rows:
                    name = names.get(list_id)
                    if name is None:  # list created after this snapshot began
                        continue
                    yield ListEntry(
                        name, e164, None if expires_at is None else fromts(expires_at, utc),
                        evidence,
                        None if created_at is None else fromts(created_at, utc),
                        None if disconnected is None else fromts(disconnected, utc),
                    )
        finally:
            self.close()

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def __del__(self) -> None:
        self.close()
