"""The cn-callee-caps preset on real calls through the sandbox Asterisk: the cloud
carriers' per-callee limit (at most 1 call a minute to one callee) refuses the second call
to a number before it reaches the carrier, and lets a call to another number through."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from outguard import sandbox
from outguard.server import Parts
from outguard.testing import sipp
from tests.integration.conftest import Running, settings_for, start_outguard

pytestmark = pytest.mark.integration

POLICY = """
include = ["cn-callee-caps"]
default_region = "CN"
timezone = "Asia/Shanghai"
"""


@pytest.fixture
async def og(
    clean_pbx: sandbox.Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Running]:
    policy = tmp_path / "callee-caps.toml"
    policy.write_text(POLICY, encoding="utf-8")
    settings = replace(settings_for(clean_pbx, tmp_path / "outguard.db"), policy=str(policy))
    runner = await start_outguard(clean_pbx, settings, Parts(agi=False, api=False), monkeypatch)
    try:
        yield Running(runner.app, settings, clean_pbx)
    finally:
        await runner.cleanup()


async def test_a_second_call_to_one_callee_within_a_minute_is_refused(og: Running) -> None:
    finals = []
    with sipp.Carrier(og.pbx.inst, hold_ms=200) as carrier:
        for number in ("13800138000", "13800138000", "13900139000"):
            run = await og.call(number, account="a1", tenant="t1")
            finals.append(run.only.final)
            await og.released("a1")
        invites = carrier.invites()
    assert invites == ["13800138000", "13900139000"]  # the second never left the PBX
    assert finals[0] == finals[2] == 200 and finals[1] != 200
    rows = [(c.call.destination, c.call.verdict, c.call.rule, c.call.reason)
            for c in await og.logged()]
    assert rows == [
        ("+8613800138000", "allow", "", "ok"),
        ("+8613800138000", "block", "cn_callee_per_minute", "destination_cap"),
        ("+8613900139000", "allow", "", "ok"),
    ]
