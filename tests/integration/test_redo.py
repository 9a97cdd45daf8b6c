"""A call id reused after a restart, against the sandbox Asterisk: outguard is killed
(SIGKILL, at the armed fault point ``after_decision``) after a decision is made and its
call-log row committed, but before it is carried out. The channel is screened again by the
next outguard (ARI: still waiting in Stasis, screened at the reconcile; FastAGI: the
dialplan retries while outguard gives no answer). The first decision blocked the number
(on the do-not-call list), which is taken off the list before the restart: the call goes
out, and the call log ends with ONE row for it, the second decision's, closed by the
hangup handler's outcome (cause 16, answered)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from outguard import faults, sandbox
from outguard.store.sqlite import SQLiteStore
from outguard.testing import sipp
from tests.integration.conftest import callee_hangs_up, carrier_legs
from tests.integration.test_restart import OutguardProcess
from tests.waiting import eventually

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NUMBER = "13800138077"
#: mode -> (the SIPp agent: the sandbox dialplan's variant, outguard serve --only)
MODES = {
    "ari-continue": ("agent", "ari,ami,api"),
    "fastagi": ("agent-agi-retry", "agi,ami,api"),  # retries while outguard is away
}


def listed(db: Path, on: bool) -> None:
    """Put the number on (or take it off) the do-not-call list, outguard stopped."""
    store = SQLiteStore(db)
    try:
        if on:
            store.create_list("dnc", "dnc")
            store.add_entries("dnc", [NUMBER])
        else:
            store.remove_entries("dnc", [NUMBER])
    finally:
        store.close()


@pytest.mark.parametrize("mode", list(MODES))
async def test_a_decision_never_carried_out_is_replaced_by_the_next_outguards(
    clean_pbx: sandbox.Sandbox, tmp_path: Path, mode: str,
) -> None:
    agent, parts = MODES[mode]
    inst = clean_pbx.inst
    og = OutguardProcess(clean_pbx, tmp_path, parts)
    listed(og.db, on=True)
    og.env[faults.ENV] = faults.AFTER_DECISION
    og.start()
    try:
        with sipp.Carrier(inst, hold_ms=1000, limit_s=120):
            call = asyncio.ensure_future(asyncio.to_thread(
                sipp.place_calls, inst, NUMBER, from_user=agent, account="a-redo",
                timeout_s=90))
            proc = og.proc
            assert proc is not None
            await eventually(lambda: proc.poll() is not None,
                             "outguard to die at the fault point", timeout=60)
            first = og.rows()
            assert [(r["verdict"], r["reason"]) for r in first] == [("block", "dnc_listed")], (
                og.output())
            restarted = time.time()
            listed(og.db, on=False)
            del og.env[faults.ENV]
            og.start()
            run = await call
        assert run.finals() == [200], og.output()
        await eventually(lambda: all(r["ended_at"] for r in og.rows()), "the row closed")
        rows = og.rows()
        assert len(rows) == 1, rows
        row = rows[0]
        assert row["decision_id"] == first[0]["decision_id"]  # the channel's unique id
        assert (row["verdict"], row["reason"], row["cause"], row["end_note"]) == (
            "allow", "ok", 16, None), row
        assert row["at"] >= restarted and row["answered_at"] is not None, row
        assert row["duration"] is not None and row["duration"] > 0.5, row
    finally:
        og.stop()


@pytest.mark.parametrize(("mode", "fail_mode"), [("ari-continue", "closed"),
                                                 ("fastagi", "open")])
async def test_a_failed_calls_row_is_durable_before_the_failure_policy_is_carried_out(
    clean_pbx: sandbox.Sandbox, tmp_path: Path, mode: str, fail_mode: str,
) -> None:
    """Screening fails (the armed engine error) and outguard is killed the instant before
    it carries the failure policy out, committing nothing more: the row is there, verdict
    failed. The next outguard screens the channel again and its decision replaces it."""
    agent, parts = MODES[mode]
    inst = clean_pbx.inst
    og = OutguardProcess(clean_pbx, tmp_path, parts)
    og.env[faults.ENV] = f"{faults.SCREENING_ERROR},{faults.AFTER_FAILURE}"
    og.start()
    try:
        with sipp.Carrier(inst, hold_ms=1000, limit_s=120):
            call = asyncio.ensure_future(asyncio.to_thread(
                sipp.place_calls, inst, NUMBER, from_user=agent, account="a-failed",
                fail_mode=fail_mode, timeout_s=90))
            proc = og.proc
            assert proc is not None
            await eventually(lambda: proc.poll() is not None,
                             "outguard to die at the fault point", timeout=60)
            first = og.rows()
            assert [(r["verdict"], r["rule"], r["reason"]) for r in first] == [
                ("failed", f"fail-{fail_mode}", "screening_error")], og.output()
            del og.env[faults.ENV]
            og.start()
            run = await call
        assert run.finals() == [200], og.output()
        await eventually(lambda: all(r["ended_at"] for r in og.rows()), "the row closed")
        rows = og.rows()
        assert [(r["decision_id"], r["verdict"], r["cause"]) for r in rows] == [
            (first[0]["decision_id"], "allow", 16)], rows
    finally:
        og.stop()


@pytest.mark.parametrize("first_blocked", [True, False], ids=["undone-block", "undone-allow"])
async def test_a_decision_never_carried_out_without_a_retry_is_logged_as_what_was_done(
    clean_pbx: sandbox.Sandbox, tmp_path: Path, first_blocked: bool,
) -> None:
    """FastAGI with no retry (OUTGUARD_AGI_RETRIES unset): outguard is killed after
    deciding (and logging) the call, before answering; the dialplan's failure branch lets
    the call out unscreened (OUTGUARD_FAIL_MODE=open). The next outguard is up before the
    call ends and hears the hangup handler's event (Verdict: unscreened, no decision id on
    the channel): the decision's row becomes what was done (failed, fail-open,
    decision_not_carried_out), closed by the real outcome, and the call counts."""
    inst = clean_pbx.inst
    og = OutguardProcess(clean_pbx, tmp_path, "agi,ami,api")
    if first_blocked:
        listed(og.db, on=True)
    og.env[faults.ENV] = faults.AFTER_DECISION
    og.start()
    try:
        with sipp.Carrier(inst, callee_hangs_up=False, limit_s=120):
            call = asyncio.ensure_future(asyncio.to_thread(
                sipp.place_calls, inst, NUMBER, from_user="agent-agi", account="a-undone",
                fail_mode="open", timeout_s=90))
            proc = og.proc
            assert proc is not None
            await eventually(lambda: proc.poll() is not None,
                             "outguard to die at the fault point", timeout=60)
            first = og.rows()
            assert [r["verdict"] for r in first] == [
                "block" if first_blocked else "allow"], og.output()
            del og.env[faults.ENV]
            og.start()  # up (AMI connected) while the unscreened call is still connected
            await eventually(lambda: next(iter(carrier_legs(clean_pbx)), {}).get("state")
                             == "Up", "the unscreened call to be answered")
            callee_hangs_up(clean_pbx, next(iter(carrier_legs(clean_pbx))))
            run = await call
        assert run.finals() == [200], og.output()
        await eventually(lambda: [r["reason"] for r in og.rows()] == ["decision_not_carried_out"]
                         and og.rows()[0]["ended_at"], "the row corrected and closed")
        rows = og.rows()
        assert len(rows) == 1, rows
        row = rows[0]
        assert row["decision_id"] == first[0]["decision_id"]
        assert (row["verdict"], row["rule"], row["cause"], row["end_note"]) == (
            "failed", "fail-open", 16, None), (row, og.output())
        assert row["answered_at"] is not None and row["duration"] is not None, row
        assert "was never carried out" in og.output()
        await eventually(lambda: (og.health() or {}).get("live_calls") == 0,
                         "the call to be released")
    finally:
        og.stop()
