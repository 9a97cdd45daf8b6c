"""The caps' failure policy on a real Redis that dies and comes back (empty)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator

import pytest

from outguard.cluster.caps import CallKeys, CapSpec, RedisCaps
from outguard.cluster.guard import GuardedCaps
from outguard.testing.servers import REDIS_BASE_PORT, RedisServer
from tests.conftest import TEST_INSTANCE, TEST_PORT_OFFSET

Row = tuple[str, str, str, str, str, float]
NOW = 1_764_000_000.0
DAY = 86400
STRICT = CapSpec("caller_daily", "caller_id", "+8610", DAY, 100)  # when_unavailable=block
LENIENT = CapSpec("acct_hour", "account", "a1", 3600, 100, when_unavailable="allow")


@pytest.fixture(scope="module")
def doomed_redis() -> Iterator[RedisServer]:
    """A Redis of this module's own, to kill and restart (port 17000 + offset + 50)."""
    server = RedisServer(REDIS_BASE_PORT + TEST_PORT_OFFSET + 50, f"{TEST_INSTANCE}-doomed")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def guard(doomed_redis: RedisServer) -> AsyncIterator[tuple[GuardedCaps, list[Row]]]:
    if doomed_redis.proc is None or doomed_redis.proc.poll() is not None:
        doomed_redis.restart()
    admin = RedisCaps.from_url(doomed_redis.url, timeout_s=5)
    await admin.client.flushall()
    await admin.aclose()
    log: list[Row] = []  # stands in for the call log
    caps = RedisCaps.from_url(doomed_redis.url, timeout_s=2)
    g = GuardedCaps(caps, history=lambda since: [r for r in log if r[5] >= since],
                    timeout_s=2, clock=lambda: NOW + 100)
    await g.check()  # a fresh Redis: the epoch marker is set
    try:
        yield g, log
    finally:
        await caps.aclose()


def call(i: int) -> CallKeys:
    return CallKeys(f"c{i}", "t1", "a1", "+8610", f"+86139{i:08d}")


async def place(g: GuardedCaps, log: list[Row], i: int,
                caps: list[CapSpec]) -> bool:
    r = await g.reserve(call(i), caps, NOW + i)
    if r.allowed:
        log.append((f"c{i}", "t1", "a1", "+8610", f"+86139{i:08d}", NOW + i))
    return r.allowed


async def test_redis_down_blocks_by_default_and_allows_where_the_rule_says(
    guard: tuple[GuardedCaps, list[Row]],
    doomed_redis: RedisServer, caplog: pytest.LogCaptureFixture,
) -> None:
    g, log = guard
    assert await place(g, log, 1, [STRICT, LENIENT])
    doomed_redis.kill()
    with caplog.at_level(logging.WARNING, logger="outguard.cluster.guard"):
        strict = await g.reserve(call(2), [STRICT, LENIENT], NOW + 2)
        lenient = await g.reserve(call(3), [LENIENT], NOW + 3)
        await g.reserve(call(4), [LENIENT], NOW + 4)
    assert (strict.allowed, strict.rule_id, strict.unavailable) == (False, "caller_daily", True)
    assert (lenient.allowed, lenient.unavailable) == (True, True)
    assert g.health.available is False and g.health.failed_closed == 1 and g.health.failed_open == 2
    assert sum("unavailable" in r.message for r in caplog.records) == 1  # logged once


async def test_counters_reconcile_when_redis_returns_empty(
    guard: tuple[GuardedCaps, list[Row]],
    doomed_redis: RedisServer,
) -> None:
    g, log = guard
    for i in range(5):
        assert await place(g, log, i, [LENIENT])
    doomed_redis.kill()
    for i in range(5, 8):  # let through uncounted while Redis is down
        assert await place(g, log, i, [LENIENT])
    assert (await g.release("c0", NOW + 9)) is False  # remembered for later
    rebuilds = g.health.rebuilds
    doomed_redis.restart()  # back, and empty
    assert await g.check() is True
    assert g.health.available and g.health.rebuilds == rebuilds + 1 and not g.health.pending
    assert await g.caps.count("account", "a1", 3600, NOW + 10) == 8
    assert await g.caps.count("concurrent_account", "a1", 0, NOW + 10) == 0  # replays hold no slot
    again = await g.reserve(call(6), [LENIENT], NOW + 11)
    assert again.duplicate  # a call counted during the replay is known by its id
    assert await g.caps.count("account", "a1", 3600, NOW + 12) == 8


async def test_a_restart_nobody_noticed_is_caught_by_the_periodic_check(
    guard: tuple[GuardedCaps, list[Row]],
    doomed_redis: RedisServer,
) -> None:
    g, log = guard
    for i in range(3):
        assert await place(g, log, i, [STRICT])
    doomed_redis.restart()
    assert await g.check() is True
    assert await g.caps.count("caller_id", "+8610", DAY, NOW + 10) == 3
