"""Two sandbox Asterisk instances, two outguard instances, one PostgreSQL store.

What is pinned here: a list entry made through one instance blocks the next call on the
other PBX (the change is pushed by LISTEN/NOTIFY and the other snapshot rebuilt at once),
and both instances write one call log.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from outguard import sandbox
from outguard.server import Parts
from outguard.testing import sipp
from outguard.testing.servers import PostgresServer
from tests.conftest import TEST_INSTANCE, TEST_PORT_OFFSET
from tests.integration.conftest import Running, settings_for, start_outguard

pytestmark = pytest.mark.integration


def second_instance(primary_offset: int) -> sandbox.Instance:
    """The second PBX: signalling ports at primary + 50 (test offsets are multiples of
    100), RTP at 40000 + 10 x primary (clear of every primary's 20000 + 10 x offset)."""
    inst = sandbox.new_instance(f"{TEST_INSTANCE}-b", primary_offset + 50)
    rtp = 40000 + 10 * primary_offset
    return dataclasses.replace(
        inst, ports=dataclasses.replace(inst.ports, rtp_start=rtp, rtp_end=rtp + 999))


@pytest.fixture(scope="module")
def pbx_b(pbx: sandbox.Sandbox) -> Iterator[sandbox.Sandbox]:
    box = sandbox.Sandbox(second_instance(TEST_PORT_OFFSET))
    box.start()
    try:
        yield box
    finally:
        box.stop()


@pytest.fixture
async def pair(
    clean_pbx: sandbox.Sandbox, pbx_b: sandbox.Sandbox, pg_server: PostgresServer,
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[tuple[Running, Running]]:
    pbx_b.hangup_all()
    name = f"cl_{uuid.uuid4().hex[:12]}"
    url = pg_server.create_database(name)
    one = settings_for(clean_pbx, tmp_path / "unused.db")
    two = settings_for(pbx_b, tmp_path / "unused.db")
    one = dataclasses.replace(one, store=url, spool_dir=str(tmp_path / "spool-one"))
    two = dataclasses.replace(two, store=url, spool_dir=str(tmp_path / "spool-two"))
    runner_one = await start_outguard(clean_pbx, one, Parts(agi=False, ami=False), monkeypatch)
    monkeypatch.setenv("OUTGUARD_ARI_PASSWORD", pbx_b.inst.ari_password)
    monkeypatch.setenv("OUTGUARD_AMI_PASSWORD", pbx_b.inst.ami_password)
    try:
        runner_two = await start_outguard(pbx_b, two, Parts(agi=False, ami=False), monkeypatch)
        try:
            yield Running(runner_one.app, one, clean_pbx), Running(runner_two.app, two, pbx_b)
        finally:
            await runner_two.cleanup()
    finally:
        await runner_one.cleanup()
        pbx_b.hangup_all()
        pg_server.drop_database(name)


async def test_a_list_entry_made_through_one_instance_blocks_the_next_call_on_the_other_pbx(
    pair: tuple[Running, Running],
) -> None:
    one, two = pair
    number = "13800138009"
    with sipp.Carrier(two.pbx.inst, hold_ms=100) as carrier:
        first = await two.call(number, account="a1")
        assert first.only.final == 200 and carrier.invites() == [number]
    target = await one.store.data_version() + 2  # a fresh database: only our two changes
    rebuilt = asyncio.Event()
    original = two.screener.rebuild

    async def watched() -> object:
        seen = await two.store.data_version()  # the snapshot holds at least this version
        snap = await original()
        if seen >= target:
            rebuilt.set()
        return snap

    two.screener.rebuild = watched  # type: ignore[method-assign]
    await one.store.create_list("dnc", "dnc")  # the policy's do-not-call list
    await one.store.add_entries("dnc", [number])
    changed = time.monotonic()
    await asyncio.wait_for(rebuilt.wait(), 5)
    assert time.monotonic() - changed < 1.0  # pushed, not polled (the poll is every 2 s)
    with sipp.Carrier(two.pbx.inst, hold_ms=100) as carrier:
        second = await two.call(number, account="a1")
        assert carrier.invites() == []
    assert second.only.final == 403
    await one.settle()
    await two.settle()
    log = await one.logged()
    assert [c.call.verdict for c in log] == ["allow", "block"]
