"""The outguard Stasis application: screen every channel that enters it.

Every StasisStart is handled in its own task. Allowed calls either continue in the dialplan
(continue mode) or are bridged by outguard (bridge mode, ``ari_app.bridge``).

Continue mode costs one ARI request for a plainly allowed call: ``continue`` into
``[outguard-allow]``, which sets the verdict's variables for CDRs itself (the decision id
is the channel's unique id). Shadow-flagged calls, and calls an exempting rule let
through, first get their variables set (one more request). The call's end (answer, duration,
Q.850 cause) arrives over AMI, from the hangup handler ``[outguard-ari]`` pushes
(``agi.outcomes``): no per-channel subscription. Without an AMI listener the app falls
back to subscribing to the channel and following its events. Blocked calls hear the announcement, if any,
and are hung up with the verdict's cause. The app reconnects with backoff after a
WebSocket drop or an Asterisk restart and reconciles the channels already in Stasis
(StasisStart is not replayed).

One app per PBX (``[[ari]]`` target): the app names its PBX on every call it screens and
finds, follows and reconciles only that PBX's calls (``LiveCalls.on_channel(pbx, id)``,
``calls(pbx)``), so another PBX's channel with the same id is never touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from ari_app.bridge import (
    BRIDGE_PREFIX,
    OUTBOUND_PREFIX,
    BridgeCall,
    BridgePool,
    bridge_of,
    outbound_id,
)
from ari_app.client import AriClient, AriError, AriUnavailable, ChannelGone
from ari_app.replaced import EVENT as REPLACED_EVENT
from ari_app.replaced import Replaced
from ari_app.settings import CallSettings
from outguard import dialplan_vars as dv
from outguard import faults, screening
from outguard.callfacts import ChannelFacts
from outguard.dialplan_pbx import DialplanPbx
from outguard.latency import LatencyRecorder
from outguard.live import DEFAULT_PBX, UNKNOWN_AFTER_RESTART, UNKNOWN_WHILE_AWAY, LiveCall
from outguard.pbx_claims import PbxClaims, PbxConflict
from outguard.probes import SCREENING_FAILURES
from outguard.screening import (
    Backoff,
    CallTracker,
    Unscreened,
    fail_rule,
    failure_vars,
    log_decision,
    plainly_allowed,
    verdict_vars,
)
from outguard.privacy import mask
from outguard.service import Decision, Screener

logger = logging.getLogger(__name__)

OUTBOUND_ARG = "outbound"
#: The only ARI event types the app acts on; Asterisk is asked to send just these
#: (``AriClient.set_event_filter``). Unfiltered, a continue-mode call brings ~55 events
#: (44 ChannelVarset, Dial, ChannelDialplan...) once its channel is subscribed, and
#: decoding them was the largest part of outguard's CPU per call (bench/RESULTS.md).
EVENT_TYPES = ("StasisStart", "StasisEnd", "ChannelStateChange", "ChannelDestroyed",
               "PlaybackStarted", "PlaybackFinished", REPLACED_EVENT)
GONE_TTL_S = 120.0


def _caller_of(outbound: dict[str, Any]) -> str:
    """The caller's channel id a carrier leg was originated for (its Stasis arguments
    are ``outbound,<caller>``)."""
    args = str((outbound.get("dialplan") or {}).get("app_data", "")).split(",")
    return args[2] if len(args) > 2 and args[1] == OUTBOUND_ARG else ""


@dataclass(frozen=True, slots=True)
class _Undecided:
    facts: ChannelFacts
    bridge: bool
    channelvars: dict[str, str]


def channel_facts(channel: dict[str, Any], dialed: str, pbx: str = DEFAULT_PBX,
                  waiting: bool = False) -> ChannelFacts:
    """``waiting``: the channel was found waiting in Stasis after a (re)connect, so its
    latest decision, if any, was never carried out (``Screener._new_id``)."""
    variables = channel.get("channelvars") or {}
    return ChannelFacts(
        adapter="ari",
        channel_id=channel["id"],
        channel_name=channel.get("name", ""),
        dialed=dialed,
        caller_id=(channel.get("caller") or {}).get("number", ""),
        account=variables.get(dv.ACCOUNT) or "",
        tenant=variables.get(dv.TENANT) or "",
        purpose=variables.get(dv.PURPOSE) or "",
        campaign=variables.get(dv.CAMPAIGN) or "",
        pbx=pbx,
        waiting=waiting,
    )


class StasisApp:
    def __init__(
        self, client: AriClient, screener: Screener, settings: CallSettings,
        tracker: CallTracker | None = None, pbx: str = DEFAULT_PBX,
        dialplan: DialplanPbx | None = None,
        claims: PbxClaims | None = None,
    ) -> None:
        self.client = client
        #: where this PBX name is claimed for this Asterisk before the app registers
        self.claims = claims
        self.pbx = pbx  # the PBX this app's Asterisk is (outguard.config target name)
        #: the dialplan's OUTGUARD_PBX, checked (set when empty) at every connect
        self.dialplan = dialplan or DialplanPbx(
            pbx, pbx if getattr(screener, "reserves", False) else "")
        self.screener = screener
        self.settings = settings
        self.tracker = tracker
        self.connected = False
        self.last_error = ""  # why the last connection attempt failed (/health, serve)
        #: another connection may take this target's Stasis application (ari_app.replaced)
        self.replaced = Replaced(pbx, client.app, str(getattr(client, "base", "")))
        self.entity = ""  # its Asterisk's entity id, once read (cluster mode)
        self.reconnects = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._watchers: dict[str, BridgeCall] = {}  # bridge mode: channel id -> call
        self.bridges = BridgePool()  # bridge mode: empty bridges kept for the next call
        self._handling: set[str] = set()  # channels whose decision is under way
        #: channels with no decision yet, and the tasks answering them (stop() answers
        #: what is left: every call that reached outguard gets an answer and a row)
        self._undecided: dict[str, _Undecided] = {}
        self._answering: dict[str, asyncio.Task[Any]] = {}
        #: channels recently destroyed or hung up by this process (race guard: a listing
        #: taken before their end still shows them, in Stasis)
        self._gone: dict[str, float] = {}
        self._playbacks: dict[str, asyncio.Future[None]] = {}
        #: StasisStart received -> continue/hangup answered by Asterisk, per call
        self.handling = LatencyRecorder()

    # -- connection -----------------------------------------------------------------------

    async def run(self) -> None:
        """Stay connected until cancelled: reconnect with backoff (0.1 s doubling to 5 s,
        back to 0.1 s after a connection that lasted)."""
        backoff = Backoff()
        while True:
            backoff.connecting()
            try:
                await self._claim()
                events = self.client.events(on_open=self._on_open)
                async with contextlib.aclosing(events):
                    async for event in events:
                        if self.replaced.concerns(event):
                            self.replaced.happened(event)
                            self.connected = False  # its calls go elsewhere now
                            self.last_error = self.replaced.problem
                            break
                        self.dispatch(event)
                if self.replaced.problem:
                    await self.replaced.wait_free(self.client.application)
                    continue  # free again: register at once
                logger.warning("ARI events WebSocket closed")
            except PbxConflict as err:  # logged by the claims; not used until resolved
                self.last_error = str(err)
            except AriUnavailable as err:
                self.last_error = str(err)
                log = logger.error if err.details.get("status") == 401 else logger.warning
                log("ARI unavailable: %s", err)
            except Exception:
                logger.exception("ARI session failed")
            self.connected = False
            delay = backoff.next_delay()
            logger.info("reconnecting to ARI in %.1f s", delay)
            await asyncio.sleep(delay)
            self.reconnects += 1

    async def _claim(self) -> None:
        """Before the Stasis app registers (and calls arrive): this PBX name is this
        Asterisk's (``outguard.pbx_claims``), by its entity id."""
        if self.claims is None:
            return
        try:
            info = await self.client.info()
            entity = str((info.get("system") or {}).get("entity_id") or "")
        except AriError:
            entity = ""  # ARI answers, but not this: the name is not checked
        self.entity = entity
        await self.claims.claim(self.pbx, "ari", entity, self.client.base,
                                drop=self.client.drop_events,
                                connected=lambda: self.connected)
        await self.claims.claim_app(self.pbx, entity, self.client.app, self.client.base,
                                    drop=self.client.drop_events,
                                    connected=lambda: self.connected)

    def _on_open(self) -> None:
        self.connected = True
        logger.info("connected to ARI of pbx %s as application %r", self.pbx,
                    self.client.app)
        self.spawn(self._filter_events())
        claims, entity = self.claims, self.entity
        self.spawn(self.dialplan.settle(
            self.client.get_global, self.client.set_global,
            (lambda name: claims.live_elsewhere(name, entity)) if claims is not None
            else None))
        self.spawn(self.reconcile())

    async def _filter_events(self) -> None:
        try:
            await self.client.set_event_filter(EVENT_TYPES)
        except (AriError, AriUnavailable) as err:
            logger.info("ARI event filter not set (%s): receiving every event type", err)

    async def stop(self, idle_bridges_s: float = 2.0, grace_s: float = 1.0) -> None:
        """Answer the calls still waiting for a verdict (``grace_s`` for the decisions
        under way; the failure policy for the rest), cancel the calls' tasks (run() itself
        is cancelled by its owner; calls in progress stay up for the next outguard) and
        destroy the empty bridges kept for the next calls (for at most
        ``idle_bridges_s``; a bridge left behind is pooled by the next outguard)."""
        await self._answer_undecided(grace_s)
        try:
            async with asyncio.timeout(idle_bridges_s):
                while (bridge := self.bridges.take()) is not None:
                    await self.client.destroy_bridge(bridge)
        except (TimeoutError, AriError, AriUnavailable) as err:
            logger.info("empty bridges left for the next outguard: %s", err or "timeout")

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("call task failed", exc_info=task.exception())

    # -- events ---------------------------------------------------------------------------

    def dispatch(self, event: dict[str, Any]) -> None:
        """Route one event; never awaits (the reader must not stall behind a call)."""
        kind = event.get("type")
        if kind == "PlaybackFinished":
            future = self._playbacks.pop(event.get("playback", {}).get("id", ""), None)
            if future is not None and not future.done():
                future.set_result(None)
            return
        channel = event.get("channel")
        if not isinstance(channel, dict) or "id" not in channel:
            return
        cid = channel["id"]
        if kind == "StasisStart":
            args = [str(a) for a in event.get("args", [])]
            watcher = self._watchers.get(cid)
            if watcher is not None:
                watcher.feed(event)
            elif args[:1] == [OUTBOUND_ARG]:
                self._outbound_without_call(cid)
            elif cid not in self._handling:
                self._handling.add(cid)
                self.spawn(self.handle_start(channel, args, time.perf_counter()))
            return
        watcher = self._watchers.get(cid)
        if watcher is not None:
            watcher.feed(event)
        elif kind == "ChannelStateChange" and channel.get("state") == "Up":
            call = self.screener.call_on_channel(self.pbx, cid)
            if call is not None:
                self.screener.answered(call.call_id)
        if kind == "ChannelDestroyed":
            self._mark_gone(cid)
            call = self.screener.call_on_channel(self.pbx, cid)
            if call is not None and watcher is None:  # a bridged call ends in BridgeCall
                self.screener.ended(call.call_id, int(event.get("cause") or 0) or None)

    def watch(self, channel_id: str, call: BridgeCall) -> None:
        self._watchers[channel_id] = call

    def unwatch(self, channel_id: str) -> None:
        self._watchers.pop(channel_id, None)

    def _mark_gone(self, cid: str) -> None:
        self._forget_gone()
        self._gone[cid] = time.monotonic()

    def _forget_gone(self) -> None:
        if len(self._gone) > 1000:
            horizon = time.monotonic() - GONE_TTL_S
            for cid in [c for c, t in self._gone.items() if t < horizon]:
                del self._gone[cid]

    # -- one call -------------------------------------------------------------------------

    async def handle_start(
        self, channel: dict[str, Any], args: list[str], received: float | None = None,
        *, waiting: bool = False,
    ) -> None:
        """Screen one channel and carry the verdict out. ``waiting``: found waiting in
        Stasis at a reconcile (its latest decision, if any, was never carried out: this
        one replaces it in the call log)."""
        cid = channel["id"]
        dialed = args[0] if args else (channel.get("dialplan") or {}).get("exten", "")
        bridge = "bridge" in args[1:]
        facts = channel_facts(channel, dialed, self.pbx, waiting)
        channelvars = channel.get("channelvars") or {}
        # until its answer is carried out, a call is one outguard's stop() must answer
        self._undecided[cid] = _Undecided(facts, bridge, channelvars)
        task = asyncio.current_task()
        if task is not None:
            self._answering[cid] = task
        try:
            outcome = await self._decide(facts)
            self._undecided.pop(cid, None)
            if isinstance(outcome, Unscreened):
                await self._fail(facts, outcome.reason, channelvars, bridge)
                return
            decision = outcome
            log_decision(cid, decision)
            if faults.ARMED:
                await faults.reached(faults.AFTER_DECISION, self.screener.store)
            if not decision.allowed:
                await self._block(cid, decision)
            elif bridge:
                self._answering.pop(cid, None)
                call = BridgeCall.for_decision(self, cid, decision, dialed)
                self.watch(cid, call)
                try:
                    await call.run(verdict_vars(decision))
                finally:
                    self.unwatch(cid)
            else:
                await self._continue(cid, decision, dialed, channelvars.get(dv.PBX))
            if received is not None and not bridge:
                self.handling.add(time.perf_counter() - received)
        except ChannelGone:
            logger.info("channel %s to %s hung up while outguard was deciding", cid, mask(dialed))
            self._mark_gone(cid)
            self._release(cid)
        except (AriError, AriUnavailable) as err:
            # never leave the channel waiting in Stasis: hang it up (its hangup handler
            # reports the end of a call already handed to the tracker)
            logger.error("channel %s to %s: ARI failed: %s; hanging up", cid, mask(dialed), err)
            await self._hangup_quietly(cid, self.settings.fail_cause)
            self._release(cid)
        finally:
            self._handling.discard(cid)
            self._answering.pop(cid, None)

    async def _decide(self, facts: ChannelFacts) -> Decision | Unscreened:
        return await screening.decide(self.screener, facts, self.settings.budget_ms)

    async def _continue(self, cid: str, decision: Decision, dialed: str,
                        pbx_global: str | None = None) -> None:
        """Continue an allowed call: into ``[outguard-allow]`` (one request) when the
        dialplan builds its decision id itself (``pbx_global``: OUTGUARD_PBX as the
        channel shows it, when ari.conf's channelvars lists it), else with its variables
        set first."""
        requests: list[Coroutine[Any, Any, None]] = []
        context = self.settings.allow_context
        if not plainly_allowed(decision, self.dialplan.call_id(cid, pbx_global)):
            requests.append(self.client.set_vars(cid, verdict_vars(decision)))
            context = self.settings.dial_context
        if self.tracker is not None:
            self.tracker.track(cid)  # before any await: no race with its end
        else:  # no AMI: follow the channel's events
            requests.append(self.client.subscribe_channel(cid))
        if requests:
            await asyncio.gather(*requests)
        if cid in self._gone:
            raise ChannelGone("POST", f"/channels/{cid}/continue", 404, "destroyed")
        await self.client.continue_in_dialplan(cid, context, dialed, 1)

    async def _block(self, cid: str, decision: Decision) -> None:
        await self.client.set_vars(cid, verdict_vars(decision))
        sound = decision.verdict.announcement
        if sound and self.settings.announce != "off":
            await self._announce(cid, sound)
        await self.hang_up(cid, decision.verdict.cause)

    async def _announce(self, cid: str, sound: str) -> None:
        if self.settings.announce == "early":
            await self.client.progress(cid)
        else:
            await self.client.answer(cid)
        playback = uuid.uuid4().hex
        finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._playbacks[playback] = finished
        try:
            media = sound if ":" in sound else f"sound:{sound}"
            await self.client.play(cid, media, playback)
            async with asyncio.timeout(self.settings.announce_timeout_s):
                await finished
        except TimeoutError:
            logger.warning("announcement %s on %s did not finish in time", sound, cid)
        finally:
            self._playbacks.pop(playback, None)

    async def _fail(self, facts: ChannelFacts, reason: str, channelvars: dict[str, str],
                    bridge: bool, *, stopping: bool = False) -> None:
        """No decision: apply the failure policy (the channel's, else the service's) and
        record the call, verdict ``failed``: durably before the requests (a channel that
        vanishes meanwhile, or a kill -9, keeps its row), or after them when outguard is
        ``stopping`` (a channel
        the requests could not reach stays in Stasis for the next outguard, which screens
        it and writes its one row). A fail-open call is followed to its end like an
        allowed one: by the hangup handler's event (continue mode, with AMI), else by its
        channel's events."""
        cid, dialed = facts.channel_id, facts.dialed
        mode, cause = dv.failure_policy(channelvars, self.settings.fail_mode,
                                        self.settings.fail_cause)
        SCREENING_FAILURES.labels("ari", mode).inc()
        logger.warning("channel %s to %s: %s; failing %s", cid, mask(dialed), reason, mode)
        rule = fail_rule(mode)
        followed_by_ami = self.tracker is not None and not bridge
        # the row is durable before the policy is carried out: a kill -9 never loses it
        call_id = "" if stopping else await self.screener.failed_durably(
            facts, reason, rule, cause)
        if faults.ARMED and not stopping:
            await faults.reached(faults.AFTER_FAILURE)
        if mode == "open" and followed_by_ami and not stopping:
            assert self.tracker is not None
            self.tracker.track(cid)
        try:
            if mode == "open":
                requests = [self.client.set_vars(
                    cid, failure_vars(dv.UNSCREENED, reason, call_id or cid))]
                if not followed_by_ami:
                    requests.append(self.client.subscribe_channel(cid))
                await asyncio.gather(*requests)
                await self.client.continue_in_dialplan(cid, self.settings.dial_context,
                                                       dialed, 1)
            else:
                await self.client.set_vars(cid, failure_vars(dv.FAILED, reason, call_id or cid))
                await self.hang_up(cid, cause)
        except ChannelGone:
            if stopping:  # gone: nobody will screen it again
                self.screener.failed(facts, screening.CHANNEL_GONE, "")
            raise
        if stopping:
            self.screener.failed(facts, reason, rule, cause)
            if mode == "open" and followed_by_ami:
                assert self.tracker is not None
                self.tracker.track(cid)

    async def _answer_undecided(self, grace_s: float) -> None:
        """outguard is stopping: the calls still waiting for their answer get it now.
        Those whose decision is under way have ``grace_s`` to finish; the rest (waiting
        for a snapshot, or cut off) get the failure policy, reason ``outguard_stopping``,
        and their call-log row."""
        answering = [t for t in self._answering.values() if not t.done()]
        if answering:
            await asyncio.wait(answering, timeout=grace_s)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        undecided, self._undecided = self._undecided, {}
        if not undecided:
            return
        try:
            async with asyncio.timeout(grace_s):
                for cid, u in undecided.items():
                    try:
                        await self._fail(u.facts, screening.SHUTDOWN, u.channelvars,
                                         u.bridge, stopping=True)
                    except ChannelGone:
                        self._release(cid)
                    except (AriError, AriUnavailable) as err:
                        logger.warning("channel %s left in Stasis for the next outguard: %s",
                                       cid, err)
        except TimeoutError:
            logger.warning("stopping: %d undecided channel(s) left in Stasis for the next "
                           "outguard", len(undecided))

    def _release(self, cid: str) -> None:
        call = self.screener.call_on_channel(self.pbx, cid)
        if call is not None:
            self.screener.ended(call.call_id, None)

    async def hang_up(self, cid: str, cause: int | None) -> None:
        """Hang a channel up; once Asterisk took the request (or says the channel is gone)
        it counts as gone here: its ChannelDestroyed may come after a reconcile's listing
        that still shows it waiting in Stasis, and a channel hung up is never screened
        again."""
        try:
            await self.client.hangup(cid, cause)
        except ChannelGone:
            self._mark_gone(cid)
            raise
        self._mark_gone(cid)

    async def _hangup_quietly(self, cid: str, cause: int) -> None:
        try:
            await self.hang_up(cid, cause)
        except (ChannelGone, AriError, AriUnavailable):
            pass

    def _outbound_without_call(self, cid: str) -> None:
        """A carrier leg answered that no running BridgeCall waits for: a call placed
        before outguard restarted is picked up (bridged now); one outguard knows nothing
        of is hung up (its caller was never told of it)."""
        call_id = cid[len(OUTBOUND_PREFIX):] if cid.startswith(OUTBOUND_PREFIX) else ""
        call = self.screener.live.get(call_id) if call_id else None
        if call is not None and call.pbx != self.pbx:
            call = None  # another PBX's call: its leg cannot be on this one
        if call is not None and call.channel_id not in self._watchers:
            logger.info("bridge call %s placed before a restart: its carrier leg answered; "
                        "bridging it now", call_id)
            self._adopt(call, outbound_up=True, caller_up=False, bridge=None)
            return
        logger.warning("outbound leg %s has no call; hanging up", cid)
        self.spawn(self._hangup_quietly(cid, 16))

    def _adopt(self, call: LiveCall, *, outbound_up: bool, caller_up: bool,
               bridge: str | None) -> None:
        """Follow a bridged call placed before a restart (see ``BridgeCall.resume``):
        ``bridge`` is the one holding both its legs, if any."""
        followed = BridgeCall.for_restored(self, call, bridge)
        self.watch(call.channel_id, followed)
        self.watch(followed.outbound, followed)

        async def follow() -> None:
            try:
                await followed.resume(outbound_up=outbound_up, caller_up=caller_up)
            finally:
                self.unwatch(call.channel_id)

        self.spawn(follow())

    # -- after a (re)connect --------------------------------------------------------------

    async def reconcile(self) -> None:
        """After every (re)connect, from one listing of Asterisk's channels and bridges:

        * the calls outguard holds (followed before a WebSocket drop, or restored from the
          call log after a restart) are followed again: a continue-mode channel that left
          Stasis is subscribed to again, a bridged call is picked up where it is; a call
          whose channel is gone is closed, its cause unknown. No channel is hung up for
          being unknown: a restart never cuts a call.
        * channels waiting in Stasis that were never decided are screened now (StasisStart
          is not replayed).
        * empty outguard bridges (an earlier process's pool) are kept for the next calls.

        Calls go on while the listing is asked for and read: it is older than what this
        process saw meanwhile. A call decided since it was asked is not judged by it (its
        channel is not listed yet: it is not a call that ended while outguard was away);
        a channel this process hung up or continued meanwhile is still listed in Stasis
        (it is not waiting, and screening it again would answer a second time: a continue
        refused, and the live call hung up for it).
        """
        asked_at = self.screener.clock()
        try:
            listed = {c["id"]: c for c in await self.client.channels()}
            waiting = (await self.client.application()).get("channel_ids", [])
            bridges = {b["id"]: b for b in await self.client.bridges()}
        except (AriError, AriUnavailable) as err:
            logger.warning("reconcile: cannot list Asterisk's channels: %s", err)
            return
        await self._pool_empty_bridges(list(bridges.values()))
        # this PBX's calls only, decided before the listing was asked for
        for call in self.screener.live.calls(self.pbx, started_before=asked_at):
            if call.adapter == "ari" and call.channel_id not in self._handling:
                await self._reconcile_call(call, listed, list(bridges.values()))
        for cid in waiting:
            channel = listed.get(cid)
            if (channel is None or cid in self._watchers or cid in self._handling
                    or self.screener.call_on_channel(self.pbx, cid) is not None):
                continue
            dialplan = channel.get("dialplan") or {}
            if dialplan.get("app_name", "Stasis") != "Stasis" or cid in self._gone:
                continue  # left Stasis (listed for an old subscription), or hung up above
            if cid.startswith(OUTBOUND_PREFIX) and _caller_of(channel) not in listed:
                # a carrier leg whose caller is gone and whose call outguard does not know
                # (a process killed before its row was written): nobody would end it
                logger.warning("reconcile: carrier leg %s has no caller any more; hanging "
                               "it up", cid)
                await self._hangup_quietly(cid, 16)
                await self._drop_bridges(list(bridges.values()), cid)
                continue
            if channel.get("state") == "Up" or cid.startswith(OUTBOUND_PREFIX):
                logger.warning("reconcile: answered channel %s in Stasis has no call in the "
                               "call log; left alone", cid)
                continue
            logger.info("reconcile: screening channel %s left waiting in Stasis", cid)
            self._screen_waiting(channel)

    def _screen_waiting(self, channel: dict[str, Any]) -> None:
        """Screen a channel found waiting in Stasis at a reconcile (StasisStart is not
        replayed): its latest decision, if any, was never carried out."""
        dialplan = channel.get("dialplan") or {}
        args = [dialplan.get("exten", "")]
        if "bridge" in dialplan.get("context", ""):
            args.append("bridge")
        self._handling.add(channel["id"])
        self.spawn(self.handle_start(channel, args, waiting=True))

    async def _pool_empty_bridges(self, bridges: list[dict[str, Any]]) -> None:
        """Empty outguard bridges no call holds (an earlier process's pool, or a call's
        whose legs are gone) are kept for the next calls; beyond the pool's limit they are
        destroyed. Bridges with channels are left alone."""
        in_use = {call.bridge for call in self._watchers.values()}
        for bridge in bridges:
            bid = str(bridge.get("id", ""))
            if (not bid.startswith(BRIDGE_PREFIX) or bridge.get("channels")
                    or bid in in_use or bid in self.bridges):
                continue
            if not self.bridges.give_back(bid):
                try:
                    await self.client.destroy_bridge(bid)
                except (AriError, AriUnavailable):
                    pass

    async def _drop_bridges(self, bridges: list[dict[str, Any]], leg: str) -> None:
        """The outguard bridge that held ``leg`` of a call that ended while outguard was
        away (its other leg gone, ``leg`` just hung up) would be left empty and belong to
        nobody: destroyed. The BridgePool keeps a bridge only once both legs were seen
        leaving it, which nobody saw here."""
        for bridge in bridges:
            bid = str(bridge.get("id", ""))
            if (bid.startswith(BRIDGE_PREFIX) and leg in (bridge.get("channels") or ())
                    and bid not in self.bridges):
                try:
                    await self.client.destroy_bridge(bid)
                    self.bridges.destroyed += 1
                except (AriError, AriUnavailable) as err:
                    logger.info("reconcile: bridge %s not destroyed: %s", bid, err)

    async def _answer_time(self, call: LiveCall) -> float | None:
        """When a continued call found up after a restart was answered: its channel's CDR
        answer time (the record of the Dial that connected it), asked once; a kill -9
        before the answer reached the call log loses it, and the time outguard first sees
        the channel up is later than the answer (a call held 6 s once logged as 0.6 s).
        None (the reconcile's own time is taken: a lower bound of the duration) when
        Asterisk cannot tell or tells something outside the call's life."""
        try:
            text = await self.client.channel_var(call.channel_id, "CDR(answer,u)")
            answered = float(text)
        except (AriError, AriUnavailable, ValueError) as err:
            logger.info("reconcile: no answer time for call %s on %s: %s", call.call_id,
                        call.channel_id, err or "none")
            return None
        if not call.started - 1.0 <= answered <= self.screener.clock():
            return None
        return answered

    async def _reconcile_call(self, call: LiveCall, listed: dict[str, dict[str, Any]],
                              bridges: list[dict[str, Any]]) -> None:
        cid = call.channel_id
        channel = listed.get(cid)
        watcher = self._watchers.get(cid)
        if watcher is not None:  # a bridged call this process is running
            if channel is None:
                watcher.feed({"type": "ChannelDestroyed", "channel": {"id": cid}, "cause": 0})
            return
        outbound = listed.get(outbound_id(call.call_id))
        if channel is None:
            note = UNKNOWN_AFTER_RESTART if call.restored else UNKNOWN_WHILE_AWAY
            logger.info("reconcile: call %s on %s ended while outguard was away (%s)",
                        call.call_id, cid, note)
            self.screener.ended(call.call_id, None, note=note)
            if outbound is not None:  # bridge mode: its carrier leg must not stay up
                await self._hangup_quietly(outbound["id"], 16)
                await self._drop_bridges(bridges, outbound["id"])
            return
        in_stasis = (channel.get("dialplan") or {}).get("app_name") == "Stasis"
        if outbound is not None:
            bridge = bridge_of(bridges, cid, outbound["id"])
            outbound_up = outbound.get("state") == "Up"
            logger.info("reconcile: following bridge call %s again (%s)", call.call_id,
                        "bridged" if bridge else "answered" if outbound_up else "ringing")
            self._adopt(call, outbound_up=outbound_up, caller_up=channel.get("state") == "Up",
                        bridge=bridge)
        elif in_stasis and not call.restored:
            # this process carried the decision out (a continue that failed hangs the
            # channel up and ends the call): the listing was taken before the channel
            # left Stasis
            logger.debug("reconcile: call %s on %s listed in Stasis after its continue",
                         call.call_id, cid)
            return
        elif in_stasis:
            if channel.get("state") == "Up":  # bridged, and the callee gone meanwhile
                self.screener.ended(call.call_id, None, note=UNKNOWN_AFTER_RESTART)
                await self._hangup_quietly(cid, 16)
                await self._drop_bridges(bridges, cid)
                return
            # decided, but neither continued nor bridged before outguard stopped (or its
            # carrier leg is gone): screened again; the new decision replaces that one
            logger.info("reconcile: call %s on %s was never carried out; screening again",
                        call.call_id, cid)
            self._screen_waiting(channel)
        elif self.tracker is None:  # continue mode without AMI: follow the channel again
            try:
                await self.client.subscribe_channel(cid)
            except ChannelGone:
                self.screener.ended(call.call_id, None, note=UNKNOWN_WHILE_AWAY)
                return
            except (AriError, AriUnavailable) as err:
                logger.warning("reconcile: channel %s: %s", cid, err)
                return
        # (continue mode with AMI: the hangup handler's event ends the call, whichever
        # outguard process is connected when it comes; nothing to ask of ARI)
        if outbound is None and not in_stasis:
            if channel.get("state") == "Up" and call.answered_at is None:
                self.screener.answered(call.call_id, await self._answer_time(call))
