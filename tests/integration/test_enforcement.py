"""The enforcement story on the real Asterisk: two complaints suspend the account, its
next call is refused at the phone with 480, an approved appeal lets calls through again."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path

import pytest

from outguard import sandbox
from outguard.server import Parts
from outguard.testing import sipp
from rules.model import PartyKind, PartyState
from tests.integration.conftest import POLICIES, Running, settings_for, start_outguard

pytestmark = pytest.mark.integration

CALLER_ID = "01088886666"  # what the agent phone presents
FIRST, SECOND, LATER = "13800138001", "13800138002", "13800138003"


@pytest.fixture
async def enforced(
    clean_pbx: sandbox.Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Running]:
    settings = replace(settings_for(clean_pbx, tmp_path / "outguard.db"),
                       policy=str(POLICIES / "enforcement.toml"))
    runner = await start_outguard(clean_pbx, settings, Parts(agi=False, ami=False, api=False),
                                  monkeypatch)
    try:
        og = Running(runner.app, settings, clean_pbx)
        await og.store.create_tenant("t1", "Tenant one")
        await og.store.create_account("a1", "t1")
        await og.screener.rebuild()
        yield og
    finally:
        await runner.cleanup()


async def until(check: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def account_state(og: Running) -> PartyState | None:
    snap = og.screener.snapshot
    party = snap.party(PartyKind.ACCOUNT, "a1") if snap is not None else None
    return None if party is None else party.state


async def call(og: Running, number: str) -> int | None:
    with sipp.Carrier(og.pbx.inst, hold_ms=100):
        run = await og.call(number, account="a1", caller_id=CALLER_ID)
    await og.settle()
    return run.only.final


async def test_complaints_suspend_the_account_until_the_appeal_is_approved(
    enforced: Running,
) -> None:
    og = enforced
    assert await call(og, FIRST) == 200
    assert await call(og, SECOND) == 200
    await until(lambda: og.enforcer.risk("account", "a1").ended == 2, "both outcomes")
    assert og.enforcer.risk("account", "a1").answered == 2

    for callee in (FIRST, SECOND):
        await og.enforcer.add_complaint(callee, CALLER_ID, category="harassment",
                                        source="12321", actor="compliance")
    # the background pass suspends a1; the screener rebuilds its snapshot from the store
    await until(lambda: account_state(og) is PartyState.SUSPENDED, "a1 suspended in the snapshot")
    status = await og.enforcer.status("account", "a1")
    assert status.state is PartyState.SUSPENDED and status.strikes == 1
    assert status.remaining_s is not None and status.remaining_s > 23 * 3600

    with sipp.Carrier(og.pbx.inst, hold_ms=100) as carrier:
        run = await og.call(LATER, account="a1", caller_id=CALLER_ID)
        assert carrier.invites() == []  # never reached the carrier
    assert run.only.final == 480
    await og.settle()
    blocked = [c for c in await og.store.run(lambda: list(og.store.store.iter_calls()))
               if c.call.verdict == "block"]
    assert [(c.call.rule, c.call.reason) for c in blocked] == [("party_status",
                                                                "account_suspended")]

    appeal = await og.enforcer.submit_appeal("account", "a1", actor="a1",
                                             text="the callees had asked for a call back",
                                             evidence="CRM tickets 4411, 4412")
    await og.enforcer.approve_appeal(appeal.id, reviewer="rita", decision="call-back requests",
                                     clear_strike=True)
    await until(lambda: account_state(og) is PartyState.ACTIVE, "a1 active in the snapshot")
    assert await call(og, LATER) == 200
    # the complainants stay on the tenant's complaint list
    assert await call(og, FIRST) == 403


async def test_a_suspension_runs_out_by_itself_without_a_rebuild(enforced: Running) -> None:
    og = enforced
    suspension = await og.enforcer.suspend("account", "a1", reason="cool-down", actor="ops",
                                           duration_s=3.0)
    await until(lambda: account_state(og) is PartyState.SUSPENDED, "a1 suspended in the snapshot")
    built = og.screener.snapshot
    assert await call(og, LATER) == 480
    assert suspension.ends_at is not None
    await asyncio.sleep(max(0.0, suspension.ends_at.timestamp() - time.time()) + 0.2)
    assert await call(og, LATER) == 200
    assert og.screener.snapshot is built  # the party_status rule honoured `until` itself
