"""Calls in progress across a restart: the new Screener restores them from the call log,
so they hold their concurrency slots, and closes their rows once their end is known."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from outguard.callfacts import ChannelFacts
from outguard.live import DEFAULT_PBX, MAX_CALL_AGE_S, NEVER_SEEN_ENDING, UNKNOWN_AFTER_RESTART
from outguard.service import Screener
from outguard.store.aio import AsyncStore
from outguard.store.sqlite import SQLiteStore
from rules.policy import parse_policy

POLICY = """
default_region = "CN"
timezone = "Asia/Shanghai"

[[rules]]
id = "account_concurrent"
kind = "cap"
scope = "concurrent_account"
limit = 1
cause = 17
"""


class Clock:
    def __init__(self) -> None:
        self.t = 1_800_000_000.0

    def __call__(self) -> float:
        return self.t


def facts(channel: str, account: str = "a1") -> ChannelFacts:
    return ChannelFacts(adapter="agi", channel_id=channel, channel_name="PJSIP/agent-1",
                        dialed="13800138000", caller_id="01088886666", account=account)


@pytest.fixture
async def started(tmp_path: Path) -> AsyncIterator[tuple[Path, Clock]]:
    yield tmp_path / "og.db", Clock()


async def screener_on(path: Path, clock: Clock) -> tuple[Screener, AsyncStore]:
    store = AsyncStore(SQLiteStore(path))
    screener = Screener(store, parse_policy(POLICY), clock=clock)
    await screener.start()
    return screener, store


async def stop(screener: Screener, store: AsyncStore) -> None:
    await screener.stop()
    await store.aclose()


async def test_a_call_in_progress_holds_its_slot_after_a_restart_and_closes_with_its_cause(
    started: tuple[Path, Clock],
) -> None:
    path, clock = started
    first, store = await screener_on(path, clock)
    decision = first.screen(facts("pbx-1.1"))
    assert decision.allowed
    clock.t += 3
    first.answered(decision.id)
    await store.flush_async()
    await stop(first, store)  # outguard stops (or is killed) with the call connected

    clock.t += 10
    second, store = await screener_on(path, clock)
    try:
        assert second.live_calls() == 1
        assert not second.screen(facts("pbx-1.2")).allowed  # the cap of 1 still holds
        call = second.call_on_channel(DEFAULT_PBX, "pbx-1.1")
        assert call is not None and call.restored and call.answered_at == clock.t - 10
        clock.t += 20
        assert second.ended(call.call_id, 16) is True  # the channel's real Hangup
        await store.flush_async()
        row = await store.get_call(decision.id)
        assert (row.cause, row.end_note, row.duration) == (16, None, 30.0)
        assert second.screen(facts("pbx-1.3")).allowed  # the slot is free again
    finally:
        await stop(second, store)


async def test_a_restored_call_whose_channel_is_gone_closes_as_unknown_after_restart(
    started: tuple[Path, Clock],
) -> None:
    path, clock = started
    first, store = await screener_on(path, clock)
    decision = first.screen(facts("pbx-2.1"))
    first.answered(decision.id)
    await store.flush_async()
    await stop(first, store)

    second, store = await screener_on(path, clock)
    try:
        assert second.ended(decision.id, None, note=UNKNOWN_AFTER_RESTART)
        await store.flush_async()
        row = await store.get_call(decision.id)
        assert row.ended_at is not None and row.cause is None
        assert (row.end_note, row.duration) == (UNKNOWN_AFTER_RESTART, None)
        assert await store.open_calls() == []
    finally:
        await stop(second, store)


async def test_rows_older_than_the_maximum_call_age_are_closed_not_restored(
    started: tuple[Path, Clock],
) -> None:
    path, clock = started
    first, store = await screener_on(path, clock)
    old = first.screen(facts("pbx-3.1"))
    await store.flush_async()
    await stop(first, store)

    clock.t += MAX_CALL_AGE_S + 1
    second, store = await screener_on(path, clock)
    try:
        assert second.live_calls() == 0
        await store.flush_async()
        assert (await store.get_call(old.id)).end_note == NEVER_SEEN_ENDING
    finally:
        await stop(second, store)


async def test_readiness_is_an_event_set_by_the_first_snapshot(tmp_path: Path) -> None:
    store = AsyncStore(SQLiteStore(tmp_path / "og.db"))
    screener = Screener(store, parse_policy(POLICY), clock=Clock())
    try:
        assert await screener.wait_ready(0.01) is False
        waiting = asyncio.ensure_future(screener.wait_ready(30))
        await screener.start()
        assert await waiting is True
    finally:
        await stop(screener, store)


async def test_in_cluster_mode_a_restart_restores_only_the_calls_of_the_pbxes_it_follows(
    started: tuple[Path, Clock],
) -> None:
    """The call log is shared in cluster mode: an instance serving PBX "a" found PBX "b"'s
    calls open in it too (up, followed by their own instance). Held here they were never
    seen ending: 6 h on this instance closed them "never seen ending" and published that
    end (a second end of each in the cluster's call feed)."""
    path, clock = started
    first, store = await screener_on(path, clock)
    on_a = first.screen(dataclasses.replace(facts("a-1.1"), pbx="a"))
    on_b = first.screen(dataclasses.replace(facts("b-1.1", account="a2"), pbx="b"))
    assert on_a.allowed and on_b.allowed
    await store.flush_async()
    await stop(first, store)

    store = AsyncStore(SQLiteStore(path))
    second = Screener(store, parse_policy(POLICY), clock=clock, follows=["a"])
    await second.start()
    try:
        assert [c.call_id for c in second.live.calls()] == [on_a.id]
        assert second.call_on_channel("b", "b-1.1") is None
        clock.t += MAX_CALL_AGE_S + 60
        assert [c.call_id for c in second.live.expired(clock.t)] == [on_a.id]
        # b's row is its instance's to close
        assert {c.call.decision_id for c in await store.open_calls()} == {on_a.id, on_b.id}
    finally:
        await stop(second, store)


def test_serve_follows_its_targets_pbxes_in_cluster_mode_and_every_call_embedded() -> None:
    from outguard.config import AmiConfig, AriConfig, ClusterConfig, Settings
    from outguard.server import followed_pbxes

    targets = {"ari": (AriConfig(pbx="bj-1"),
                       AriConfig(pbx="bj-2", url="http://127.0.0.2:8088/ari")),
               "ami": (AmiConfig(pbx="bj-1"),
                       AmiConfig(pbx="sh-1", host="127.0.0.3", enabled=False))}
    assert followed_pbxes(Settings(**targets)) is None  # type: ignore[arg-type]
    cluster = Settings(cluster=ClusterConfig(redis="redis://127.0.0.1:1/0"),
                       **targets)  # type: ignore[arg-type]
    assert followed_pbxes(cluster) == ["bj-1", "bj-2"]
