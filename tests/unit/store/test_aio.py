"""The async facade: nothing blocks the loop, changes arrive on the loop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timezone
from pathlib import Path

import pytest

from outguard.errors import NotFound
from outguard.store import AsyncStore, CallRecord, SQLiteStore
from rules.counters import InMemoryCounters
from rules.model import StoreData


@pytest.fixture
async def astore(open_store_at: Callable[..., SQLiteStore]) -> AsyncIterator[AsyncStore]:
    a = AsyncStore(open_store_at(batch_interval=0.01))
    try:
        yield a
    finally:
        await a.aclose()


async def test_methods_run_off_the_loop_and_raise_store_errors(astore: AsyncStore) -> None:
    await astore.create_tenant("t1", "T")
    assert (await astore.get_tenant("t1")).name == "T"
    with pytest.raises(NotFound):
        await astore.get_account("nope")


async def test_record_then_flush_async(astore: AsyncStore) -> None:
    now = time.time()
    for i in range(100):
        astore.record_decision(CallRecord(f"d{i}", "", "ari", "t1", "a1", "+861", "+862",
                                          "allow", "", "ok", (), 1, now))
    assert await astore.flush_async() >= 100
    counters = InMemoryCounters(clock=lambda: now)
    assert await astore.replay_counters(counters, since=now - 60) == 100
    assert counters.attempts("account", "a1", 60, now) == 100


async def test_subscribers_are_called_on_the_loop(
    astore: AsyncStore, open_store_at: Callable[..., SQLiteStore]
) -> None:
    loop = asyncio.get_running_loop()
    got: asyncio.Queue[int] = asyncio.Queue()

    def on_change(version: int) -> None:
        assert asyncio.get_running_loop() is loop
        got.put_nowait(version)

    astore.subscribe(on_change)
    await astore.create_list("dnc", "dnc")
    assert await asyncio.wait_for(got.get(), 5) == await astore.data_version()
    astore.start_polling(0.02)
    other = open_store_at()  # the CLI in another process
    other.add_entries("dnc", ["13800138000"])
    other.close()
    assert await asyncio.wait_for(got.get(), 5) == await astore.data_version()


async def test_build_snapshot_streams_off_the_loop(astore: AsyncStore) -> None:
    await astore.create_list("dnc", "dnc")
    await astore.add_entries("dnc", ["13800138000", "13800138001"])

    def build(data: StoreData) -> list[str]:
        return [e.e164 for e in data.entries]

    assert await astore.build_snapshot(datetime.now(timezone.utc), build) == [
        "+8613800138000", "+8613800138001"]


async def test_close_waits_for_the_store_calls_still_running(
    open_store_at: Callable[..., SQLiteStore],
) -> None:
    """A call whose caller was cancelled (a request cut at shutdown) still runs in its
    thread: the store is closed only once it has finished, never under it."""
    store = open_store_at()
    astore = AsyncStore(store)
    order: list[str] = []
    started = asyncio.Event()
    loop = asyncio.get_running_loop()
    real_close = store.close

    def slow_query() -> None:
        loop.call_soon_threadsafe(started.set)
        time.sleep(0.3)
        store.list_suspensions()  # the connection is still open
        order.append("query done")

    def close() -> None:
        order.append("close")
        real_close()

    store.close = close  # type: ignore[method-assign]
    call = asyncio.ensure_future(astore.run(slow_query))
    await started.wait()
    call.cancel()  # the request goes away; its thread does not
    await astore.aclose()
    assert order == ["query done", "close"]
