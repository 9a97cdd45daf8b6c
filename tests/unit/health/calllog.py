"""A call log in which one caller ID's connect rate falls from 50% (a week, 60 calls a
day) to 10% over the last 24 hours (``recent`` calls): the story the health tests tell."""

from __future__ import annotations

import time
import uuid
from typing import Any

from outguard.store.base import CallRecord

CID = "+861088886666"
DAY = 86400.0


def log_calls(store: Any, *, start: float, span: float, calls: int, answered: int,
              caller_id: str = CID) -> None:
    for i in range(calls):
        at = start + i * span / calls
        decision_id = uuid.uuid4().hex
        store.record_decision(CallRecord(
            decision_id=decision_id, channel_id="", adapter="ari", tenant="t1", account="a1",
            caller_id=caller_id, destination=f"+86139{i:08d}", verdict="allow", rule="",
            reason="ok", shadow=(), decision_us=10, at=at))
        ok = i < answered
        store.record_outcome(decision_id, answered_at=at + 5 if ok else None,
                             ended_at=at + 65 if ok else at + 30,
                             duration=60.0 if ok else 0.0, cause=16)


def dropped(store: Any, *, recent: int = 60, now: float | None = None,
            caller_id: str = CID) -> None:
    """A week at 50%, then ``recent`` calls at 10% within the last 24 hours."""
    now = time.time() if now is None else now
    for d in range(7, 0, -1):
        log_calls(store, start=now - (d + 1) * DAY + 7200, span=DAY - 14400, calls=60,
                  answered=30, caller_id=caller_id)
    # clear of the window's first hour (counted with the baseline: figures are hourly)
    log_calls(store, start=now - DAY + 7200, span=DAY - 10800, calls=recent,
              answered=recent // 10, caller_id=caller_id)
    store.flush()
