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
Redis cannot take its events: the first failure writes a durable debt (``FeedDebt``, in
the instance's spool directory), a graceful stop tries once more and leaves the debt when
it cannot, and the next start derives the owed events again from the call log and appends
those the stream does not hold yet (``recover``); the debt is cleared once the backlog
has been appended whole.
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
from outguard.cluster.feed_debt import SLACK_S, FeedDebt
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
                 debt: FeedDebt | None = None) -> None:
        self.client = client
        #: how long the publisher waits after an event for more to join its batch, and
        #: the reader after a read (default ``LINGER_S``)
        self.linger_s = LINGER_S if linger_s is None else linger_s
        #: where the events owed across a stop or a crash are written down (None: nowhere)
        self.debt = debt
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
        #: a debt of the last run is cleared only once ``recover`` has queued it
        self._owed_queued = debt is None or debt.since is None
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
        finally:
            sub.close()

    async def _next(self, sub: Subscription) -> list[Any]:
        """The events waiting now, after ``linger_s`` (at least one; none after
        ``retry_s`` when the backlog waits to be retried)."""
        if self.backlog:
            try:
                async with asyncio.timeout(self.retry_s):
                    first = await sub.get()
            except TimeoutError:
                return []
        else:
            first = await sub.get()
        if self.linger_s > 0:
            try:
                await self._linger()
            except asyncio.CancelledError:  # stopping: the taken event is not lost
                self._queue(_wire([first]))
                raise
        events = [first]
        while len(events) < self.batch and not sub.queue.empty():
            events.append(sub.queue.get_nowait())
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
                    self._owe()
                    if attempt:
                        if not self._waiting:
                            logger.warning("call feed: Redis cannot take events (%s); up to"
                                           " %d wait to be shared when it answers",
                                           exc, self.max_backlog)
                        self._waiting = len(self.backlog)
                        return
            for _ in chunk:
                self.backlog.popleft()
            if not self.backlog and self.debt is not None and self._owed_queued:
                self.debt.clear()  # everything owed is appended
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

    def _owe(self) -> None:
        """The backlog may not reach Redis: write the debt down (since its oldest event,
        less the slack) before anything else can happen to this process."""
        if self.debt is None or not self.backlog or self.debt.since is not None:
            return
        try:
            oldest = decode(self.backlog[0]).at
        except ValueError:
            oldest = 0.0
        try:
            self.debt.owe(oldest - SLACK_S)
        except OSError as exc:
            logger.error("call feed: cannot write %s (%s): events waiting for Redis are"
                         " lost if this instance stops first", self.debt.path, exc)

    async def stop(self, timeout_s: float = 2.0) -> None:
        """A graceful stop, once the publisher task is cancelled: take the events it had
        not read and try once more to append the backlog (at most ``timeout_s``); what is
        left stays owed (``FeedDebt``), derived again from the call log at the next
        start."""
        sub = self._sub
        while sub is not None and not sub.queue.empty():
            self._queue(_wire([sub.queue.get_nowait()]))
        if not self.backlog:
            return
        try:
            async with asyncio.timeout(timeout_s):
                await self._flush()
        except TimeoutError:
            pass
        if self.backlog:
            self._owe()
            logger.warning("call feed: %d event(s) not shared at stop; owed from the call"
                           " log at the next start (%s)", len(self.backlog),
                           self.debt.path if self.debt is not None else "no spool: lost")

    async def recover(self, owed: list[CallDecided | CallEnded], scan: int = 200_000) -> int:
        """Append the events a previous run owed (``FeedDebt``, derived again from the
        call log) that the stream does not hold yet, before this run's own; this
        instance's reader skips them (its replay counted them). Returns how many are
        queued (appended by the publisher, now or when Redis answers)."""
        self._owed_queued = True
        if not owed:
            if self.debt is not None and not self.backlog:
                self.debt.clear()
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
        logger.warning("call feed: %d event(s) owed by the last run (%d already shared)"
                       " are appended from the call log", len(missing), len(owed) - len(missing))
        if not self.backlog and self.debt is not None:
            self.debt.clear()
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
            if found and self.linger_s > 0:
                await self._linger()


def _wire(events: list[Any]) -> list[str]:
    """The call events of a batch, encoded for the stream (other events are not shared)."""
    return [encode(e) for e in events if isinstance(e, (CallDecided, CallEnded))]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else value
