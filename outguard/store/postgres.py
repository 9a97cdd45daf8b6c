"""PostgresStore: the store on a PostgreSQL server, for several outguard instances.

The same ``Store`` as ``SQLiteStore``, with the same statements (``pgconn`` translates the
dialect) and the same threads: one writer connection commits jobs and call-log batches;
each reading thread keeps an autocommit connection for point reads; streams (snapshot
source, call-log replay, exports) get a REPEATABLE READ connection with server-side
cursors of their own (a reader that begins a transaction explicitly, the snapshot loader,
locks ``list_entries`` first: see ``open_reader``). Imports stream the file with COPY and
build a list's entries in bulk, in one transaction, all or nothing
(``outguard.store.pg_imports``).

Opened by URL: ``open_store("postgresql://user@host:5432/db")`` (``outguard.store.open_store``).
"""

from __future__ import annotations

import logging
import re
import threading
from pathlib import Path
from typing import Any

import psycopg

from outguard.errors import StoreError
from outguard.store import pg_imports, pg_schema
from outguard.store.base import ChangeCallback
from outguard.store.imports import Staging
from outguard.store.pgconn import PgConnection, translated
from outguard.store.spool import Spool
from outguard.store.sqlite import SQLiteStore
from outguard.store.writer import Writer

logger = logging.getLogger(__name__)



def redact(url: str) -> str:
    """The URL without its password (for messages and logs)."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


class PostgresStore(SQLiteStore):
    """The ``Store`` on PostgreSQL. Open with ``PostgresStore(url)``; close it."""

    engine = "postgresql"

    def __init__(self, url: str, *, batch_rows: int = 500, batch_interval: float = 0.05,
                 connect_timeout_s: float = 5.0, busy_timeout_s: float | None = None,
                 spool_dir: str | Path | None = None, retry_s: float = 1.0) -> None:
        """``spool_dir``: a local directory where call-log rows wait, on disk, while
        PostgreSQL cannot take them (see ``outguard.store.spool``); without it they are
        dropped and counted."""
        self.url = url
        self.path = redact(url)
        self._connect_timeout_s = connect_timeout_s
        self._busy_timeout_s = connect_timeout_s
        self._closed = False
        try:
            conn = PgConnection(url, connect_timeout=connect_timeout_s)
        except Exception as exc:
            raise StoreError(f"cannot open store {self.path}: {exc}", path=self.path) from exc
        try:
            pg_schema.migrate(conn.raw)
        except psycopg.Error as exc:
            raise StoreError(f"cannot migrate store {self.path}: {exc}", path=self.path) from exc
        finally:
            conn.close()
        self._writer = Writer(
            self.path, batch_rows=batch_rows, batch_interval=batch_interval,
            spool=Spool(spool_dir) if spool_dir is not None else None, retry_s=retry_s,
            connect_fn=lambda: PgConnection(url, connect_timeout=connect_timeout_s,
                                            application_name="outguard-writer"),
        )
        self._writer.start()
        self._local = threading.local()
        self._readers: list[Any] = []
        self._lock = threading.Lock()
        self._subscribers: list[ChangeCallback] = []
        self._seen_version = self.data_version()
        self._stop = threading.Event()
        self._listening = threading.Event()
        self._listener = threading.Thread(target=self._listen, name="outguard-pg-listen",
                                          daemon=True)
        self._listener.start()

    # -- change notification: LISTEN/NOTIFY ------------------------------------------------

    def _listen(self) -> None:
        """Hear every data_version bump committed anywhere (a trigger NOTIFYs) and tell the
        subscribers; after a lost connection, reconnect and catch up by polling once."""
        backoff = 0.2
        while not self._stop.is_set():
            try:
                conn = psycopg.connect(self.url, autocommit=True,
                                       connect_timeout=max(1, int(self._connect_timeout_s)),
                                       application_name="outguard-listen")
            except psycopg.Error as exc:
                logger.warning("store %s: cannot listen for changes (%s); retrying", self.path,
                               exc)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            try:
                conn.execute(f"LISTEN {pg_schema.NOTIFY_CHANNEL}")
                self._listening.set()
                self.check_external_changes()  # whatever changed while we were not listening
                backoff = 0.2
                while not self._stop.is_set():
                    for note in conn.notifies(timeout=0.5):
                        try:
                            self._notify(int(note.payload))
                        except ValueError:
                            logger.warning("odd change notification %r", note.payload)
            except psycopg.Error as exc:
                if not self._stop.is_set():
                    logger.warning("store %s: change listener lost its connection (%s)",
                                   self.path, exc)
            except StoreError as exc:
                logger.warning("store %s: %s", self.path, exc)
            finally:
                self._listening.clear()
                conn.close()

    def wait_listening(self, timeout: float = 10.0) -> bool:
        """True once the change listener is connected (for tests and start-up)."""
        return self._listening.wait(timeout)

    def close(self) -> None:
        self._stop.set()
        if self._listener.is_alive() and self._listener is not threading.current_thread():
            self._listener.join(10.0)
        super().close()

    def __enter__(self) -> PostgresStore:
        return self

    def open_reader(self) -> Any:
        """A new streaming read connection (one REPEATABLE READ snapshot; caller closes).

        A reader that runs ``BEGIN`` (several statements on one snapshot: the snapshot
        loader) takes ``ACCESS SHARE`` on ``list_entries`` before its snapshot: an import
        swaps a list's leaf table, which is not MVCC-safe (a snapshot taken before the swap
        would read the new leaf as empty), so the reader waits for an import in flight, and
        an import waits for the reader."""
        if self._closed:
            raise StoreError("the store is closed")
        return PgConnection(self.url, stream=True, connect_timeout=self._connect_timeout_s,
                            application_name="outguard-reader", begin_locks=("list_entries",))

    def _reader(self) -> Any:
        conn: PgConnection | None = getattr(self._local, "conn", None)
        if conn is not None and conn.broken:
            with self._lock:
                if conn in self._readers:
                    self._readers.remove(conn)
            conn.close()
            conn = None
        if conn is None:
            if self._closed:
                raise StoreError("the store is closed")
            try:
                conn = PgConnection(self.url, connect_timeout=self._connect_timeout_s,
                                    application_name="outguard-reader")
            except Exception as exc:
                raise StoreError(f"store read failed: {exc}") from exc
            with self._lock:
                if self._closed:  # closed while we connected: nobody would close it
                    conn.close()
                    raise StoreError("the store is closed")
                self._readers.append(conn)
            self._local.conn = conn
        return conn

    def open_import(self) -> tuple[Any, Staging]:
        return pg_imports.open_import(self.url, self._connect_timeout_s)

    def _drop_entries(self, conn: Any, lid: int) -> int:
        return pg_imports.drop_entries(conn, lid)
