"""Per-callee counts made before the destination keys were split by resolution still count.

Before the cn-callee-caps preset (1 call per minute, 5 per hour, 20 per day per callee),
Redis held a destination's calls in one hourly hash, ``<prefix>d:<tenant>:<dest>``; now
they are ``...:60`` (minutes) and ``...:3600`` (hours). An upgrade, or a rolling one with
old instances still counting, must not forget the calls counted the old way: the reserve
script adds the old hash's hours that overlap each window (whole hours, so a cap errs on
the side of blocking). Against the real Redis.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from outguard.cluster.caps import CallKeys, CapSpec, RedisCaps
from outguard.testing.servers import RedisServer

HOUR, DAY = 3600, 86400
NOW = 1_764_000_000.0 - 1_764_000_000.0 % HOUR + 1800  # half past an hour
CALLEE = "+8613900000042"


@pytest.fixture
async def caps(redis_server: RedisServer) -> AsyncIterator[RedisCaps]:
    c = RedisCaps.from_url(redis_server.url, prefix=f"t{uuid.uuid4().hex[:10]}:", ttl_s=60,
                           timeout_s=10)
    await c.mark_complete(NOW - DAY)
    try:
        yield c
    finally:
        await c.aclose()


async def count_the_old_way(caps: RedisCaps, tenant: str, dest: str, at: float) -> None:
    """What the script before the split did for a destination (one hourly hash, 192
    hours kept)."""
    key = f"{caps.prefix}d:{tenant}:{dest}"
    bucket = int(at // HOUR)
    await caps.client.hincrby(key, str(bucket), 1)
    await caps.client.hdel(key, str(bucket - 192))
    await caps.client.expire(key, (bucket + 193) * HOUR - int(at))


def callee_caps(dest: str = CALLEE) -> list[CapSpec]:
    return [CapSpec("callee_minute", "destination", dest, 60, 1),
            CapSpec("callee_hour", "destination", dest, HOUR, 5),
            CapSpec("callee_day", "destination", dest, DAY, 20)]


def call(i: int, dest: str = CALLEE) -> CallKeys:
    return CallKeys(f"c{i}", "t1", f"a{i}", f"+861088{i:04d}", dest)


async def test_calls_counted_before_the_upgrade_still_reach_the_daily_cap(
    caps: RedisCaps,
) -> None:
    for i in range(19):  # yesterday evening and this morning, the old way
        await count_the_old_way(caps, "t1", CALLEE, NOW - 20 * HOUR + i * HOUR)
    assert await caps.count("destination", CALLEE, DAY, NOW, tenant="t1") == 19
    assert (await caps.reserve(call(1), callee_caps(), NOW)).allowed  # the 20th
    refused = await caps.reserve(call(2), callee_caps(), NOW + 2 * HOUR)
    assert (refused.allowed, refused.rule_id, refused.count) == (False, "callee_day", 20)
    # the old calls leave the window as their hours do
    assert (await caps.reserve(call(3), callee_caps(), NOW + 5 * HOUR)).allowed


async def test_old_calls_in_the_current_hour_count_for_minute_and_hour_caps(
    caps: RedisCaps,
) -> None:
    """An hour bucket cannot say which minute its calls were in: it counts whole for every
    window that overlaps its hour, so the 1-per-minute cap refuses rather than allows."""
    await count_the_old_way(caps, "t1", CALLEE, NOW - 10)
    refused = await caps.reserve(call(1), callee_caps(), NOW)
    assert (refused.allowed, refused.rule_id, refused.count) == (False, "callee_minute", 1)
    # next hour: the old call is outside a 1-minute window, inside a 1-hour one
    assert await caps.count("destination", CALLEE, 60, NOW + HOUR, tenant="t1") == 0
    assert await caps.count("destination", CALLEE, HOUR, NOW + HOUR, tenant="t1") == 1


async def test_a_rolling_upgrade_adds_both_layouts_and_counts_no_call_twice(
    caps: RedisCaps,
) -> None:
    """Old instances still write the old hash while upgraded ones write the new keys: the
    hour cap sees the sum."""
    hour_and_day = callee_caps()[1:]
    await count_the_old_way(caps, "t1", CALLEE, NOW - 20 * 60)
    assert (await caps.reserve(call(1), hour_and_day, NOW - 15 * 60)).allowed
    await count_the_old_way(caps, "t1", CALLEE, NOW - 10 * 60)
    assert (await caps.reserve(call(2), hour_and_day, NOW - 5 * 60)).allowed
    assert await caps.count("destination", CALLEE, HOUR, NOW, tenant="t1") == 4
    assert await caps.count("destination", CALLEE, 60, NOW, tenant="t1") == 2  # old hour
    assert (await caps.reserve(call(3), hour_and_day, NOW)).allowed  # the 5th
    refused = await caps.reserve(call(4), hour_and_day, NOW + 120)
    assert (refused.allowed, refused.rule_id, refused.count) == (False, "callee_hour", 5)


async def test_old_counts_stay_with_their_tenant_and_callee(caps: RedisCaps) -> None:
    other = "+8613900000043"
    for _ in range(5):
        await count_the_old_way(caps, "t2", CALLEE, NOW - 60)
        await count_the_old_way(caps, "t1", other, NOW - 60)
    assert await caps.count("destination", CALLEE, HOUR, NOW, tenant="t1") == 0
    assert (await caps.reserve(call(1), callee_caps(), NOW)).allowed
    assert await caps.count("destination", other, HOUR, NOW, tenant="t1") == 5
