"""The single writer: one thread owns the write connection.

Call-log rows are enqueued without blocking (``SimpleQueue.put``) and committed in batches
(up to ``batch_rows`` rows, or ``batch_interval`` seconds after the first pending row).
Other writes are jobs: a function of the connection run inside ``BEGIN IMMEDIATE`` ...
``COMMIT`` on the writer thread, in queue order, whose result comes back in a Future.

"Acknowledged" means committed: ``flush()`` returns (and its Future resolves) only once
every row enqueued before it is in a committed transaction, or (with a spool, while the
store refuses writes) fsync-ed in the spool. With WAL and ``synchronous=NORMAL`` a
committed transaction survives the process being killed; a power cut may lose the last
transactions before a checkpoint.

When the store refuses call-log writes (read-only, disk full, I/O error, or locked past
``BUSY_GIVE_UP_S``) the writer is *degraded*: it says why once in the log, spools the rows
(``outguard.store.spool``), counts the failure, and retries the store every ``retry_s``
until the spool commits. Without a spool (the CLI), a refused row is dropped and counted.
"""

from __future__ import annotations

import functools
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from outguard.errors import StoreError
from outguard.probes import STORE_WRITE_ERRORS
from outguard.store.spool import Spool

logger = logging.getLogger(__name__)

T = TypeVar("T")

INSERT_CALL = (
    "INSERT OR IGNORE INTO calls (decision_id, channel_id, adapter, tenant, account,"
    " caller_id, destination, verdict, rule, reason, shadow, decision_us, at, purpose,"
    " campaign, pbx) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_CALL_COLUMNS = ("decision_id", "channel_id", "adapter", "tenant", "account", "caller_id",
                 "destination", "verdict", "rule", "reason", "shadow", "decision_us", "at",
                 "purpose", "campaign", "pbx")
#: a call decided again because its earlier decision was never carried out (the process
#: died between the decision and the continue / hangup, and the channel was screened
#: anew): the row takes the new decision whole and loses the earlier one's outcome, so the
#: call log keeps one row per decision carried out (``Screener._new_id``). The same
#: statement on SQLite (>= 3.24) and PostgreSQL.
REDO_CALL = (
    "INSERT INTO calls (" + ", ".join(_CALL_COLUMNS) + ") VALUES ("
    + ", ".join("?" * len(_CALL_COLUMNS)) + ") ON CONFLICT (decision_id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _CALL_COLUMNS[1:])
    + ", answered_at = NULL, ended_at = NULL, duration = NULL, cause = NULL, end_note = NULL"
    # only a row of the same channel on the same PBX (never another PBX's call whose
    # unique id collides: that row is kept, as a plain insert would keep it)
    " WHERE calls.channel_id = excluded.channel_id AND calls.pbx = excluded.pbx"
)
#: a call's end is written once: the first report wins. An answer (ended_at NULL) and then
#: the end update an open row; a row already ended takes nothing more: a second report of
#: its end (another process's: an instance that restored the call from the shared call
#: log, two instances following one PBX over AMI, a late "never seen ending") or an answer
#: after it, which would reopen the row (ended_at NULL: restored as live at a restart).
#: A redo clears the outcome itself (REDO_CALL). The same statement on both engines.
UPDATE_OUTCOME = (
    "UPDATE calls SET answered_at = ?, ended_at = ?, duration = ?, cause = ?, end_note = ?"
    " WHERE decision_id = ? AND ended_at IS NULL"
)

#: _CALL, _OUTCOME, _REDO match spool.CALL / OUTCOME / REDO
_CALL, _OUTCOME, _REDO, _JOB, _FLUSH, _STOP = range(6)
_ROW_KINDS = (_CALL, _OUTCOME, _REDO)
_STATEMENTS = {_CALL: INSERT_CALL, _OUTCOME: UPDATE_OUTCOME, _REDO: REDO_CALL}
BUSY_RETRY_S = 0.05
BUSY_GIVE_UP_S = 60.0
#: rows held in memory when even the spool cannot take them; beyond this they are dropped
MAX_HELD_ROWS = 200_000
#: SQLite primary result codes that mean "the store cannot take writes now", not "this row
#: is bad": PERM, BUSY, LOCKED, READONLY, IOERR, CORRUPT, FULL, CANTOPEN, NOTADB
_STORE_FAULTS = frozenset({3, 5, 6, 8, 10, 11, 13, 14, 26})


