"""Enforcement once per cluster: one leader by a PostgreSQL advisory lock, and the call
feed that gives every instance every call (real PostgreSQL, real Redis)."""

from __future__ import annotations

import asyncio
import uuid

import psycopg
import redis.asyncio as aioredis

from outguard.callevents import CallAnswered, CallDecided, CallEnded, decode, encode
from outguard.cluster.feed import START, CallFeed
from outguard.cluster.leader import AdvisoryLeader
from outguard.events import EventHub
from outguard.testing.servers import PostgresServer, RedisServer

DECIDED = CallDecided("c1", "ch1", "ari", 1.5, "t1", "a1", "+8610", "+86139", True, "", "ok",
                      "allowed", 0, ("watch",), 12)
ENDED = CallEnded("c1", 9.5, "t1", "a1", "+8610", "+86139", 2.0, 7.5, 16, None)


def test_a_call_event_crosses_between_instances_unchanged() -> None:
    for event in (DECIDED, ENDED, CallAnswered("c1", 2.0, "t1", "a1")):
        assert decode(encode(event)) == event


def test_a_feed_entry_that_is_not_a_call_event_is_refused_by_name() -> None:
    for bad in ('["decision", 1]', '["bogus"]', "not json", "{}"):
        try:
            decode(bad)
        except ValueError as exc:
            assert "not a call event" in str(exc)
        else:
            raise AssertionError(f"{bad!r} was accepted")


async def test_exactly_one_instance_leads_and_another_takes_over_when_its_session_dies(
    pg_server: PostgresServer,
) -> None:
    url = pg_server.url()
    key = int(uuid.uuid4().int % 2**62)  # a lock of this test's own
    changes: list[tuple[str, bool]] = []
    one = AdvisoryLeader(url, key=key, on_change=lambda v: changes.append(("one", v)))
    two = AdvisoryLeader(url, key=key, on_change=lambda v: changes.append(("two", v)))
    try:
        assert await one.step() and not await two.step()
        assert not await two.step()  # still held
        with psycopg.connect(url, autocommit=True) as admin:  # the leader's session dies
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                          " WHERE application_name = 'outguard-leader' AND pid IN"
                          " (SELECT pid FROM pg_locks WHERE locktype = 'advisory'"
                          " AND objid = %s)", (key & 0xFFFFFFFF,))
        assert not await one.step()  # it notices
        assert await two.step()  # and the other takes over
        assert not await one.step()
        assert changes == [("one", True), ("one", False), ("two", True)]
    finally:
        await one.close()
        await two.close()


async def test_every_instance_reads_every_instances_calls_from_the_mark_on(
    redis_server: RedisServer,
) -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}:"
    clients = [aioredis.Redis.from_url(redis_server.url) for _ in range(2)]
    feeds = [CallFeed(c, prefix) for c in clients]
    hubs = [EventHub(), EventHub()]
    try:
        assert await feeds[0].mark() == START
        hubs[0].publish(CallDecided("old", "ch0", "ari", 1.0, "t1", "a1", "+8610", "+86139",
                                    True, "", "ok", "allowed", 0, (), 5))
        tasks = [asyncio.ensure_future(f.publisher(h)) for f, h in zip(feeds, hubs)]
        hubs[0].publish(CallDecided("old", "ch0", "ari", 1.0, "t1", "a1", "+8610", "+86139",
                                    True, "", "ok", "allowed", 0, (), 5))
        await _until(lambda: feeds[0].published == 1)
        mark = await feeds[1].mark()
        hubs[0].publish(DECIDED)
        hubs[1].publish(CallAnswered("c1", 2.0, "t1", "a1"))  # not shared: no figure uses it
        hubs[1].publish(ENDED)
        seen = []
        async for event in feeds[1].events(mark, block_ms=100):
            seen.append(event)
            if len(seen) == 2:
                break
        assert sorted(seen, key=lambda e: e.at) == [DECIDED, ENDED]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        for c in clients:
            await c.aclose()


async def _until(check: object, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


class _SwallowingClient:
    """A client whose blocking read comes back with an empty answer, or an error, when
    its task is cancelled, instead of raising CancelledError."""

    def __init__(self, error: bool) -> None:
        self.error = error
        self.reads = 0
        self.swallow = True

    async def xread(self, *args: object, **kwargs: object) -> list[object]:
        self.reads += 1
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            if not self.swallow:
                raise
            if self.error:
                raise ConnectionError("Connection closed by server.") from None
            return []
        return []


async def test_a_reader_cancelled_inside_a_read_that_swallows_the_cancel_still_stops() -> None:
    """Enforcement's stop cancels the task reading the feed and waits for it: a read that
    turns the cancellation into an empty answer or an error must not leave the reader
    reading on (its stop then never returned: a CI run's teardown after a Redis outage)."""
    for error in (False, True):
        client = _SwallowingClient(error)
        feed = CallFeed(client, "t:")  # type: ignore[arg-type]

        async def read() -> None:
            async for _ in feed.events(START):
                pass

        task = asyncio.ensure_future(read())
        try:
            await _until(lambda: client.reads == 1)
            task.cancel()
            done, _ = await asyncio.wait({task}, timeout=10)
            assert task in done and task.cancelled() and client.reads == 1
        finally:  # a reader left reading (the defect): stopped for good
            client.swallow = False
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
