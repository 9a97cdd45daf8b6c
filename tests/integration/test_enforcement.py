"""The enforcement story on the real Asterisk: two complaints suspend the account, its
next call is refused at the phone with 480, an approved appeal lets calls through again."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from outguard import sandbox
from outguard.server import Parts
from outguard.testing import sipp
from rules.model import PartyKind, PartyState
from tests.integration.conftest import POLICIES, Running, settings_for, start_outguard
from tests.waiting import eventually

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
    await eventually(lambda: og.enforcer.risk("account", "a1").ended == 2, "both outcomes")
    assert og.enforcer.risk("account", "a1").answered == 2

    for callee in (FIRST, SECOND):
        await og.enforcer.add_complaint(callee, CALLER_ID, category="harassment",
                                        source="12321", actor="compliance")
    # the background pass suspends a1; the screener rebuilds its snapshot from the store
    await eventually(lambda: account_state(og) is PartyState.SUSPENDED, "a1 suspended in the snapshot")
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
    await eventually(lambda: account_state(og) is PartyState.ACTIVE, "a1 active in the snapshot")
    assert await call(og, LATER) == 200
    # the complainants stay on the tenant's complaint list
    assert await call(og, FIRST) == 403


async def test_a_suspension_runs_out_by_itself_without_a_rebuild(enforced: Running) -> None:
    og = enforced
    suspension = await og.enforcer.suspend("account", "a1", reason="cool-down", actor="ops",
                                           duration_s=3.0)
    await eventually(lambda: account_state(og) is PartyState.SUSPENDED, "a1 suspended in the snapshot")
    built = og.screener.snapshot
    assert await call(og, LATER) == 480
    assert suspension.ends_at is not None
    await asyncio.sleep(max(0.0, suspension.ends_at.timestamp() - time.time()) + 0.2)
    assert await call(og, LATER) == 200
    assert og.screener.snapshot is built  # the party_status rule honoured `until` itself


async def test_complaints_entered_with_the_cli_stop_the_tenants_next_call(
    clean_pbx: sandbox.Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The CLI is another process with its own store connection: the running service
    counts what it stored, the tenant trigger fires, the next real call is refused."""
    policy = tmp_path / "tenant.toml"
    policy.write_text((POLICIES / "enforcement.toml").read_text(encoding="utf-8")
                      .replace('scope = "account"', 'scope = "tenant"'), encoding="utf-8")
    settings = replace(settings_for(clean_pbx, tmp_path / "outguard.db"), policy=str(policy))
    cli_settings = tmp_path / "outguard.toml"
    cli_settings.write_text(f'store = "{settings.store}"\npolicy = "{policy}"\n',
                            encoding="utf-8")
    runner = await start_outguard(clean_pbx, settings, Parts(agi=False, ami=False, api=False),
                                  monkeypatch)
    try:
        og = Running(runner.app, settings, clean_pbx)
        await og.store.create_tenant("t1", "Tenant one")
        await og.store.create_account("a1", "t1")
        await og.screener.rebuild()
        assert await call(og, FIRST) == 200
        assert await call(og, SECOND) == 200

        outguard_cli = Path(sys.executable).parent / "outguard"
        for callee in (FIRST, SECOND):
            done = await asyncio.to_thread(
                subprocess.run,
                [str(outguard_cli), "complaints", "add", callee, "--caller-id", CALLER_ID,
                 "--source", "12321", "-c", str(cli_settings)],
                capture_output=True, text=True, timeout=60,
                env={**os.environ, "OUTGUARD_CONFIG": ""},
            )
            assert done.returncode == 0, done.stderr
        await eventually(lambda: tenant_state(og) is PartyState.SUSPENDED,
                    "t1 suspended in the running service's snapshot")
        with sipp.Carrier(og.pbx.inst, hold_ms=100) as carrier:
            run = await og.call(LATER, account="a1", caller_id=CALLER_ID)
            assert carrier.invites() == []
        assert run.only.final == 480
        await og.settle()
        last = (await og.logged())[-1].call
        assert (last.rule, last.reason) == ("party_status", "tenant_suspended")
    finally:
        await runner.cleanup()


def tenant_state(og: Running) -> PartyState | None:
    snap = og.screener.snapshot
    party = snap.party(PartyKind.TENANT, "t1") if snap is not None else None
    return None if party is None else party.state
