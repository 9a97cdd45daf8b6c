"""Calls placed while the store refuses writes (its disk full) are still screened, and
every one of them is in the call log, with its outcome, once the store has room again."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest

from outguard import sandbox
from outguard.server import Parts
from outguard.store.sqlite import SQLiteStore
from outguard.testing import sipp
from tests import faults
from tests.integration.conftest import Running, settings_for, start_outguard

pytestmark = pytest.mark.integration


async def test_calls_during_a_full_disk_reach_the_call_log_after_recovery(
    clean_pbx: sandbox.Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with faults.small_disk(tmp_path / "disk", size="4m") as disk:
        settings = replace(settings_for(clean_pbx, disk / "outguard.db"),
                           spool_dir=str(tmp_path / "spool"))
        runner = await start_outguard(clean_pbx, settings, Parts(agi=False, ami=False),
                                      monkeypatch)
        og = Running(runner.app, settings, clean_pbx)
        try:
            inner = og.store.store
            assert isinstance(inner, SQLiteStore)
            inner.writer.retry_s = 3600  # recovery only when the test says
            await og.listed("dnc", "dnc", "13900139000")
            filler = faults.fill(disk)
            finals = []
            with sipp.Carrier(clean_pbx.inst, hold_ms=200) as carrier:
                for seat in range(6):  # one at a time: the policy allows one per seat
                    run = await og.call(f"1380013800{seat}", account=f"seat-{seat}")
                    finals += run.finals()
                blocked = await og.call("13900139000", account="seat-0")
                assert carrier.invites() == [f"1380013800{seat}" for seat in range(6)]
            assert finals == [200] * 6
            assert blocked.finals() == [403]
            await og.settle()
            health = inner.write_health()
            assert health["degraded"] and "full" in health["degraded"]
            assert health["spool_rows"] > 0 and health["rows_dropped"] == 0

            filler.unlink()
            await asyncio.to_thread(lambda: inner.writer.retry_now().result(10))
            assert inner.write_health()["degraded"] is None
            logged = await og.logged()
            assert sorted(c.call.verdict for c in logged) == ["allow"] * 6 + ["block"]
            for call in logged:
                assert call.ended_at is not None, call
                if call.call.verdict == "allow":
                    assert call.answered_at is not None and call.cause == 16
        finally:
            await runner.cleanup()
