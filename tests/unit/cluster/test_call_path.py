"""Cluster mode on the call path: two Screeners (two outguard instances) share their caps
and live-call slots through one real Redis; every other rule is decided locally."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from outguard.callfacts import ChannelFacts
from outguard.cluster.caps import RedisCaps
from outguard.cluster.guard import GuardedCaps
from outguard.service import Screener
from outguard.store.aio import AsyncStore
from outguard.store.sqlite import SQLiteStore
from outguard.testing.servers import RedisServer
from rules.deferred import DeferredCap
from rules.policy import parse_policy
from tests.unit.service.test_restart import Clock

POLICY = """
default_region = "CN"
timezone = "Asia/Shanghai"

[[rules]]
id = "no_170"
kind = "prefix"
deny = ["86170"]

[[rules]]
id = "caller_daily"
kind = "cap"
scope = "caller_id"
limit = 5
window = "day"
message = "caller ID over its daily calls: {detail}"

[[rules]]
id = "acct_hourly_shadow"
kind = "cap"
scope = "account"
limit = 1
window = "hour"
mode = "shadow"

[[rules]]
id = "acct_concurrent"
kind = "cap"
scope = "concurrent_account"
limit = 2
cause = 17
when_unavailable = "allow"
"""
DAY = 86400
TTL = 30.0


def facts(n: int, *, caller: str = "01088886666", dialed: str | None = None,
          account: str = "a1") -> ChannelFacts:
    return ChannelFacts(adapter="agi", channel_id=f"pbx-{n}", channel_name="PJSIP/agent-1",
                        dialed=dialed or f"1380013{n:04d}", caller_id=caller, account=account)


class Cluster:
    """Instances on the session's Redis under a prefix of the test's own, one clock."""

    def __init__(self, redis: RedisServer, workdir: Path) -> None:
        self.redis = redis
        self.workdir = workdir
        self.prefix = f"t{uuid.uuid4().hex[:10]}:"
        self.clock = Clock()
        self.running: list[tuple[Screener, AsyncStore, RedisCaps]] = []

    async def start(self, name: str, *, url: str = "", policy: str = POLICY,
                    timeout_s: float = 2.0) -> Screener:
        store = AsyncStore(SQLiteStore(self.workdir / f"{name}.db"))
        caps = RedisCaps.from_url(url or self.redis.url, prefix=self.prefix, ttl_s=TTL,
                                  timeout_s=timeout_s)
        guard = GuardedCaps(caps, history=store.store.iter_allowed_calls_since,
                            timeout_s=timeout_s, clock=self.clock)
        screener = Screener(store, parse_policy(policy), clock=self.clock, shared=guard,
                            slot_ttl_s=TTL)
        await screener.start()
        self.running.append((screener, store, caps))
        return screener

    @contextlib.asynccontextmanager
    async def reader(self) -> AsyncIterator[RedisCaps]:
        """A client of the cluster's counts, for the test to read them."""
        caps = RedisCaps.from_url(self.redis.url, prefix=self.prefix, timeout_s=5)
        try:
            yield caps
        finally:
            await caps.aclose()

    async def stop(self) -> None:
        for screener, store, caps in self.running:
            await screener.stop()
            await store.aclose()
            await caps.aclose()


@pytest.fixture
async def cluster(redis_server: RedisServer, tmp_path: Path) -> AsyncIterator[Cluster]:
    c = Cluster(redis_server, tmp_path)
    try:
        yield c
    finally:
        await c.stop()


async def test_a_daily_caller_id_cap_of_n_admits_exactly_n_of_concurrent_calls_on_two_instances(
    cluster: Cluster,
) -> None:
    one = await cluster.start("one")
    two = await cluster.start("two")
    decisions = await asyncio.gather(*(
        (one if i % 2 else two).screen_reserving(facts(i, account=f"a{i}")) for i in range(20)))
    allowed = [d for d in decisions if d.allowed]
    blocked = [d for d in decisions if not d.allowed]
    assert len(allowed) == 5
    assert {(d.verdict.rule_id, d.verdict.reason, d.verdict.cause) for d in blocked} == {
        ("caller_daily", "rate_cap", 34)}
    assert all(d.verdict.message.startswith("caller ID over its daily calls: caller id +86")
               and "5 calls" in d.verdict.message for d in blocked)
    snap = one.snapshot
    assert snap is not None and one.hits.get("caller_daily", "block") + two.hits.get(
        "caller_daily", "block") == 15
    assert one.hits.get("", "allowed") + two.hits.get("", "allowed") == 5


