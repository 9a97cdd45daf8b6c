"""Caps and live-call slots on a real Redis: atomic, idempotent, never negative, expiring."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator

import pytest

from outguard.cluster.caps import CallKeys, CapSpec, CountsIncomplete, RedisCaps
from outguard.testing.servers import RedisServer
from rules.counters import InMemoryCounters

NOW = 1_764_000_000.0
DAY = 86400


@pytest.fixture(params=["wire", "pool"])
async def caps(redis_server: RedisServer, request: pytest.FixtureRequest
               ) -> AsyncIterator[RedisCaps]:
    """A RedisCaps on the session's Redis, with a key prefix of the test's own: the
    scripts over the call path's own connection (``cluster.wire``), or over redis-py's
    pool (what a ``rediss://`` URL uses)."""
    c = RedisCaps.from_url(redis_server.url, prefix=f"t{uuid.uuid4().hex[:10]}:", ttl_s=60,
                           timeout_s=10, wire=request.param == "wire")
    assert (c.wire is not None) == (request.param == "wire")
    await c.mark_complete(NOW)
    try:
        yield c
    finally:
        await c.aclose()


def call(i: int | str, *, account: str = "a1", caller: str = "+8610", tenant: str = "t1",
         dest: str | None = None) -> CallKeys:
    return CallKeys(f"c{i}", tenant, account, caller, dest or f"+86139{int(str(i).strip('x') or 0):08d}")


DAILY_CALLER_CAP = CapSpec("caller_daily", "caller_id", "+8610", DAY, 25)


async def test_a_daily_cap_of_n_admits_exactly_n_of_concurrent_calls_from_two_clients(
    caps: RedisCaps, redis_server: RedisServer
) -> None:
    other = RedisCaps.from_url(redis_server.url, prefix=caps.prefix, ttl_s=60, timeout_s=10)
    try:
        results = await asyncio.gather(*(
            (caps if i % 2 else other).reserve(call(i), [DAILY_CALLER_CAP], NOW + i * 0.001)
            for i in range(100)
        ))
    finally:
        await other.aclose()
    assert sum(r.allowed for r in results) == 25
    blocked = [r for r in results if not r.allowed]
    assert {(r.rule_id, r.limit) for r in blocked} == {("caller_daily", 25)}
    assert all(r.count == 25 for r in blocked)
    assert await caps.count("caller_id", "+8610", DAY, NOW + 1) == 25  # blocked calls never count


async def test_a_retried_reserve_returns_the_first_answer_and_counts_nothing(caps: RedisCaps) -> None:
    cap = CapSpec("acct", "account", "a1", 3600, 2)
    first = await caps.reserve(call(1), [cap], NOW)
    again = await caps.reserve(call(1), [cap], NOW + 1)
    assert first.allowed and again.allowed and again.duplicate and not first.duplicate
    assert await caps.count("account", "a1", 3600, NOW + 2) == 1
    assert await caps.count("concurrent_account", "a1", 0, NOW + 2) == 1
    assert (await caps.reserve(call(2), [cap], NOW + 2)).allowed
    refused = await caps.reserve(call(3), [cap], NOW + 3)
    assert not refused.allowed and (await caps.reserve(call(3), [cap], NOW + 4)).duplicate


async def test_slots_are_released_once_and_counts_never_go_negative(caps: RedisCaps) -> None:
    cap = CapSpec("conc", "concurrent_account", "a1", 0, 2)
    assert (await caps.reserve(call(1), [cap], NOW)).allowed
    assert (await caps.reserve(call(2), [cap], NOW)).allowed
    assert not (await caps.reserve(call(3), [cap], NOW)).allowed
    assert await caps.release("c1", NOW + 1) is True
    assert await caps.release("c1", NOW + 1) is False  # a duplicate hangup event
    assert await caps.release("c3", NOW + 1) is False  # a blocked call holds no slot
    assert await caps.release("never-seen", NOW + 1) is False
    assert await caps.count("concurrent_account", "a1", 0, NOW + 1) == 1
    assert await caps.count("concurrent_tenant", "t1", 0, NOW + 1) == 1
    assert await caps.release("c2", NOW + 2) is True
    for _ in range(3):
        await caps.release("c2", NOW + 2)
    assert await caps.count("concurrent_account", "a1", 0, NOW + 2) == 0
    assert await caps.count("concurrent_tenant", "t1", 0, NOW + 2) == 0


async def test_a_release_that_overtakes_its_reserve_leaves_no_slot(caps: RedisCaps) -> None:
    assert await caps.release("c9", NOW) is False
    late = await caps.reserve(call(9), [], NOW + 0.1)
    assert late.duplicate
    assert await caps.count("concurrent_account", "a1", 0, NOW + 1) == 0


async def test_slots_of_a_dead_instance_expire_after_the_ttl_unless_refreshed(caps: RedisCaps) -> None:
    cap = CapSpec("conc", "concurrent_tenant", "t1", 0, 10)
    for i in range(4):
        assert (await caps.reserve(call(i), [cap], NOW)).allowed
    # the live instance refreshes c0 and c1; c2 and c3 belonged to an instance that died
    assert await caps.refresh([("c0", "t1", "a1"), ("c1", "t1", "a1")], NOW + 50) == 2
    assert await caps.count("concurrent_tenant", "t1", 0, NOW + 59) == 4
    assert await caps.count("concurrent_tenant", "t1", 0, NOW + 61) == 2
    assert await caps.count("concurrent_tenant", "t1", 0, NOW + 111) == 0
    assert await caps.release("c0", NOW + 120) is True  # a late hangup: still no negative
    assert await caps.count("concurrent_tenant", "t1", 0, NOW + 120) == 0


async def test_a_refresh_removes_the_expired_slots_nobody_refreshes(caps: RedisCaps) -> None:
    """A reserve counts only the slots still valid (it writes nothing to count them); the
    expired ones of a dead instance go at the next refresh of a call on the same key."""
    cap = CapSpec("conc", "concurrent_tenant", "t1", 0, 10)
    for i in range(3):
        assert (await caps.reserve(call(i), [cap], NOW)).allowed
    key = caps.prefix + "c:tenant:t1"
    assert (await caps.reserve(call(3), [cap], NOW + 61)).allowed  # c0-c2 expired at NOW + 60
    assert await caps.count("concurrent_tenant", "t1", 0, NOW + 61) == 1
    assert await caps.client.zcard(key) == 4  # counted out, not yet removed
    assert await caps.refresh([("c3", "t1", "a1")], NOW + 62) == 1
    assert [m.decode() for m in await caps.client.zrange(key, 0, -1)] == ["c3"]


async def test_a_call_still_up_after_redis_was_emptied_takes_its_slots_again_at_refresh(
    caps: RedisCaps,
) -> None:
    cap = CapSpec("conc", "concurrent_tenant", "t1", 0, 10)
    for i in range(3):
        assert (await caps.reserve(call(i), [cap], NOW)).allowed
    assert await caps.release("c2", NOW + 1) is True
    keys = await caps.client.keys(caps.prefix + "*")
    await caps.client.delete(*keys)  # Redis restarted without persistence
    assert await caps.count("concurrent_tenant", "t1", 0, NOW + 2) == 0
    up = [("c0", "t1", "a1"), ("c1", "t1", "a1")]  # c2 ended: not among them
    # until the counters are rebuilt a refresh takes nothing (the rebuild would then skip
    # these calls' counts, as calls it already knows)
    assert await caps.refresh(up, NOW + 2.5) == -1
    assert await caps.rebuild([(f"c{i}", "t1", "a1", "+8610", f"+86139{i:08d}", NOW)
                               for i in range(3)]) == 3
    await caps.mark_complete(NOW + 2.6)
    # the instance refreshes the calls it still has up
    assert await caps.refresh(up, NOW + 3) == 2
    assert await caps.count("caller_id", "+8610", DAY, NOW + 4) == 3
    assert await caps.count("concurrent_tenant", "t1", 0, NOW + 4) == 2
    assert await caps.count("concurrent_account", "a1", 0, NOW + 4) == 2
    assert await caps.release("c0", NOW + 5) is True and not await caps.release("c0", NOW + 6)
    assert await caps.count("concurrent_tenant", "t1", 0, NOW + 7) == 1


async def test_every_cap_is_checked_and_the_first_enforced_one_reached_blocks(caps: RedisCaps) -> None:
    def caps_for(dest: str) -> list[CapSpec]:
        return [CapSpec("minute", "account", "a1", 60, 100),
                CapSpec("dest", "destination", dest, DAY, 1),
                CapSpec("callees", "distinct_callees", "a1", DAY, 2)]

    one, two, three = "+8613900000001", "+8613900000002", "+8613900000003"
    assert (await caps.reserve(call(1, dest=one), caps_for(one), NOW)).allowed
    second = await caps.reserve(call(2, dest=one), caps_for(one), NOW + 1)
    assert (second.allowed, second.rule_id, second.count) == (False, "dest", 1)
    assert (await caps.reserve(call(3, dest=two), caps_for(two), NOW + 2)).allowed
    third = await caps.reserve(call(4, dest=three), caps_for(three), NOW + 3)
    assert (third.allowed, third.rule_id, third.count) == (False, "callees", 2)
    assert await caps.count("destination", one, DAY, NOW + 3, tenant="t1") == 1
    assert await caps.count("distinct_callees", "a1", DAY, NOW + 3) == 2
    assert await caps.count("account", "a1", 60, NOW + 3) == 2


async def test_shadow_caps_are_reported_but_never_block(caps: RedisCaps) -> None:
    shadow = CapSpec("trial", "account", "a1", 3600, 1, enforce=False)
    assert (await caps.reserve(call(1), [shadow], NOW)).shadow == ()
    second = await caps.reserve(call(2), [shadow], NOW + 1)
    assert second.allowed and second.shadow == ("trial",)
    assert await caps.count("account", "a1", 3600, NOW + 2) == 2


async def test_windows_count_exactly_what_the_in_memory_counters_count(caps: RedisCaps) -> None:
    rng = random.Random(15)
    local = InMemoryCounters(clock=lambda: NOW)
    for i in range(400):
        at = NOW - rng.uniform(0, 8 * DAY)
        account, dest = f"a{rng.randrange(3)}", f"+86139{rng.randrange(20):08d}"
        assert (await caps.reserve(CallKeys(f"c{i}", "t1", account, "+8610", dest), [], at)).allowed
        local.record("t1", account, "+8610", dest, at)
    for window in (10, 60, 119, 120, 3600, 7199, 7261, 43210, 89939, DAY, 7 * DAY):
        for scope, key in (("account", "a0"), ("account", "a2"), ("tenant", "t1"),
                           ("caller_id", "+8610")):
            assert await caps.count(scope, key, window, NOW) == \
                local.attempts(scope, key, window, NOW), (scope, key, window)
        for d in range(0, 20, 7):
            dest = f"+86139{d:08d}"
            assert await caps.count("destination", dest, window, NOW, tenant="t1") == \
                local.destination_attempts("t1", dest, window, NOW)


async def test_counters_rebuilt_from_the_call_log_after_redis_was_emptied(caps: RedisCaps) -> None:
    rows = [(f"c{i}", "t1", f"a{i % 2}", "+8610", f"+86139{i:08d}", NOW - i * 600.0)
            for i in range(200)]
    for row in reversed(rows):  # reserved live, oldest first
        await caps.reserve(CallKeys(*row[:5]), [], row[5])
    windows = (60, 3600, DAY, 7 * DAY)
    before = [await caps.count("caller_id", "+8610", w, NOW) for w in windows] + \
        [await caps.count("account", "a1", w, NOW) for w in windows] + \
        [await caps.count("distinct_callees", "a0", DAY, NOW)]
    keys = await caps.client.keys(caps.prefix + "*")
    await caps.client.delete(*keys)  # Redis emptied (restarted without persistence)
    assert await caps.count("caller_id", "+8610", DAY, NOW) == 0
    with pytest.raises(CountsIncomplete):  # nothing is decided on emptied counters
        await caps.reserve(CallKeys(*rows[0][:5]), [], NOW)
    assert await caps.rebuild(rows) == 200
    assert await caps.rebuild(rows) == 0  # idempotent: a second replay counts nothing
    await caps.mark_complete(NOW)
    again = await caps.reserve(CallKeys(*rows[0][:5]), [], NOW)
    assert again.duplicate and again.allowed  # a replayed call is known by its id
    after = [await caps.count("caller_id", "+8610", w, NOW) for w in windows] + \
        [await caps.count("account", "a1", w, NOW) for w in windows] + \
        [await caps.count("distinct_callees", "a0", DAY, NOW)]
    assert after == before and before[2] > 100


async def test_a_call_that_went_out_unscreened_is_counted_and_slotted_once(
    caps: RedisCaps,
) -> None:
    cap = CapSpec("acct", "account", "a1", 3600, 1)
    assert (await caps.reserve(call(1), [cap], NOW)).allowed  # the cap of one is reached
    assert await caps.take(call(2), NOW + 1)  # no cap refuses a call already out
    assert not await caps.take(call(2), NOW + 2)  # idempotent per call id
    assert not await caps.take(call(1), NOW + 3)  # reserved already: counted once
    assert await caps.count("account", "a1", 3600, NOW + 4) == 2
    assert await caps.count("concurrent_account", "a1", 0, NOW + 4) == 2
    assert await caps.release("c2", NOW + 5) and not await caps.release("c2", NOW + 6)
    assert await caps.count("concurrent_account", "a1", 0, NOW + 7) == 1
    assert await caps.rebuild([("c2", "t1", "a1", "+8610", "+8613900000002", NOW + 1)]) == 0


async def test_a_count_of_an_unscreened_call_arriving_after_its_release_takes_no_slot(
    caps: RedisCaps,
) -> None:
    assert not await caps.release("c1", NOW)  # the short call ended first
    assert await caps.take(call(1), NOW)
    assert await caps.count("caller_id", "+8610", DAY, NOW + 1) == 1
    assert await caps.count("concurrent_account", "a1", 0, NOW + 1) == 0
    assert await caps.refresh([("c1", "t1", "a1")], NOW + 2) == 0  # never slotted again
    assert not await caps.take(call(1), NOW + 3)


async def test_an_unscreened_call_is_not_counted_into_counters_not_rebuilt_yet(
    caps: RedisCaps,
) -> None:
    await caps.client.delete(caps.prefix + "epoch")
    with pytest.raises(CountsIncomplete):
        await caps.take(call(1), NOW)
    assert await caps.client.exists(caps.prefix + "call:c1") == 0  # the rebuild counts it


async def test_the_script_is_reloaded_after_redis_forgot_it(caps: RedisCaps) -> None:
    assert (await caps.reserve(call(1), [], NOW)).allowed
    await caps.client.script_flush()
    assert (await caps.reserve(call(2), [], NOW)).allowed
    assert await caps.count("account", "a1", 60, NOW) == 2


def test_an_unknown_scope_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown cap scope"):
        CapSpec("x", "per_planet", "a1", 60, 1)


async def test_a_voided_call_no_longer_counts_anywhere_once(caps: RedisCaps) -> None:
    """A counted call that never went out: its rate counts (every resolution), its
    destination's and its slot are taken back, once; a call never counted is left alone;
    counts never go negative."""
    cap = CapSpec("acct", "concurrent_account", "a1", 0, 5)
    kept, voided = call(1, dest="+8613900000001"), call(2, dest="+8613900000001")
    assert (await caps.reserve(kept, [cap], NOW)).allowed
    assert (await caps.reserve(voided, [cap], NOW + 1)).allowed
    assert await caps.void(voided, NOW + 1)
    assert not await caps.void(voided, NOW + 1)  # once
    assert not await caps.void(call(3), NOW + 1)  # never counted
    for window in (60, 3600, DAY, 7 * DAY):
        assert await caps.count("caller_id", "+8610", window, NOW + 2) == 1
        assert await caps.count("account", "a1", window, NOW + 2) == 1
    assert await caps.count("destination", "+8613900000001", 3600, NOW + 2, "t1") == 1
    assert await caps.count("concurrent_account", "a1", 0, NOW + 2) == 1
    assert await caps.void(kept, NOW)
    assert await caps.count("account", "a1", DAY, NOW + 2) == 0
    assert not await caps.release(voided.call_id, NOW + 3)  # its slot is gone already


async def test_a_day_of_calls_in_time_order_counts_as_in_memory_and_hashes_stay_small(
    caps: RedisCaps,
) -> None:
    """Calls as they come (time moving on, idle seconds, minutes and hours between them),
    counted as they go: every window counts what the in-memory counters count at every
    step, while the buckets every window has left are swept (a per-second hash kept one
    field per idle second before: ~500 after a day of 500 calls, every read scanning
    them), and hashes small enough are read whole."""
    rng = random.Random(7)
    at = NOW
    clock = [at]
    local = InMemoryCounters(clock=lambda: clock[0])
    for i in range(1500):
        at += rng.choice((0.0, 0.4, 1.0, 3.0, 9.0, 40.0, 130.0, 900.0, 4000.0))
        clock[0] = at
        account = f"a{rng.randrange(2)}"
        assert (await caps.reserve(CallKeys(f"d{i}", "t1", account, "+8610", "+8613900000001"),
                                   [], at)).allowed
        local.record("t1", account, "+8610", "+8613900000001", at)
        if i % 25 == 0:
            for window in (1, 59, 119, 600, 3600, 7261, 89939, DAY):
                for scope, key in (("account", "a0"), ("tenant", "t1"), ("caller_id", "+8610")):
                    assert await caps.count(scope, key, window, at) == \
                        local.attempts(scope, key, window, at), (i, scope, key, window)
                assert await caps.count("destination", "+8613900000001", window, at,
                                        tenant="t1") == local.destination_attempts(
                    "t1", "+8613900000001", window, at), (i, window)
    assert at - NOW > 3 * DAY
    for key, keep in (("r:tenant:t1:1", 120), ("r:account:a0:1", 120),
                      ("r:caller_id:+8610:3600", 26), ("r:caller_id:+8610:86400", 8)):
        fields = await caps.client.hlen(caps.prefix + key)
        assert 0 < fields <= keep + 1 + max(8, (keep + 1) // 4), (key, fields)
