"""Nothing lost: every call that reached Asterisk has exactly one call-log row with its
outcome, in every mode (ARI continue, ARI bridge, FastAGI), for allowed, shadow-flagged,
blocked and caller-abandoned calls alike."""

from __future__ import annotations

from typing import Any

import pytest

from outguard.testing import sipp
from tests.integration.conftest import Running
from tests.waiting import eventually

pytestmark = pytest.mark.integration

ALLOWED = "13800138000"
SHADOWED = "13600136000"
LISTED = "13900139000"
MODES = {"agent": "ari", "agent-bridge": "ari", "agent-agi": "agi"}


async def test_every_call_has_one_closed_row_in_every_mode(outguard_all: Running) -> None:
    og = outguard_all
    await og.listed("dnc", "dnc", LISTED)
    await og.listed("watch", "dnc", SHADOWED)
    placed: list[tuple[str, str, Any]] = []
    with sipp.Carrier(og.pbx.inst, hold_ms=200):
        for agent in MODES:
            for i, number in enumerate((ALLOWED, ALLOWED, SHADOWED, LISTED)):
                run = await og.call(number, from_user=agent, account=f"{agent}-{i}")
                placed.append((agent, number, run.only.final))
            run = await og.call(ALLOWED, from_user=agent, account=f"{agent}-bye",
                                agent_hangs_up_after_ms=100)
            placed.append((agent, "bye", run.only.final))
    logged = await og.logged()
    finals = {(a, n): f for a, n, f in placed}
    assert all(finals[(agent, LISTED)] == 403 for agent in MODES), placed
    assert all(f == 200 for (a, n), f in finals.items() if n != LISTED), placed
    assert len(logged) == len(placed) == 15
    assert len({row.call.decision_id for row in logged}) == 15
    assert len({row.call.channel_id for row in logged}) == 15
    open_rows = [row for row in logged if row.ended_at is None]
    assert open_rows == []
    for row in logged:
        if row.call.verdict == "allow":
            assert row.answered_at is not None and row.cause == 16, row
        else:
            assert (row.call.verdict, row.cause) == ("block", 21), row
    assert sorted(row.call.adapter for row in logged) == ["agi"] * 5 + ["ari"] * 10
    await eventually(lambda: og.pbx.channels() == 0, "no channel left up", interval=0.05)