async def test_a_concurrency_slot_taken_on_one_instance_is_given_back_when_the_call_ends(
    cluster: Cluster,
) -> None:
    one = await cluster.start("one")
    two = await cluster.start("two")
    first = await one.screen_reserving(facts(1, caller="01088886661"))
    second = await one.screen_reserving(facts(2, caller="01088886662"))
    third = await two.screen_reserving(facts(3, caller="01088886663"))
    assert first.allowed and second.allowed
    assert (third.allowed, third.verdict.rule_id, third.verdict.cause) == (
        False, "acct_concurrent", 17)
    assert one.ended(first.id, 16) and not one.ended(first.id, 16)  # once
    await one.stop()  # drains the release queue
    async with cluster.reader() as reader:
        assert await reader.count("concurrent_account", "a1", 0, cluster.clock.t) == 1
    assert (await two.screen_reserving(facts(4, caller="01088886664"))).allowed


async def test_two_pbxes_handing_out_the_same_unique_id_hold_a_slot_each(
    cluster: Cluster,
) -> None:
    """Two Asterisks without a systemname, started in the same second, hand out the same
    unique ids; on two instances their calls stay two calls in Redis: two reservations,
    two slots, released one by one."""
    one = await cluster.start("one")
    two = await cluster.start("two")
    uid = "1764680000.7"
    a = await one.screen_reserving(dataclasses.replace(facts(1, caller="01088886661"),
                                                       channel_id=uid, pbx="pbx-a"))
    b = await two.screen_reserving(dataclasses.replace(facts(2, caller="01088886662"),
                                                       channel_id=uid, pbx="pbx-b"))
    assert a.allowed and b.allowed
    assert (a.id, b.id) == (f"{uid}@pbx-a", f"{uid}@pbx-b")
    assert one.live.on_channel("pbx-a", uid).call_id == a.id  # type: ignore[union-attr]
    async with cluster.reader() as reader:
        assert await reader.count("concurrent_account", "a1", 0, cluster.clock.t) == 2
        assert await reader.count("caller_id", "+861088886662", DAY, cluster.clock.t) == 1
        third = await two.screen_reserving(facts(3, caller="01088886663"))
        assert (third.allowed, third.verdict.rule_id) == (False, "acct_concurrent")
        assert one.ended(a.id, 16)
        await one.stop()  # drains the release queue
        assert await reader.count("concurrent_account", "a1", 0, cluster.clock.t) == 1
        members = await reader.client.zrange(f"{cluster.prefix}c:account:a1", 0, -1)
        assert members == [f"{uid}@pbx-b".encode()]  # pbx-b's call keeps its own slot


async def test_the_slots_of_an_instance_that_died_expire_after_their_ttl(
    cluster: Cluster,
) -> None:
    doomed = await cluster.start("doomed")
    survivor = await cluster.start("survivor")
    for i in (1, 2):  # never ended: the instance "dies" with both calls up
        assert (await doomed.screen_reserving(facts(i, caller=f"0108888666{i}"))).allowed
    assert not (await survivor.screen_reserving(facts(3, caller="01088886663"))).allowed
    cluster.clock.t += TTL + 1  # nobody refreshed them
    assert (await survivor.screen_reserving(facts(4, caller="01088886664"))).allowed


async def test_a_call_another_rule_blocks_costs_no_reservation_and_counts_nothing(
    cluster: Cluster,
) -> None:
    one = await cluster.start("one")
    for i in range(8):
        d = await one.screen_reserving(facts(i, dialed=f"1701234{i:04d}"))
        assert (d.allowed, d.verdict.rule_id) == (False, "no_170")
    async with cluster.reader() as reader:
        assert await reader.count("caller_id", "+861088886666", DAY, cluster.clock.t) == 0
        assert await reader.client.keys(f"{cluster.prefix}call:*") == []


async def test_a_shadow_cap_reached_in_redis_is_flagged_and_the_call_goes_through(
    cluster: Cluster,
) -> None:
    one = await cluster.start("one")
    first = await one.screen_reserving(facts(1, caller="01088886661"))
    second = await one.screen_reserving(facts(2, caller="01088886662"))
    assert first.allowed and first.verdict.shadow == ()
    assert second.allowed and second.verdict.shadow == ("acct_hourly_shadow",)
    assert one.hits.get("acct_hourly_shadow", "shadow") == 1


async def test_redis_unreachable_blocks_by_the_caps_that_fail_closed_and_counts_it(
    cluster: Cluster,
) -> None:
    down = await cluster.start("down", url="redis://127.0.0.1:1/0", timeout_s=0.5)
    d = await down.screen_reserving(facts(1))
    assert (d.allowed, d.verdict.rule_id, d.verdict.reason, d.verdict.cause) == (
        False, "caller_daily", "cap_store_unavailable", 34)
    assert down.shared is not None
    health = down.shared.health
    assert (health.available, health.failed_closed) == (False, 1)


