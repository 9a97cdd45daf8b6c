"""Call events an instance owed the call feed when it stopped, or was killed, while Redis
could not take them (noticed or not): a durable high-water mark of what the feed holds,
the events since it derived again from the call log at the next start, appended once, on
a real Redis."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from pathlib import Path

import redis.asyncio as aioredis

from outguard.callevents import CallDecided, CallEnded, decode, encode
from outguard.cluster.feed import START, CallFeed
from outguard.cluster.feed_debt import SLACK_S, FeedMark, events_from_log
from outguard.events import EventHub
from outguard.live import MAX_CALL_AGE_S
from outguard.store.base import CallRecord, LoggedCall
from outguard.tasks import cancel_and_wait
from outguard.testing.servers import RedisServer
from tests.waiting import eventually

NOW = 1_764_000_000.0


def logged(call_id: str, at: float, *, verdict: str = "allow", rule: str = "",
           ended_at: float | None = None, pbx: str = "bj-1") -> LoggedCall:
    record = CallRecord(call_id, "ch-" + call_id, "ari", "t1", "a1", "+861088886666",
                        "+8613800138000", verdict, rule, "ok" if verdict == "allow" else "x",
                        (), 7, at, "marketing", "", pbx)
    return LoggedCall(record, answered_at=None if ended_at is None else at + 1,
                      ended_at=ended_at, duration=None if ended_at is None else 5.0,
                      cause=16 if ended_at is not None else None)


def test_the_mark_is_durable_never_moves_back_and_honours_an_old_debt(tmp_path: Path) -> None:
    mark = FeedMark(tmp_path / "spool")
    assert mark.since is None and mark.through is None  # the first start: nothing owed
    mark.advance(NOW)
    mark.advance(NOW - 50)  # never back
    again = FeedMark(tmp_path / "spool")  # read back after a restart
    assert (again.through, again.since) == (NOW, NOW - SLACK_S)
    mark.path.write_text("garbage")
    unreadable = FeedMark(tmp_path / "spool").since  # owed: the longest a call may last
    assert unreadable is not None
    assert time.time() - MAX_CALL_AGE_S - SLACK_S - 5 < unreadable < time.time() - MAX_CALL_AGE_S
    mark.path.unlink()
    (tmp_path / "spool" / FeedMark.LEGACY).write_text('{"since": %s}' % (NOW - 500))
    old = FeedMark(tmp_path / "spool")  # a debt an earlier version wrote
    assert old.since == NOW - 500
    old.advance(NOW)
    assert FeedMark(tmp_path / "spool").since == NOW - SLACK_S
    assert not (tmp_path / "spool" / FeedMark.LEGACY).exists()


def test_the_owed_events_are_the_decisions_and_outcomes_since_the_debt() -> None:
    calls = [
        logged("old", NOW - 600, ended_at=NOW - 500),  # wholly before: nothing
        logged("long", NOW - 600, ended_at=NOW + 5),  # its outcome only
        logged("new", NOW + 1, ended_at=NOW + 9),  # both
        logged("up", NOW + 2),  # its decision; its outcome comes later, live
        logged("blk", NOW + 3, verdict="block", rule="dnc", ended_at=NOW + 3),
        logged("fo", NOW + 4, verdict="failed", rule="fail-open", ended_at=NOW + 6),
        logged("other", NOW + 5, ended_at=NOW + 6, pbx="sh-1"),  # another instance's PBX
    ]
    events = list(events_from_log(calls, NOW, frozenset({"bj-1"})))
    assert [(e.type, e.call_id) for e in events] == [
        ("outcome", "long"), ("decision", "new"), ("outcome", "new"), ("decision", "up"),
        ("decision", "blk"), ("decision", "fo"), ("outcome", "fo")]
    fo = events[5]
    assert isinstance(fo, CallDecided) and fo.failed and fo.allowed and fo.rule == "fail-open"
    blk = events[4]
    assert isinstance(blk, CallDecided) and not blk.allowed and blk.cause == 16
    long = events[0]
    assert isinstance(long, CallEnded) and (long.at, long.duration) == (NOW + 5, 5.0)


def decided(call_id: str, at: float = NOW) -> CallDecided:
    return CallDecided(call_id, "ch", "ari", at, "t1", "a1", "+8610", "+86139", True, "",
                       "ok", "", 0, (), 5, pbx="bj-1")


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


async def test_a_stop_while_redis_is_down_keeps_the_mark_the_next_start_pays_once(
    redis_server: RedisServer, tmp_path: Path,
) -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}:"
    spool = tmp_path / "spool"
    FeedMark(spool).advance(NOW - 5)  # the last run's mark
    down = aioredis.Redis.from_url("redis://127.0.0.1:1/0", socket_timeout=0.5,
                                   socket_connect_timeout=0.5)
    clock = Clock()
    feed = CallFeed(down, prefix, retry_s=0.05, high_water=FeedMark(spool), mark_every_s=0,
                    clock=clock)
    hub = EventHub()
    await feed.recover([])  # nothing owed from before: Redis is not asked
    assert FeedMark(spool).through == NOW
    task = asyncio.ensure_future(feed.publisher(hub))
    clock.now = NOW + 3
    hub.publish(decided("c1", NOW + 1))
    hub.publish(decided("c2", NOW + 2))
    await eventually(lambda: len(feed.backlog) == 2, "Redis refused the events")
    clock.now = NOW + 10
    await feed.stop(timeout_s=0.5)  # a graceful stop: still down, the mark stays
    await cancel_and_wait([task])
    await down.aclose()
    assert FeedMark(spool).since == NOW - SLACK_S

    client = aioredis.Redis.from_url(redis_server.url)
    other = CallFeed(client, prefix)  # another instance, reading the feed
    try:
        await client.xadd(other.key, {"e": encode(decided("c1", NOW + 1))})  # shared before
        clock.now = NOW + 20
        again = CallFeed(client, prefix, high_water=FeedMark(spool), mark_every_s=0, clock=clock)
        owed: list[CallDecided | CallEnded] = [decided("c1", NOW + 1), decided("c2", NOW + 2)]
        assert await again.recover(owed) == 1  # c1 is on the stream already
        assert FeedMark(spool).through == NOW  # c2 not appended yet
        hub2 = EventHub()
        task = asyncio.ensure_future(again.publisher(hub2))
        try:
            clock.now = NOW + 21
            hub2.publish(decided("c3", NOW + 21))  # this run's own
            await eventually(lambda: again.published == 2, "c2 and c3 appended")
            await eventually(lambda: FeedMark(spool).through == NOW + 21, "the mark moved")
            assert again.figures()["recovered"] == 1
        finally:
            await cancel_and_wait([task])
        assert await read_until(other, "c3") == ["c1", "c2", "c3"]  # each once, in order
        assert await read_until(again, "c3") == ["c3"]  # its own replay counted c1, c2
    finally:
        await client.aclose()


async def test_a_kill_before_any_append_failed_loses_no_event(
    redis_server: RedisServer, tmp_path: Path,
) -> None:
    """kill -9 while an append hangs on a Redis that stopped answering (nothing has
    failed yet, nothing was written down since): the mark is from before, so the next
    start appends the calls decided since, each once."""
    prefix = f"t{uuid.uuid4().hex[:10]}:"
    spool = tmp_path / "spool"
    client = aioredis.Redis.from_url(redis_server.url, socket_timeout=30)
    clock = Clock()
    feed = CallFeed(client, prefix, high_water=FeedMark(spool), mark_every_s=0, clock=clock)
    await feed.recover([])
    hub = EventHub()
    task = asyncio.ensure_future(feed.publisher(hub))
    try:
        clock.now = NOW + 1
        hub.publish(decided("c1", NOW + 1))
        await eventually(lambda: FeedMark(spool).through == NOW + 1, "c1 appended, marked")
        assert redis_server.proc is not None
        redis_server.proc.send_signal(signal.SIGSTOP)  # Redis stops answering
        try:
            clock.now = NOW + 2
            hub.publish(decided("c2", NOW + 2))
            hub.publish(decided("c3", NOW + 3))
            await eventually(lambda: len(feed.backlog) == 2, "the append hanging")
            task.cancel()  # kill -9: nothing more runs (no stop, no failure noticed)
        finally:
            redis_server.proc.send_signal(signal.SIGCONT)
        await cancel_and_wait([task])
    finally:
        await client.aclose()
    assert FeedMark(spool).through == NOW + 1  # nothing else was written

    client = aioredis.Redis.from_url(redis_server.url)
    try:
        clock.now = NOW + 30
        again = CallFeed(client, prefix, high_water=FeedMark(spool), mark_every_s=0, clock=clock)
        since = FeedMark(spool).since
        assert since is not None
        log = [decided("c1", NOW + 1), decided("c2", NOW + 2), decided("c3", NOW + 3)]
        owed = [e for e in log if e.at >= since]
        assert [e.call_id for e in owed] == ["c1", "c2", "c3"]
        await again.recover(owed)  # those the stream lacks (the hung append may have landed)
        task = asyncio.ensure_future(again.publisher(EventHub()))
        try:
            await eventually(lambda: not again.backlog, "the missing events appended")
        finally:
            await cancel_and_wait([task])
        assert set(await read_keys(client, again.key)) == {"c1", "c2", "c3"}
        assert await read_until(CallFeed(client, prefix), "c3") == ["c1", "c2", "c3"]  # once
    finally:
        await client.aclose()


async def read_keys(client: aioredis.Redis, key: str) -> list[str]:
    """The call ids the stream holds, as appended (repeats included)."""
    entries = await client.xrange(key)
    return [decode(fields[b"e"]).call_id for _id, fields in entries]


async def read_until(feed: CallFeed, last: str) -> list[str]:
    seen: list[str] = []
    async with asyncio.timeout(10):
        async for event in feed.events(START, block_ms=50):
            seen.append(event.call_id)
            if event.call_id == last:
                return seen
    raise AssertionError("unreachable")


async def test_the_mark_stays_before_events_the_full_backlog_dropped(
    redis_server: RedisServer, tmp_path: Path,
) -> None:
    """Events pushed out of the full backlog never reach the feed from this run: the mark
    stays before them once Redis answers again, so the next start appends them."""
    prefix = f"t{uuid.uuid4().hex[:10]}:"
    spool = tmp_path / "spool"
    down = aioredis.Redis.from_url("redis://127.0.0.1:1/0", socket_timeout=0.5,
                                   socket_connect_timeout=0.5)
    up = aioredis.Redis.from_url(redis_server.url)
    clock = Clock()
    feed = CallFeed(down, prefix, backlog=1, retry_s=0.05, high_water=FeedMark(spool),
                    mark_every_s=0, clock=clock)
    await feed.recover([])
    hub = EventHub()
    task = asyncio.ensure_future(feed.publisher(hub))
    try:
        clock.now = NOW + 2
        hub.publish(decided("c1", NOW + 1))
        hub.publish(decided("c2", NOW + 2))
        await eventually(lambda: feed.dropped == 1, "c1 dropped from the full backlog")
        feed.client = up  # Redis answers again
        await eventually(lambda: feed.published == 1, "c2 appended")
        clock.now = NOW + 60
        hub.publish(decided("c3", NOW + 60))
        await eventually(lambda: feed.published == 2, "c3 appended")
        assert FeedMark(spool).through == NOW  # before c1: the next start appends it
    finally:
        await cancel_and_wait([task])
        await down.aclose()
        await up.aclose()
