"""ONE outguard attached to TWO sandbox Asterisks ([[ari]] and [[ami]] targets pbx-a and
pbx-b; one FastAGI server whose URL names the PBX): it screens calls from both, the call
log names each call's PBX, and one PBX's Asterisk restart does not disturb the other's
calls (each target connects, reconnects and reconciles on its own)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from outguard import sandbox
from outguard.config import AmiConfig, AriConfig, Settings
from outguard.server import AMI_BY_PBX, PARTS, STASIS_BY_PBX, Parts, build_app
from outguard.store.base import LoggedCall
from outguard.testing import sipp
from tests import leaks
from tests.integration.conftest import Running, settings_for
from tests.waiting import eventually

pytestmark = pytest.mark.integration

NUMBER = "13800138000"


def targets(name: str, box: sandbox.Sandbox) -> tuple[AriConfig, AmiConfig]:
    inst = box.inst
    env = name.upper().replace("-", "_")
    return (AriConfig(pbx=name, url=inst.ari_url, user=inst.ari_user, app=inst.app,
                      password_env=f"OG_{env}_ARI"),
            AmiConfig(pbx=name, port=inst.ports.ami, user=inst.ami_user,
                      password_env=f"OG_{env}_AMI"))


def agi_url(one: sandbox.Sandbox, pbx: str = "") -> str:
    return f"agi://127.0.0.1:{one.inst.ports.agi}/screen" + (f"?pbx={pbx}" if pbx else "")


def all_connected(app: web.Application) -> bool:
    return all(getattr(part, "connected", True) for part in app[PARTS].values())


@pytest.fixture
async def both(
    clean_pbx: sandbox.Sandbox, pbx_b: sandbox.Sandbox, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Running]:
    """One outguard (ARI apps, AMI listeners, FastAGI server) for pbx-a and pbx-b; each
    PBX's dialplan names itself in the FastAGI URL."""
    pbx_b.hangup_all()
    ari_a, ami_a = targets("pbx-a", clean_pbx)
    ari_b, ami_b = targets("pbx-b", pbx_b)
    for box, env in ((clean_pbx, "PBX_A"), (pbx_b, "PBX_B")):
        monkeypatch.setenv(f"OG_{env}_ARI", box.inst.ari_password)
        monkeypatch.setenv(f"OG_{env}_AMI", box.inst.ami_password)
    settings: Settings = dataclasses.replace(
        settings_for(clean_pbx, tmp_path / "outguard.db"),
        ari=(ari_a, ari_b), ami=(ami_a, ami_b))
    clean_pbx.cli(f"dialplan set global OUTGUARD_AGI {agi_url(clean_pbx, 'pbx-a')}")
    pbx_b.cli(f"dialplan set global OUTGUARD_AGI {agi_url(clean_pbx, 'pbx-b')}")
    runner = leaks.BoundedRunner(build_app(settings, Parts(api=False)))
    await runner.setup()
    try:
        await eventually(lambda: all_connected(runner.app), "both PBXes' ARI and AMI connected")
        yield Running(runner.app, settings, clean_pbx)
    finally:
        await runner.cleanup()
        clean_pbx.cli(f"dialplan set global OUTGUARD_AGI {agi_url(clean_pbx)}")
        pbx_b.cli(f"dialplan set global OUTGUARD_AGI {agi_url(pbx_b)}")
        pbx_b.hangup_all()


async def call_on(box: sandbox.Sandbox, number: str, agent: str = "agent",
                  account: str = "a1") -> int:
    with sipp.Carrier(box.inst, hold_ms=100) as carrier:
        run = await asyncio.to_thread(sipp.place_calls, box.inst, number, from_user=agent,
                                      account=account)
        assert carrier.invites() == ([number] if run.only.final == 200 else [])
    return run.only.final


def by_pbx(log: list[LoggedCall]) -> dict[str, list[LoggedCall]]:
    out: dict[str, list[LoggedCall]] = {}
    for c in log:
        out.setdefault(c.call.pbx, []).append(c)
    return out


@pytest.mark.parametrize("agent", ["agent", "agent-agi"], ids=["ari", "fastagi"])
async def test_one_outguard_screens_both_pbxes_and_logs_each_calls_pbx(
    both: Running, pbx_b: sandbox.Sandbox, agent: str,
) -> None:
    assert await call_on(both.pbx, NUMBER, agent) == 200
    assert await call_on(pbx_b, "13900139000", agent) == 200
    log = by_pbx(await both.logged())
    assert sorted(log) == ["pbx-a", "pbx-b"]
    for pbx, number in (("pbx-a", NUMBER), ("pbx-b", "13900139000")):
        (call,) = log[pbx]
        assert call.call.destination == "+86" + number
        assert call.call.adapter == ("ari" if agent == "agent" else "agi")
        # the end came over that PBX's own AMI, with the real cause
        assert call.cause == 16 and call.end_note is None and call.answered_at is not None


async def test_one_pbxs_asterisk_restart_does_not_disturb_the_others_calls(
    both: Running, pbx_b: sandbox.Sandbox,
) -> None:
    app = both.app
    stasis_a, ami_a = app[STASIS_BY_PBX]["pbx-a"], app[AMI_BY_PBX]["pbx-a"]
    stasis_b, ami_b = app[STASIS_BY_PBX]["pbx-b"], app[AMI_BY_PBX]["pbx-b"]
    before = (stasis_a.reconnects, ami_a.reconnects, stasis_b.reconnects, ami_b.reconnects)
    with sipp.Carrier(both.pbx.inst, hold_ms=120_000) as carrier:
        placing = asyncio.ensure_future(asyncio.to_thread(
            sipp.place_calls, both.pbx.inst, NUMBER, account="a1", timeout_s=120))
        await eventually(lambda: carrier.invites() == [NUMBER], "pbx-a's call connected")
        assert [c.pbx for c in both.screener.live.calls()] == ["pbx-a"]

        await asyncio.to_thread(pbx_b.restart)  # pbx-b's Asterisk goes away and back
        await eventually(lambda: (
            stasis_b.reconnects > before[2] and ami_b.reconnects > before[3]
            and stasis_b.connected and ami_b.connected), "pbx-b's ARI and AMI reconnected")
        # pbx-a's connections never dropped and its call is still followed
        assert (stasis_a.reconnects, ami_a.reconnects) == before[:2]
        assert stasis_a.connected and ami_a.connected
        assert [c.pbx for c in both.screener.live.calls()] == ["pbx-a"]
        # pbx-b screens again after its restart; the account's concurrency cap (1) counts
        # its call on pbx-a: one outguard counts per account, not per PBX
        assert await call_on(pbx_b, "13900139000", account="a1") == 486
        assert await call_on(pbx_b, "13900139000", account="a2") == 200
        both.pbx.hangup_all()  # now pbx-a's call ends, with its real hangup
        assert (await placing).only.final == 200
    log = by_pbx(await both.logged())
    (a_call,) = log["pbx-a"]
    assert a_call.end_note is None and a_call.cause is not None  # seen ending, not "lost"
    assert [(c.call.verdict, c.call.rule, c.cause) for c in log["pbx-b"]] == [
        ("block", "account_concurrent", 17), ("allow", "", 16)]