async def test_redis_unreachable_lets_calls_through_when_every_cap_fails_open(
    cluster: Cluster,
) -> None:
    lenient = POLICY.replace('message = "caller ID', 'when_unavailable = "allow"\nmessage = "c')
    down = await cluster.start("down", url="redis://127.0.0.1:1/0", timeout_s=0.5,
                                 policy=lenient)
    d = await down.screen_reserving(facts(1))
    assert d.allowed and d.verdict.reason == "ok"
    assert down.shared is not None and len(down.shared.health.pending) == 1


async def test_counters_emptied_in_redis_are_rebuilt_from_the_call_log(
    cluster: Cluster,
) -> None:
    one = await cluster.start("one")
    for i in range(3):
        assert (await one.screen_reserving(facts(i, account=f"a{i}"))).allowed
    await one.store.flush_async()
    async with cluster.reader() as reader:
        keys = await reader.client.keys(f"{cluster.prefix}*")
        await reader.client.delete(*keys)  # Redis restarted without persistence
        unready = await one.screen_reserving(facts(9, account="a9"))
        assert (unready.allowed, unready.verdict.reason) == (False, "cap_store_unavailable")
        assert one.shared is not None and await one.shared.check()
        assert await reader.count("caller_id", "+861088886666", DAY, cluster.clock.t) == 3
    results = [await one.screen_reserving(facts(10 + i, account=f"b{i}")) for i in range(4)]
    assert [d.allowed for d in results] == [True, True, False, False]


async def test_a_fail_open_call_takes_its_shared_reservation_and_gives_it_back_at_its_end(
    cluster: Cluster,
) -> None:
    """Screening failed on instance one and fail-open let the call out: it counts for
    the cluster's caps and holds its slot on every instance until its outcome."""
    one = await cluster.start("one")
    two = await cluster.start("two")
    failed = [one.failed(facts(i, caller=f"0108888666{i}"), "screening_error", "fail-open")
              for i in (1, 2)]
    assert one.shared is not None and two.shared is not None
    await one.shared_told()  # what the background task sends at once
    refused = await two.screen_reserving(facts(3, caller="01088886663"))
    assert (refused.allowed, refused.verdict.rule_id) == (False, "acct_concurrent")
    async with cluster.reader() as reader:
        assert await reader.count("caller_id", "+861088886661", DAY, cluster.clock.t) == 1
        assert await reader.count("account", "a1", DAY, cluster.clock.t) == 2
        assert one.ended(failed[0], 16)
        await one.shared_told()
        assert await reader.count("concurrent_account", "a1", 0, cluster.clock.t) == 1
    assert one.shared.health.unscreened == 2
    assert (await two.screen_reserving(facts(4, caller="01088886664"))).allowed


async def test_a_rebuild_from_the_call_log_counts_the_fail_open_calls(
    cluster: Cluster,
) -> None:
    one = await cluster.start("one")
    one.failed(facts(1), "screening_error", "fail-open")
    one.failed(facts(2), "screening_error", "fail-closed")  # refused: never counted
    await one.shared_told()
    await one.store.flush_async()
    assert one.shared is not None
    rebuilds = one.shared.health.rebuilds
    async with cluster.reader() as reader:
        await reader.client.delete(*await reader.client.keys(f"{cluster.prefix}*"))
        assert await one.shared.check()  # emptied: rebuilt from the call log
        assert await reader.count("account", "a1", DAY, cluster.clock.t) == 1
        assert one.shared.health.rebuilds == rebuilds + 1


async def test_a_fail_open_call_while_redis_is_unreachable_is_counted_when_it_returns(
    cluster: Cluster,
) -> None:
    down = await cluster.start("down", url="redis://127.0.0.1:1/0", timeout_s=0.5)
    call_id = down.failed(facts(1), "screening_unavailable", "fail-open")
    await down.shared_told()
    assert down.shared is not None
    assert (down.shared.health.available, len(down.shared.health.pending)) == (False, 1)
    assert isinstance(down.shared, GuardedCaps)
    back = RedisCaps.from_url(cluster.redis.url, prefix=cluster.prefix, ttl_s=TTL,
                              timeout_s=2)  # Redis answers again
    gone, down.shared.caps = down.shared.caps, back
    cluster.running = [(s, st, back if c is gone else c) for s, st, c in cluster.running]
    await gone.aclose()
    async with cluster.reader() as reader:
        assert await down.shared.check()
        assert await reader.count("caller_id", "+861088886666", DAY, cluster.clock.t) == 1
        members = await reader.client.zrange(f"{cluster.prefix}c:account:a1", 0, -1)
        assert members == [call_id.encode()]  # up: its slot taken on the return
        assert down.ended(call_id, 16)
        await down.shared_told()
        assert await reader.count("concurrent_account", "a1", 0, cluster.clock.t) == 0