def statement_runs(
    batch: list[tuple[int, tuple[Any, ...]]],
) -> list[tuple[int, list[tuple[Any, ...]]]]:
    """A batch of call-log rows as the fewest runs of one statement that write what the
    rows in their order write: between two redos, every decision (INSERT OR IGNORE: rows
    of their own) before every outcome (UPDATE of one row), each kind in its order; a
    redo (which takes its row whole, an outcome before it included) stays where it is.

    Decisions and outcomes come interleaved (a call's outcome follows soon after the next
    calls' decisions); written in that order, every row was a statement of its own, and
    on PostgreSQL a round trip of its own (the writer's CPU per call 227 us against
    SQLite's 27; grouped 53 us, its server's 147 -> 67 us: ``bench/calllog_writer.py``).
    The one write the grouping changes: an outcome enqueued before its decision in one
    batch closes the row instead of finding none."""
    runs: list[tuple[int, list[tuple[Any, ...]]]] = []
    calls: list[tuple[Any, ...]] = []
    outcomes: list[tuple[Any, ...]] = []

    def close_segment() -> None:
        if calls:
            runs.append((_CALL, calls.copy()))
            calls.clear()
        if outcomes:
            runs.append((_OUTCOME, outcomes.copy()))
            outcomes.clear()

    for kind, row in batch:
        if kind == _CALL:
            calls.append(row)
        elif kind == _OUTCOME:
            outcomes.append(row)
        else:  # _REDO
            close_segment()
            if runs and runs[-1][0] == _REDO:
                runs[-1][1].append(row)
            else:
                runs.append((_REDO, [row]))
    close_segment()
    return runs


def connect(path: str, *, timeout_s: float = 5.0) -> sqlite3.Connection:
    """Open a connection with outguard's pragmas (WAL, synchronous=NORMAL, busy_timeout)."""
    conn = sqlite3.connect(
        path, timeout=timeout_s, isolation_level=None, check_same_thread=False
    )
    conn.execute(f"PRAGMA busy_timeout = {int(timeout_s * 1000)}")
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if mode != "wal" and path != ":memory:":
        logger.warning("journal_mode is %s, not wal, for %s", mode, path)
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def _is_busy(exc: sqlite3.Error) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def is_store_fault(exc: sqlite3.Error) -> bool:
    """True when the error is the store's (read-only, full, I/O, a PostgreSQL server that
    cannot be reached ...), not one row's."""
    if getattr(exc, "store_fault", False):  # set by pgconn for connection-level failures
        return True
    code = getattr(exc, "sqlite_errorcode", None)
    if code is None:
        text = str(exc).lower()
        return any(word in text for word in ("readonly", "read-only", "full", "disk i/o",
                                             "locked", "busy", "unable to open"))
    return (code & 0xFF) in _STORE_FAULTS


