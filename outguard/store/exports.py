"""Streamed CSV and JSON exports of lists, the call log and the audit trail.

Rows are read with a cursor and written one at a time: exporting ten million entries uses
constant memory. JSON is one array, written element by element.
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TextIO

from outguard.errors import InvalidInput
from outguard.store.base import to_dt, to_ts

if TYPE_CHECKING:
    from outguard.store.sqlite import SQLiteStore

logger = logging.getLogger(__name__)

EXPORT_FORMATS = ("csv", "json")
LIST_COLUMNS = ("e164", "expires_at", "created_at", "source", "reason", "evidence")
CALL_COLUMNS = (
    "decision_id", "channel_id", "adapter", "tenant", "account", "caller_id", "destination",
    "verdict", "rule", "reason", "shadow", "decision_us", "at", "answered_at", "ended_at",
    "duration", "cause", "end_note", "pbx",
)
AUDIT_COLUMNS = ("id", "at", "actor", "action", "party_kind", "party_key", "before", "after")
TIME_COLUMNS = frozenset({"at", "expires_at", "created_at", "answered_at", "ended_at"})


def _iso(value: Any) -> Any:
    dt = to_dt(value) if isinstance(value, (int, float)) else value
    return dt.isoformat() if isinstance(dt, datetime) else value


def write_rows(out: TextIO, fmt: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """Write rows as CSV (with a header) or a JSON array of objects; return the row count.

    Time columns (epoch seconds in the database) are written as ISO 8601 UTC.
    """
    if fmt not in EXPORT_FORMATS:
        raise InvalidInput(f"export format must be one of {', '.join(EXPORT_FORMATS)}",
                           field="format", value=fmt)
    times = [i for i, c in enumerate(columns) if c in TIME_COLUMNS]
    n = 0
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            values = list(row)
            for i in times:
                values[i] = _iso(values[i])
            writer.writerow(values)
            n += 1
        return n
    out.write("[")
    for row in rows:
        values = list(row)
        for i in times:
            values[i] = _iso(values[i])
        out.write(",\n" if n else "\n")
        out.write(json.dumps(dict(zip(columns, values)), ensure_ascii=False))
        n += 1
    out.write("\n]\n" if n else "]\n")
    return n


def _stream(store: SQLiteStore, sql: str, params: Sequence[Any]) -> Iterator[tuple[Any, ...]]:
    conn = store.open_reader()
    try:
        cur = conn.execute(sql, params)
        while rows := cur.fetchmany(5000):
            yield from rows
    finally:
        conn.close()


def export_list(store: SQLiteStore, list_name: str, out: TextIO, fmt: str = "csv") -> int:
    lid = store.get_list(list_name).id
    rows = _stream(store, f"SELECT {', '.join(LIST_COLUMNS)} FROM list_entries"
                          " WHERE list_id = ? ORDER BY e164", (lid,))
    return write_rows(out, fmt, LIST_COLUMNS, rows)


def export_calls(store: SQLiteStore, out: TextIO, fmt: str = "csv", *,
                 since: datetime | None = None, until: datetime | None = None) -> int:
    lo = to_ts(since) if since is not None else float("-inf")
    hi = to_ts(until) if until is not None else float("inf")
    rows = _stream(store, f"SELECT {', '.join(CALL_COLUMNS)} FROM calls"
                          " WHERE at >= ? AND at < ? ORDER BY at", (lo, hi))
    return write_rows(out, fmt, CALL_COLUMNS, rows)


def export_audit(store: SQLiteStore, out: TextIO, fmt: str = "csv", *,
                 since: datetime | None = None) -> int:
    lo = to_ts(since) if since is not None else float("-inf")
    cols = ", ".join(f'"{c}"' for c in AUDIT_COLUMNS)
    raw = _stream(store, f"SELECT {cols} FROM audit WHERE at >= ? ORDER BY id", (lo,))
    if fmt == "json":  # before/after are JSON documents: nest them, do not quote them
        rows: Iterable[Sequence[Any]] = (
            (*r[:6], *(None if v is None else json.loads(v) for v in r[6:])) for r in raw
        )
    else:
        rows = raw
    return write_rows(out, fmt, AUDIT_COLUMNS, rows)
