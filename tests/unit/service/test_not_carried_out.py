"""A decision the channel never carried out, without a retry: outguard decided (and logged
"allow" or "block"), but its answer never reached the channel (outguard killed first, the
answer lost), and the dialplan's failure branch answered the call (OUTGUARD_AGI_RETRIES=0).
The hangup handler's event carries the channel's OUTGUARD_VERDICT (``Verdict``) beside the
decision id it holds; the outcome tracker sees the failure branch ran for a decision that
is not the channel's, and the Screener replaces that decision's row with what was done
(failed, the policy the dialplan applied, ``decision_not_carried_out``). Only a call that
went out counts toward the caps. The real Screener, SQLite store and tracker; the AMI
event as the hangup handler sends it."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from agi.outcomes import ENDED_EVENT, OutcomeTracker
from outguard.callevents import NOT_CARRIED_OUT, CallDecided
from outguard.live import DEFAULT_PBX
from outguard.service import Screener
from tests.unit.service.test_redo import died, facts, listed, started
from tests.unit.service.test_restart import Clock

UID = "pbx-1.1"


def event(verdict: str | None, decision_id: str = "", cause: int = 16,
          talked_ms: int | None = None, at: float = 0.0) -> dict[str, str]:
    e = {"Event": "UserEvent", "UserEvent": ENDED_EVENT, "Uniqueid": UID,
         "DecisionId": decision_id, "Cause": str(cause), "Answered": "", "Billsec": "",
         "Talked": "" if talked_ms is None else str(talked_ms), "At": f"{at:.3f}"}
    if verdict is not None:  # an older hangup handler sends no Verdict
        e["Verdict"] = verdict
    return e


def row(path: Path) -> tuple[Any, ...]:
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT decision_id, verdict, rule, reason, ended_at IS NOT NULL,"
                            " duration, cause FROM calls").fetchall()
    finally:
        conn.close()
    assert len(rows) == 1, rows
    return tuple(rows[0])


def counted(screener: Screener, clock: Clock) -> int:
    return screener.counters.attempts("account", "a1", 3600, clock.t)


async def hang_up(screener: Screener, e: dict[str, str]) -> None:
    tracker = OutcomeTracker(screener, pbx=DEFAULT_PBX)
    tracker.on_event(e)
    await tracker.corrected()
    await screener.store.flush_async()


@pytest.mark.parametrize(
    ("blocked", "applied", "expected", "counts"),
    [
        pytest.param(False, "failed", ("failed", "fail-closed", NOT_CARRIED_OUT, 1, 0.0, 34),
                     0, id="undone-allow-refused"),
        pytest.param(False, "unscreened", ("failed", "fail-open", NOT_CARRIED_OUT, 1, 5.0, 16),
                     1, id="undone-allow-let-out"),
        pytest.param(True, "unscreened", ("failed", "fail-open", NOT_CARRIED_OUT, 1, 5.0, 16),
                     1, id="undone-block-let-out"),
        pytest.param(True, "failed", ("failed", "fail-closed", NOT_CARRIED_OUT, 1, 0.0, 34),
                     0, id="undone-block-refused"),
    ],
)
@pytest.mark.parametrize("restarted", [False, True], ids=["same-process", "after-kill"])
async def test_the_failure_branchs_call_is_logged_as_what_was_done(
    tmp_path: Path, blocked: bool, applied: str, expected: tuple[Any, ...], counts: int,
    restarted: bool,
) -> None:
    path, clock = tmp_path / "og.db", Clock()
    screener = await started(path, clock)
    await screener.store.create_list("dnc", "dnc")
    await listed(screener, on=blocked)
    decision = screener.screen(facts(UID, adapter="agi", carried=""))
    assert decision.allowed is not blocked
    if restarted:  # killed before answering: the next process hears the hangup
        await died(screener)
        clock.t += 2
        screener = await started(path, clock)
    try:
        went_out = applied == "unscreened"
        cause = 16 if went_out else 34
        with screener.events.subscribe(100) as sub:
            clock.t += 7
            await hang_up(screener, event(applied, cause=cause,
                                          talked_ms=5000 if went_out else None, at=clock.t))
            decided = [e for e in (sub.queue.get_nowait() for _ in range(sub.queue.qsize()))
                       if isinstance(e, CallDecided)]
        assert row(path) == (decision.id, *expected)
        assert counted(screener, clock) == counts
        assert screener.live_calls() == 0
        assert [(e.call_id, e.verdict, e.rule, e.reason, e.redo) for e in decided] == [
            (decision.id, "failed", expected[1], NOT_CARRIED_OUT, True)]
    finally:
        await died(screener)


@pytest.mark.parametrize(
    ("e", "verdict"),
    [
        pytest.param(lambda d: event("allow", d, talked_ms=5000, at=1_800_000_010.0),
                     "allow", id="carried-out"),
        pytest.param(lambda d: event(None, "", talked_ms=5000, at=1_800_000_010.0), "allow",
                     id="older-hangup-handler"),
        pytest.param(lambda d: event("", "", cause=16), "allow",
                     id="caller-hung-up-before-any-verdict"),
    ],
)
async def test_a_decision_the_channel_holds_or_an_older_handler_changes_nothing(
    tmp_path: Path, e: Any, verdict: str,
) -> None:
    path, clock = tmp_path / "og.db", Clock()
    screener = await started(path, clock)
    try:
        decision = screener.screen(facts(UID, adapter="agi", carried=""))
        clock.t += 10
        await hang_up(screener, e(decision.id))
        assert row(path)[:4] == (decision.id, verdict, "", "ok")
        assert counted(screener, clock) == 1 and screener.live_calls() == 0
    finally:
        await died(screener)


async def test_outguards_own_failed_answer_is_not_corrected(tmp_path: Path) -> None:
    """outguard answered ``failed`` (the channel holds that row's id): the failure branch
    carried out outguard's answer; the fail-open call is closed by its outcome."""
    path, clock = tmp_path / "og.db", Clock()
    screener = await started(path, clock)
    try:
        call_id = screener.failed(facts(UID, adapter="agi", carried=""),
                                  "screening_unavailable", "fail-open")
        clock.t += 10
        await hang_up(screener, event("unscreened", call_id, talked_ms=4000, at=clock.t))
        assert row(path) == (call_id, "failed", "fail-open", "screening_unavailable", 1, 4.0,
                             16)
        assert counted(screener, clock) == 1 and screener.live_calls() == 0
    finally:
        await died(screener)
