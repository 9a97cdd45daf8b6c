"""A list import on PostgreSQL: COPY into staging, then one sort and a bulk-built index.

The file is read and validated by ``outguard.store.imports`` (the same code as on SQLite);
the valid numbers stream with one COPY into an unlogged TEMP table of the import's own
connection, the server storing a batch while the importer reads the next. The merge, in
the import's one transaction, then takes one of two ways:

* **rebuild** (a first import, every replace, an add of at least half the list's size):
  a new leaf table for the list (migration 140: ``list_entries_<id>`` holds one leaf) is
  filled by one ``INSERT ... SELECT`` that deduplicates and orders the staged numbers in
  one sort (as integers when every number is ``+`` and digits: half the CPU of comparing
  the text), carrying over what a replace keeps of the rows already there (``created_at``,
  ``disconnected_at``) and, for an add, the rows themselves. Attaching the leaf builds its
  primary key and expiry index in bulk (a sort, then the B-tree written bottom-up), where
  inserting into the list's live index cost a B-tree descent, a page split now and then and
  the WAL of each of 10M keys. The old leaf is detached and dropped in the same transaction.
  A replace finds the rows it keeps by joining the staged numbers with the old leaf (the
  planner's hash join: a merge join in number order measured cheaper alone but slower in
  the whole 10M replace, bench/RESULTS.md).
* **row by row** (an add smaller than half the list): the deduplicated staging is merged
  with ``INSERT ... ON CONFLICT DO NOTHING``, as on SQLite (``imports._merge``).

What others see: the rebuild holds ``ACCESS EXCLUSIVE`` on ``list_entries_<id>`` from its
start to its commit, so nobody reads the list half-built or writes into the leaf being
replaced (a write to that list waits and lands in the new leaf after the commit; no write
is lost). The other lists stay readable and writable: the swap never locks
``list_entries`` itself. A reader that scans every list (the snapshot loader) waits for the
import's commit; multi-statement readers lock ``list_entries`` before taking their snapshot
(``PostgresStore.open_reader``), because a swapped leaf is not MVCC-safe: a transaction
whose snapshot predates the swap would find the list's new leaf empty.

Session settings, for the import's transaction only (``SET LOCAL``), on top of the TEMP
table's ``temp_buffers`` set for the session before the table is made:

* ``work_mem = 256MB``: the one sort of the staged numbers (10M numbers are ~0.5 GB to
  sort: a few runs merged from disk instead of hundreds at the 4 MB default);
  ``enable_hashagg = off``: a hash aggregate deduplicated 10M numbers, spilled past
  ``work_mem`` and left them to be sorted again; the sort does both at once.
  ``jit = off``: compiling the load's expressions cost more CPU than they saved
  (2M numbers: 1.9 s of the backend's CPU with it, 1.5 s without).
* ``maintenance_work_mem = 512MB``: the primary key's sort when the leaf is attached
  (10M keys in two runs instead of sixty). Both are bounds on one sort at a time, not
  allocations: a small import uses what it needs.

Deleting a list drops its partition (``drop_entries``) instead of deleting its rows.

The commit is an ordinary durable commit (the server's ``synchronous_commit``); nothing
is written unlogged but the TEMP staging, which dies with the connection.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from typing import Any

import psycopg
from psycopg import sql

from outguard.errors import StoreError
from outguard.store import imports
from outguard.store.imports import Merged
from outguard.store.pg_schema import ENTRY_COLUMNS
from outguard.store.pgconn import PgConnection, translated

logger = logging.getLogger(__name__)

_COPY_UNSAFE = re.compile(r"[\t\n\r\\]")
_E164_LINES = re.compile(r"(?:\+[1-9][0-9]{0,17}\n)*")  # each fits a bigint
#: an add rebuilds the list when it brings at least this share of the list's size: past
#: it, rewriting every row in bulk costs less than inserting the new ones into the index
REBUILD_ADD_SHARE = 0.5
SESSION_SETTINGS = ("temp_buffers = '256MB'",)
MERGE_SETTINGS = ("work_mem = '256MB'", "maintenance_work_mem = '512MB'", "enable_hashagg = off",
                  "jit = off")


def _value(raw: Any, query: sql.Composable | str, params: tuple[Any, ...] = ()) -> Any:
    """The first column of the one row ``query`` returns."""
    row = raw.execute(query, params).fetchone()
    if row is None:
        raise StoreError(f"no row from {query!r}")
    return row[0]


def _hold_list(raw: Any, lid: int) -> None:
    """One import (or delete) of list ``lid`` at a time, until the transaction ends; taken
    before either looks at the list: two imports that counted it and then both asked for
    ACCESS EXCLUSIVE would deadlock, and a delete waits for an import's swap."""
    raw.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                (f"outguard import {lid}",))


