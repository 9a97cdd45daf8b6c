"""The screening service: one in-memory snapshot, the counters and the call log, shared by
the ARI app and the FastAGI server.

The hot path (``screen``) is synchronous CPU work: build the attempt, ``rules.decide`` over
the current snapshot, count, and hand the call-log row to the store's writer queue. No
database round trip, no await. The snapshot is rebuilt off the loop when the store changes
(or the policy is reloaded) and swapped in with one assignment.

Cluster mode (a ``SharedCaps``, Redis: ``outguard.cluster``): ``screen_reserving`` decides
every rule but the caps from the same snapshot, then checks and reserves every cap that
applies in the shared store in one round trip (the one await) and settles the verdict
(``rules.deferred``). Only allowed calls count; a call's slots are given back when it ends
(in the background, once), refreshed while it is up, and expire if this process dies.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from dataclasses import replace as evolve
from datetime import UTC, datetime
from typing import Any, Protocol

from outguard.callevents import (
    FAIL_OPEN,
    NOT_CARRIED_OUT,
    CallAnswered,
    CallDecided,
    CallEnded,
    CallEvent,
    went_out,
)
from outguard.callfacts import ChannelFacts, build_attempt, channel_problems
from outguard.cluster.model import CallKeys, CapHealth, Reservation, cluster_call_id
from outguard.errors import OutguardError
from outguard.events import EventHub, SnapshotSwapped
from outguard.live import (
    MAX_CALL_AGE_S,
    NEVER_SEEN_ENDING,
    CallCounts,
    InMemoryLiveCalls,
    LiveCall,
    LiveCalls,
)
from outguard.store.aio import AsyncStore
from outguard.store.base import AccountMapping, CallRecord, LoggedCall, match_account
from outguard.tasks import cancel_and_wait
from rules.counters import InMemoryCounters
from rules.deferred import CapDemands, CapSpec, CountedCaps, defer_caps, settle
from rules.engine import decide, refuse_channel
from rules.hits import RuleHits
from rules.model import CallAttempt, Counters, PartyKind, StoreData, Verdict
from rules.classification import classify
from rules.numbers import normalise
from rules.policy_types import Policy
from rules.snapshot import Snapshot, build_snapshot

logger = logging.getLogger(__name__)

#: Counters need a week of history (per-destination weekly caps) after a restart.
REPLAY_S = 8 * 86400
#: how long a failed call waits for its row to be durable before it is answered
#: (``Screener.failed_durably``)
FAILED_ROW_WAIT_S = 1.0
#: decision ids (and each channel's latest) remembered so that a channel screened twice
#: gets a second id, or its undone decision's (``Screener._new_id``)
RECENT_IDS = 100_000
#: how far back the call log's decisions are remembered at start (``remember_recent``):
#: a channel still waiting (ARI: in Stasis; FastAGI: retrying) is screened again well
#: within it, and its undone decision is then known as such
RECENT_S = 1800.0


class SharedCaps(Protocol):
    """The caps and live-call slots several instances share (``cluster.GuardedCaps``):
    never raises; when the store cannot answer, each cap's failure policy decides."""

    health: CapHealth

    async def reserve(self, call: CallKeys, caps: Sequence[CapSpec],
                      now: float) -> Reservation: ...

    async def release(self, call_id: str, now: float) -> bool: ...

    async def void(self, call: CallKeys, at: float) -> bool:
        """Take back a counted call that never went out (its counts and slots)."""

    async def take(self, call: CallKeys, now: float) -> bool:
        """Count a call that went out unscreened (fail-open) and take its slots."""

    async def refresh(self, calls: Sequence[tuple[str, str, str]], now: float) -> int: ...

    async def check(self) -> bool: ...

    async def count(self, cap: CapSpec, tenant: str, now: float) -> int | None: ...

    def hold(self, live: Callable[[], Sequence[tuple[str, str, str]]]) -> None:
        """Where the calls still up are listed (their slots are taken again after an
        outage)."""


class ScreeningUnavailable(OutguardError):
    """No snapshot is loaded yet: the adapters apply the failure policy."""

    error_id = "screening_unavailable"


@dataclass(frozen=True, slots=True)
class Decision:
    id: str
    verdict: Verdict
    attempt: CallAttempt
    elapsed_us: int

    @property
    def allowed(self) -> bool:
        return self.verdict.allowed


@dataclass(frozen=True, slots=True)
class Redo:
    """A decision's id and what it replaces (``Screener._new_id``): ``redo``, an earlier
    decision of that id known never carried out; ``replace``, its row is written as a
    replacement; ``counted``, the earlier decision's call that went out (counted)."""

    decision_id: str
    redo: bool
    replace: bool
    counted: LiveCall | None


