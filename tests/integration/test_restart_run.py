"""Nothing lost across a restart: a run of calls with an outguard restart in the middle
(SIGTERM while calls are connected, then more calls) leaves exactly one closed call-log
row for every call SIPp placed, in every mode; and bridge mode leaves nothing up: no
channel, and no outguard bridge once outguard has stopped (the ones it keeps for the next
calls are destroyed at stop; a stray one, which belongs to no call and no pool, would
stay), even when a bridged call's caller left while outguard was down."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from outguard import sandbox
from outguard.testing import sipp
from tests.integration.conftest import ari, callee_hangs_up, carrier_legs
from tests.integration.test_restart import ALLOWED, MODES, OutguardProcess
from tests.waiting import eventually

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def outguard_bridges(pbx: sandbox.Sandbox) -> list[dict[str, Any]]:
    return [b for b in ari(pbx, "GET", "/bridges") if str(b["id"]).startswith("og-br-")]


async def until(probe: Callable[[], object], what: str) -> None:
    """``eventually``, polling every 50 ms: each probe is an ARI request or a store read."""
    await eventually(probe, what, interval=0.05)


async def nothing_up(pbx: sandbox.Sandbox, og: OutguardProcess) -> None:
    """Wait for no channel up; what is up, and outguard's log, when some stays."""
    try:
        await until(lambda: pbx.channels() == 0, "no channel left up")
    except AssertionError as err:
        raise AssertionError(f"{err}: {ari(pbx, 'GET', '/channels')}, bridges "
                             f"{outguard_bridges(pbx)}; outguard: {og.output()}") from None


def place(inst: sandbox.Instance, account: str, agent: str,
          port_shift: int) -> Awaitable[sipp.AgentRun]:
    """One call from ``account`` in the background; the callee holds it until the test
    hangs it up. Agents at once need ports 3 apart (SIPp binds port + 2041 and + 2043 for
    media); + 10 would be the carrier's port."""
    return asyncio.ensure_future(asyncio.to_thread(
        sipp.place_calls, inst, ALLOWED, from_user=agent, account=account,
        port=inst.ports.agent + port_shift, timeout_s=90))


@pytest.mark.parametrize("mode", list(MODES))
async def test_every_call_of_a_run_with_a_restart_has_exactly_one_closed_row(
    clean_pbx: sandbox.Sandbox, tmp_path: Path, mode: str,
) -> None:
    m = MODES[mode]
    inst = clean_pbx.inst
    og = OutguardProcess(clean_pbx, tmp_path, m.parts)
    og.start()
    try:
        with sipp.Carrier(inst, callee_hangs_up=False, limit_s=120):
            runs = [place(inst, "a-one", m.agent, 0), place(inst, "a-two", m.agent, 3)]
            await until(lambda: sum(c["state"] == "Up" for c in carrier_legs(clean_pbx))
                           == 2, "two calls connected")
            # the cap of one call per account: refused while a-one's call is up
            refused = await asyncio.to_thread(
                sipp.place_calls, inst, ALLOWED, from_user=m.agent, account="a-one",
                port=inst.ports.agent + 6, timeout_s=20)
            og.stop(signal.SIGTERM)  # mid-run, two calls connected
            og.start()
            runs.append(place(inst, "a-three", m.agent, 9))
            await until(lambda: sum(c["state"] == "Up" for c in carrier_legs(clean_pbx))
                           == 3, "the third call connected")
            refused_after = await asyncio.to_thread(
                sipp.place_calls, inst, ALLOWED, from_user=m.agent, account="a-two",
                port=inst.ports.agent + 6, timeout_s=20)
            for leg in carrier_legs(clean_pbx):
                callee_hangs_up(clean_pbx, leg)
            connected = [await run for run in runs]
        assert [r.only.final for r in connected] == [200, 200, 200]
        assert refused.finals() == refused_after.finals() == [486]
        await until(lambda: (og.health() or {}).get("live_calls") == 0,
                       "every call released")
        await until(lambda: len(og.rows()) == 5 and all(r["ended_at"] for r in og.rows()),
                       "five closed rows")
        rows = og.rows()
        assert len({r["decision_id"] for r in rows}) == len({r["channel_id"] for r in rows}) == 5
        allowed = sorted((r["account"], r["cause"], r["end_note"], r["answered_at"] is not None)
                         for r in rows if r["verdict"] == "allow")
        assert allowed == [(a, 16, None, True) for a in ("a-one", "a-three", "a-two")], rows
        assert sorted((r["account"], r["reason"]) for r in rows if r["verdict"] == "block") == [
            ("a-one", "concurrency_cap"), ("a-two", "concurrency_cap")]
        await nothing_up(clean_pbx, og)
        og.stop(signal.SIGTERM)
        assert outguard_bridges(clean_pbx) == []
    finally:
        og.stop(signal.SIGKILL)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "kill-9"])
async def test_a_bridged_call_whose_caller_left_while_outguard_was_down_leaves_nothing_up(
    clean_pbx: sandbox.Sandbox, tmp_path: Path, sig: signal.Signals,
) -> None:
    m = MODES["bridge"]
    inst = clean_pbx.inst
    og = OutguardProcess(clean_pbx, tmp_path, m.parts)
    og.start()
    try:
        with sipp.Carrier(inst, callee_hangs_up=False, limit_s=120):
            run = place(inst, "a-left", m.agent, 0)
            await until(lambda: [b for b in outguard_bridges(clean_pbx)
                                 if len(b["channels"]) == 2], "the call bridged")
            # its row and answer on disk: a kill -9 before that loses them (never
            # acknowledged), and the new outguard hangs up the carrier leg as an orphan
            await until(lambda: any(r["answered_at"] for r in og.rows()), "the answer logged")
            og.stop(sig)
            carrier_ids = {c["id"] for c in carrier_legs(clean_pbx)}
            callers = [c for c in ari(clean_pbx, "GET", "/channels")
                       if c["id"] not in carrier_ids]
            assert len(callers) == 1, callers
            ari(clean_pbx, "DELETE", f"/channels/{callers[0]['id']}?reason_code=16")
            await until(lambda: [b["channels"] for b in outguard_bridges(clean_pbx)]
                           == [list(carrier_ids)], "the caller gone from the bridge")
            og.start()  # reconcile: the carrier leg is hung up, its bridge destroyed
            await nothing_up(clean_pbx, og)
            assert (await run).only.final == 200
        await until(lambda: all(r["ended_at"] for r in og.rows()), "the row closed")
        [row] = og.rows()
        assert row["verdict"] == "allow" and row["end_note"] == "unknown after restart"
        assert [b["channels"] for b in outguard_bridges(clean_pbx)] in ([], [[]])
        og.stop(signal.SIGTERM)  # destroys the bridges it keeps; a stray one would stay
        assert outguard_bridges(clean_pbx) == []
    finally:
        og.stop(signal.SIGKILL)
