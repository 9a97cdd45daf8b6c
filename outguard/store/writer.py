"""The single writer: one thread owns the write connection.

Call-log rows are enqueued without blocking (``SimpleQueue.put``) and committed in batches
(up to ``batch_rows`` rows, or ``batch_interval`` seconds after the first pending row).
Other writes are jobs: a function of the connection run inside ``BEGIN IMMEDIATE`` ...
``COMMIT`` on the writer thread, in queue order, whose result comes back in a Future.

"Acknowledged" means committed: ``flush()`` returns (and its Future resolves) only once
every row enqueued before it is in a committed transaction. With WAL and
``synchronous=NORMAL`` a committed transaction survives the process being killed; a power
cut may lose the last transactions before a checkpoint.
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

logger = logging.getLogger(__name__)

T = TypeVar("T")

INSERT_CALL = (
    "INSERT OR IGNORE INTO calls (decision_id, channel_id, adapter, tenant, account,"
    " caller_id, destination, verdict, rule, reason, shadow, decision_us, at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
UPDATE_OUTCOME = (
    "UPDATE calls SET answered_at = ?, ended_at = ?, duration = ?, cause = ?"
    " WHERE decision_id = ?"
)

_CALL, _OUTCOME, _JOB, _FLUSH, _STOP = range(5)
BUSY_RETRY_S = 0.05
BUSY_GIVE_UP_S = 60.0


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


class Writer:
    """Owns the write connection on a dedicated thread; see the module docstring."""

    def __init__(
        self,
        path: str,
        *,
        batch_rows: int = 500,
        batch_interval: float = 0.05,
        busy_timeout_s: float = 5.0,
    ) -> None:
        self.path = path
        self.batch_rows = batch_rows
        self.batch_interval = batch_interval
        self._busy_timeout_s = busy_timeout_s
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

    def enqueue_call(self, row: tuple[Any, ...]) -> None:
        self._check_open()
        self._queue.put((_CALL, row))

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

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("the store writer is closed")

    # -- the thread --------------------------------------------------------------------

    def _run(self, ready: Future[None]) -> None:
        try:
            conn = connect(self.path, timeout_s=self._busy_timeout_s)
        except sqlite3.Error as exc:
            ready.set_exception(StoreError(f"cannot open {self.path}: {exc}"))
            return
        ready.set_result(None)
        try:
            self._loop(conn)
        except BaseException:
            STORE_WRITE_ERRORS.labels("writer").inc()
            logger.exception("store writer stopped unexpectedly")
            self._closed = True
            self._fail_queued()
        finally:
            conn.close()

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
            elif item[0] in (_CALL, _OUTCOME):
                self.rows_dropped += 1

    def _loop(self, conn: sqlite3.Connection) -> None:
        pending: list[tuple[int, tuple[Any, ...]]] = []
        deadline = 0.0
        while True:
            timeout = None if not pending else max(0.0, deadline - time.monotonic())
            try:
                item = self._queue.get(timeout=timeout)
            except queue.Empty:
                self._commit_rows(conn, pending)
                continue
            kind = item[0]
            if kind in (_CALL, _OUTCOME):
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
                item[1].set_result(self.rows_committed)
            elif kind == _STOP:
                return

    def _commit_rows(self, conn: sqlite3.Connection, pending: list[tuple[int, tuple[Any, ...]]]) -> None:
        if not pending:
            return
        batch = list(pending)
        pending.clear()
        try:
            self._with_busy_retry(conn, lambda: self._write_batch(conn, batch))
        except sqlite3.Error as exc:
            STORE_WRITE_ERRORS.labels("call_batch").inc()
            logger.error("call-log batch of %d rows failed (%s); writing row by row", len(batch), exc)
            for item in batch:
                try:
                    self._with_busy_retry(conn, functools.partial(self._write_batch, conn, [item]))
                except sqlite3.Error as row_exc:
                    self.rows_dropped += 1
                    STORE_WRITE_ERRORS.labels("call_row").inc()
                    logger.error("call-log row %r dropped: %s", item[1][:1], row_exc)
            return
        self.batches_committed += 1

    def _write_batch(self, conn: sqlite3.Connection, batch: list[tuple[int, tuple[Any, ...]]]) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            run: list[tuple[Any, ...]] = []
            run_kind = batch[0][0]
            for kind, row in batch:  # keep order: an outcome follows its decision
                if kind != run_kind:
                    conn.executemany(INSERT_CALL if run_kind == _CALL else UPDATE_OUTCOME, run)
                    run, run_kind = [], kind
                run.append(row)
            conn.executemany(INSERT_CALL if run_kind == _CALL else UPDATE_OUTCOME, run)
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