@dataclass
class ScreenerStats:
    decisions: int = 0
    allowed: int = 0
    blocked: int = 0
    failed: int = 0  # calls screening failed for (not decisions: Screener.failed)
    by_reason: dict[str, int] = field(default_factory=dict)
    latency_us: list[int] = field(default_factory=list)  # recent decisions, bounded

    def add(self, decision: Decision) -> None:
        self.decisions += 1
        if decision.allowed:
            self.allowed += 1
        else:
            self.blocked += 1
        reason = decision.verdict.reason
        self.by_reason[reason] = self.by_reason.get(reason, 0) + 1
        self.latency_us.append(decision.elapsed_us)
        if len(self.latency_us) > 4096:
            del self.latency_us[:2048]


class Screener:
    """Decides for the adapters and follows each allowed call until it ends."""

    def __init__(
        self,
        store: AsyncStore,
        policy: Policy,
        *,
        default_tenant: str = "default",
        clock: Callable[[], float] = time.time,
        refresh_every_s: float = 300.0,
        hits_every_s: float = 5.0,
        live: LiveCalls | None = None,
        shared: SharedCaps | None = None,
        slot_ttl_s: float = 7200.0,
        follows: Collection[str] | None = None,
    ) -> None:
        self.store = store
        #: the PBXes whose calls this process follows to their end (its ARI and AMI
        #: targets'): a restart restores only their calls from the call log. None: every
        #: call of the log (embedded mode: the call log is this process's alone)
        self.follows = frozenset(follows) if follows is not None else None
        self.policy = policy
        self.default_tenant = default_tenant
        self.clock = clock
        self.counters = InMemoryCounters(clock)
        #: calls in progress: concurrency slots, answer times (outguard.live)
        self.live: LiveCalls = live if live is not None else InMemoryLiveCalls()
        #: decision ids handed out, and each channel's latest, by (pbx, channel id)
        #: (``_new_id``; bounded: the oldest are forgotten)
        self._decided: OrderedDict[str, None] = OrderedDict()
        self._latest: OrderedDict[tuple[str, str], str] = OrderedDict()
        #: what the engine reads: rates from the counters, concurrency from the registry
        self.counts = CallCounts(self.counters, self.live)
        self.hits = RuleHits()
        self.hits_every_s = hits_every_s
        self._hits_saved: dict[tuple[str, str], int] = {}
        self.snapshot: Snapshot | None = None
        #: set once the first snapshot is in: the adapters wait on it, no polling
        self.ready = asyncio.Event()
        self.events = EventHub()
        self.stats = ScreenerStats()
        self.refresh_every_s = refresh_every_s
        self._mappings: tuple[AccountMapping, ...] = ()
        self._rebuild_lock = asyncio.Lock()
        self._dirty = False
        self._tasks: list[asyncio.Task[Any]] = []
        self._unsubscribe: Callable[[], None] | None = None
        #: cluster mode: caps and slots in a shared store (None: embedded, in memory)
        self.shared = shared
        self.reserves = shared is not None
        if shared is not None:
            shared.hold(self._live_keys)
        self.slot_ttl_s = slot_ttl_s
        #: what the shared caps are told beside the call path, in order: a call that went
        #: out unscreened to count (its keys), a call that ended to release (None), a
        #: counted call that never went out to take back (its keys, void)
        self._releases: asyncio.Queue[tuple[str, float, CallKeys | None, bool]] = (
            asyncio.Queue())

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Warm the number classifier, replay the call log into the counters, build the
        first snapshot, watch changes."""
        await asyncio.to_thread(warm_numbers)
        if self.shared is not None:  # reconcile (rebuild an emptied Redis) if it answers
            await self.shared.check()
        since = self.clock() - REPLAY_S
        replayed = await self.store.replay_counters(self.counters, since)
        logger.info("replayed %d calls of the last %d days into the counters",
                    replayed, REPLAY_S // 86400)
        self.hits.load(await self.store.load_rule_hits())
        self._hits_saved = self.hits.counts()
        await self.remember_recent()
        await self.restore_live_calls()
        await self.rebuild()
        self._unsubscribe = self.store.subscribe(lambda _version: self.request_rebuild())
        self._tasks.append(self.store.start_polling())
        self._tasks.append(asyncio.get_running_loop().create_task(self._housekeeping()))
        self._tasks.append(asyncio.get_running_loop().create_task(self._persist_hits()))
        if self.shared is not None:
            self._tasks.append(asyncio.get_running_loop().create_task(self._release_slots()))
            self._tasks.append(asyncio.get_running_loop().create_task(self._keep_slots()))

    async def remember_recent(self) -> int:
        """The decisions the call log holds of the last :data:`RECENT_S` (a process that
        died made some) are this process's to know: a channel screened again after one
        that was never carried out is a redo (``_new_id``)."""
        rows = await self.store.decided_since(self.clock() - RECENT_S, RECENT_IDS)
        for pbx, channel_id, decision_id in rows:
            self._remember((pbx, channel_id), decision_id)
        return len(rows)

    async def restore_live_calls(self) -> int:
        """Calls in progress when outguard stopped (the call log's open rows) hold their
        slots again; those older than the maximum call age are closed. The adapters'
        reconcile then releases the ones whose channel is gone."""
        now = self.clock()
        restored: list[LiveCall] = []
        for logged in await self.store.open_calls():
            c = logged.call
            if now - c.at > MAX_CALL_AGE_S:
                self.store.record_outcome(c.decision_id, answered_at=logged.answered_at,
                                          ended_at=now, duration=None, cause=None,
                                          note=NEVER_SEEN_ENDING)
                continue
            if self.follows is not None and c.pbx not in self.follows:
                # another PBX's call in the shared call log (cluster mode): its instance
                # follows it; held here it would never be seen ending, and 6 h on this
                # process would close it "never seen ending" and publish that end
                continue
            restored.append(LiveCall(
                call_id=c.decision_id, channel_id=c.channel_id, adapter=c.adapter,
                pbx=c.pbx, tenant=c.tenant, account=c.account, caller_id=c.caller_id,
                destination=c.destination, started=c.at, answered_at=logged.answered_at,
            ))
        n = self.live.restore(restored)
        for call in restored:  # their ids are taken: a channel screened again knows them
            self._remember((call.pbx, call.channel_id), call.call_id)
        if n and self.shared is not None:  # take their slots again if they expired
            await self.shared.refresh([(c.call_id, c.tenant, c.account) for c in restored],
                                      now)
        if n:
            logger.warning("%d call(s) were in progress when outguard stopped; they hold "
                           "their concurrency slots until their channel is seen ending", n)
        return n

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self.shared is not None:  # give back what ended; the rest expire
            try:
                async with asyncio.timeout(2.0):
                    await self._drain_releases()
            except TimeoutError:
                logger.warning("%d slot release(s) not sent at stop; they expire after"
                               " %.0f s", self._releases.qsize(), self.slot_ttl_s)
        await cancel_and_wait(self._tasks)
        self._tasks.clear()
        await self.save_hits()

    async def save_hits(self) -> None:
        """Add the rule hits counted since the last save to the store's durable counts."""
        now = self.hits.counts()
        delta = {k: n - self._hits_saved.get(k, 0) for k, n in now.items()
                 if n != self._hits_saved.get(k, 0)}
        if delta:
            await self.store.add_rule_hits(delta)
        self._hits_saved = now

    async def _persist_hits(self) -> None:
        while True:
            await asyncio.sleep(self.hits_every_s)
            try:
                await self.save_hits()
            except Exception as exc:  # the store may come back; the counts stay in memory
                logger.warning("saving rule hit counts failed: %s", exc)

    async def _release_slots(self) -> None:
        """Count the calls that went out unscreened and give the shared slots of the calls
        that ended back, in order (a call's count before its release), once each."""
        while True:
            item = await self._releases.get()
            try:
                await self._tell_shared(*item)
            finally:
                self._releases.task_done()

    async def _drain_releases(self) -> None:
        while not self._releases.empty():
            item = self._releases.get_nowait()
            try:
                await self._tell_shared(*item)
            finally:
                self._releases.task_done()

    async def shared_told(self) -> None:
        """Wait until the shared caps have been told every count and release queued so
        far (tests, tools)."""
        await self._releases.join()

    async def _tell_shared(self, call_id: str, at: float, keys: CallKeys | None,
                           void: bool) -> None:
        assert self.shared is not None
        if keys is not None and void:
            await self.shared.void(keys, at)
        elif keys is not None:
            await self.shared.take(keys, at)
        else:
            await self.shared.release(call_id, at)

    async def _keep_slots(self) -> None:
        """Probe the shared store every second (reconciling when it returns) and extend
        the slots of the calls still up every third of their TTL, at least every 10 s (a
        Redis restarted empty gets them back within that)."""
        assert self.shared is not None
        every = max(1.0, min(10.0, self.slot_ttl_s / 3))
        last = self.clock()
        while True:
            await asyncio.sleep(1.0)
            await self.shared.check()
            now = self.clock()
            if now - last >= every:
                last = now
                await self.shared.refresh(self._live_keys(), now)

    def _live_keys(self) -> list[tuple[str, str, str]]:
        """The calls still up, as the shared slots know them: (call id, tenant, account)."""
        return [(c.call_id, c.tenant, c.account) for c in self.live.calls()]

    async def rebuild(self) -> Snapshot:
        """Build a snapshot from the store off the loop and swap it in whole."""
        async with self._rebuild_lock:
            self._dirty = False
            started = time.monotonic()
            now = datetime.fromtimestamp(self.clock(), UTC)
            policy = self.policy

            def build(data: StoreData) -> tuple[Snapshot, tuple[AccountMapping, ...]]:
                found = data.extra.get("account_map", ())
                mappings = tuple(found) if isinstance(found, (tuple, list)) else ()
                snap = build_snapshot(policy, data, now, self.hits)
                return (defer_caps(snap) if self.reserves else snap), mappings

            snap, mappings = await self.store.build_snapshot(now, build)
            # both swapped with no await in between: readers never see a mix
            self.snapshot, self._mappings = snap, mappings
            self.ready.set()
            for warning in snap.warnings[:20]:
                logger.warning("snapshot: %s", warning)
            logger.info("snapshot built in %.3f s: %s", time.monotonic() - started,
                        dict(snap.stats))
            self.events.publish(SnapshotSwapped(dict(snap.stats), len(snap.warnings)))
        if self._dirty:
            return await self.rebuild()
        return snap

    async def wait_ready(self, timeout_s: float) -> bool:
        """Wait (at most ``timeout_s``) for the first snapshot; True once there is one."""
        if self.snapshot is not None:
            return True
        try:
            async with asyncio.timeout(timeout_s):
                await self.ready.wait()
        except TimeoutError:
            return False
        return True

    def request_rebuild(self) -> None:
        """Called on every store change: coalesce into one rebuild at a time."""
        if self._rebuild_lock.locked():
            self._dirty = True
            return
        task = asyncio.get_running_loop().create_task(self._rebuild_logged())
        self._tasks.append(task)
        task.add_done_callback(lambda t: self._tasks.remove(t) if t in self._tasks else None)

    async def _rebuild_logged(self) -> None:
        try:
            await self.rebuild()
        except Exception:
            logger.exception("snapshot rebuild failed; the previous snapshot stays in use")

    async def set_policy(self, policy: Policy) -> Snapshot:
        """Swap in a new policy (already validated) by rebuilding the snapshot with it."""
        previous = self.policy
        self.policy = policy
        try:
            return await self.rebuild()
        except Exception:
            self.policy = previous
            raise

    async def _housekeeping(self) -> None:
        """Periodic rebuild (time-based expiry) and release of calls never seen ending."""
        while True:
            await asyncio.sleep(min(60.0, self.refresh_every_s))
            now = self.clock()
            for call in self.live.expired(now):
                logger.warning("call %s on %s never reported its end; releasing its slots",
                               call.call_id, call.channel_id)
                self.ended(call.call_id, cause=None, note=NEVER_SEEN_ENDING)
            snap = self.snapshot
            if snap is None or now - snap.built_at.timestamp() >= self.refresh_every_s:
                await self._rebuild_logged()

    # -- the hot path ---------------------------------------------------------------------

    def _resolve_account(self, endpoint: str, channel: str, caller_id: str) -> str | None:
        if not self._mappings:
            return None
        return match_account(
            self._mappings, endpoint=endpoint, channel=channel, callerid=caller_id
        )

    def _tenant_of(self, account: str) -> str | None:
        snap = self.snapshot
        party = snap.party(PartyKind.ACCOUNT, account) if snap is not None else None
        return party.tenant if party is not None else None

    def screen(self, facts: ChannelFacts) -> Decision:
        """Decide for one new channel (embedded mode: caps counted in memory). Raises
        ScreeningUnavailable before the first snapshot; malformed channel variables get a
        refusal (``channel_invalid``)."""
        snap = self._current()
        started = time.perf_counter_ns()
        now = self.clock()
        redo, attempt, problems = self._attempt(facts, now)
        verdict = (refuse_channel(problems, snap) if problems
                   else decide(attempt, snap, self.counts))
        return self._conclude(facts, redo, attempt, verdict, now, started)

    async def screen_reserving(self, facts: ChannelFacts) -> Decision:
        """Decide for one new channel in cluster mode: every rule but the caps from the
        snapshot, then the caps checked and reserved in the shared store, one round trip
        for an allowed call (none for a call another rule blocks)."""
        snap = self._current()
        started = time.perf_counter_ns()
        now = self.clock()
        redo, attempt, problems = self._attempt(facts, now)
        decision_id = redo.decision_id
        if problems:
            return self._conclude(facts, redo, attempt, refuse_channel(problems, snap),
                                  now, started)
        demands = CapDemands()
        verdict = decide(attempt, snap, demands)
        if verdict.allowed and self.shared is not None:
            answer = await self.shared.reserve(CallKeys(
                decision_id, attempt.tenant, attempt.account,
                verdict.caller_id_e164 or attempt.caller_id,
                verdict.destination_e164 or attempt.destination), demands.caps, now)
            verdict = settle(verdict, snap, demands,
                             blocked_by="" if answer.allowed else answer.rule_id,
                             count=answer.count, shadow=answer.shadow,
                             unavailable=answer.unavailable)
        return self._conclude(facts, redo, attempt, verdict, now, started)

    async def counts_for(self, dry_run: Callable[[Counters], object], now: float) -> Counters:
        """The counters a dry run (``checking.dry_run``) reads: this process's (embedded
        mode), or in cluster mode the cluster's counts of every cap the dry run meets, read
        from Redis (one read per cap; this process's own counts if Redis cannot answer)."""
        if self.shared is None:
            return self.counts
        demands = CapDemands()
        dry_run(demands)
        counts: dict[CapSpec, int] = {}
        for cap in demands.caps:
            n = await self.shared.count(cap, demands.tenant, now)
            if n is None:
                return self.counts
            counts[cap] = n
        return CountedCaps(counts)

    def _current(self) -> Snapshot:
        snap = self.snapshot
        if snap is None:
            raise ScreeningUnavailable("no screening snapshot loaded yet")
        return snap

    def _new_id(self, facts: ChannelFacts) -> tuple[str, bool, bool]:
        """The decision's id, whether it replaces an earlier decision of the same id that
        was never carried out (a redo), and whether its row is written as a replacement.

        The call log is keyed by the channel's unique id, which the dialplan knows too (no
        decision-id variable to send); in cluster mode by the unique id at its PBX (the
        instances share the log, the reservations and the call feed; ids of two PBXes may
        collide). A channel screened again gets:

        * the id of its latest decision, when that decision was never carried out: outguard
          died (``kill -9``, a crash) between the decision and the continue / hangup, and
          the channel, still waiting in Stasis, is screened by the next outguard
          (``facts.waiting``), or the dialplan retried a FastAGI screening that never
          answered (``facts.carried``, the channel's ``OUTGUARD_DECISION_ID``, is not that
          decision). The row is replaced whole (``Writer.REDO_CALL``), so the call log
          says what was really done, and the hangup handler's outcome closes that row.
        * an id of its own otherwise (a dialplan that screens a channel twice, each
          decision carried out; or another PBX's channel whose unique id collides with one
          already used).

        What this process decided is remembered (``_latest``, ``_decided``), and so is what
        the call log holds of the last :data:`RECENT_S` (``remember_recent``, at start):
        a redo is reported (``CallDecided.redo``, the metrics, the log) only when an
        earlier decision of the channel is known that way. Whether the row is written as
        a replacement is the channel's word alone (third value): a FastAGI channel that
        holds no decision id (``carried == ""``: every first screening) or one found
        waiting replaces a row of its id, if the call log has one, that is not known here
        (older than that), and a first screening simply inserts."""
        cid = facts.channel_id
        if not cid:
            return uuid.uuid4().hex, False, False
        base = cid if self.shared is None else cluster_call_id(cid, facts.pbx)
        key = (facts.pbx, cid)
        latest = self._latest.get(key)
        # the channel's latest decision: remembered, else the unique id unless another
        # channel took it (a colliding unique id of another PBX)
        ours = latest if latest is not None else None if base in self._decided else base
        carried = facts.carried
        undone = facts.waiting or carried == "" or (
            carried is not None and latest is not None and carried != latest)
        if ours is not None and undone:
            decision_id, redo, replace = ours, latest is not None, True
        elif base not in self._decided and latest is None and carried is None:
            decision_id, redo, replace = base, False, False
        else:
            decision_id, redo, replace = uuid.uuid4().hex, False, False
        self._remember(key, decision_id)
        if redo:
            logger.warning("%s on %s: decided again; its earlier decision %s was never "
                           "carried out (outguard stopped first) and is replaced",
                           facts.channel_name or cid, facts.pbx, decision_id)
        return decision_id, redo, replace

    def _remember(self, key: tuple[str, str], decision_id: str) -> None:
        self._decided[decision_id] = None
        self._latest[key] = decision_id
        self._latest.move_to_end(key)
        while len(self._decided) > RECENT_IDS:
            self._decided.popitem(last=False)
        while len(self._latest) > RECENT_IDS:
            self._latest.popitem(last=False)

    def _attempt(self, facts: ChannelFacts, now: float) -> tuple[Redo, CallAttempt, list[str]]:
        """The decision's id and what it replaces, the attempt, and what is wrong with the
        channel's variables."""
        decision_id, redo, replace = self._new_id(facts)
        counted = self._close_earlier(facts, decision_id if replace else None)
        attempt = build_attempt(
            facts, datetime.fromtimestamp(now, UTC), decision_id,
            self._resolve_account, self._tenant_of, self.default_tenant,
        )
        return Redo(decision_id, redo, replace, counted), attempt, channel_problems(facts)

    def _close_earlier(self, facts: ChannelFacts, redone: str | None) -> LiveCall | None:
        """A call still live on the channel, screened again, ends here; or, when it is the
        decision being redone (``redone``), it is dropped without an end: it never went
        out, and its row is replaced. Returns the dropped call: it is counted already (the
        redo does not count it again; a redo that does not let it out takes it back)."""
        if not facts.channel_id:
            return None
        earlier = self.live.on_channel(facts.pbx, facts.channel_id)
        if earlier is None:
            return None
        if earlier.call_id == redone:
            self.live.release(earlier.call_id)  # its shared slot stays for the redo
            return earlier
        self.ended(earlier.call_id, None)
        return None

    def _uncount(self, call: LiveCall, at: float) -> None:
        """A counted call that does not go out after all (its decision was never carried
        out, and the redo does not let it out): embedded, the rate counters take it back;
        in cluster mode the shared caps take back its counts and free its slots (in the
        background, once: ``SharedCaps.void``)."""
        if self.shared is None:
            self.counters.forget(call.tenant, call.account, call.caller_id,
                                 call.destination, call.started)
        else:
            self._releases.put_nowait((call.call_id, call.started, CallKeys(
                call.call_id, call.tenant, call.account, call.caller_id, call.destination),
                True))

    def _conclude(self, facts: ChannelFacts, redo: Redo, attempt: CallAttempt,
                 verdict: Verdict, now: float, started: int) -> Decision:
        """Take the allowed call's local slots, count the decision, publish it. A redo of a
        call that was counted (its undone decision allowed it) is not counted again; if it
        no longer goes out, that count is taken back."""
        decision_id = redo.decision_id
        caller_id = verdict.caller_id_e164 or attempt.caller_id
        destination = verdict.destination_e164 or attempt.destination
        if verdict.allowed:
            self.live.reserve(LiveCall(
                call_id=decision_id, channel_id=facts.channel_id, adapter=facts.adapter,
                tenant=attempt.tenant, account=attempt.account, caller_id=caller_id,
                destination=destination, started=now, pbx=facts.pbx,
            ))
        elapsed_us = (time.perf_counter_ns() - started) // 1000
        decision = Decision(decision_id, verdict, attempt, elapsed_us)
        self.stats.add(decision)
        self.publish(CallDecided(
            call_id=decision_id, channel_id=facts.channel_id, adapter=facts.adapter,
            at=now, tenant=attempt.tenant, account=attempt.account, caller_id=caller_id,
            destination=destination, allowed=verdict.allowed, rule=verdict.rule_id,
            reason=verdict.reason, message=verdict.message,
            cause=0 if verdict.allowed else verdict.cause, shadow=verdict.shadow,
            decision_us=elapsed_us, purpose=attempt.purpose.value,
            campaign=attempt.campaign or "", pbx=facts.pbx, redo=redo.redo,
        ), count=redo.counted is None, replace=redo.replace)
        if redo.counted is not None and not verdict.allowed:
            self._uncount(redo.counted, now)
        return decision

    def failed(self, facts: ChannelFacts, reason: str, policy: str,
               cause: int | None = None) -> str:
        """Screening failed for this channel and ``policy`` answered it: ``FAIL_OPEN``
        (the call goes out: it takes its slots and is followed to its end like an allowed
        call; in cluster mode it is counted and takes its slots in the shared caps too,
        in the background: ``SharedCaps.take``), ``FAIL_CLOSED`` (refused with ``cause``)
        or "" (nothing could be applied: the channel was gone). The call log gets its
        row, verdict ``failed``, at once, so a call outguard could not screen is never
        missing from it. Never raises; returns
        the row's id."""
        now = self.clock()
        decision_id, redo, replace = self._new_id(facts)
        tenant, account = facts.tenant or self.default_tenant, facts.account
        destination, purpose, campaign = facts.dialed, "", facts.campaign
        caller_id = facts.caller_id
        region, area = self.policy.default_region, self.policy.home_area_code
        try:  # who and what, as well as outguard can tell without a decision
            attempt = build_attempt(facts, datetime.fromtimestamp(now, UTC), decision_id,
                                    self._resolve_account, self._tenant_of,
                                    self.default_tenant)
            tenant, account = attempt.tenant, attempt.account
            purpose, campaign = attempt.purpose.value, attempt.campaign or ""
            destination = normalise(facts.dialed, region, area)
        except Exception:  # noqa: BLE001 - the row is written whatever failed here
            pass
        try:  # counted under the caller ID a decision would have counted it under
            caller_id = normalise(facts.caller_id, region, area) if caller_id.strip() else ""
        except Exception:  # noqa: BLE001 - an invalid caller ID is recorded as it came
            caller_id = facts.caller_id
        went_out = policy == FAIL_OPEN
        counted = self._close_earlier(facts, decision_id if replace else None)
        if went_out:
            self.live.reserve(LiveCall(
                call_id=decision_id, channel_id=facts.channel_id, adapter=facts.adapter,
                tenant=tenant, account=account, caller_id=caller_id,
                destination=destination, started=now, pbx=facts.pbx,
            ))
            if self.shared is not None:  # counted cluster-wide too, before its release
                self._releases.put_nowait((decision_id, now, CallKeys(
                    decision_id, tenant, account, caller_id, destination), False))
        self.stats.failed += 1
        self.publish(CallDecided(
            call_id=decision_id, channel_id=facts.channel_id, adapter=facts.adapter, at=now,
            tenant=tenant, account=account, caller_id=caller_id,
            destination=destination, allowed=went_out, rule=policy, reason=reason,
            message=f"outguard could not screen the call ({reason})",
            cause=0 if went_out or cause is None else cause, shadow=(), decision_us=0,
            purpose=purpose, campaign=campaign, pbx=facts.pbx, failed=True, redo=redo,
        ), count=counted is None, replace=replace)
        if counted is not None and not went_out:
            self._uncount(counted, now)
        return decision_id

    async def failed_durably(self, facts: ChannelFacts, reason: str, policy: str,
                             cause: int | None = None) -> str:
        """``failed``, then wait (at most :data:`FAILED_ROW_WAIT_S`) until the row is
        committed (or fsync-ed in the spool): the adapters carry the failure policy out
        only then, so a ``kill -9`` after a failed call went out (or was refused) never
        loses its row. Failures are rare: the wait costs the call path nothing else."""
        call_id = self.failed(facts, reason, policy, cause)
        try:
            async with asyncio.timeout(FAILED_ROW_WAIT_S):
                await self.store.flush_async()
        except TimeoutError:
            logger.warning("the failed call %s is not in the call log yet (the store has not"
                           " committed within %.1f s); answering it anyway", call_id,
                           FAILED_ROW_WAIT_S)
        except Exception as exc:  # noqa: BLE001 - the call is answered whatever the store does
            logger.warning("the failed call %s may not be in the call log: %s", call_id, exc)
        return call_id

    def latest_on(self, pbx: str, channel_id: str) -> str | None:
        """The id of the latest decision known for this channel (``_new_id``)."""
        return self._latest.get((pbx, channel_id)) if channel_id else None

    async def not_carried_out(self, decision_id: str, policy: str, cause: int | None,
                              at: float | None = None) -> bool | None:
        """The channel never carried out this decision: the hangup handler's event says
        the dialplan's failure branch answered it instead (``policy``: FAIL_OPEN, the call
        went out unscreened; FAIL_CLOSED, it was refused with ``cause``), for outguard died
        before its answer reached the channel, or the answer was lost, and the dialplan
        did not screen again. The decision's row is replaced (its id kept) by what was
        really done, as a failed screening's row (reason :data:`NOT_CARRIED_OUT`), and only
        a call that went out counts: an undone allow that was refused is taken back, an
        undone block let out counts and is followed to its end like a fail-open call.
        Returns whether the call went out (its outcome then closes the row); None, and
        nothing done, when the call log has no such decision or its row is a failed one
        already (outguard's own failure answer: nothing to correct)."""
        try:
            await self.store.flush_async()
            logged: LoggedCall = await self.store.get_call(decision_id)
        except Exception as exc:  # noqa: BLE001 - not found, or the store cannot answer
            logger.warning("decision %s was never carried out, but its row cannot be read to"
                           " correct it: %s", decision_id, exc)
            return None
        c = logged.call
        if c.verdict == "failed":
            return None
        now = self.clock() if at is None else at
        out = policy == FAIL_OPEN
        was_out = went_out(c.verdict, c.rule)
        logger.warning("decision %s (%s, %s) for %s on %s was never carried out; the dialplan's"
                       " failure policy %s answered the call: its row says so now",
                       decision_id, c.verdict, c.reason, c.channel_id, c.pbx, policy)
        call = self.live.get(decision_id)
        if was_out and not out:  # counted, never went out
            if call is not None:
                self.live.release(decision_id)
            self._uncount(LiveCall(
                call_id=decision_id, channel_id=c.channel_id, adapter=c.adapter, pbx=c.pbx,
                tenant=c.tenant, account=c.account, caller_id=c.caller_id,
                destination=c.destination, started=c.at), now)
        elif out and call is None:  # let out unscreened: followed to its end, counted
            self.live.reserve(LiveCall(
                call_id=decision_id, channel_id=c.channel_id, adapter=c.adapter, pbx=c.pbx,
                tenant=c.tenant, account=c.account, caller_id=c.caller_id,
                destination=c.destination, started=c.at))
            if self.shared is not None and not was_out:
                self._releases.put_nowait((decision_id, c.at, CallKeys(
                    decision_id, c.tenant, c.account, c.caller_id, c.destination), False))
        self.stats.failed += 1
        self.publish(CallDecided(
            call_id=decision_id, channel_id=c.channel_id, adapter=c.adapter, at=c.at,
            tenant=c.tenant, account=c.account, caller_id=c.caller_id,
            destination=c.destination, allowed=out, rule=policy, reason=NOT_CARRIED_OUT,
            message=(f"outguard decided {c.verdict} ({c.reason}), but the decision never "
                     f"reached the channel: the dialplan's failure policy answered the call"),
            cause=0 if out or cause is None else cause, shadow=(), decision_us=c.decision_us,
            purpose=c.purpose, campaign=c.campaign, pbx=c.pbx, failed=True, redo=True,
        ), count=out and not was_out, replace=True)
        return out

    def answered(self, decision_id: str, at: float | None = None) -> None:
        """The call was answered (the first report counts, later ones are ignored). The
        answer time goes to the call log at once: a restart before the end keeps it."""
        before = self.live.get(decision_id)
        if before is None or before.answered_at is not None:
            return
        call = self.live.answered(decision_id, self.clock() if at is None else at)
        if call is not None and call.answered_at is not None:
            self.publish(CallAnswered(decision_id, call.answered_at, call.tenant,
                                      call.account, call.pbx))

    def ended(self, decision_id: str, cause: int | None, at: float | None = None,
              note: str | None = None, answered_at: float | None = None) -> bool:
        """A call that was let through ended: release its slots and record the outcome,
        exactly once (True the first time, False after). ``note`` says how the end was
        known when no hangup was seen; the duration of such a call is unknown (None) when
        it was answered before outguard lost sight of it. ``answered_at``: the answer time
        the end's report gives (the hangup handler's, from Asterisk's own figures), which
        is preferred to one recorded before: after a restart the reconcile records the
        time it first saw a continue-mode channel up, later than its answer (a call held
        6 s once logged as 0.6 s)."""
        call = self.live.release(decision_id)
        if call is None:
            return False
        if answered_at is not None and call.answered_at != answered_at:
            call = evolve(call, answered_at=answered_at)
        end = self.clock() if at is None else at
        self._give_back(decision_id, end)
        duration: float | None = 0.0
        if call.answered_at is not None:
            duration = None if note is not None else round(end - call.answered_at, 3)
        self.publish(CallEnded(
            call_id=decision_id, at=end, tenant=call.tenant, account=call.account,
            caller_id=call.caller_id, destination=call.destination,
            answered_at=call.answered_at, duration=duration, cause=cause, note=note,
            pbx=call.pbx,
        ))
        return True

    def _give_back(self, decision_id: str, at: float) -> None:
        """Cluster mode: the call's shared slots are released (in the background, once)."""
        if self.shared is not None:
            self._releases.put_nowait((decision_id, at, None, False))

    # -- the one place a call event goes out ----------------------------------------------

    def publish(self, event: CallEvent, *, count: bool = True, replace: bool = False) -> None:
        """Publish a call event once: the call log and the rate counters take it now, in
        order; the hub's subscribers (risk figures, metrics, live stream) at their pace.
        ``count=False``: a redo of a call the counters hold already; ``replace``: the
        decision's row replaces a row of its id left by an undone decision, if any."""
        self._log_call(event, replace)
        if isinstance(event, CallDecided) and event.allowed and count:
            self.counters.record(event.tenant, event.account, event.caller_id,
                                 event.destination, event.at)
        self.events.publish(event)

    def _log_call(self, event: CallEvent, replace: bool = False) -> None:
        """The call log's share of an event (enqueued: never blocks)."""
        if isinstance(event, CallDecided):
            self.store.record_decision(CallRecord.from_decided(event),
                                       redo=replace or event.redo)
            if not event.allowed:  # blocked, or failed and not let out: over now
                self.store.record_outcome(event.call_id, answered_at=None, ended_at=event.at,
                                          duration=0.0, cause=event.cause or None)
        elif isinstance(event, CallAnswered):
            self.store.record_outcome(event.call_id, answered_at=event.at, ended_at=None,
                                      duration=None, cause=None)
        else:
            self.store.record_outcome(event.call_id, answered_at=event.answered_at,
                                      ended_at=event.at, duration=event.duration,
                                      cause=event.cause, note=event.note)

    def call_on_channel(self, pbx: str, channel_id: str) -> LiveCall | None:
        """The live call screened on this channel of this PBX (ARI channel id / AMI
        Uniqueid)."""
        return self.live.on_channel(pbx, channel_id)

    def live_calls(self) -> int:
        return len(self.live)


#: one number of each kind the classifier imports a different phonenumbers module for
_WARM = ("+8613800138000", "+861088886666", "+8640081231234", "+12125550123", "+8695588")


def warm_numbers() -> None:
    """Import phonenumbers' geocoder, carrier and time-zone data now (~0.5 s, once), so
    that the first call of the day does not pay for it."""
    for number in _WARM:
        try:
            classify(number)
        except ValueError:
            pass
