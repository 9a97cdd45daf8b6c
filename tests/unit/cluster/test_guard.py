"""The caps' failure policy, and the call feed, on a real Redis that dies and comes back
(empty), or stalls and answers again."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from outguard.callevents import CallDecided, CallEnded, encode
from outguard.callfacts import ChannelFacts
from outguard.cluster.caps import CallKeys, CapSpec, RedisCaps
from outguard.cluster.feed import START, CallFeed
from outguard.cluster.guard import GuardedCaps
from outguard.config import AmiConfig, AriConfig, ClusterConfig, Settings
from outguard.events import EventHub
from outguard.server import shared_caps
from outguard.service import Screener
from outguard.store.aio import AsyncStore
from outguard.store.sqlite import SQLiteStore
from outguard.tasks import cancel_and_wait
from outguard.testing.servers import REDIS_BASE_PORT, RedisServer
from rules.policy import parse_policy
from tests.conftest import TEST_INSTANCE, TEST_PORT_OFFSET
from tests.waiting import eventually

Row = tuple[str, str, str, str, str, float]
NOW = 1_764_000_000.0
DAY = 86400
STRICT = CapSpec("caller_daily", "caller_id", "+8610", DAY, 100)  # when_unavailable=block
LENIENT = CapSpec("acct_hour", "account", "a1", 3600, 100, when_unavailable="allow")
ENDED_C2 = CallEnded("c2", NOW + 9, "t1", "a1", "+8610", "+86139", NOW + 2, 7.0, 16, None)


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


def keys(*ids: int) -> list[tuple[str, str, str]]:
    return [(f"c{i}", "t1", "a1") for i in ids]


async def slots(g: GuardedCaps) -> list[str]:
    members = await g.caps.client.zrange(g.caps.prefix + "c:account:a1", 0, -1)
    return sorted(m.decode() for m in members)


@contextlib.contextmanager
def frozen(server: RedisServer) -> Iterator[None]:
    """Redis stops answering and keeps its data (a network partition, a stalled host)."""
    assert server.proc is not None
    server.proc.send_signal(signal.SIGSTOP)
    try:
        yield
    finally:
        server.proc.send_signal(signal.SIGCONT)


async def test_calls_let_through_while_redis_could_not_answer_hold_their_slots_when_it_does(
    guard: tuple[GuardedCaps, list[Row]], doomed_redis: RedisServer,
) -> None:
    g, log = guard
    live = keys(0)
    g.hold(lambda: live)
    g.timeout_s = 0.3
    assert await place(g, log, 0, [LENIENT])
    with frozen(doomed_redis):
        for i in (5, 6):  # let through uncounted, still up when Redis answers again
            assert await place(g, log, i, [LENIENT])
            live += keys(i)
    assert not g.health.available and len(g.health.pending) == 2
    assert await g.check() is True
    assert await slots(g) == ["c0", "c5", "c6"]  # each call up holds its slot
    assert await g.caps.count("account", "a1", 3600, NOW + 10) == 3
    assert g.health.reheld == 3
    await g.reconcile(returned=True)  # again: idempotent
    assert await slots(g) == ["c0", "c5", "c6"]
    assert await g.caps.count("account", "a1", 3600, NOW + 10) == 3
    assert await g.release("c5", NOW + 20) and await slots(g) == ["c0", "c6"]


async def test_after_redis_returns_empty_the_calls_still_up_hold_their_slots_and_ended_ones_none(
    guard: tuple[GuardedCaps, list[Row]], doomed_redis: RedisServer,
) -> None:
    g, log = guard
    live: list[tuple[str, str, str]] = []
    g.hold(lambda: live)
    for i in range(5):
        assert await place(g, log, i, [LENIENT])
    for i in range(1, 5):
        assert await g.release(f"c{i}", NOW + 5)
    live += keys(0)
    doomed_redis.kill()
    for i in (5, 6, 7):
        assert await place(g, log, i, [LENIENT])
    live += keys(5, 6)
    assert await g.release("c7", NOW + 8) is False  # c7 ended while Redis was down
    doomed_redis.restart()  # back, and empty: rebuilt from the log, then the calls up held
    assert await g.check() is True
    assert await slots(g) == ["c0", "c5", "c6"]
    assert await g.caps.count("account", "a1", 3600, NOW + 10) == 8
    assert await g.caps.refresh(keys(7), NOW + 100) == 0  # an ended call takes no slot back
    assert await slots(g) == ["c0", "c5", "c6"]


async def test_calls_up_take_their_slots_only_once_another_instance_has_rebuilt_the_counts(
    guard: tuple[GuardedCaps, list[Row]], doomed_redis: RedisServer,
) -> None:
    g, log = guard
    live = keys(0)
    g.hold(lambda: live)
    assert await place(g, log, 0, [LENIENT])
    doomed_redis.kill()
    assert await place(g, log, 5, [LENIENT])
    live += keys(5)
    doomed_redis.restart()
    other = RedisCaps.from_url(doomed_redis.url, prefix=g.caps.prefix, timeout_s=5)
    try:
        await other.client.set(g.caps.prefix + "rebuilding", "1")  # another instance rebuilds
        assert await g.check() is True
        assert await slots(g) == []  # nothing taken on incomplete counts
        # the other instance's rebuild from the (shared) call log, then its marker
        await other.rebuild(log)
        await other.mark_complete(NOW + 50)
        await other.client.delete(other.prefix + "rebuilding")
    finally:
        await other.aclose()
    assert await g.check() is True  # the next periodic check takes them
    assert await slots(g) == ["c0", "c5"]
    assert await g.caps.count("account", "a1", 3600, NOW + 10) == 2  # each counted once


# -- the service's client: no socket timeout, every use bounded by the guard -----------------

@contextlib.asynccontextmanager
async def service_caps(server: RedisServer, workdir: Path, timeout_ms: float = 200
                       ) -> AsyncIterator[tuple[GuardedCaps, AsyncStore]]:
    """The caps as ``outguard serve`` wires them (``server.shared_caps``), on a fresh
    prefix, with an empty call log."""
    if server.proc is None or server.proc.poll() is not None:
        server.restart()
    store = AsyncStore(SQLiteStore(workdir / "log.db"))
    settings = Settings(cluster=ClusterConfig(redis=server.url, timeout_ms=timeout_ms,
                                              prefix=f"t{uuid.uuid4().hex[:10]}:"),
                        # cluster mode needs the PBX named (its targets are not started)
                        ari=AriConfig(pbx="guard-test"), ami=AmiConfig(pbx="guard-test"))
    g = shared_caps(settings, store)
    try:
        yield g, store
    finally:
        await g.caps.aclose()
        await store.aclose()


async def test_the_service_client_has_no_socket_timeout_yet_every_round_trip_is_bounded(
    doomed_redis: RedisServer, tmp_path: Path,
) -> None:
    """redis-py's socket timeout sends each command through asyncio.wait_for (a task per
    command on Python 3.11); the service's client has none, so the guard bounds every use
    of it. Redis stalled with the connections open (SIGSTOP): a reserve fails by the caps'
    policy, and a release, a refresh, a count, a probe and a reconciliation each give up
    instead of waiting for it; once it answers, what was remembered is reconciled."""
    async with service_caps(doomed_redis, tmp_path) as (g, _):
        assert g.caps.client.connection_pool.connection_kwargs["socket_timeout"] is None
        # the call path's own connection: no timeout of its own either; one whose oldest
        # command waited past 4x the budget is given up at the next command
        assert g.caps.wire is not None and g.caps.wire.timeout_s is None
        assert g.caps.wire.stall_s == 1.0
        assert await g.check() is True
        assert (await g.reserve(call(0), [STRICT, LENIENT], NOW)).allowed
        with frozen(doomed_redis):
            async with asyncio.timeout(120):  # a hang fails the test (no timing asserted)
                strict = await g.reserve(call(1), [STRICT, LENIENT], NOW + 1)
                lenient = await g.reserve(call(2), [LENIENT], NOW + 2)
                released = await g.release("c0", NOW + 3)
                refreshed = await g.refresh(keys(0), NOW + 4)
                counted = await g.count(LENIENT, "t1", NOW + 5)
                probed = await g.check()
                await g.reconcile(returned=True)
        assert (strict.allowed, strict.rule_id, strict.unavailable) == (False, "caller_daily", True)
        assert (lenient.allowed, lenient.unavailable) == (True, True)
        assert (released, refreshed, counted, probed) == (False, -1, None, False)
        assert [p[0] for p in g.health.pending] == ["c2"] and g.health.releases == {"c0"}
        assert await g.check() is True  # answers again: replayed and released
        assert g.health.available and not g.health.pending and not g.health.releases
        # c0 and c2; c1's reserve, written before the stall, may run when Redis resumes
        # (a call refused and counted errs on the side of refusing)
        assert await g.caps.count("account", "a1", 3600, NOW + 10) in (2, 3)
        assert (await g.reserve(call(3), [LENIENT], NOW + 11)).allowed


async def test_a_stalled_redis_fails_the_call_by_the_caps_policy_on_the_service_path(
    doomed_redis: RedisServer, tmp_path: Path,
) -> None:
    policy = parse_policy('''
default_region = "CN"
timezone = "Asia/Shanghai"

[[rules]]
id = "caller_daily"
kind = "cap"
scope = "caller_id"
limit = 5
window = "day"
''')
    async with service_caps(doomed_redis, tmp_path) as (g, store):
        screener = Screener(store, policy, shared=g)
        await screener.start()
        try:
            def facts(n: int) -> ChannelFacts:
                return ChannelFacts(adapter="ari", channel_id=f"pbx-{n}", dialed="13800138000",
                                    channel_name="PJSIP/agent-1", caller_id="01088886666",
                                    account="a1")

            assert (await screener.screen_reserving(facts(1))).allowed
            with frozen(doomed_redis):
                async with asyncio.timeout(120):  # a hang fails the test
                    stalled = await screener.screen_reserving(facts(2))
            assert (stalled.allowed, stalled.verdict.rule_id, stalled.verdict.reason) == (
                False, "caller_daily", "cap_store_unavailable")
            assert await g.check() is True
            assert (await screener.screen_reserving(facts(3))).allowed
        finally:
            await screener.stop()


# -- the call feed across an outage ---------------------------------------------------------

def decided(call_id: str) -> CallDecided:
    return CallDecided(call_id, "ch", "ari", NOW, "t1", "a1", "+8610", "+86139", True, "",
                       "ok", "allowed", 0, (), 5)


@contextlib.asynccontextmanager
async def publishing(server: RedisServer, **options: Any) -> AsyncIterator[
        tuple[CallFeed, EventHub]]:
    client = aioredis.Redis.from_url(server.url, socket_timeout=2, socket_connect_timeout=2)
    feed, hub = CallFeed(client, f"t{uuid.uuid4().hex[:10]}:", retry_s=0.05, **options), EventHub()
    task = asyncio.ensure_future(feed.publisher(hub))
    try:
        yield feed, hub
    finally:
        await cancel_and_wait([task])
        await client.aclose()


async def read_all(feed: CallFeed) -> list[tuple[str, str]]:
    """Every event on the feed, read as an instance reads it (up to the "end" the test
    appends last)."""
    await feed.client.xadd(feed.key, {"e": encode(decided("end"))})
    events = []
    async with asyncio.timeout(10):
        async for event in feed.events(START, block_ms=50):
            if event.call_id == "end":
                return events
            events.append((event.type, event.call_id))
    raise AssertionError("unreachable")


async def test_call_events_redis_could_not_take_are_shared_when_it_answers_again(
    doomed_redis: RedisServer, caplog: pytest.LogCaptureFixture,
) -> None:
    if doomed_redis.proc is None or doomed_redis.proc.poll() is not None:
        doomed_redis.restart()
    async with publishing(doomed_redis) as (feed, hub):
        hub.publish(decided("c1"))
        await eventually(lambda: feed.published == 1, "c1 shared")
        doomed_redis.kill()
        with caplog.at_level(logging.WARNING, logger="outguard.cluster.feed"):
            hub.publish(decided("c2"))
            hub.publish(ENDED_C2)
            # waiting once the append failed (not merely queued: the append may be under way)
            await eventually(lambda: feed.figures()["backlog"] == 2 and any(
                "cannot take events" in r.message for r in caplog.records),
                "c2's events waiting for Redis")
            doomed_redis.restart()  # back (empty); no new call comes: the retry shares them
            await eventually(lambda: feed.figures()["backlog"] == 0, "the backlog shared")
        assert feed.figures() == {"published": 3, "backlog": 0, "late": 2, "dropped": 0,
                                  "missed": 0, "recovered": 0}
        assert sum("cannot take events" in r.message for r in caplog.records) == 1
        assert sum("answers again" in r.message for r in caplog.records) == 1
        assert await read_all(feed) == [("decision", "c2"), ("outcome", "c2")]


async def test_past_its_bound_the_feed_backlog_drops_the_oldest_events_and_counts_them(
    doomed_redis: RedisServer, caplog: pytest.LogCaptureFixture,
) -> None:
    if doomed_redis.proc is None or doomed_redis.proc.poll() is not None:
        doomed_redis.restart()
    async with publishing(doomed_redis, backlog=3) as (feed, hub):
        doomed_redis.kill()
        with caplog.at_level(logging.WARNING, logger="outguard.cluster.feed"):
            for i in range(5):
                hub.publish(decided(f"c{i}"))
            await eventually(lambda: feed.dropped == 2 and any(
                "cannot take events" in r.message for r in caplog.records),
                "the two oldest dropped, the rest waiting for Redis")
        assert feed.figures()["backlog"] == 3
        assert sum("dropping the oldest" in r.message for r in caplog.records) == 1
        doomed_redis.restart()
        await eventually(lambda: feed.figures()["backlog"] == 0, "the backlog shared")
        assert await read_all(feed) == [("decision", f"c{i}") for i in (2, 3, 4)]
        assert (feed.published, feed.late, feed.dropped) == (3, 3, 2)


@pytest.mark.parametrize("linger_s,want", [(0.05, 1), (0, 2)])
async def test_call_events_that_come_while_the_publisher_lingers_join_its_batch(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch, linger_s: float, want: int,
) -> None:
    async with publishing(redis_server, linger_s=linger_s) as (feed, hub):
        batches, lingering, more = [], asyncio.Event(), asyncio.Event()
        pipeline = feed.client.pipeline

        def counted(*args: Any, **kwargs: Any) -> Any:
            batches.append(1)
            return pipeline(*args, **kwargs)

        async def linger() -> None:  # the linger, held until the test's events are in
            lingering.set()
            await more.wait()

        monkeypatch.setattr(feed.client, "pipeline", counted)
        monkeypatch.setattr(feed, "_linger", linger)
        hub.publish(decided("c0"))
        if linger_s:
            await lingering.wait()
        else:
            await eventually(lambda: feed.published == 1, "c0 shared at once")
        hub.publish(decided("c1"))  # the same call's end, the next call: milliseconds later
        hub.publish(decided("c2"))
        more.set()
        await eventually(lambda: feed.published == 3, "the three shared")
        assert len(batches) == want
        assert await read_all(feed) == [("decision", f"c{i}") for i in range(3)]


async def test_an_event_the_publisher_holds_when_it_is_stopped_is_still_appended(
    redis_server: RedisServer,
) -> None:
    client = aioredis.Redis.from_url(redis_server.url, socket_timeout=2)
    feed, hub = CallFeed(client, f"t{uuid.uuid4().hex[:10]}:", linger_s=60), EventHub()
    task = asyncio.ensure_future(feed.publisher(hub))
    try:
        hub.publish(decided("c1"))
        assert feed._sub is not None
        await eventually(lambda: feed._sub is not None and feed._sub.queue.empty(),
                         "c1 taken by the publisher, which waits for more")
        await cancel_and_wait([task])
        assert feed.published == 0
        await feed.stop()
        assert feed.published == 1
        assert await read_all(feed) == [("decision", "c1")]
    finally:
        await cancel_and_wait([task])
        await client.aclose()


async def test_an_event_appended_twice_is_read_once(redis_server: RedisServer) -> None:
    client = aioredis.Redis.from_url(redis_server.url)
    feed = CallFeed(client, f"t{uuid.uuid4().hex[:10]}:")
    try:
        for event in (decided("c1"), decided("c1"), ENDED_C2, decided("c2"), ENDED_C2):
            await client.xadd(feed.key, {"e": encode(event)})
        assert await read_all(feed) == [("decision", "c1"), ("outcome", "c2"),
                                         ("decision", "c2")]
        assert feed.repeats == 2
    finally:
        await client.aclose()
