"""SQLiteStore: the embedded default store (WAL, one writer thread, per-thread readers).

Writes go through the ``Writer`` thread (jobs for CRUD, batches for the call log); reads
use one read-only connection per thread; the snapshot source and the call-log replay
stream from a connection of their own. Every change to lists, parties or suspensions bumps
``data_version`` in the same transaction, then the in-process subscribers are told.
"""

from __future__ import annotations

import heapq
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO, TypeVar

from outguard.errors import NotFound, StoreError
from outguard.store import schema
from outguard.store.audit import bump_version, write_audit  # noqa: F401
from outguard.callevents import went_out
from outguard.store.base import (
    WENT_OUT_SQL,
    CallRecord,
    ChangeCallback,
    ImportResult,
    LoggedCall,
    to_dt,
    to_ts,
)
from outguard.store import exports, imports
from outguard.store.consent import ConsentMixin, load_consents
from outguard.store.enforcement import EnforcementMixin
from outguard.store.health import HealthMixin
from outguard.store.lists import ListsMixin
from outguard.store.maintenance import create_private
from outguard.store.parties import PartiesMixin
from outguard.store.snapshot import EntryStream, load_lists, load_mappings, load_parties
from outguard.store.spool import CALL, OUTCOME, REDO, Spool
from outguard.store.writer import Writer, connect
from rules.model import StoreData

logger = logging.getLogger(__name__)

T = TypeVar("T")

CALL_COLUMNS = (
    "decision_id, channel_id, adapter, tenant, account, caller_id, destination, verdict,"
    " rule, reason, shadow, decision_us, at, answered_at, ended_at, duration, cause,"
    " end_note, purpose, campaign, pbx"
)
STREAM_FETCH = 5000


def row_to_call(row: tuple[Any, ...]) -> LoggedCall:
    call = CallRecord(
        decision_id=row[0], channel_id=row[1] or "", adapter=row[2] or "", tenant=row[3] or "",
        account=row[4] or "", caller_id=row[5] or "", destination=row[6] or "",
        verdict=row[7], rule=row[8] or "", reason=row[9] or "",
        shadow=tuple(s for s in (row[10] or "").split(",") if s),
        decision_us=int(row[11] or 0), at=float(row[12]),
        purpose=row[18] or "", campaign=row[19] or "", pbx=row[20] or "",
    )
    return LoggedCall(call, answered_at=row[13], ended_at=row[14], duration=row[15],
                      cause=row[16], end_note=row[17])


