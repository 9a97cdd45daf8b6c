"""The FreePBX and VICIdial recipes (dialplan/recipes/) on the sandbox Asterisk, inside
dialplans of the shape those products generate, with calls started the way they start
them (AMI Originate of a Local channel), and outguard's AMI listener logged in as the
least-rights user of the samples.

- FreePBX 17: from-internal -> outbound-allroutes -> outrt-N -> macro-dialout-trunk, which
  sets OUTNUM and the trunk's outbound caller ID (macro-outbound-callerid; here a plain
  Set: the extension's own "1001" is not a number a call may present), runs
  [macro-dialout-trunk-predial-hook] (the recipe, from
  extensions_custom.conf) and dials the trunk unless the hook ended the call.
- VICIdial: the dialer originates Local/<dial prefix><number>@<context> and the carrier's
  "Dialplan Entry" (the recipe) runs there; the prefix picks the campaign's account.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agi.ami import AmiClient
from outguard import sandbox
from outguard.config import AmiConfig
from outguard.server import Parts
from outguard.testing import sipp
from tests.integration.conftest import Running, settings_for, start_outguard

pytestmark = pytest.mark.integration

RECIPES = Path(__file__).parents[2] / "dialplan" / "recipes"
ALLOWED, DNC = "13800138000", "13900139000"

#: what FreePBX 17 generates for an outbound route (trimmed to the parts a call passes)
FREEPBX_SHAPE = """
[from-internal]
include => outbound-allroutes
[outbound-allroutes]
include => outrt-1
[outrt-1]
exten => _1XXXXXXXXXX,1,Set(AMPUSER=${CALLERID(num)})
 same => n,Set(MOHCLASS=${IF($["${MOHCLASS}"=""]?default:${MOHCLASS})})
 same => n,Set(_ROUTENAME=China mobile)
 same => n,Gosub(macro-dialout-trunk,s,1(1,${EXTEN},,off))
 same => n,Hangup()
[macro-dialout-trunk]
exten => s,1,Set(DIAL_TRUNK=${ARG1})
 same => n,Set(OUTNUM=${ARG2})
 same => n,Set(DIAL_TRUNK_OPTIONS=Tt)
 same => n,Set(CALLERID(num)=01088886666)
 same => n,Gosub(macro-dialout-trunk-predial-hook,s,1())
 same => n,GotoIf($["${PREDIAL_HOOK_RET}" = "BYPASS"]?bypass)
 same => n,Dial(PJSIP/${OUTNUM}@carrier,300,${DIAL_TRUNK_OPTIONS})
 same => n,Return()
 same => n(bypass),Return()
