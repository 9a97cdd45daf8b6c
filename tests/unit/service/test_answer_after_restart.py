"""The hangup handler's figures close a call restored after a restart, whatever answer the
reconcile recorded: outguard was killed before the call's answer reached the call log, the
next process's reconcile finds the continue-mode channel up and records the time it first
saw it (later than the answer), and the handler's event, from Asterisk's own figures (Dial's
talk time and the handler's time), gives the real answer and duration. Once, on a loaded
host, a call held 6.13 s was logged as 0.592 s (the time from the reconcile to the
hangup): tests/integration/test_restart.py, continue mode, kill -9."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from agi.outcomes import OutcomeTracker
from outguard.live import DEFAULT_PBX
from tests.unit.service.test_not_carried_out import UID, event
from tests.unit.service.test_redo import died, facts, started
from tests.unit.service.test_restart import Clock


async def test_a_restored_calls_duration_is_the_handlers_not_the_reconciles(
    tmp_path: Path,
) -> None:
    path, clock = tmp_path / "og.db", Clock()
    screener = await started(path, clock)
    decision = screener.screen(facts(UID))  # ARI continue: allowed, continued
    clock.t += 0.5  # answered now; outguard is killed before it hears of it
    answered = clock.t
    await died(screener)
    clock.t += 5
    screener = await started(path, clock)
    try:
        screener.answered(decision.id)  # the reconcile: the channel is up (since when?)
        clock.t += 0.6
        tracker = OutcomeTracker(screener, pbx=DEFAULT_PBX)
        tracker.on_event(event("allow", decision.id, talked_ms=5600, at=clock.t))
        await screener.store.flush_async()
        conn = sqlite3.connect(path)
        try:
            row = conn.execute("SELECT answered_at, ended_at, duration, cause FROM calls"
                               ).fetchone()
        finally:
            conn.close()
        assert row == (answered, clock.t, 5.6, 16)
        assert screener.live_calls() == 0
    finally:
        await died(screener)
