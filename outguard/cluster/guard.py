"""The caps' failure policy when Redis cannot answer, and reconciliation when it returns.

``GuardedCaps.reserve`` never raises: when the round trip fails (connection refused,
timeout, Redis loading, or counters emptied and not rebuilt yet), each enforced cap that applies to the call decides by its own
``when_unavailable`` (``block`` by default, ``allow`` per rule): one ``block`` cap blocks
the call (reason ``cap_store_unavailable``, the rule named); if all allow, the call goes
through uncounted and is remembered. Releases that fail are remembered too, and so is a
call that went out unscreened (screening failed, fail-open: ``take``) when Redis cannot
count it.

When Redis answers again, ``reconcile`` (run by the first successful round trip, and by
``check``) replays what was remembered (idempotent per call id), then takes the
concurrency slots of the calls still up in the live-call registry (``hold``; a call let
through uncounted holds none until then, and a Redis that came back empty forgot the
others'), and, if Redis came back
empty (restarted without persistence: its ``epoch`` marker is gone), rebuilds the
counters from the call log through ``history`` first: one instance does it (``SET NX``,
for at most 120 s), and until it is done every instance's reserves answer "unready" (the
failure policy applies: no call is admitted on incomplete counts); replays are
idempotent per call id. Transitions are logged once each way; the
figures are in ``health`` (for /metrics).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Sequence

from redis.exceptions import RedisError

from outguard.cluster.caps import CallKeys, CapSpec, RedisCaps, Reservation
from outguard.cluster.model import CapHealth

logger = logging.getLogger(__name__)

HISTORY_S = 8 * 86400  # the longest window any cap counts, plus a day
BATCH = 1000  # calls replayed into Redis per pipelined round trip
History = Callable[[float], Iterable[tuple[str, str, str, str, str, float]]]
#: the calls still up, (call id, tenant, account) each (the live-call registry's)
LiveKeys = Callable[[], Sequence[tuple[str, str, str]]]


class GuardedCaps:
    """``RedisCaps`` behind each cap's failure policy; see the module docstring."""

    def __init__(self, caps: RedisCaps, *, history: History | None = None,
                 timeout_s: float = 0.25, max_pending: int = 100_000,
                 clock: Callable[[], float] = time.time) -> None:
        self.caps = caps
        self.history = history
        self.timeout_s = timeout_s
        self.max_pending = max_pending
        self.clock = clock
        self.health = CapHealth()
        self._reconciling: asyncio.Lock = asyncio.Lock()
        self._live: LiveKeys | None = None
        self._hold_due = False  # the calls up must take their slots again (an outage)

    def hold(self, live: LiveKeys) -> None:
        """Where the calls still up are listed: their slots are taken again when Redis
        returns (``reconcile``)."""
        self._live = live

    # -- the call path ---------------------------------------------------------------------

    async def reserve(self, call: CallKeys, caps: Sequence[CapSpec], now: float) -> Reservation:
        try:  # asyncio.timeout, not wait_for: no task per call on the call path
            async with asyncio.timeout(self.timeout_s):
                answer = await self.caps.reserve(call, caps, now)
        except (RedisError, OSError, TimeoutError) as exc:
            return self._fallback(call, caps, now, exc)
        if not self.health.available:
            await self._back()
        return answer

    async def take(self, call: CallKeys, now: float) -> bool:
        """A call that went out unscreened (screening failed, fail-open): counted in the
        shared caps and holding its slots like an allowed call (no cap can refuse it: it
        is out). When Redis cannot answer it is remembered and counted when Redis returns
        (as a call a cap let through with ``when_unavailable = "allow"``; it is in the
        live-call registry, so it takes its slots then too). Never raises; True when
        counted now."""
        self.health.unscreened += 1
        try:
            async with asyncio.timeout(self.timeout_s):
                taken = await self.caps.take(call, now)
        except (RedisError, OSError, TimeoutError) as exc:
            self._down(exc)
            self._remember(call, now)
            return False
        if not self.health.available:
            await self._back()
        return taken

    async def release(self, call_id: str, now: float) -> bool:
        try:
            async with asyncio.timeout(self.timeout_s):
                released = await self.caps.release(call_id, now)
        except (RedisError, OSError, TimeoutError) as exc:
            self._down(exc)
            self.health.releases.add(call_id)
            return False
        if not self.health.available:
            await self._back()
        return released

    async def void(self, call: CallKeys, at: float) -> bool:
        """A counted call that never went out (``RedisCaps.void``). While Redis cannot
        answer, its slots are released when Redis returns, as an ended call's; its counts
        stay (a rebuild from the call log, which no longer says it went out, drops them).
        Never raises."""
        try:
            async with asyncio.timeout(self.timeout_s):
                voided = await self.caps.void(call, at)
        except (RedisError, OSError, TimeoutError) as exc:
            self._down(exc)
            self.health.releases.add(call.call_id)
            return False
        if not self.health.available:
            await self._back()
        return voided

    async def refresh(self, calls: Sequence[tuple[str, str, str]], now: float) -> int:
        """Extend the slots of the calls still up, (call id, tenant, account) each (-1
        when Redis cannot answer: the next refresh that reaches it takes them again)."""
        try:
            async with asyncio.timeout(self.round_trip_s):
                return await self.caps.refresh(calls, now)
        except (RedisError, OSError, TimeoutError) as exc:
            self._down(exc)
            return -1

    async def count(self, cap: CapSpec, tenant: str, now: float) -> int | None:
        """What ``cap`` counts now in Redis (None when Redis cannot answer)."""
        try:
            async with asyncio.timeout(self.round_trip_s):
                return await self.caps.count(cap.scope, cap.key, cap.window_s, now, tenant)
        except (RedisError, OSError, TimeoutError) as exc:
            self._down(exc)
            return None

    def _fallback(self, call: CallKeys, caps: Sequence[CapSpec], now: float,
                  exc: BaseException) -> Reservation:
        self._down(exc)
        closed = next((c for c in caps if c.enforce and c.when_unavailable == "block"), None)
        if closed is not None:
            self.health.failed_closed += 1
            logger.info("call %s blocked by cap %s: the cap store is unavailable",
                        call.call_id, closed.rule_id)
            return Reservation(False, closed.rule_id, 0, closed.limit, unavailable=True)
        self.health.failed_open += 1
        self._remember(call, now)
        return Reservation(True, unavailable=True)

    def _remember(self, call: CallKeys, now: float) -> None:
        """A call that went out uncounted: counted when Redis answers again (at most
        ``max_pending`` remembered; the oldest are dropped and counted)."""
        if len(self.health.pending) >= self.max_pending:
            self.health.pending.popleft()
            self.health.dropped += 1
        self.health.pending.append((call.call_id, call.tenant, call.account, call.caller_id,
                                    call.destination, now))

    def _down(self, exc: BaseException) -> None:
        self.health.failures += 1
        if self.health.available:
            self.health.available = False
            logger.warning("cap store (Redis) unavailable: %s; caps follow their failure"
                           " policy (when_unavailable) until it returns", exc or type(exc).__name__)

    async def _back(self) -> None:
        self.health.available = True
        logger.warning("cap store (Redis) is back; reconciling")
        await self.reconcile(returned=True)

    # -- recovery ----------------------------------------------------------------------------

    async def check(self) -> bool:
        """Probe Redis (a periodic task calls this); reconcile if it is back. True if up."""
        try:
            async with asyncio.timeout(self.round_trip_s):
                await self.caps.ping()
        except (RedisError, OSError, TimeoutError) as exc:
            self._down(exc)
            return False
        if not self.health.available:
            await self._back()
        else:
            await self.reconcile()
        return True

    @property
    def round_trip_s(self) -> float:
        """The bound of a round trip off the call path (probe, refresh, count, each step
        of a reconciliation)."""
        return self.timeout_s * 4

    @property
    def batch_s(self) -> float:
        """The bound of one batch of up to ``BATCH`` calls replayed into Redis."""
        return max(5.0, self.timeout_s * 20)

    async def reconcile(self, *, returned: bool = False) -> None:
        """Rebuild an emptied Redis from the call log, then replay what was remembered;
        after an outage (``returned``, or calls were let through uncounted) the calls
        still up take their slots again (idempotent: a slot already held is extended).
        Every round trip is bounded here (``round_trip_s``, ``batch_s``): the client may
        have no socket timeout of its own; a Redis that stalls midway ends it, and the
        next ``check`` starts again."""
        async with self._reconciling:
            try:
                await self._rebuild_if_empty()
                self._hold_due = self._hold_due or returned or bool(self.health.pending)
                while self.health.pending:
                    batch = [self.health.pending.popleft()
                             for _ in range(min(BATCH, len(self.health.pending)))]
                    try:
                        async with asyncio.timeout(self.batch_s):
                            self.health.replayed += await self.caps.rebuild(batch)
                    except BaseException:
                        self.health.pending.extendleft(reversed(batch))
                        raise
                if self._hold_due:
                    async with asyncio.timeout(self.round_trip_s):
                        await self._hold_live()
                for call_id in list(self.health.releases):
                    async with asyncio.timeout(self.round_trip_s):
                        await self.caps.release(call_id, self.clock())
                    self.health.releases.discard(call_id)
            except (RedisError, OSError, TimeoutError) as exc:
                self._down(exc)

    async def _hold_live(self) -> None:
        """The calls still up take (or extend) their slots; once the counters are
        complete (another instance may still be rebuilding them: then at a later
        ``check``)."""
        live = self._live() if self._live is not None else []
        held = await self.caps.refresh(live, self.clock()) if live else 0
        if held < 0:
            return
        self._hold_due = False
        if held:
            self.health.reheld += held
            logger.warning("cap store: %d call(s) still up hold their concurrency slots"
                           " again", held)

    async def _rebuild_if_empty(self) -> None:
        client, epoch = self.caps.client, self.caps.prefix + "epoch"
        async with asyncio.timeout(self.round_trip_s):
            if await client.exists(epoch):
                return
            if self.history is None:
                await self.caps.mark_complete(self.clock())
                return
            if not await client.set(self.caps.prefix + "rebuilding", "1", nx=True, ex=120):
                return  # another instance rebuilds; reserves answer "unready" until done
        since = self.clock() - HISTORY_S
        history = self.history
        rows = await asyncio.get_running_loop().run_in_executor(None, lambda: list(history(since)))
        counted = 0
        for start in range(0, len(rows), BATCH):
            async with asyncio.timeout(self.batch_s):
                counted += await self.caps.rebuild(rows[start:start + BATCH])
        self.health.rebuilds += 1
        async with asyncio.timeout(self.round_trip_s):
            await self.caps.mark_complete(self.clock())
            await client.delete(self.caps.prefix + "rebuilding")
        logger.warning("cap counters rebuilt from the call log: %d calls replayed, %d new",
                       len(rows), counted)
