"""A psycopg connection that speaks the store's SQL dialect (sqlite3's DB-API shape).

The store's statements are written once, for both engines: ``?`` placeholders,
``INSERT OR IGNORE``, ``cursor.lastrowid``, rows readable by index and by column name,
``BEGIN IMMEDIATE``, and sqlite3's exception classes. ``PgConnection`` translates each
statement once (cached) and each psycopg error into the sqlite3 class of the same meaning,
so the mixins (parties, lists, enforcement), the writer thread and the snapshot loader run
unchanged on PostgreSQL. Anything PostgreSQL-only (COPY, LISTEN, advisory locks) goes
through ``raw``.
"""

from __future__ import annotations

import contextlib
import functools
import re
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import psycopg
from psycopg import errors as pg_errors

from outguard.store.pg_schema import serial_tables

# Tables whose primary key is a generated integer ``id``: an INSERT returns it (lastrowid).
# Read from the migrations, so that a new table cannot be forgotten here.
SERIAL_TABLES = serial_tables()
_INSERT = re.compile(r"^\s*INSERT\s+(OR\s+IGNORE\s+)?INTO\s+([A-Za-z_.]+)", re.IGNORECASE)


class Row(tuple):  # type: ignore[type-arg]
    """A result row: a tuple that also answers ``row["column"]`` (like sqlite3.Row)."""

    _names: dict[str, int]

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return tuple.__getitem__(self, self._names[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._names)


def _row_factory(cursor: psycopg.Cursor[Any]) -> Any:
    desc = cursor.description
    if desc is None:
        return lambda values: values
    names = {col.name: i for i, col in enumerate(desc)}
    cls = type("Row", (Row,), {"_names": names, "__slots__": ()})
    return lambda values: tuple.__new__(cls, values)


@functools.lru_cache(maxsize=1024)
def translate(sql: str) -> tuple[str, bool]:
    """The PostgreSQL text of a store statement, and whether it returns a generated id."""
    text = sql.strip()
    upper = text.upper()
    if upper in ("BEGIN IMMEDIATE", "BEGIN DEFERRED", "BEGIN EXCLUSIVE"):
        return "BEGIN", False
    text = text.replace("%", "%%").replace("?", "%s").replace("temp.staging", "staging")
    returns_id = False
    match = _INSERT.match(text)
    if match:
        if match.group(1):
            text = _INSERT.sub(lambda m: f"INSERT INTO {m.group(2)}", text, count=1)
            text += " ON CONFLICT DO NOTHING"
        if match.group(2) in SERIAL_TABLES and "RETURNING" not in upper:
            text += " RETURNING id"
            returns_id = True
    return text, returns_id


def _translate_error(exc: psycopg.Error) -> sqlite3.Error:
    message = str(exc).strip()
    if isinstance(exc, pg_errors.IntegrityError):
        return sqlite3.IntegrityError(message)
    if isinstance(exc, psycopg.OperationalError | pg_errors.LockNotAvailable
                  | pg_errors.ReadOnlySqlTransaction | pg_errors.DiskFull
                  | pg_errors.AdminShutdown | pg_errors.CannotConnectNow):
        error = sqlite3.OperationalError(message)
        # the server cannot take writes now (unreachable, shutting down, read-only, full):
        # the writer spools instead of dropping (outguard.store.writer.is_store_fault)
        error.store_fault = True  # type: ignore[attr-defined]
        return error
    if isinstance(exc, psycopg.ProgrammingError | pg_errors.SyntaxError):
        return sqlite3.ProgrammingError(message)
    return sqlite3.DatabaseError(message)


@contextlib.contextmanager
def translated() -> Iterator[None]:
    """Raise psycopg errors from the block as their sqlite3 counterparts."""
    try:
        yield
    except psycopg.Error as exc:
        raise _translate_error(exc) from exc


class PgCursor:
    """The part of sqlite3.Cursor the store uses."""

    def __init__(self, cur: psycopg.Cursor[Any], lastrowid: int | None = None) -> None:
        self._cur = cur
        self.lastrowid = lastrowid

    @property
    def rowcount(self) -> int:
        return self._cur.rowcount

    def fetchone(self) -> Any:
        try:
            return self._cur.fetchone()
        except psycopg.Error as exc:
            raise _translate_error(exc) from exc

    def fetchall(self) -> list[Any]:
        try:
            return self._cur.fetchall()
        except psycopg.Error as exc:
            raise _translate_error(exc) from exc

    def fetchmany(self, size: int) -> list[Any]:
        try:
            return self._cur.fetchmany(size)
        except psycopg.Error as exc:
            raise _translate_error(exc) from exc

    def __iter__(self) -> Iterator[Any]:
        while rows := self.fetchmany(2000):
            yield from rows

    def close(self) -> None:
        self._cur.close()


class PgConnection:
    """A psycopg connection behind sqlite3's interface; see the module docstring.

    ``stream=True`` (for readers that walk millions of rows): the connection stays in one
    REPEATABLE READ, READ ONLY transaction from its first statement, and SELECTs run
    through server-side cursors fetched in chunks; ``BEGIN`` then only locks the
    ``begin_locks`` tables in ACCESS SHARE mode, before the transaction's snapshot.
    """

    def __init__(self, url: str, *, stream: bool = False, connect_timeout: float = 5.0,
                 application_name: str = "outguard", begin_locks: Sequence[str] = ()) -> None:
        self._url, self._timeout, self._app = url, connect_timeout, application_name
        self.stream = stream
        self._begin_locks = tuple(begin_locks)
        self._server_cursors: list[Any] = []
        self.raw: psycopg.Connection[Any] = self._connect()
        self._cursors = 0
        if stream:
            self.raw.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            self.raw.read_only = True
        self.row_factory: Any = None  # accepted and ignored: rows always have names

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            return psycopg.connect(
                self._url, autocommit=not self.stream, row_factory=_row_factory,
                connect_timeout=max(1, int(self._timeout)), application_name=self._app,
            )
        except psycopg.Error as exc:
            raise _translate_error(exc) from exc

    def reconnect(self) -> None:
        """Replace a broken connection (between transactions only)."""
        self.close()
        self.raw = self._connect()

    # -- sqlite3.Connection's surface ------------------------------------------------------

    @property
    def in_transaction(self) -> bool:
        status = self.raw.info.transaction_status
        return status != psycopg.pq.TransactionStatus.IDLE

    @property
    def broken(self) -> bool:
        return self.raw.broken or self.raw.closed

    def execute(self, sql: str, params: Sequence[Any] | Iterable[Any] = ()) -> PgCursor:
        text, returns_id = translate(sql)
        if self.stream:
            if text == "BEGIN":  # the connection's transaction begins with its first SELECT
                locker = self.raw.cursor()
                for table in self._begin_locks:  # before the snapshot: LOCK takes none
                    try:
                        locker.execute(f"LOCK TABLE {table} IN ACCESS SHARE MODE")
                    except psycopg.Error as exc:
                        raise _translate_error(exc) from exc
                return PgCursor(locker)
            if text.lstrip().upper().startswith("SELECT"):
                self._cursors += 1
                cur: Any = self.raw.cursor(name=f"og_stream_{self._cursors}")
                cur.itersize = 5000
                self._server_cursors.append(cur)
                try:
                    cur.execute(text, tuple(params))
                except psycopg.Error as exc:
                    raise _translate_error(exc) from exc
                return PgCursor(cur)
        if text == "BEGIN" and self.broken:
            self.reconnect()
        cur = self.raw.cursor()
        try:
            cur.execute(text, tuple(params), prepare=False)
        except psycopg.Error as exc:
            raise _translate_error(exc) from exc
        lastrowid = None
        if returns_id and cur.description is not None:
            row = cur.fetchone()
            lastrowid = None if row is None else int(row[0])
        return PgCursor(cur, lastrowid)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> PgCursor:
        text, _ = translate(sql)
        if text.endswith(" RETURNING id"):
            text = text[: -len(" RETURNING id")]
        cur = self.raw.cursor()
        try:
            cur.executemany(text, [tuple(r) for r in rows])
        except psycopg.Error as exc:
            raise _translate_error(exc) from exc
        return PgCursor(cur)

    def commit(self) -> None:
        try:
            self.raw.commit()
        except psycopg.Error as exc:
            raise _translate_error(exc) from exc

    def close(self) -> None:
        cursors, self._server_cursors = self._server_cursors, []
        for cur in cursors:
            try:
                cur.close()
            except psycopg.Error:
                pass
        try:
            self.raw.close()
        except psycopg.Error:
            pass