"""

VICIDIAL_GLOBALS = """
[globals]
OUTGUARD_ACCOUNT_91 = sales-1
OUTGUARD_CAMPAIGN_91 = SALES1
OUTGUARD_ACCOUNT_92 = renewals
OUTGUARD_CAMPAIGN_92 = RENEW
"""


@pytest.fixture
async def recipes(clean_pbx: sandbox.Sandbox, tmp_path: Path,
                  monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Running]:
    """The recipes installed in the sandbox's dialplan, and outguard (FastAGI + AMI as the
    least-rights user)."""
    etc = clean_pbx.root / sandbox._inside(clean_pbx.inst.name)["etc"].lstrip("/")
    vicidial_entry = (RECIPES / "vicidial" / "carrier-dialplan-entry.conf").read_text()
    (etc / "recipes-test.conf").write_text("\n".join([
        (RECIPES / "outguard-screen.conf").read_text(),
        FREEPBX_SHAPE,
        (RECIPES / "freepbx" / "extensions_custom.conf").read_text(),
        VICIDIAL_GLOBALS,
        "[vicidial-default]",
        vicidial_entry,
    ]))
    extensions = etc / "extensions.conf"
    original = extensions.read_text()
    extensions.write_text(original + "\n#include recipes-test.conf\n")
    clean_pbx.cli("dialplan reload")
    settings = settings_for(clean_pbx, tmp_path / "outguard.db")
    settings = dataclasses.replace(settings, ami=AmiConfig(
        port=clean_pbx.inst.ports.ami, user=clean_pbx.inst.ami_user + "-least"))
    runner = await start_outguard(clean_pbx, settings, Parts(ari=False, api=False), monkeypatch)
    try:
        og = Running(runner.app, settings, clean_pbx)
        await og.store.create_tenant("t1", "Tenant one")
        for account in ("1001", "sales-1", "renewals"):
            await og.store.create_account(account, "t1")
        await og.listed("dnc", "dnc", DNC)
        yield og
    finally:
        await runner.cleanup()
        extensions.write_text(original)
        (etc / "recipes-test.conf").unlink()
        clean_pbx.cli("dialplan reload")


async def originate(og: Running, channel: str, caller: str, name: str = "") -> None:
    """What FreePBX's click-to-call and VICIdial's dialer do: AMI Originate of a Local
    channel whose other end waits (the agent's side). VICIdial puts its call code in the
    caller ID name and the campaign's caller ID in the number."""
    inst = og.pbx.inst
    client = AmiClient("127.0.0.1", inst.ports.ami, inst.ami_user, inst.ami_password,
                       events="off")
    runner = asyncio.get_running_loop().create_task(client.run())
    try:
        await client.wait_connected(10)
        reply = await client.action("Originate", Channel=channel, Application="Wait",
                                    Data="2", CallerID=f'"{name or caller}" <{caller}>',
                                    Async="true", Timeout="15000")
        assert reply.get("Response") == "Success", reply
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        await client.close()


async def wait_logged(og: Running, n: int, timeout: float = 15.0) -> list:  # type: ignore[type-arg]
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        rows = await og.logged()
        finished = [r for r in rows if r.call.verdict != "allow" or r.ended_at is not None]
        if len(finished) >= n or asyncio.get_running_loop().time() > deadline:
            return rows
        await asyncio.sleep(0.2)


async def test_freepbx_predial_hook_screens_outnum_and_lets_freepbx_dial(
        recipes: Running) -> None:
    og = recipes
    with sipp.Carrier(og.pbx.inst, hold_ms=300) as carrier:
        await originate(og, f"Local/{ALLOWED}@from-internal", "1001")
        await originate(og, f"Local/{DNC}@from-internal", "1001")
        rows = await wait_logged(og, 2)
        assert carrier.invites() == [ALLOWED]  # the refused call never reached the trunk
    by_number = {r.call.destination: r for r in rows}
    allowed, blocked = by_number["+86" + ALLOWED], by_number["+86" + DNC]
    assert (allowed.call.verdict, allowed.call.account, allowed.call.adapter) == \
        ("allow", "1001", "agi")
    assert allowed.answered_at is not None and allowed.ended_at is not None  # via AMI
    assert (blocked.call.verdict, blocked.call.reason) == ("block", "dnc_listed")


async def test_vicidial_carrier_entry_screens_and_maps_the_campaign_by_dial_prefix(
        recipes: Running) -> None:
    og = recipes
    with sipp.Carrier(og.pbx.inst, hold_ms=300) as carrier:
        await originate(og, f"Local/91{ALLOWED}@vicidial-default", "01088886666",
                        "V1202080000000000001")
        await originate(og, f"Local/92{DNC}@vicidial-default", "01088886666",
                        "V1202080000000000002")
        rows = await wait_logged(og, 2)
        assert carrier.invites() == [ALLOWED]
    by_number = {r.call.destination: r for r in rows}
    allowed, blocked = by_number["+86" + ALLOWED], by_number["+86" + DNC]
    assert (allowed.call.verdict, allowed.call.account) == ("allow", "sales-1")
    assert allowed.answered_at is not None
    assert (blocked.call.verdict, blocked.call.account, blocked.call.reason) == \
        ("block", "renewals", "dnc_listed")
