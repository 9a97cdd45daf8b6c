"""Caller-ID health on the real Asterisk: a caller ID that callees answered half the time
for a week stops being answered; after a few real calls the warning opens a remediation
task and halves its daily cap, so its next call over the reduced cap is refused at the
phone with the cap's cause (SIP 503) and never reaches the carrier; closing the task makes
the cap whole and calls flow again. No other caller ID is ever proposed or used."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from outguard import sandbox
from outguard.server import Parts
from outguard.store import open_store
from outguard.testing import sipp
from rules.model import PartyKind
from tests.integration.conftest import POLICIES, Running, settings_for, start_outguard
from tests.waiting import eventually
from tests.unit.health.calllog import CID, DAY, log_calls

pytestmark = pytest.mark.integration

CALLER_ID = "01088886666"  # what the agent phone presents (+861088886666)


@pytest.fixture
async def healthy_week(
    clean_pbx: sandbox.Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Running]:
    db = tmp_path / "outguard.db"
    with open_store(db) as store:
        store.create_tenant("t1", "Tenant one")
        store.create_account("a1", "t1")
        now = time.time()
        for d in range(7, 0, -1):  # a week of history at 50%, ending a day ago
            log_calls(store, start=now - (d + 1) * DAY + 7200, span=DAY - 14400, calls=6,
                      answered=3)
        store.flush()
    settings = replace(settings_for(clean_pbx, db), policy=str(POLICIES / "health.toml"))
    runner = await start_outguard(clean_pbx, settings, Parts(agi=False, ami=False, api=False),
                                  monkeypatch)
    try:
        og = Running(runner.app, settings, clean_pbx)
        await og.screener.rebuild()
        yield og
    finally:
        await runner.cleanup()


def cap_factor(og: Running) -> float:
    snap = og.screener.snapshot
    party = snap.party(PartyKind.CALLER_ID, CID) if snap is not None else None
    return 1.0 if party is None else party.cap_factor


async def test_a_throttled_caller_id_is_refused_over_its_reduced_cap(
        healthy_week: Running) -> None:
    og = healthy_week
    assert await og.enforcer.list_health_tasks() == []
    # four real calls today that nobody answers (the carrier is busy): 0% against 50%
    for n in range(4):
        with sipp.Carrier(og.pbx.inst, busy=True):
            run = await og.call(f"1380013800{n}", account="a1", caller_id=CALLER_ID)
        assert run.only.final == 486
    await og.settle()
    await eventually(lambda: og.enforcer.risk("caller_id", CID).ended == 4, "the four outcomes")
    await eventually(lambda: cap_factor(og) == 0.5, "the caller ID throttled in the snapshot")
    [task] = await og.enforcer.list_health_tasks("active")
    assert task.caller_id == CID and task.opened_by == "health:connect_rate_drop"
    assert "connect rate 0.0%" in task.reason and "50.0%" in task.reason

    # 4 calls today = 8 x 0.5: the fifth is refused before the carrier, with cause 34
    with sipp.Carrier(og.pbx.inst, hold_ms=100) as carrier:
        run = await og.call("13800138009", account="a1", caller_id=CALLER_ID)
        assert carrier.invites() == []
    assert run.only.final == 503
    await og.settle()
    calls = await og.store.run(lambda: list(og.store.store.iter_calls()))
    blocked = [c.call for c in calls if c.call.verdict == "block"]
    assert [(c.rule, c.reason, c.caller_id) for c in blocked] == [
        ("caller_id_per_day", "caller_id_throttled", CID)]

    await og.enforcer.note_health_task(task.id, text="号码认证 submitted", actor="ops")
    await og.enforcer.close_health_task(task.id, resolution="标记申诉 accepted", actor="ops")
    await eventually(lambda: cap_factor(og) == 1.0, "the throttle lifted in the snapshot")
    with sipp.Carrier(og.pbx.inst, hold_ms=100):
        run = await og.call("13800138009", account="a1", caller_id=CALLER_ID)
    assert run.only.final == 200
    audit = [a.action for a in await og.store.list_audit(party_key=CID)]
    assert audit[-3:] == ["health_task.open", "health_task.note", "health_task.close"]
