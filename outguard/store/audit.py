"""Statements every change runs inside its own transaction: the version bump and audit."""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any


def bump_version(conn: sqlite3.Connection) -> int:
    """Increment data_version inside the caller's transaction; return the new value."""
    row = conn.execute(
        "UPDATE meta SET value = value + 1 WHERE key = 'data_version' RETURNING value"
    ).fetchone()
    return int(row[0])


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, default=str, ensure_ascii=False)


def write_audit(
    conn: sqlite3.Connection,
    actor: str,
    action: str,
    *,
    party_kind: str | None = None,
    party_key: str | None = None,
    before: Any = None,
    after: Any = None,
    at: float | None = None,
) -> int:
    """Append one audit record (who, what, party, before/after JSON) in the transaction."""
    cur = conn.execute(
        "INSERT INTO audit (at, actor, action, party_kind, party_key, before, after)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (time.time() if at is None else at, actor, action, party_kind, party_key,
         _json(before), _json(after)),
    )
    return int(cur.lastrowid or 0)
