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

While Redis cannot take events they wait in a bounded backlog (``backlog`` events,
oldest first) and are appended when it answers again (retried every ``retry_s`` even if
no new call comes): every instance then has them, this one included. Past the bound the
oldest are dropped, counted in ``dropped`` and logged (the call log keeps them; the
figures of a running instance miss them until its next start). A batch that reached
Redis in part before a failure is appended again whole; readers skip an event they
already read (by kind and call id, over the last ``seen`` events), so a repeat never
counts twice.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import OrderedDict, deque
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
                 maxlen: int = 1_000_000, batch: int = 500, backlog: int = 50_000,
                 retry_s: float = 1.0, seen: int = 100_000) -> None:
        self.client = client
        self.key = prefix + "calls"
        self.maxlen = maxlen
        self.batch = batch
        self.max_backlog = backlog
        self.retry_s = retry_s
        self.max_seen = seen
        self.backlog: deque[str] = deque()  # encoded events not appended yet, oldest first
        self.published = 0
        self.late = 0  # events appended after waiting for Redis to answer again
        self.dropped = 0  # events never appended: pushed out of the full backlog
        self.missed = 0  # events this instance skipped as unreadable
        self.repeats = 0  # events read twice (a batch appended again) and skipped
        self._waiting = 0  # how many of the backlog's oldest waited through a failure
        self._dropped_in_outage = 0

    def figures(self) -> dict[str, int]:
        """For /metrics."""
        return {"published": self.published, "backlog": len(self.backlog),
                "late": self.late, "dropped": self.dropped, "missed": self.missed}

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
        """Append the call events as they come, batched (until cancelled); what Redis
        cannot take waits in the backlog (see the module docstring)."""
        try:
            while True:
                wire = [encode(e) for e in await self._next(sub)
                        if isinstance(e, (CallDecided, CallEnded))]
                self._queue(wire)
                await self._flush()
        finally:
            sub.close()

    async def _next(self, sub: Subscription) -> list[Any]:
        """The events waiting now (at least one; none after ``retry_s`` when the backlog
        waits to be retried)."""
        if self.backlog:
            try:
                async with asyncio.timeout(self.retry_s):
                    first = await sub.get()
            except TimeoutError:
                return []
        else:
            first = await sub.get()
        events = [first]
        while len(events) < self.batch and not sub.queue.empty():
            events.append(sub.queue.get_nowait())
        return events

    def _queue(self, wire: list[str]) -> None:
        self.backlog.extend(wire)
        over = len(self.backlog) - self.max_backlog
        if over <= 0:
            return
        for _ in range(over):
            self.backlog.popleft()
        self._waiting = max(0, self._waiting - over)
        self.dropped += over
        if not self._dropped_in_outage:
            logger.warning("call feed: more than %d event(s) wait for Redis; dropping the"
                           " oldest (the call log keeps them; running instances' risk"
                           " figures miss them until they restart)", self.max_backlog)
        self._dropped_in_outage += over

    async def _flush(self) -> None:
        """Append the backlog, oldest first, in batches; stop at the first failure."""
        while self.backlog:
            chunk = list(itertools.islice(self.backlog, self.batch))
            for attempt in range(2):  # once more on a connection a restart left dead
                try:
                    pipe = self.client.pipeline(transaction=False)
                    for text in chunk:
                        pipe.xadd(self.key, {"e": text}, maxlen=self.maxlen, approximate=True)
                    await pipe.execute()
                    break
                except (RedisError, OSError) as exc:
                    if attempt:
                        if not self._waiting:
                            logger.warning("call feed: Redis cannot take events (%s); up to"
                                           " %d wait to be shared when it answers",
                                           exc, self.max_backlog)
                        self._waiting = len(self.backlog)
                        return
            for _ in chunk:
                self.backlog.popleft()
            self.published += len(chunk)
            late = min(len(chunk), self._waiting)
            if late:
                self.late += late
                self._waiting -= late
                if not self._waiting:
                    logger.warning("call feed: Redis answers again; the events that waited"
                                   " are shared (%d dropped meanwhile)",
                                   self._dropped_in_outage)
                    self._dropped_in_outage = 0

    async def events(self, after: str, block_ms: int = 1000) -> AsyncIterator[CallEvent]:
        """Every event after ``after``, as they come (forever); reconnects after errors."""
        position = after
        seen: OrderedDict[tuple[str, str], None] = OrderedDict()
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
                        event = decode(raw)
                    except ValueError:
                        self.missed += 1
                        continue
                    key = (event.type, event.call_id)
                    if key in seen:
                        self.repeats += 1
                        continue
                    seen[key] = None
                    if len(seen) > self.max_seen:
                        seen.popitem(last=False)
                    yield event


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else value
