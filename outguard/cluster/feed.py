"""The cluster's call feed: every instance's call events, for every instance's risk figures.

In cluster mode each instance sees only the calls of its own PBXes, but a trigger counts a
party's calls wherever they were placed. Each instance appends its own ``CallDecided`` and
``CallEnded`` events (``callevents.encode``) to one Redis stream, in batches, beside the
call path (``publish``); each instance reads the whole stream into its risk figures
(``events``), its own events included, so that whichever instance leads enforcement
(``outguard.cluster.leader``) has every call counted.

At start the enforcer replays the call log; ``mark`` is the stream's position taken
*before* that replay, and events after it whose call the replay already counted are
skipped by call id (``Enforcer`` keeps the ids of the replay's last minutes). The stream
is capped (``maxlen``, approximate); an instance that falls further behind than that
misses events, counted in ``missed``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Coroutine
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from outguard.callevents import CallDecided, CallEnded, CallEvent, decode, encode
from outguard.events import EventHub, Subscription

logger = logging.getLogger(__name__)

START = "0-0"
NEXT = "$"


class CallFeed:
    """One Redis stream of call events (``<prefix>calls``) shared by the instances."""

    def __init__(self, client: aioredis.Redis, prefix: str = "og:", *,
                 maxlen: int = 1_000_000, batch: int = 500) -> None:
        self.client = client
        self.key = prefix + "calls"
        self.maxlen = maxlen
        self.batch = batch
        self.published = 0
        self.dropped = 0  # events that could not be appended (Redis down)
        self.missed = 0  # events this instance skipped as unreadable

    async def mark(self) -> str:
        """The stream's newest id now (START when empty; "$", whatever comes next, when
        Redis cannot answer: an instance starts while Redis is down, and the events shared
        until it reads again reach its figures only through its next start's replay)."""
        try:
            newest: Any = await self.client.xrevrange(self.key, count=1)
        except (RedisError, OSError) as exc:
            logger.warning("call feed: Redis cannot answer (%s); reading from the next"
                           " event shared", exc)
            return NEXT
        return _text(newest[0][0]) if newest else START

    def publisher(self, hub: EventHub) -> Coroutine[Any, Any, None]:
        """The task that appends this instance's call events (subscribed from now on)."""
        return self._publish(hub.subscribe(size=50_000))

    async def _publish(self, sub: Subscription) -> None:
        """Append the call events as they come, batched (until cancelled). Events that
        cannot be appended while Redis is down are dropped and counted: the call log
        keeps them, and a restarted enforcer replays it."""
        try:
            while True:
                events = [await sub.get()]
                while len(events) < self.batch and not sub.queue.empty():
                    events.append(sub.queue.get_nowait())
                wire = [encode(e) for e in events if isinstance(e, (CallDecided, CallEnded))]
                if not wire:
                    continue
                for attempt in range(2):  # once more on a connection a restart left dead
                    try:
                        pipe = self.client.pipeline(transaction=False)
                        for text in wire:
                            pipe.xadd(self.key, {"e": text}, maxlen=self.maxlen,
                                      approximate=True)
                        await pipe.execute()
                        self.published += len(wire)
                        break
                    except (RedisError, OSError) as exc:
                        if attempt:
                            self.dropped += len(wire)
                            logger.warning("call feed: %d event(s) not shared: %s",
                                           len(wire), exc)
        finally:
            sub.close()

    async def events(self, after: str, block_ms: int = 1000) -> AsyncIterator[CallEvent]:
        """Every event after ``after``, as they come (forever); reconnects after errors."""
        position = after
        while True:
            try:
                found: Any = await self.client.xread({self.key: position}, count=self.batch,
                                                     block=block_ms)
            except (RedisError, OSError) as exc:
                logger.warning("call feed: reading failed (%s); retrying in 1 s", exc)
                await asyncio.sleep(1.0)
                continue
            for _key, entries in found or ():
                for entry_id, fields in entries:
                    position = _text(entry_id)
                    raw = fields.get(b"e", fields.get("e"))
                    try:
                        yield decode(raw)
                    except ValueError:
                        self.missed += 1


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else value
