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

Nothing the other instances need is lost when an instance stops, or is killed, while
Redis cannot take its events, whether or not a failed append had noticed it yet: the
feed keeps a durable high-water mark (``FeedMark``, in the instance's spool directory),
moved only once the backlog is appended whole with nothing dropped (at most every
``mark_every_s``, in a thread: never a write per call); a graceful stop tries once more
and moves it when everything is appended; every start derives the events since the mark
again from the call log and appends those the stream does not hold yet (``recover``).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from outguard.callevents import CallDecided, CallEnded, CallEvent, decode, encode
from outguard.cluster.feed_debt import SLACK_S, FeedMark
from outguard.events import EventHub, Subscription

logger = logging.getLogger(__name__)

START = "0-0"
#: The feed's work (encode, XADD, XREAD, decode) runs in batches at most this often,
#: beside the call path rather than in the middle of the next call's decision: appending
#: each event as it came put ~1.7 ms of loop work between a cluster call's decision and
#: its continue's answer (two-PBX bench at 20 calls/s, 2026-12-02: StasisStart ->
#: continue answered p50 7.0 ms, 5.3 ms with 50 ms batches; bench/RESULTS.md). Risk
#: figures fed by the other instances lag this much more; caps and snapshots are not
#: fed by the feed.
LINGER_S = 0.05
NEXT = "$"


class CallFeed:
    """One Redis stream of call events (``<prefix>calls``) shared by the instances."""

    def __init__(self, client: aioredis.Redis, prefix: str = "og:", *,
                 maxlen: int = 1_000_000, batch: int = 500, backlog: int = 50_000,
                 retry_s: float = 1.0, seen: int = 100_000, linger_s: float | None = None,
                 high_water: FeedMark | None = None, mark_every_s: float = 5.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.client = client
        #: how long the publisher waits after an event for more to join its batch, and
        #: the reader after a read (default ``LINGER_S``)
        self.linger_s = LINGER_S if linger_s is None else linger_s
        #: the durable high-water mark of what the feed holds (None: kept nowhere)
        self.high_water = high_water
        self.mark_every_s = mark_every_s
        self.clock = clock
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
        self.recovered = 0  # events derived again from the call log and appended
        self._waiting = 0  # how many of the backlog's oldest waited through a failure
        self._dropped_in_outage = 0
        self._sub: Subscription | None = None
        #: the mark moves only once ``recover`` has queued what the last run owed
        self._owed_queued = high_water is None
        #: when the publisher last found no event waiting (None: some were left)
        self._drained_at: float | None = None
        #: events were dropped (backlog full, subscription overflowed) since the mark:
        #: it stays, so the next start derives them again from the call log
        self._lost = False
        self._mark_failed = False
        self._closed_at = float("inf")  # when the publisher's subscription closed
        #: (kind, call id) of events this instance appended again from its call log: its
        #: own figures counted them in its start's replay, so its reader skips them
        self._own_repeats: set[tuple[str, str]] = set()

    def figures(self) -> dict[str, int]:
        """For /metrics."""
        return {"published": self.published, "backlog": len(self.backlog),
                "late": self.late, "dropped": self.dropped, "missed": self.missed,
                "recovered": self.recovered}

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
        self._sub = hub.subscribe(size=50_000)
        return self._publish(self._sub)

    async def _publish(self, sub: Subscription) -> None:
        """Append the call events as they come, batched (until cancelled); what Redis
        cannot take waits in the backlog (see the module docstring)."""
        try:
            while True:
                self._queue(_wire(await self._next(sub)))
                await self._flush()
                await self._advance(sub)
        finally:
            self._closed_at = self.clock()
            sub.close()

    async def _next(self, sub: Subscription) -> list[Any]:
        """The events waiting now, after ``linger_s`` (none after ``retry_s`` when the
        backlog waits to be retried, or after ``mark_every_s`` when none came: the mark
        moves on an idle feed too)."""
        try:
            async with asyncio.timeout(self.retry_s if self.backlog
                                       else max(self.mark_every_s, 0.1)):
                first = await sub.get()
        except TimeoutError:
            self._drained_at = self.clock()
            return []
        if self.linger_s > 0:
            try:
                await self._linger()
            except asyncio.CancelledError:  # stopping: the taken event is not lost
                self._queue(_wire([first]))
                raise
        events = [first]
        while len(events) < self.batch and not sub.queue.empty():
            events.append(sub.queue.get_nowait())
        self._drained_at = self.clock() if sub.queue.empty() else None
        return events

    async def _linger(self) -> None:
        await asyncio.sleep(self.linger_s)

    def _queue(self, wire: list[str]) -> None:
        self.backlog.extend(wire)
        over = len(self.backlog) - self.max_backlog
        if over <= 0:
            return
        for _ in range(over):
            self.backlog.popleft()
        self._lost = True
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

    async def _advance(self, sub: Subscription) -> None:
        """Move the mark to when the publisher last found no event waiting, if everything
        taken since is appended, nothing was dropped, and the mark is ``mark_every_s``
        old (written in a thread: the call path never waits for the disk)."""
        drained = self._drained_at
        if (self.high_water is None or drained is None or self.backlog or not self._owed_queued
                or self._lost or sub.missed):
            return
        through = self.high_water.through
        if through is not None and drained - through < self.mark_every_s:
            return
        await self._write_mark(drained)

    async def _write_mark(self, through: float) -> None:
        assert self.high_water is not None
        try:
            await asyncio.to_thread(self.high_water.advance, through)
        except OSError as exc:
            if not self._mark_failed:
                logger.error("call feed: cannot write %s (%s): the next start derives"
                             " more of the call log again", self.high_water.path, exc)
            self._mark_failed = True
        else:
            self._mark_failed = False

    async def stop(self, timeout_s: float = 2.0) -> None:
        """A graceful stop, once the publisher task is cancelled: take the events it had
        not read and try once more to append the backlog (at most ``timeout_s``); what is
        left is owed (the mark stays), derived again from the call log at the next
        start."""
        sub = self._sub
        while sub is not None and not sub.queue.empty():
            self._queue(_wire([sub.queue.get_nowait()]))
        # every event published before now (and before the subscription closed, which
        # the publisher's cancellation did) is in the backlog
        now = min(self.clock(), self._closed_at)
        if self.backlog:
            try:
                async with asyncio.timeout(timeout_s):
                    await self._flush()
            except TimeoutError:
                pass
        if self.backlog:
            logger.warning("call feed: %d event(s) not shared at stop; owed from the call"
                           " log at the next start (%s)", len(self.backlog),
                           self.high_water.path if self.high_water is not None
                           else "no spool: lost")
        elif (self.high_water is not None and self._owed_queued and not self._lost
              and not (sub is not None and sub.missed)):
            await self._write_mark(now)

    async def recover(self, owed: list[CallDecided | CallEnded], scan: int = 200_000) -> int:
        """Append the events of the previous runs since the mark (``FeedMark``, derived
        again from the call log) that the stream does not hold yet, before this run's
        own; this instance's reader skips them (its replay counted them). Returns how
        many are queued (appended by the publisher, now or when Redis answers)."""
        self._owed_queued = True
        start = self.clock()  # this run's events come after: none was published yet
        if not owed:
            if self.high_water is not None and not self.backlog:
                await self._write_mark(start)
            return 0
        owed = sorted(owed, key=lambda e: e.at)
        keys = {(e.type, e.call_id) for e in owed}
        self._own_repeats |= keys
        try:
            held = await self._held(keys, min(e.at for e in owed) - SLACK_S, scan)
        except (RedisError, OSError) as exc:
            logger.warning("call feed: Redis cannot answer (%s); the %d owed event(s) are"
                           " appended when it does (readers skip those they read)",
                           exc, len(owed))
            held = set()
        missing = [encode(e) for e in owed if (e.type, e.call_id) not in held]
        self.backlog.extendleft(reversed(missing))
        self.recovered += len(missing)
        if missing:
            logger.warning("call feed: %d event(s) of the last run missing from the feed"
                           " (%d of %d since its mark) are appended from the call log",
                           len(missing), len(missing), len(owed))
        if not self.backlog and self.high_water is not None:
            await self._write_mark(start)
        return len(missing)

    async def _held(self, keys: set[tuple[str, str]], since: float,
                    scan: int) -> set[tuple[str, str]]:
        """Which of ``keys`` the stream holds, appended from ``since`` on (at most
        ``scan`` entries read; past that, readers skip the repeats)."""
        held: set[tuple[str, str]] = set()
        start, read = f"{max(0, int(since * 1000))}-0", 0
        while read < scan and len(held) < len(keys):
            page: Any = await self.client.xrange(self.key, min=start, max="+", count=5000)
            for entry_id, fields in page:
                try:
                    event = decode(fields.get(b"e", fields.get("e")))
                except ValueError:
                    continue
                if (event.type, event.call_id) in keys:
                    held.add((event.type, event.call_id))
            read += len(page)
            if len(page) < 5000:
                break
            start = "(" + _text(page[-1][0])
        return held

    async def events(self, after: str, block_ms: int = 1000) -> AsyncIterator[CallEvent]:
        """Every event after ``after``, as they come (forever); reconnects after errors."""
        position = after
        seen: OrderedDict[tuple[str, str], None] = OrderedDict.fromkeys(self._own_repeats)
        reader = asyncio.current_task()
        while True:
            try:
                found: Any = await self.client.xread({self.key: position}, count=self.batch,
                                                     block=block_ms)
            except (RedisError, OSError) as exc:
                _still_cancelled(reader)
                logger.warning("call feed: reading failed (%s); retrying in 1 s", exc)
                await asyncio.sleep(1.0)
                continue
            _still_cancelled(reader)
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
            if found and self.linger_s > 0:
                await self._linger()


def _still_cancelled(task: asyncio.Task[Any] | None) -> None:
    """Raise the cancellation of ``task`` when one is pending that the blocking read
    swallowed (it came back with an answer, an empty one or an error instead of
    CancelledError): the reader's task would otherwise block on the next read and its
    stop wait forever (enforcement's stop hung so once after a Redis outage, awaiting
    this reader, in a CI run)."""
    if task is not None and task.cancelling():
        raise asyncio.CancelledError("cancelled while reading the call feed")


def _wire(events: list[Any]) -> list[str]:
    """The call events of a batch, encoded for the stream (other events are not shared)."""
    return [encode(e) for e in events if isinstance(e, (CallDecided, CallEnded))]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else value
