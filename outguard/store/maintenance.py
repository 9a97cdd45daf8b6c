"""Keeping a store over months: a consistent copy while the service runs (``backup``), the
call log's retention (``prune_calls``), the API tokens' listing and the store file's mode.

A backup uses SQLite's online backup API on a read connection of its own: it copies the
database page by page and restarts when another connection writes in between, so the copy
is one consistent state, WAL included (the copy is a single file in rollback-journal mode,
nothing to carry beside it). The service keeps running and writing meanwhile.
"""

from __future__ import annotations

import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from outguard.errors import InvalidInput, StoreError
from outguard.store.audit import write_audit

if TYPE_CHECKING:
    from outguard.store.sqlite import SQLiteStore

#: rows deleted per transaction: the service's writer waits at most for one of them
PRUNE_CHUNK = 5000
#: pages copied per backup step (4 KiB pages: 4 MiB), then other writers get a turn
BACKUP_PAGES = 1024


def create_private(path: str | Path) -> None:
    """Create the store file readable by its owner only (0600) if it does not exist yet;
    SQLite gives the -wal and -shm files the database file's mode."""
    if str(path) == ":memory:" or str(path).startswith("file:"):
        return
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except OSError:  # there already, or a directory SQLite will report better
        return
    os.close(fd)


@dataclass(frozen=True)
class BackupResult:
    path: str
    pages: int
    bytes: int
    seconds: float


def backup(source: str | Path, dest: str | Path, *, overwrite: bool = False) -> BackupResult:
    """Copy the store at ``source`` to ``dest`` (mode 0600) with the online backup API."""
    src_path, dest_path = Path(source), Path(dest)
    if not src_path.is_file():
        raise InvalidInput(f"no store at {src_path}")
    if dest_path.exists() and not overwrite:
        raise InvalidInput(f"{dest_path} exists (pass --force to replace it)")
    if dest_path.resolve() == src_path.resolve():
        raise InvalidInput("the backup cannot be the store itself")
    partial = dest_path.with_name(dest_path.name + ".partial")
    partial.unlink(missing_ok=True)
    create_private(partial)
    began = time.monotonic()
    try:
        src = sqlite3.connect(f"file:{src_path}?mode=ro", uri=True, timeout=30)
        try:
            out = sqlite3.connect(partial)
            try:
                src.backup(out, pages=BACKUP_PAGES, sleep=0.005)
                out.execute("PRAGMA journal_mode = DELETE")
                pages = int(out.execute("PRAGMA page_count").fetchone()[0])
                check = out.execute("PRAGMA quick_check").fetchone()[0]
            finally:
                out.close()
        finally:
            src.close()
        if check != "ok":
            raise StoreError(f"the backup of {src_path} failed its integrity check: {check}")
        os.replace(partial, dest_path)
    except sqlite3.Error as exc:
        partial.unlink(missing_ok=True)
        raise StoreError(f"backup of {src_path} to {dest_path} failed: {exc}") from exc
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return BackupResult(str(dest_path), pages, dest_path.stat().st_size,
                        round(time.monotonic() - began, 3))


def prune_batch(conn: sqlite3.Connection, before: float) -> int:
    """Delete up to ``PRUNE_CHUNK`` call-log rows decided before ``before`` (epoch s)."""
    cur = conn.execute(
        "DELETE FROM calls WHERE rowid IN (SELECT rowid FROM calls WHERE at < ? LIMIT ?)",
        (before, PRUNE_CHUNK))
    return cur.rowcount


def count_older(store: SQLiteStore, before: float) -> int:
    """Call-log rows decided before ``before`` (what ``prune_calls`` would delete)."""
    return int(store._query("SELECT count(*) FROM calls WHERE at < ?", (before,))[0][0])


def prune_calls(store: SQLiteStore, before: float, *, actor: str = "system") -> int:
    """Delete the call log's rows decided before ``before`` (epoch seconds), in chunks so
    the running service's writes wait at most one chunk; one audit entry. Returns the
    number of rows deleted."""
    deleted = 0
    while True:
        n = store._write(lambda conn: prune_batch(conn, before))
        deleted += n
        if n < PRUNE_CHUNK:
            break
    store._write(lambda conn: write_audit(
        conn, actor, "calls.prune", after={"before": before, "deleted": deleted}))
    return deleted


@dataclass(frozen=True)
class TokenInfo:
    id: str
    user: str
    role: str
    label: str
    created_at: float
    revoked_at: float | None


def list_tokens(store: SQLiteStore, user: str | None = None) -> list[TokenInfo]:
    """Every API token (never its secret: only the hash is stored), newest first."""
    sql = ("SELECT t.id, u.name, u.role, t.label, t.created_at, t.revoked_at"
           " FROM tokens t JOIN users u ON u.id = t.user_id")
    params: tuple[str, ...] = ()
    if user is not None:
        sql += " WHERE u.name = ?"
        params = (user,)
    rows = store._query(sql + " ORDER BY t.created_at DESC, t.id", params)
    return [TokenInfo(r[0], r[1], r[2], r[3] or "", r[4], r[5]) for r in rows]