class SQLiteStore(PartiesMixin, ListsMixin, EnforcementMixin, ConsentMixin, HealthMixin):
    """The ``Store`` backed by one SQLite file. Open with ``SQLiteStore(path)``; close it."""

    def __init__(
        self,
        path: str | Path,
        *,
        batch_rows: int = 500,
        batch_interval: float = 0.05,
        busy_timeout_s: float = 5.0,
        spool_dir: str | Path | None = None,
        retry_s: float = 1.0,
    ) -> None:
        """``spool_dir``: where call-log rows wait while the store refuses writes (only the
        service spools; see ``outguard.store.spool``). Without it such rows are dropped
        and counted."""
        self.path = str(path)
        self._busy_timeout_s = busy_timeout_s
        self._closed = False
        create_private(self.path)  # 0600: call logs and token hashes are not for everyone
        try:
            conn = connect(self.path, timeout_s=busy_timeout_s)
            try:
                schema.migrate(conn)
            finally:
                conn.close()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open store {self.path}: {exc}", path=self.path) from exc
        spool = Spool(spool_dir) if spool_dir is not None else None
        self._writer = Writer(
            self.path, batch_rows=batch_rows, batch_interval=batch_interval,
            busy_timeout_s=busy_timeout_s, spool=spool, retry_s=retry_s,
        )
        self._writer.start()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._subscribers: list[ChangeCallback] = []
        self._seen_version = self.data_version()

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Commit queued call-log rows, stop the writer, close every connection."""
        if self._closed:
            return
        self._closed = True
        self._writer.close()
        with self._lock:
            readers, self._readers = self._readers, []
        for conn in readers:
            conn.close()

    @property
    def writer(self) -> Writer:
        return self._writer

    def write_health(self) -> dict[str, Any]:
        """How call-log writes fare: for /health and /metrics."""
        w = self._writer
        return {"degraded": w.degraded, "write_failures": w.write_failures,
                "spool_rows": w.spool_depth, "rows_spooled": w.rows_spooled,
                "rows_dropped": w.rows_dropped, "rows_committed": w.rows_committed}

    # -- connections -------------------------------------------------------------------

    def open_reader(self) -> sqlite3.Connection:
        """A new read-only connection (the caller closes it)."""
        if self._closed:
            raise StoreError("the store is closed")
        conn = sqlite3.connect(
            self.path, timeout=self._busy_timeout_s, isolation_level=None,
            check_same_thread=False,
        )
        conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_s * 1000)}")
        conn.execute("PRAGMA query_only = 1")
        return conn

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self.open_reader()
            conn.row_factory = sqlite3.Row
            self._local.conn = conn
            with self._lock:
                self._readers.append(conn)
        return conn

    def _query(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> list[sqlite3.Row]:
        try:
            return self._reader().execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"store read failed: {exc}") from exc

    def _one(self, sql: str, params: tuple[Any, ...], kind: str, key: object) -> sqlite3.Row:
        rows = self._query(sql, params)
        if not rows:
            raise NotFound(kind, key)
        row: sqlite3.Row = rows[0]
        return row

    def _write(self, job: Callable[[sqlite3.Connection], T], *, changes_data: bool = False) -> T:
        """Run ``job`` in one transaction on the writer; bump data_version if it changes data."""

        def run(conn: sqlite3.Connection) -> tuple[T, int | None]:
            result = job(conn)
            return result, (bump_version(conn) if changes_data else None)

        future: Future[tuple[T, int | None]] = self._writer.submit(run)
        try:
            result, version = future.result()
        except sqlite3.Error as exc:
            raise StoreError(f"store write failed: {exc}") from exc
        if version is not None:
            self._notify(version)
        return result

    # -- change notification -----------------------------------------------------------

    def data_version(self) -> int:
        """The version of lists, parties and suspensions; grows with every change."""
        return int(self._query("SELECT value FROM meta WHERE key = 'data_version'")[0][0])

    def subscribe(self, callback: ChangeCallback) -> Callable[[], None]:
        """Call ``callback(version)`` after each change (from the thread that made it).

        Returns a function that unsubscribes. Callbacks must be quick and thread-safe;
        an async service hands off with ``loop.call_soon_threadsafe`` (AsyncStore does).
        """
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    def check_external_changes(self) -> bool:
        """Poll for changes made by another process (the CLI); notify if there were."""
        version = self.data_version()
        if version == self._seen_version:
            return False
        self._notify(version)
        return True

    def _notify(self, version: int) -> None:
        with self._lock:
            if version <= self._seen_version:
                return
            self._seen_version = version
            callbacks = list(self._subscribers)
        for callback in callbacks:
            try:
                callback(version)
            except Exception:
                logger.exception("store change subscriber %r failed", callback)

    # -- call log ----------------------------------------------------------------------

    def record_decision(self, call: CallRecord, *, redo: bool = False) -> None:
        """Enqueue one decision for the call log; never blocks. ``redo``: the call was
        decided again because its earlier decision was never carried out; this decision
        replaces that row (and its outcome) whole."""
        self._writer.enqueue_call(call.as_row(), redo=redo)

    def record_outcome(
        self,
        decision_id: str,
        *,
        answered_at: float | None,
        ended_at: float | None,
        duration: float | None,
        cause: int | None,
        note: str | None = None,
    ) -> None:
        """Enqueue the outcome of a logged decision; never blocks. ``note`` says how the
        outcome was known when no hangup was seen (e.g. "unknown after restart")."""
        self._writer.enqueue_outcome((answered_at, ended_at, duration, cause, note,
                                      decision_id))

    def flush(self, timeout: float | None = None) -> int:
        """Return once everything enqueued so far is committed (the committed row count)."""
        return self._writer.flush(timeout)

    def flush_future(self) -> Future[int]:
        return self._writer.flush_future()

    def _spooled_calls(self, ts: float, allowed_only: bool) -> list[LoggedCall]:
        """Calls waiting in the spool (the store refused them), with their outcomes, oldest
        first: replays count them as if they were in the store."""
        spool = self._writer.spool
        if spool is None or not spool.depth:
            return []
        calls: dict[str, list[Any]] = {}
        for kind, row in spool.read():
            if kind == CALL:
                calls.setdefault(str(row[0]), list(row) + [None, None, None, None, None])
            elif kind == REDO:  # replaces the row, outcome included
                calls[str(row[0])] = list(row) + [None, None, None, None, None]
            elif str(row[5]) in calls and calls[str(row[5])][14] is None:
                # (answered_at, ended_at, duration, cause, note, id); the first end wins,
                # as the store writes it (writer.UPDATE_OUTCOME)
                calls[str(row[5])][13:18] = row[:5]
        out = [row_to_call(tuple(r)) for r in calls.values()
               if float(r[12]) >= ts and (not allowed_only or went_out(r[7], r[8] or ""))]
        out.sort(key=lambda c: c.call.at)
        return out

    def iter_calls_since(self, ts: float, *, allowed_only: bool = True,
                         ended_since: float | None = None) -> Iterator[LoggedCall]:
        """Stream logged calls with ``at >= ts`` in time order (for counter replay),
        including calls still waiting in the spool. With ``ended_since``, a call decided
        before then only if it ended since then (the call feed's recovery: the outcomes
        of calls decided earlier; filtered in the query, not decoded)."""
        spooled = self._spooled_calls(ts, allowed_only)
        if ended_since is not None:
            spooled = [c for c in spooled if c.call.at >= ended_since
                       or (c.ended_at is not None and c.ended_at >= ended_since)]
        seen = {c.call.decision_id for c in spooled}
        where = "at >= ?" + (f" AND {WENT_OUT_SQL}" if allowed_only else "")
        params: tuple[float, ...] = (ts,)
        if ended_since is not None:
            where += " AND (at >= ? OR ended_at >= ?)"
            params += (ended_since, ended_since)
        stored = (c for c in self._stream_calls(
            f"SELECT {CALL_COLUMNS} FROM calls WHERE {where} ORDER BY at", params
        ) if c.call.decision_id not in seen)
        yield from heapq.merge(stored, spooled, key=lambda c: c.call.at)

    def open_calls(self) -> list[LoggedCall]:
        """Allowed calls with no outcome yet (in progress, or cut off by a restart), oldest
        first; the spool's rows and outcomes (a store that refused writes) included."""
        spool = self._writer.spool
        ended: set[str] = set()
        if spool is not None and spool.depth:
            ended = {str(row[5]) for kind, row in spool.read() if kind == OUTCOME and row[1]}
        spooled = [c for c in self._spooled_calls(float("-inf"), True) if c.ended_at is None]
        seen = {c.call.decision_id for c in spooled} | ended
        stored = [c for c in self._stream_calls(
            f"SELECT {CALL_COLUMNS} FROM calls WHERE ended_at IS NULL AND {WENT_OUT_SQL}"
            " ORDER BY at", ()) if c.call.decision_id not in seen]
        return sorted(stored + spooled, key=lambda c: c.call.at)

    def iter_counter_rows_since(self, ts: float) -> Iterator[tuple[str, str, str, str, float]]:
        """Allowed calls since ``ts`` as (tenant, account, caller_id, destination, at), oldest
        first: the shape ``rules.counters.InMemoryCounters.rebuild`` replays. Calls waiting
        in the spool count too: a restart while the store refuses writes keeps every cap."""
        for row in self.iter_allowed_calls_since(ts):
            yield row[1], row[2], row[3], row[4], row[5]

    def iter_allowed_calls_since(self, ts: float) -> Iterator[tuple[str, str, str, str, str, float]]:
        """``iter_counter_rows_since`` with the decision id first: the shape the shared
        counters (``outguard.cluster``) replay, idempotent per call."""
        spooled = [(c.call.decision_id, c.call.tenant, c.call.account, c.call.caller_id,
                    c.call.destination, c.call.at) for c in self._spooled_calls(ts, True)]
        seen = {row[0] for row in spooled}
        conn = self.open_reader()
        try:
            cur = conn.execute(
                "SELECT decision_id, tenant, account, caller_id, destination, at FROM calls"
                f" WHERE at >= ? AND {WENT_OUT_SQL} ORDER BY at", (ts,),
            )

            def stored() -> Iterator[tuple[Any, ...]]:
                while rows := cur.fetchmany(STREAM_FETCH):
                    yield from (row for row in rows if row[0] not in seen)

            for row in heapq.merge(stored(), spooled, key=lambda r: r[5]):
                yield row[0], row[1], row[2], row[3], row[4], row[5]
        finally:
            conn.close()

    def iter_calls(self, since: float | None = None, until: float | None = None) -> Iterator[LoggedCall]:
        """Stream the call log (all verdicts) in time order, for reports and export."""
        yield from self._stream_calls(
            f"SELECT {CALL_COLUMNS} FROM calls WHERE at >= ? AND at < ? ORDER BY at",
            (since if since is not None else float("-inf"),
             until if until is not None else float("inf")),
        )

    def _stream_calls(self, sql: str, params: tuple[Any, ...]) -> Iterator[LoggedCall]:
        conn = self.open_reader()
        try:
            cur = conn.execute(sql, params)
            while rows := cur.fetchmany(STREAM_FETCH):
                for row in rows:
                    yield row_to_call(row)
        finally:
            conn.close()

    def get_call(self, decision_id: str) -> LoggedCall:
        row = self._one(
            f"SELECT {CALL_COLUMNS} FROM calls WHERE decision_id = ?", (decision_id,),
            "call", decision_id,
        )
        return row_to_call(tuple(row))

    # -- snapshot source ---------------------------------------------------------------

    def load_store_data(self, now: datetime) -> StoreData:
        """Parties (state folded in), lists and a stream of unexpired entries, consistent.

        Parties and lists are read eagerly; ``entries`` streams from the same read
        transaction and may be iterated once, from any one thread.
        ``extra`` holds ``data_version`` and ``account_map`` (AccountMapping tuple).
        """
        now_ts = to_ts(now)
        assert now_ts is not None
        conn = self.open_reader()
        try:
            conn.execute("BEGIN")
            version = int(
                conn.execute("SELECT value FROM meta WHERE key = 'data_version'").fetchone()[0]
            )
            parties = load_parties(conn, now_ts)
            lists, names = load_lists(conn)
            mappings = load_mappings(conn)
            consents = load_consents(conn, now_ts)
        except BaseException:
            conn.close()
            raise
        entries = EntryStream(conn, names, now_ts)
        return StoreData(
            parties=parties,
            lists=lists,
            entries=entries,
            extra={"data_version": version, "account_map": mappings, "loaded_at": to_dt(now_ts)},
            consents=consents,
        )

    # -- bulk import and export ----------------------------------------------------------

    def open_import(self) -> tuple[Any, imports.Staging]:
        """A connection of the import's own, with its staging table (the caller closes it)."""
        return imports.open_sqlite_import(self.path)

    def import_list(self, list_name: str, path: str | Path, **options: Any) -> ImportResult:
        """Import a file into a list, all or nothing; see ``imports.import_numbers``."""
        return imports.import_numbers(self, list_name, path, **options)

    def export_list(self, list_name: str, out: TextIO, fmt: str = "csv") -> int:
        return exports.export_list(self, list_name, out, fmt)

    def export_calls(self, out: TextIO, fmt: str = "csv", *, since: datetime | None = None,
                     until: datetime | None = None) -> int:
        return exports.export_calls(self, out, fmt, since=since, until=until)

    def export_audit(self, out: TextIO, fmt: str = "csv", *,
                     since: datetime | None = None) -> int:
        return exports.export_audit(self, out, fmt, since=since)