def drop_entries(conn: PgConnection, lid: int) -> int:
    """Drop list ``lid``'s entries with its partition, in the caller's transaction (the
    list is being deleted); return how many there were.

    Dropping the table frees a 10M-entry list at once, where deleting its rows wrote each
    one's deletion (and left the table to vacuum). Locks: the list's import lock (an
    import of the list in flight finishes first), then ``list_entries`` itself (``ONLY``:
    no other list's partition) and the list's partition, parent before child as the
    snapshot loader takes them, so the two never deadlock; readers and writers of
    ``list_entries`` wait for the commit, as they did for the row deletes' check."""
    with translated():
        raw = conn.raw
        _hold_list(raw, lid)
        part = f"list_entries_{lid}"
        raw.execute("LOCK TABLE ONLY list_entries IN ACCESS EXCLUSIVE MODE")
        if _value(raw, "SELECT to_regclass(%s)", (part,)) is None:
            return 0  # deleted meanwhile: nothing left to drop
        table = sql.Identifier(part)
        raw.execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(table))
        count = int(_value(raw, sql.SQL("SELECT count(*) FROM {}").format(table)))
        raw.execute(sql.SQL("DROP TABLE {}").format(table))
        return count


class PgStaging:
    """COPY every valid number into an unindexed TEMP table (as an integer when it is ``+``
    and digits, else as text); deduplicate once, in the merge."""

    _copying: contextlib.ExitStack  # the COPY, from ``begin`` to ``finish``
    _copy: psycopg.Copy

    def __init__(self, conn: PgConnection) -> None:
        self.conn = conn
        self.digits_only = True  # every number staged is "+" and digits (no short code)
        self.staged = 0  # numbers staged, duplicates included
        self.started = time.monotonic()

    @property
    def order(self) -> str:
        """The row-by-row merge's ORDER BY over ``staging``: E.164 numbers sorted as
        integers (the key order among numbers of one length, at half the CPU of sorting
        the text); text order when a short code (``+86:95588``) is there."""
        return "substr(e164, 2)::bigint" if self.digits_only else "e164"

    def phase(self, name: str) -> None:
        """A part of the import ended (``copied``, ``loaded``, ``indexed``, ``merged``)."""
        logger.debug("import: %s after %.1f s", name, time.monotonic() - self.started)

    def begin(self) -> None:
        """Make the TEMP table and open the one COPY that takes every batch: the server
        stores each batch while the importer reads the next (two processes, two cores),
        where a COPY per batch waited for the server at each batch's end."""
        with translated():
            raw = self.conn.raw
            for setting in SESSION_SETTINGS:  # before the TEMP table exists
                raw.execute(f"SET {setting}")
            raw.execute('CREATE TEMP TABLE staging_raw (n BIGINT, e164 TEXT COLLATE "C")')
            self._copying = contextlib.ExitStack()
            cursor = self._copying.enter_context(raw.cursor())
            self._copy = self._copying.enter_context(
                cursor.copy("COPY staging_raw (n, e164) FROM STDIN"))

    def insert(self, batch: list[str]) -> int:
        """Stream a batch: ``+`` and digits as the integer (``n``), anything else as text
        (``e164``), one row a number."""
        text = "\n".join(batch) + "\n"
        if _E164_LINES.fullmatch(text) is not None:
            rows = text.replace("+", "").replace("\n", "\t\\N\n")
        else:
            if _COPY_UNSAFE.search(text[:-1].replace("\n", "")):
                raise StoreError("a normalised number holds a tab, newline or backslash")
            self.digits_only = False
            rows = "\\N\t" + text[:-1].replace("\n", "\n\\N\t") + "\n"
        with translated():
            self._copy.write(rows)
        self.staged += len(batch)
        return len(batch)  # duplicates included: the merge counts the distinct ones

    def finish(self, accepted: int) -> int:
        """End the COPY (the server's errors, if any, are raised here)."""
        with translated():
            self._copying.close()
        self.phase("copied")
        return accepted

    # -- the merge -------------------------------------------------------------------------

    def _distinct(self) -> sql.Composable:
        """The staged numbers once each, as ``e164``, in key order (one sort)."""
        if self.digits_only:
            return sql.SQL("(SELECT ('+' || n) COLLATE \"C\" AS e164 FROM"
                           " (SELECT DISTINCT n FROM staging_raw ORDER BY n) d)")
        return sql.SQL('(SELECT DISTINCT coalesce(e164, \'+\' || n) COLLATE "C" AS e164'
                       " FROM staging_raw ORDER BY 1)")

    def merge(self, lid: int, mode: str, values: tuple[Any, ...]) -> Merged:
        """Apply the staged numbers to list ``lid`` inside the caller's transaction.
        ``values``: expires_at, created_at (now), source, reason, evidence."""
        with translated():
            raw = self.conn.raw
            for setting in MERGE_SETTINGS:
                raw.execute(f"SET LOCAL {setting}")
            part = f"list_entries_{lid}"
            _hold_list(raw, lid)
            if _value(raw, "SELECT to_regclass(%s)", (part,)) is None:
                raise StoreError(f"list {lid} has no partition {part} (deleted meanwhile?)")
            if mode == "add":
                size = _value(raw, "SELECT count(*) FROM list_entries WHERE list_id = %s",
                              (lid,))
                if size and self.staged < REBUILD_ADD_SHARE * size:
                    return self._merge_rows(lid, mode, values)
            raw.execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(
                sql.Identifier(part)))
            return self._rebuild(lid, mode, values)

    def _merge_rows(self, lid: int, mode: str, values: tuple[Any, ...]) -> Merged:
        made = self.conn.raw.execute(
            sql.SQL("CREATE TEMP TABLE staging AS SELECT e164 FROM {} s").format(self._distinct()))
        accepted = max(made.rowcount, 0)
        self.conn.raw.execute("ANALYZE staging")
        self.phase("loaded")
        added, removed, total = imports._merge(self.conn, lid, mode,  # type: ignore[arg-type]
                                               values, self.order)
        self.phase("merged")
        return Merged(added, removed, total, accepted)

    def _rebuild(self, lid: int, mode: str, values: tuple[Any, ...]) -> Merged:
        raw = self.conn.raw
        part = sql.Identifier(f"list_entries_{lid}")
        old_row = raw.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = to_regclass(%s)", (f"list_entries_{lid}",)).fetchone()
        old = sql.Identifier(old_row[0]) if old_row is not None else None
        before = 0 if old is None else int(_value(raw, sql.SQL("SELECT count(*) FROM {}")
                                                  .format(old)))
        leaf_name = str(_value(raw, "SELECT outguard_entries_leaf(%s)", (lid,)))
        leaf = sql.Identifier(leaf_name)
        columns = sql.SQL(", ").join(map(sql.Identifier, ENTRY_COLUMNS))
        expires_at, now, source, reason, evidence = values
        fresh = (lid, expires_at, now, source, reason, evidence)
        if old is None or before == 0:
            made = raw.execute(sql.SQL(
                "INSERT INTO {} ({}) SELECT %s, e164, %s, %s, %s, %s, %s, NULL FROM {} s"
            ).format(leaf, columns, self._distinct()), fresh)
            total = accepted = added = made.rowcount
            removed = 0
        elif mode == "replace":
            raw.execute("ANALYZE staging_raw")  # the join's plan needs the sizes
            made = raw.execute(sql.SQL(
                "INSERT INTO {} ({}) SELECT %s, s.e164, %s, coalesce(o.created_at, %s), %s, %s,"
                " %s, o.disconnected_at FROM {} s LEFT JOIN {} o ON o.e164 = s.e164"
            ).format(leaf, columns, self._distinct(), old), fresh)
            total = accepted = made.rowcount
            # the rows this import added are those stamped with its time (a kept row keeps
            # the created_at of its first import)
            added = int(_value(raw, sql.SQL("SELECT count(*) FROM {} WHERE created_at = %s")
                               .format(leaf), (now,)))
            removed = before - (total - added)
        else:  # add, rebuilt: the rows there, unchanged, and the new numbers
            made = raw.execute(sql.SQL("CREATE TEMP TABLE staging AS SELECT e164 FROM {} s")
                               .format(self._distinct()))
            accepted = made.rowcount
            raw.execute("ANALYZE staging")
            made = raw.execute(sql.SQL(
                "INSERT INTO {leaf} ({cols}) SELECT * FROM (SELECT {cols} FROM {old}"
                " UNION ALL SELECT %s, s.e164, %s, %s, %s, %s, %s, NULL FROM staging s"
                " WHERE NOT EXISTS (SELECT FROM {old} o WHERE o.e164 = s.e164)) u"
                " ORDER BY e164"
            ).format(leaf=leaf, cols=columns, old=old), fresh)
            total = made.rowcount
            added, removed = total - before, 0
        self.phase("loaded")
        if old is not None:
            raw.execute(sql.SQL("ALTER TABLE {} DETACH PARTITION {}").format(part, old))
            raw.execute(sql.SQL("DROP TABLE {}").format(old))
        raw.execute("SELECT outguard_entries_attach(%s, %s)", (lid, leaf_name))
        raw.execute(sql.SQL("ANALYZE {}").format(leaf))  # a sample: the next join's plan
        self.phase("indexed")
        return Merged(added, removed, total, accepted)


def open_import(url: str, connect_timeout: float) -> tuple[PgConnection, PgStaging]:
    """The import's own connection and its staging."""
    conn = PgConnection(url, connect_timeout=connect_timeout, application_name="outguard-import")
    return conn, PgStaging(conn)
