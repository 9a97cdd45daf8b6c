"""The outguard Stasis application: screen every channel that enters it.

Every StasisStart is handled in its own task. Allowed calls either continue in the dialplan
(continue mode, followed to their end through a channel subscription) or are bridged by
outguard (bridge mode, ``ari_app.bridge``). Blocked calls hear the announcement, if any,
and are hung up with the verdict's cause. The app reconnects with backoff after a
WebSocket drop or an Asterisk restart and reconciles the channels already in Stasis
(StasisStart is not replayed).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Coroutine
from typing import Any

from ari_app.bridge import BridgeCall
from ari_app.client import AriClient, AriError, AriUnavailable, ChannelGone
from ari_app.settings import CallSettings
from outguard import dialplan_vars as dv
from outguard.callfacts import ChannelFacts
from outguard.latency import LatencyRecorder
from outguard.privacy import mask
from outguard.probes import SCREENING_FAILURES
from outguard.service import Decision, ScreeningUnavailable, Screener

logger = logging.getLogger(__name__)

OUTBOUND_ARG = "outbound"
#: The only ARI event types the app acts on; Asterisk is asked to send just these
#: (``AriClient.set_event_filter``). Unfiltered, a continue-mode call brings ~55 events
#: (44 ChannelVarset, Dial, ChannelDialplan...) once its channel is subscribed, and
#: decoding them was the largest part of outguard's CPU per call (bench/RESULTS.md).
EVENT_TYPES = ("StasisStart", "StasisEnd", "ChannelStateChange", "ChannelDestroyed",
               "PlaybackStarted", "PlaybackFinished")
GONE_TTL_S = 120.0


def verdict_vars(decision: Decision) -> dict[str, str]:
    v = decision.verdict
    out = {
        dv.VERDICT: dv.ALLOW if v.allowed else dv.BLOCK,
        dv.REASON: v.reason,
        dv.RULE: v.rule_id,
        dv.DECISION_ID: decision.id,
    }
    if v.shadow:
        out[dv.SHADOW] = ",".join(v.shadow)
    if not v.allowed:
        out[dv.CAUSE] = str(v.cause)
        out[dv.MESSAGE] = v.message
    return out


def channel_facts(channel: dict[str, Any], dialed: str) -> ChannelFacts:
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
    )


def log_decision(channel: str, decision: Decision) -> None:
    v, a = decision.verdict, decision.attempt
    logger.info(
        "%s %s -> %s account=%s tenant=%s: %s %s (rule %s, cause %s) in %d us",
        channel, mask(v.destination_e164 or a.destination),
        mask(v.caller_id_e164 or a.caller_id), a.account, a.tenant,
        "allow" if v.allowed else "BLOCK", v.reason, v.rule_id or "-",
        v.cause if not v.allowed else "-", decision.elapsed_us,
    )


class StasisApp:
    def __init__(self, client: AriClient, screener: Screener, settings: CallSettings) -> None:
        self.client = client
        self.screener = screener
        self.settings = settings
        self.connected = False
        self.reconnects = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._watchers: dict[str, BridgeCall] = {}  # bridge mode: channel id -> call
        self._handling: set[str] = set()  # channels whose decision is under way
        self._gone: dict[str, float] = {}  # recently destroyed channels (race guard)
        self._playbacks: dict[str, asyncio.Future[None]] = {}
        #: StasisStart received -> continue/hangup answered by Asterisk, per call
        self.handling = LatencyRecorder()

    # -- connection -----------------------------------------------------------------------

    async def run(self) -> None:
        """Stay connected until cancelled: reconnect with backoff (0.1 s doubling to 5 s,
        back to 0.1 s after a connection that lasted)."""
        backoff = 0.1
        while True:
            began = time.monotonic()
            try:
                async for event in self.client.events(on_open=self._on_open):
                    self.dispatch(event)
                logger.warning("ARI events WebSocket closed")
            except AriUnavailable as err:
                logger.warning("ARI unavailable: %s", err)
            except Exception:
                logger.exception("ARI session failed")
            self.connected = False
            if time.monotonic() - began > 10:
                backoff = 0.1
            logger.info("reconnecting to ARI in %.1f s", backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)
            self.reconnects += 1

    def _on_open(self) -> None:
        self.connected = True
        logger.info("connected to ARI as application %r", self.client.app)
        self.spawn(self._filter_events())
        self.spawn(self.reconcile())

    async def _filter_events(self) -> None:
        try:
            await self.client.set_event_filter(EVENT_TYPES)
        except (AriError, AriUnavailable) as err:
            logger.info("ARI event filter not set (%s): receiving every event type", err)

    async def stop(self) -> None:
        """Cancel the calls' tasks (run() itself is cancelled by its owner)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

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
                logger.warning("outbound leg %s has no call (app restarted?); hanging up", cid)
                self.spawn(self._hangup_quietly(cid, 16))
            elif cid not in self._handling:
                self._handling.add(cid)
                self.spawn(self.handle_start(channel, args, time.perf_counter()))
            return
        watcher = self._watchers.get(cid)
        if watcher is not None:
            watcher.feed(event)
        elif kind == "ChannelStateChange" and channel.get("state") == "Up":
            call = self.screener.call_on_channel(cid)
            if call is not None:
                self.screener.answered(call.call_id)
        if kind == "ChannelDestroyed":
            self._forget_gone()
            self._gone[cid] = time.monotonic()
            call = self.screener.call_on_channel(cid)
            if call is not None and watcher is None:  # a bridged call ends in BridgeCall
                self.screener.ended(call.call_id, int(event.get("cause") or 0) or None)

    def watch(self, channel_id: str, call: BridgeCall) -> None:
        self._watchers[channel_id] = call

    def unwatch(self, channel_id: str) -> None:
        self._watchers.pop(channel_id, None)

    def _forget_gone(self) -> None:
        if len(self._gone) > 1000:
            horizon = time.monotonic() - GONE_TTL_S
            for cid in [c for c, t in self._gone.items() if t < horizon]:
                del self._gone[cid]

    # -- one call -------------------------------------------------------------------------

    async def handle_start(
        self, channel: dict[str, Any], args: list[str], received: float | None = None
    ) -> None:
        cid = channel["id"]
        dialed = args[0] if args else (channel.get("dialplan") or {}).get("exten", "")
        bridge = "bridge" in args[1:]
        try:
            decision = await self._decide(channel, dialed)
            if decision is None:
                await self._fail(cid, dialed, "screening unavailable")
                return
            log_decision(cid, decision)
            if not decision.allowed:
                await self._block(cid, decision)
            elif bridge:
                call = BridgeCall(self, cid, decision, dialed)
                self.watch(cid, call)
                try:
                    await self.client.set_vars(cid, verdict_vars(decision))
                    await call.run()
                finally:
                    self.unwatch(cid)
            else:
                await self._continue(cid, decision, dialed)
            if received is not None and not bridge:
                self.handling.add(time.perf_counter() - received)
        except ChannelGone:
            logger.info("channel %s to %s hung up while outguard was deciding", cid, dialed)
            self._release(cid)
        except (AriError, AriUnavailable) as err:
            logger.error("channel %s to %s: ARI failed: %s", cid, dialed, err)
            self._release(cid)
        finally:
            self._handling.discard(cid)

    async def _decide(self, channel: dict[str, Any], dialed: str) -> Decision | None:
        deadline = time.monotonic() + self.settings.budget_ms / 1000
        while self.screener.snapshot is None and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        try:
            return self.screener.screen(channel_facts(channel, dialed))
        except ScreeningUnavailable:
            return None
        except Exception:
            logger.exception("screening %s to %s raised", channel.get("id"), dialed)
            return None

    async def _continue(self, cid: str, decision: Decision, dialed: str) -> None:
        await asyncio.gather(
            self.client.set_vars(cid, verdict_vars(decision)),
            self.client.subscribe_channel(cid),
        )
        if cid in self._gone:
            raise ChannelGone("POST", f"/channels/{cid}/continue", 404, "destroyed")
        await self.client.continue_in_dialplan(cid, self.settings.dial_context, dialed, 1)

    async def _block(self, cid: str, decision: Decision) -> None:
        await self.client.set_vars(cid, verdict_vars(decision))
        sound = decision.verdict.announcement
        if sound and self.settings.announce != "off":
            await self._announce(cid, sound)
        await self.client.hangup(cid, decision.verdict.cause)

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
            await asyncio.wait_for(finished, self.settings.announce_timeout_s)
        except TimeoutError:
            logger.warning("announcement %s on %s did not finish in time", sound, cid)
        finally:
            self._playbacks.pop(playback, None)

    async def _fail(self, cid: str, dialed: str, why: str) -> None:
        mode = self.settings.fail_mode
        SCREENING_FAILURES.labels("ari", mode).inc()
        logger.warning("channel %s to %s: %s; failing %s", cid, dialed, why, mode)
        if mode == "open":
            await self.client.set_vars(cid, {dv.VERDICT: dv.UNSCREENED, dv.REASON: "failed"})
            await self.client.continue_in_dialplan(cid, self.settings.dial_context, dialed, 1)
        else:
            await self.client.set_vars(cid, {dv.VERDICT: dv.FAILED, dv.REASON: "failed"})
            await self.client.hangup(cid, self.settings.fail_cause)

    def _release(self, cid: str) -> None:
        call = self.screener.call_on_channel(cid)
        if call is not None:
            self.screener.ended(call.call_id, None)

    async def _hangup_quietly(self, cid: str, cause: int) -> None:
        try:
            await self.client.hangup(cid, cause)
        except (ChannelGone, AriError, AriUnavailable):
            pass

    # -- after a (re)connect --------------------------------------------------------------

    async def reconcile(self) -> None:
        """Screen channels left waiting in Stasis, release what outguard lost track of and
        forget calls that ended while it was away."""
        followed = [c.channel_id for c in self.screener.live.calls()
                    if c.adapter == "ari" and c.channel_id not in self._watchers]
        for cid in followed:
            try:
                await self.client.channel(cid)
                await self.client.subscribe_channel(cid)
            except ChannelGone:
                self._release(cid)
            except (AriError, AriUnavailable) as err:
                logger.warning("reconcile: channel %s: %s", cid, err)
        for cid, call in list(self._watchers.items()):
            try:
                await self.client.channel(cid)
            except ChannelGone:
                call.feed({"type": "ChannelDestroyed", "channel": {"id": cid}, "cause": 0})
        try:
            waiting = (await self.client.application()).get("channel_ids", [])
        except (AriError, AriUnavailable) as err:
            logger.warning("reconcile: cannot list the application's channels: %s", err)
            return
        for cid in waiting:
            if (cid in self._watchers or cid in self._handling
                    or self.screener.call_on_channel(cid) is not None):
                continue
            try:
                channel = await self.client.channel(cid)
            except ChannelGone:
                continue
            dialplan = channel.get("dialplan") or {}
            if channel.get("state") == "Up" or cid.startswith("og-out-"):
                logger.warning("reconcile: releasing orphaned connected channel %s", cid)
                await self._hangup_quietly(cid, 16)
                continue
            logger.info("reconcile: screening channel %s left waiting in Stasis", cid)
            args = [dialplan.get("exten", "")]
            if "bridge" in dialplan.get("context", ""):
                args.append("bridge")
            self._handling.add(cid)
            self.spawn(self.handle_start(channel, args))