class Writer:
    """Owns the write connection on a dedicated thread; see the module docstring."""

    def __init__(
        self,
        path: str,
        *,
        batch_rows: int = 500,
        batch_interval: float = 0.05,
        busy_timeout_s: float = 5.0,
        spool: Spool | None = None,
        retry_s: float = 1.0,
        connect_fn: Callable[[], Any] | None = None,
    ) -> None:
        self.path = path
        self._connect_fn = connect_fn or functools.partial(connect, path, timeout_s=busy_timeout_s)
        self.batch_rows = batch_rows
        self.batch_interval = batch_interval
        self._busy_timeout_s = busy_timeout_s
        self.spool = spool
        self.retry_s = retry_s
        #: why the store refuses call-log writes now (None: it takes them)
        self.degraded: str | None = None
        self.write_failures = 0  # batches (or spool replays) the store refused
        self.rows_spooled = 0  # rows ever written to the spool
        self._held: list[tuple[int, tuple[Any, ...]]] = []  # neither stored nor spooled yet
        self._next_retry = 0.0
        self._queue: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.rows_committed = 0
        self.rows_dropped = 0
        self.batches_committed = 0

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        ready: Future[None] = Future()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name="outguard-store-writer", daemon=True
        )
        self._thread.start()
        ready.result()

    def close(self, timeout: float | None = 30.0) -> None:
        """Commit what is queued, then stop the thread and close the connection."""
        if self._closed or self._thread is None:
            self._closed = True
            return
        self._closed = True
        self._queue.put((_STOP,))
        self._thread.join(timeout)
        if self._thread.is_alive():
            logger.error("store writer did not stop within %s s", timeout)

    # -- producers (any thread, never block) -----------------------------------------

    def enqueue_call(self, row: tuple[Any, ...], *, redo: bool = False) -> None:
        """A decision's row; ``redo``: it replaces the row of the same id (``REDO_CALL``)."""
        self._check_open()
        self._queue.put((_REDO if redo else _CALL, row))

    def enqueue_outcome(self, row: tuple[Any, ...]) -> None:
        self._check_open()
        self._queue.put((_OUTCOME, row))

    def submit(self, job: Callable[[sqlite3.Connection], T]) -> Future[T]:
        """Run ``job(conn)`` in its own transaction on the writer thread."""
        self._check_open()
        future: Future[T] = Future()
        self._queue.put((_JOB, job, future))
        return future

    def flush_future(self) -> Future[int]:
        """A Future resolved (with the committed row count) once all prior rows commit."""
        self._check_open()
        future: Future[int] = Future()
        self._queue.put((_FLUSH, future))
        return future

    def flush(self, timeout: float | None = None) -> int:
        return self.flush_future().result(timeout)

    def retry_now(self) -> Future[int]:
        """Degraded: try the store again now rather than at the next ``retry_s`` tick.
        The returned Future resolves after that attempt."""
        self._next_retry = 0.0
        return self.flush_future()

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("the store writer is closed")

    # -- the thread --------------------------------------------------------------------

    @property
    def spool_depth(self) -> int:
        """Rows waiting for the store: in the spool file, plus any held in memory."""
        return (self.spool.depth if self.spool is not None else 0) + len(self._held)

    def _run(self, ready: Future[None]) -> None:
        try:
            conn = self._connect_fn()
        except sqlite3.Error as exc:
            ready.set_exception(StoreError(f"cannot open {self.path}: {exc}"))
            return
        if self.spool is not None and self.spool.depth:
            logger.warning("call-log spool %s holds %d rows from before; writing them to the"
                           " store", self.spool.path, self.spool.depth)
            self.degraded = "spooled rows from before the start"
            conn = self._retry(conn)
        ready.set_result(None)
        try:
            conn = self._loop(conn)
        except BaseException:
            STORE_WRITE_ERRORS.labels("writer").inc()
            logger.exception("store writer stopped unexpectedly")
            self._closed = True
            self._fail_queued()
        finally:
            conn.close()
            if self.spool is not None:
                self.spool.close()

    def _fail_queued(self) -> None:
        """After a crash of the thread, nobody waits forever: fail what is queued."""
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item[0] == _JOB:
                item[2].set_exception(StoreError("the store writer stopped"))
            elif item[0] == _FLUSH:
                item[1].set_exception(StoreError("the store writer stopped"))
            elif item[0] in _ROW_KINDS:
                self.rows_dropped += 1

    def _loop(self, conn: sqlite3.Connection) -> sqlite3.Connection:
        pending: list[tuple[int, tuple[Any, ...]]] = []
        deadline = 0.0
        while True:
            timeout: float | None = None if not pending else max(0.0, deadline - time.monotonic())
            if self.degraded is not None:
                wait = max(0.0, self._next_retry - time.monotonic())
                timeout = wait if timeout is None else min(timeout, wait)
            try:
                item = self._queue.get(timeout=timeout)
            except queue.Empty:
                self._commit_rows(conn, pending)
                if self.degraded is not None and time.monotonic() >= self._next_retry:
                    conn = self._retry(conn)
                continue
            kind = item[0]
            if kind in _ROW_KINDS:
                if not pending:
                    deadline = time.monotonic() + self.batch_interval
                pending.append((kind, item[1]))
                if len(pending) >= self.batch_rows:
                    self._commit_rows(conn, pending)
                continue
            self._commit_rows(conn, pending)
            if kind == _JOB:
                self._run_job(conn, item[1], item[2])
            elif kind == _FLUSH:
                if self.degraded is not None and time.monotonic() >= self._next_retry:
                    conn = self._retry(conn)
                item[1].set_result(self.rows_committed)
            elif kind == _STOP:
                if self.degraded is not None:
                    conn = self._retry(conn)
                if self._held:
                    logger.error("store writer stopping with %d call-log rows neither stored"
                                 " nor spooled: they are lost", len(self._held))
                    self.rows_dropped += len(self._held)
                return conn

    def _commit_rows(self, conn: sqlite3.Connection, pending: list[tuple[int, tuple[Any, ...]]]) -> None:
        if not pending:
            return
        batch = list(pending)
        pending.clear()
        if self.degraded is not None:  # behind the spool: keep the order
            self._set_aside(batch)
            return
        try:
            self._with_busy_retry(conn, lambda: self._write_batch(conn, batch))
        except sqlite3.Error as exc:
            if is_store_fault(exc):
                self._degrade(str(exc), len(batch))
                self._set_aside(batch)
                return
            STORE_WRITE_ERRORS.labels("call_batch").inc()
            logger.error("call-log batch of %d rows failed (%s); writing row by row", len(batch), exc)
            for n, item in enumerate(batch):
                try:
                    self._with_busy_retry(conn, functools.partial(self._write_batch, conn, [item]))
                except sqlite3.Error as row_exc:
                    if is_store_fault(row_exc):
                        self._degrade(str(row_exc), len(batch) - n)
                        self._set_aside(batch[n:])
                        return
                    self.rows_dropped += 1
                    STORE_WRITE_ERRORS.labels("call_row").inc()
                    logger.error("call-log row %r dropped: %s", item[1][:1], row_exc)
            return
        self.batches_committed += 1

    # -- degraded: spool, retry ---------------------------------------------------------

    def _degrade(self, reason: str, rows: int) -> None:
        self.write_failures += 1
        STORE_WRITE_ERRORS.labels("store_refused").inc()
        if self.degraded is None:
            where = (f"spooling call-log rows to {self.spool.path} until it recovers"
                     if self.spool is not None else "no spool configured: rows are dropped")
            logger.error("the store refuses call-log writes (%s): %s; %d rows affected",
                         reason, where, rows)
        self.degraded = reason
        self._next_retry = time.monotonic() + self.retry_s

    def _set_aside(self, batch: list[tuple[int, tuple[Any, ...]]]) -> None:
        """Rows the store cannot take now: into the spool (or memory while it fails)."""
        if self.spool is None:
            self.rows_dropped += len(batch)
            STORE_WRITE_ERRORS.labels("call_row").inc(len(batch))
            return
        self._held.extend(batch)
        try:
            self.rows_spooled += self.spool.append(self._held)
        except OSError as exc:
            logger.error("cannot write the call-log spool %s (%s): %d rows held in memory",
                         self.spool.path, exc.strerror or exc, len(self._held))
            if len(self._held) > MAX_HELD_ROWS:
                lost = len(self._held) - MAX_HELD_ROWS
                del self._held[:lost]
                self.rows_dropped += lost
                STORE_WRITE_ERRORS.labels("call_row").inc(lost)
                logger.error("dropped the %d oldest call-log rows: neither the store nor the"
                             " spool takes them", lost)
            return
        self._held.clear()

    def _retry(self, conn: sqlite3.Connection) -> sqlite3.Connection:
        """Write the spool (and held rows) to the store in one transaction; on success the
        writer is healthy again. A fresh connection each time: a remounted or replaced
        file needs one."""
        self._next_retry = time.monotonic() + self.retry_s
        try:
            fresh = self._connect_fn()
        except sqlite3.Error as exc:
            self._degrade(str(exc), self.spool_depth)
            return conn
        conn.close()
        conn = fresh
        try:
            rows = (self.spool.read() if self.spool is not None else []) + self._held
        except OSError as exc:
            self._degrade(f"cannot read the spool: {exc}", self.spool_depth)
            return conn
        try:
            if rows:
                self._write_batch(conn, rows)
        except sqlite3.Error as exc:
            self._degrade(str(exc), len(rows))
            return conn
        self._held.clear()
        if self.spool is not None:
            try:
                self.spool.clear()
            except OSError as exc:  # written, but still listed: a later replay is harmless
                self._degrade(f"cannot empty the spool: {exc}", 0)
                return conn
        logger.warning("the store takes call-log writes again: wrote %d spooled rows", len(rows))
        self.degraded = None
        return conn

    def _write_batch(self, conn: sqlite3.Connection, batch: list[tuple[int, tuple[Any, ...]]]) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            for kind, rows in statement_runs(batch):
                conn.executemany(_STATEMENTS[kind], rows)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        self.rows_committed += len(batch)

    def _run_job(self, conn: sqlite3.Connection, job: Callable[[sqlite3.Connection], Any], future: Future[Any]) -> None:
        if not future.set_running_or_notify_cancel():
            return

        def attempt() -> Any:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = job(conn)
                conn.execute("COMMIT")
                return result
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

        try:
            future.set_result(self._with_busy_retry(conn, attempt))
        except BaseException as exc:  # handed to the caller, who raises it
            if isinstance(exc, sqlite3.Error) and not isinstance(exc, sqlite3.IntegrityError):
                STORE_WRITE_ERRORS.labels("job").inc()
            future.set_exception(exc)

    def _with_busy_retry(self, conn: sqlite3.Connection, fn: Callable[[], T]) -> T:
        """Run ``fn``; while another process holds the write lock, wait and retry."""
        started = time.monotonic()
        while True:
            try:
                return fn()
            except sqlite3.OperationalError as exc:
                waited = time.monotonic() - started
                if not _is_busy(exc) or waited > BUSY_GIVE_UP_S:
                    raise
                logger.warning("store is locked by another writer (%.1f s so far); retrying", waited)
                time.sleep(BUSY_RETRY_S)
