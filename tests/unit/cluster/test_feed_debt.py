"""Call events an instance owed the call feed when it stopped, or was killed, while Redis
could not take them: written down durably, derived again from the call log at the next
start, appended once, on a real Redis."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import redis.asyncio as aioredis

from outguard.callevents import CallDecided, CallEnded, encode
from outguard.cluster.feed import START, CallFeed
from outguard.cluster.feed_debt import SLACK_S, FeedDebt, events_from_log
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


def test_a_debt_is_durable_keeps_its_earliest_time_and_clears(tmp_path: Path) -> None:
    debt = FeedDebt(tmp_path / "spool")
    assert debt.since is None
    debt.owe(NOW)
    debt.owe(NOW + 50)  # a later debt does not move it
    assert FeedDebt(tmp_path / "spool").since == NOW  # read back after a restart
    debt.owe(NOW - 10)
    assert FeedDebt(tmp_path / "spool").since == NOW - 10
    debt.clear()
    assert FeedDebt(tmp_path / "spool").since is None and not debt.path.exists()
    debt.path.write_text("garbage")
    unreadable = FeedDebt(tmp_path / "spool").since  # owed: the longest a call may last
    assert unreadable is not None and time.time() - MAX_CALL_AGE_S - 5 < unreadable < time.time()


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


async def test_a_stop_while_redis_is_down_leaves_a_debt_the_next_start_pays_once(
    redis_server: RedisServer, tmp_path: Path,
) -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}:"
    spool = tmp_path / "spool"
    down = aioredis.Redis.from_url("redis://127.0.0.1:1/0", socket_timeout=0.5,
                                   socket_connect_timeout=0.5)
    feed, hub = CallFeed(down, prefix, retry_s=0.05, debt=FeedDebt(spool)), EventHub()
    task = asyncio.ensure_future(feed.publisher(hub))
    hub.publish(decided("c1", NOW))
    hub.publish(decided("c2", NOW + 1))
    await eventually(lambda: FeedDebt(spool).since is not None, "the debt written")
    assert FeedDebt(spool).since == NOW - SLACK_S  # from its oldest waiting event
    await feed.stop(timeout_s=0.5)  # a graceful stop: still down, the debt stays
    await cancel_and_wait([task])
    await down.aclose()
    assert FeedDebt(spool).since == NOW - SLACK_S

    client = aioredis.Redis.from_url(redis_server.url)
    other = CallFeed(client, prefix)  # another instance, reading the feed
    try:
        await client.xadd(other.key, {"e": encode(decided("c1", NOW))})  # shared before
        again = CallFeed(client, prefix, debt=FeedDebt(spool))  # the next start
        owed: list[CallDecided | CallEnded] = [decided("c1", NOW), decided("c2", NOW + 1)]
        assert await again.recover(owed) == 1  # c1 is on the stream already
        hub2 = EventHub()
        task = asyncio.ensure_future(again.publisher(hub2))
        try:
            hub2.publish(decided("c3", NOW + 2))  # this run's own
            await eventually(lambda: again.published == 2, "c2 and c3 appended")
            assert FeedDebt(spool).since is None  # paid
            assert again.figures()["recovered"] == 1
        finally:
            await cancel_and_wait([task])
        assert await read_until(other, "c3") == ["c1", "c2", "c3"]  # each once, in order
        assert await read_until(again, "c3") == ["c3"]  # its own replay counted c1, c2
    finally:
        await client.aclose()


async def read_until(feed: CallFeed, last: str) -> list[str]:
    seen: list[str] = []
    async with asyncio.timeout(10):
        async for event in feed.events(START, block_ms=50):
            seen.append(event.call_id)
            if event.call_id == last:
                return seen
    raise AssertionError("unreachable")
