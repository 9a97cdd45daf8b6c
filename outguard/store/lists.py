"""Lists and their entries (dnc, blacklist, complaint, register, allow, consent).

Bulk loading lives in ``imports.py``; this module is the small-edit CRUD.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from outguard.errors import Conflict, InvalidInput, NotFound
from outguard.store.audit import write_audit
from outguard.store.base import (
    Entry, ListRecord, Normaliser, default_normaliser, number_error_types, to_dt, to_ts,
)
from rules.model import ListInfo, ListKind, Scope

logger = logging.getLogger(__name__)

T = TypeVar("T")
ENTRY_COLUMNS = "e164, expires_at, created_at, source, reason, evidence, disconnected_at"


def list_record(row: Any) -> ListRecord:
    info = ListInfo(
        name=row["name"], kind=ListKind(row["kind"]), scope=Scope(row["scope"]),
        scope_key=row["scope_key"], imported_at=to_dt(row["imported_at"]),
        released_at=to_dt(row["released_at"]),
    )
    return ListRecord(row["id"], info, row["description"] or "", to_dt(row["created_at"]))


def _entry(name: str, row: Sequence[Any]) -> Entry:
    return Entry(name, row[0], to_dt(row[1]), to_dt(row[2]), row[3], row[4], row[5], to_dt(row[6]))


def list_id(conn: sqlite3.Connection, name: str) -> int:
    row = conn.execute("SELECT id FROM lists WHERE name = ?", (name,)).fetchone()
    if row is None:
        raise NotFound("list", name)
    return int(row[0])


class ListsMixin:
    path: str

    if TYPE_CHECKING:
        def _write(self, job: Callable[[sqlite3.Connection], T], *, changes_data: bool = False) -> T: ...
        def _query(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> list[sqlite3.Row]: ...
        def _one(self, sql: str, params: tuple[Any, ...], kind: str, key: object) -> sqlite3.Row: ...
        def open_reader(self) -> sqlite3.Connection: ...

    def create_list(self, name: str, kind: ListKind | str, *, scope: Scope | str = Scope.GLOBAL,
                    scope_key: str | None = None, description: str = "",
                    actor: str = "system") -> ListRecord:
        try:
            kind, scope = ListKind(kind), Scope(scope)
        except ValueError as exc:
            raise InvalidInput(str(exc), field="kind/scope") from exc
        if not name:
            raise InvalidInput("a list needs a name", field="name")
        if (scope is Scope.GLOBAL) != (scope_key is None):
            raise InvalidInput("scope_key is required for tenant and campaign lists only",
                               field="scope_key")

        def job(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(
                    "INSERT INTO lists (name, kind, scope, scope_key, description, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (name, kind.value, scope.value, scope_key, description, time.time()),
                )
            except sqlite3.IntegrityError as exc:
                raise Conflict(f"list {name!r} already exists", kind="list", key=name) from exc
            write_audit(conn, actor, "list.create", party_kind="list", party_key=name,
                        after={"kind": kind.value, "scope": scope.value, "scope_key": scope_key})

        self._write(job, changes_data=True)
        return self.get_list(name)

    def get_list(self, name: str) -> ListRecord:
        return list_record(self._one("SELECT * FROM lists WHERE name = ?", (name,), "list", name))

    def list_lists(self) -> list[ListRecord]:
        return [list_record(r) for r in self._query("SELECT * FROM lists ORDER BY name")]

    def delete_list(self, name: str, *, actor: str = "system") -> None:
        def job(conn: sqlite3.Connection) -> None:
            lid = list_id(conn, name)
            removed = self._drop_entries(conn, lid)
            conn.execute("DELETE FROM lists WHERE id = ?", (lid,))
            write_audit(conn, actor, "list.delete", party_kind="list", party_key=name,
                        before={"entries": removed})

        self._write(job, changes_data=True)

    def _drop_entries(self, conn: sqlite3.Connection, lid: int) -> int:
        """Delete every entry of list ``lid`` in the caller's transaction (a list being
        deleted); return how many there were. PostgreSQL drops the list's partition
        instead (``PostgresStore``)."""
        return int(conn.execute("DELETE FROM list_entries WHERE list_id = ?", (lid,)).rowcount)

    def add_entries(self, list_name: str, numbers: Sequence[str], *,
                    expires_at: datetime | None = None, source: str = "manual",
                    reason: str | None = None, evidence: str | None = None,
                    region: str = "CN", normalise: Normaliser | None = None,
                    actor: str = "system") -> int:
        """Normalise and add numbers (existing entries are updated); return how many were new.

        Raises InvalidInput naming every number ``normalise`` refused; nothing is added then.
        """
        e164s = self._normalise_all(numbers, region, normalise)
        now, exp = time.time(), to_ts(expires_at)

        def job(conn: sqlite3.Connection) -> int:
            lid = list_id(conn, list_name)
            new = 0
            for number in e164s:
                cur = conn.execute(
                    "INSERT OR IGNORE INTO list_entries (list_id, e164, expires_at, created_at,"
                    " source, reason, evidence) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (lid, number, exp, now, source, reason, evidence),
                )
                if cur.rowcount == 0:
                    conn.execute(
                        "UPDATE list_entries SET expires_at = ?, source = ?, reason = ?,"
                        " evidence = ? WHERE list_id = ? AND e164 = ?",
                        (exp, source, reason, evidence, lid, number),
                    )
                else:
                    new += 1
            write_audit(conn, actor, "list.add", party_kind="list", party_key=list_name,
                        after={"numbers": e164s[:100], "count": len(e164s), "new": new,
                               "reason": reason, "expires_at": exp})
            return new

        return self._write(job, changes_data=True)

    def remove_entries(self, list_name: str, numbers: Sequence[str], *, region: str = "CN",
                       normalise: Normaliser | None = None, actor: str = "system") -> int:
        """Remove numbers from a list; return how many were there."""
        e164s = self._normalise_all(numbers, region, normalise)

        def job(conn: sqlite3.Connection) -> int:
            lid = list_id(conn, list_name)
            removed = sum(
                conn.execute("DELETE FROM list_entries WHERE list_id = ? AND e164 = ?",
                             (lid, n)).rowcount
                for n in e164s
            )
            write_audit(conn, actor, "list.remove", party_kind="list", party_key=list_name,
                        before={"numbers": e164s[:100], "count": len(e164s), "removed": removed})
            return removed

        return self._write(job, changes_data=True)

    @staticmethod
    def _normalise_all(numbers: Sequence[str], region: str,
                       normalise: Normaliser | None) -> list[str]:
        norm = normalise or default_normaliser()
        errors = number_error_types()
        out: list[str] = []
        bad: list[str] = []
        for raw in numbers:
            try:
                out.append(norm(raw, region))
            except errors as exc:
                bad.append(f"{raw!r}: {exc}")
        if bad:
            raise InvalidInput(f"{len(bad)} invalid number(s): {'; '.join(bad[:20])}",
                               field="numbers", invalid=bad[:100])
        return out

    def find_entries(self, e164: str) -> list[Entry]:
        """Every list the number is on (expired entries included; see expires_at)."""
        found: list[Entry] = []
        for row in self._query("SELECT id, name FROM lists ORDER BY name"):
            for entry in self._query(
                f"SELECT {ENTRY_COLUMNS} FROM list_entries WHERE list_id = ? AND e164 = ?",
                (row["id"], e164),
            ):
                found.append(_entry(row["name"], tuple(entry)))
        return found

    def count_entries(self, list_name: str) -> int:
        lid = self.get_list(list_name).id
        return int(self._query("SELECT count(*) FROM list_entries WHERE list_id = ?", (lid,))[0][0])

    def page_entries(self, list_name: str, *, q: str = "", offset: int = 0, limit: int = 100,
                     descending: bool = False) -> tuple[list[Entry], bool]:
        """One page of a list's entries in number order (or reversed), optionally only
        numbers containing the digits ``q``; and whether more follow. The primary key
        (list, number) orders the page, so the page costs its offset in index steps,
        never a sort of the list."""
        lid = self.get_list(list_name).id
        where, params = "list_id = ?", [lid]  # type: tuple[str, list[Any]]
        digits = "".join(ch for ch in q if ch.isdigit())
        if digits:
            where += " AND e164 LIKE ?"
            params.append(f"%{digits}%")
        order = "DESC" if descending else "ASC"
        rows = self._query(
            f"SELECT {ENTRY_COLUMNS} FROM list_entries WHERE {where}"
            f" ORDER BY e164 {order} LIMIT ? OFFSET ?", [*params, limit + 1, offset])
        entries = [_entry(list_name, tuple(r)) for r in rows[:limit]]
        return entries, len(rows) > limit

    def iter_entries(self, list_name: str) -> Iterator[Entry]:
        """Stream one list's entries in number order (for export)."""
        lid = self.get_list(list_name).id
        conn = self.open_reader()
        try:
            cur = conn.execute(
                f"SELECT {ENTRY_COLUMNS} FROM list_entries WHERE list_id = ? ORDER BY e164", (lid,)
            )
            while rows := cur.fetchmany(5000):
                for row in rows:
                    yield _entry(list_name, row)
        finally:
            conn.close()

    def purge_expired(self, now: datetime, *, actor: str = "system") -> int:
        """Delete entries whose expiry has passed; return how many."""
        now_ts = to_ts(now)

        def job(conn: sqlite3.Connection) -> int:
            removed = conn.execute(
                "DELETE FROM list_entries WHERE expires_at IS NOT NULL AND expires_at <= ?",
                (now_ts,),
            ).rowcount
            if removed:
                write_audit(conn, actor, "list.purge_expired", after={"removed": removed})
            return int(removed)

        return self._write(job, changes_data=True)
