"""A state holiday named by a US telemarketing law, on the real Asterisk: a marketing call
to a Louisiana number on Mardi Gras (La. R.S. 45:811(3), holidays of La. R.S. 1:55) is
refused at the phone with the holiday's cause (SIP 480) and never reaches the carrier;
the channel variables name the holiday. The day after, the same call goes through. The
screener's clock is the injected one (``Screener.clock``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from outguard import sandbox
from outguard.server import Parts
from outguard.testing import sipp
from tests.integration.conftest import (
    POLICIES, ChannelVariables, Running, settings_for, start_outguard,
)

pytestmark = pytest.mark.integration

NEW_ORLEANS = "5045550123"  # area code 504: Louisiana
CHICAGO = ZoneInfo("America/Chicago")


@pytest.fixture
async def us_outguard(clean_pbx: sandbox.Sandbox, tmp_path: Path,
                      monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Running]:
    settings = replace(settings_for(clean_pbx, tmp_path / "outguard.db"),
                       policy=str(POLICIES / "us-states.toml"))
    runner = await start_outguard(clean_pbx, settings, Parts(agi=False, api=False),
                                  monkeypatch)
    try:
        yield Running(runner.app, settings, clean_pbx)
    finally:
        await runner.cleanup()


async def at(og: Running, when: datetime) -> None:
    """Set the screener's clock to ``when`` and decide on a snapshot built then."""
    og.screener.clock = when.timestamp
    await og.screener.rebuild()


async def test_a_call_to_louisiana_on_mardi_gras_is_refused_naming_the_holiday(
    us_outguard: Running,
) -> None:
    og = us_outguard
    await at(og, datetime(2027, 2, 9, 12, 0, tzinfo=CHICAGO))  # Mardi Gras, a Tuesday
    async with ChannelVariables(og.pbx) as seen:
        with sipp.Carrier(og.pbx.inst, hold_ms=100) as carrier:
            run = await og.call(NEW_ORLEANS, account="a1", purpose="marketing")
            assert carrier.invites() == []
        variables = await seen.verdict("block")
    assert run.only.final == 480
    assert (variables["OUTGUARD_REASON"], variables["OUTGUARD_CAUSE"]) == ("holiday", "19")
    assert "is Mardi Gras, a holiday of calendar" in variables["OUTGUARD_MESSAGE"]
    [row] = await og.logged()
    assert (row.call.verdict, row.call.rule, row.call.reason) == (
        "block", "us_louisiana_hours", "holiday")
    assert row.call.destination == "+15045550123"

    await at(og, datetime(2027, 2, 10, 12, 0, tzinfo=CHICAGO))  # Ash Wednesday: no holiday
    with sipp.Carrier(og.pbx.inst, hold_ms=100) as carrier:
        run = await og.call(NEW_ORLEANS, account="a1", purpose="marketing")
        assert carrier.invites() == [NEW_ORLEANS]
    assert run.only.final == 200
