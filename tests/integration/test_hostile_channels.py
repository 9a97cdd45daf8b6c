"""A call with a malformed channel variable is refused with the reason and logged, in ARI
and FastAGI mode, even where the dialplan would fail open (before: the screener raised,
no row was written and a fail-open call dialled unscreened)."""

from __future__ import annotations

import pytest

from outguard.testing import sipp
from tests.integration.conftest import Running

pytestmark = pytest.mark.integration


async def _refused(og: Running, from_user: str) -> None:
    with sipp.Carrier(og.pbx.inst, hold_ms=100) as carrier:
        run = await og.call("13800138000", from_user=from_user, account="a1",
                            purpose="telemarketing-blast", fail_mode="open")
        assert carrier.invites() == []  # never dialled unscreened
    assert run.only.final == 403
    logged = await og.logged()
    assert [(c.call.verdict, c.call.reason, c.call.rule) for c in logged] == [
        ("block", "channel_invalid", "channel_format")]


async def test_ari_refuses_a_junk_purpose_with_a_reason_and_a_row(outguard: Running) -> None:
    await _refused(outguard, "agent")


async def test_agi_refuses_a_junk_purpose_with_a_reason_and_a_row(
    outguard_agi: Running,
) -> None:
    await _refused(outguard_agi, "agent-agi")