async def test_the_embedded_mode_counts_its_caps_in_memory_with_no_deferred_check(
    tmp_path: Path,
) -> None:
    store = AsyncStore(SQLiteStore(tmp_path / "embedded.db"))
    screener = Screener(store, parse_policy(POLICY), clock=Clock())
    await screener.start()
    try:
        assert not screener.reserves and screener.snapshot is not None
        assert not any(isinstance(c, DeferredCap) for c in screener.snapshot.checks)
        verdicts = [screener.screen(facts(i, account=f"a{i}")).verdict for i in range(7)]
        assert [v.allowed for v in verdicts] == [True] * 5 + [False] * 2
        assert verdicts[-1].rule_id == "caller_daily"
    finally:
        await screener.stop()
        await store.aclose()


def test_a_cluster_snapshot_defers_only_the_caps() -> None:
    from datetime import UTC, datetime

    from rules.deferred import defer_caps
    from rules.model import StoreData
    from rules.snapshot import build_snapshot

    snap = build_snapshot(parse_policy(POLICY), StoreData(), datetime.now(UTC))
    deferred = defer_caps(snap)
    assert [c.spec.id for c in deferred.checks] == [c.spec.id for c in snap.checks]
    assert [isinstance(c, DeferredCap) for c in deferred.checks] == [
        c.spec.kind.value == "cap" for c in snap.checks]
    assert not any(isinstance(c, DeferredCap) for c in snap.checks)


async def test_a_call_decided_again_on_another_instance_counts_once_and_holds_one_slot(
    cluster: Cluster,
) -> None:
    """Instance one died between its decision and the FastAGI answer; the dialplan's retry
    reaches instance two (the channel holds no OUTGUARD_DECISION_ID). The redo has the
    same call id, so its reservation is the first one's (idempotent): one count, one slot,
    given back once when the call ends. A redo that another rule now blocks gives the
    slot back at once."""
    one = await cluster.start("one")
    two = await cluster.start("two")
    retried = dataclasses.replace(facts(1, caller="01088886661"), carried="")
    first = await one.screen_reserving(retried)
    again = await two.screen_reserving(retried)
    assert first.allowed and again.allowed and again.id == first.id == "pbx-1@default"
    async with cluster.reader() as reader:
        assert await reader.count("caller_id", "+861088886661", DAY, cluster.clock.t) == 1
        assert await reader.count("concurrent_account", "a1", 0, cluster.clock.t) == 1
        assert two.ended(again.id, 16)
        await two.stop()  # drains the release queue
        assert await reader.count("concurrent_account", "a1", 0, cluster.clock.t) == 0

        three = await cluster.start("three")
        held = await three.screen_reserving(dataclasses.replace(
            facts(2, caller="01088886662"), carried=""))
        assert held.allowed
        refused = await three.screen_reserving(dataclasses.replace(
            facts(2, caller="01088886662", dialed="17000000000"), carried=""))
        assert (refused.id, refused.allowed, refused.verdict.rule_id) == (
            held.id, False, "no_170")
        await three.stop()
        assert await reader.count("concurrent_account", "a1", 0, cluster.clock.t) == 0


async def test_a_redo_that_refuses_an_undone_allow_takes_its_count_back_in_redis(
    cluster: Cluster,
) -> None:
    """Only calls that went out count, in cluster mode as embedded: the undone decision
    allowed the call (reserved: counted, a slot), the redo refuses it (the number is now
    blocked): Redis takes its counts back and frees its slot; a redo that allows it again
    counts it once."""
    one = await cluster.start("one")
    undone = dataclasses.replace(facts(1), carried="")
    first = await one.screen_reserving(undone)
    again = await one.screen_reserving(undone)  # the dialplan's retry: allowed again
    assert first.allowed and again.allowed and again.id == first.id
    await one.shared_told()
    async with cluster.reader() as reader:
        assert await reader.count("caller_id", "+861088886666", DAY, cluster.clock.t) == 1
    refused = await one.screen_reserving(dataclasses.replace(undone, dialed="17000000000"))
    assert not refused.allowed and refused.id == first.id
    await one.shared_told()
    async with cluster.reader() as reader:
        assert await reader.count("caller_id", "+861088886666", DAY, cluster.clock.t) == 0
        assert await reader.count("account", "a1", 3600, cluster.clock.t) == 0
        assert await reader.count("concurrent_account", "a1", 0, cluster.clock.t) == 0
