"""Bridge mode: outguard originates the carrier leg itself and bridges it to the caller.

Caller rings (180) while the carrier leg is set up; when the callee answers, the caller is
answered and both join a mixing bridge. Either side hanging up hangs up the other; a call
connected longer than the maximum duration is ended by outguard.

Bridges are kept for the next call (:class:`BridgePool`): an answered call costs six REST
requests (variables, ring, originate, answer, addChannel, hangup of the other leg), not
eight (no bridge created or destroyed per call); the first three go out together. A bridge goes back to the pool only once
both of its legs have left Stasis, so no call ever shares a bridge with another call's leg;
otherwise it is destroyed.

The carrier leg is named after the call (``og-out-<call id>``) and a call's bridge is the
one that holds its two legs, so an outguard that restarts in the middle of a bridged call
finds them again from one listing of channels and bridges: ``BridgeCall.resume`` picks the
call up where it is (carrier leg ringing, answered, or already bridged) and follows it to
its end; empty outguard bridges an earlier process kept are pooled again. Stopping outguard
never tears a bridge down: the call goes on, and the next outguard follows it.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ari_app.client import AriError, AriUnavailable, ChannelGone

if TYPE_CHECKING:
    from ari_app.app import StasisApp
    from outguard.live import LiveCall
    from outguard.service import Decision

logger = logging.getLogger(__name__)

#: a carrier leg that failed without a cause is reported to the caller as congestion
NO_CAUSE = 34
OUTBOUND_PREFIX = "og-out-"
BRIDGE_PREFIX = "og-br-"
#: how long a finished call waits for both legs to leave Stasis before its bridge is
#: destroyed instead of kept
LEAVE_WAIT_S = 2.0


def outbound_id(call_id: str) -> str:
    return OUTBOUND_PREFIX + call_id


def new_bridge_id() -> str:
    return BRIDGE_PREFIX + uuid.uuid4().hex


def bridge_of(bridges: list[dict[str, Any]], *channel_ids: str) -> str | None:
    """The id of the listed bridge that holds all these channels (None: none does)."""
    wanted = set(channel_ids)
    for bridge in bridges:
        if wanted <= set(bridge.get("channels") or ()):
            return str(bridge["id"])
    return None


class BridgePool:
    """Empty mixing bridges, ready for the next call."""

    def __init__(self, limit: int = 64) -> None:
        self.limit = limit
        self.idle: list[str] = []
        self.created = 0  # bridges created (benchmarks, tests)
        self.destroyed = 0

    def take(self) -> str | None:
        return self.idle.pop() if self.idle else None

    def give_back(self, bridge_id: str) -> bool:
        """Keep an empty bridge; False (destroy it) when the pool is full."""
        if len(self.idle) >= self.limit or bridge_id in self.idle:
            return False
        self.idle.append(bridge_id)
        return True

    def __contains__(self, bridge_id: object) -> bool:
        return bridge_id in self.idle


class BridgeCall:
    """One bridged call: the caller's channel, the outbound channel and their bridge."""

    def __init__(self, app: StasisApp, caller: str, call_id: str, dialed: str, *,
                 e164: str = "", caller_id: str = "", answered_at: float | None = None,
                 bridge: str | None = None) -> None:
        self.app = app
        self.caller = caller
        self.call_id = call_id
        self.dialed = dialed
        self.e164 = e164
        self.caller_id = caller_id
        #: when the callee answered (epoch seconds): the maximum duration counts from it
        self.answered_at = answered_at
        self.outbound = outbound_id(call_id)
        #: the call's bridge once it holds one (kept or destroyed at the end, even when
        #: joining it failed)
        self.bridge = bridge
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.bridged = False
        self.left: set[str] = set()  # legs seen leaving Stasis

    @classmethod
    def for_decision(cls, app: StasisApp, caller: str, decision: Decision,
                     dialed: str) -> BridgeCall:
        return cls(app, caller, decision.id, dialed,
                   e164=decision.verdict.destination_e164 or "",
                   caller_id=decision.attempt.caller_id)

    @classmethod
    def for_restored(cls, app: StasisApp, call: LiveCall, bridge: str | None) -> BridgeCall:
        """A call outguard placed before it restarted (from the live-call registry), with
        the bridge that holds its legs, if any."""
        return cls(app, call.channel_id, call.call_id, call.destination,
                   e164=call.destination, caller_id=call.caller_id,
                   answered_at=call.answered_at, bridge=bridge)

    def feed(self, event: dict[str, Any]) -> None:
        self.queue.put_nowait(event)

    async def _next(self, timeout: float) -> dict[str, Any] | None:
        try:
            async with asyncio.timeout(max(0.0, timeout)):
                event = await self.queue.get()
        except TimeoutError:
            return None
        if event.get("type") in ("StasisEnd", "ChannelDestroyed"):
            self.left.add(str(event.get("channel", {}).get("id")))
        return event

    async def run(self, variables: Mapping[str, str]) -> None:
        """A new call: set the verdict's ``variables`` on the caller, ring it and originate
        the carrier leg (the three requests at once: none waits for another), follow it."""
        client, settings = self.app.client, self.app.settings
        endpoint = settings.bridge_endpoint.format(number=self.dialed,
                                                   e164=self.e164 or self.dialed)

        async def place() -> int:
            await asyncio.gather(
                client.set_vars(self.caller, variables),
                client.ring(self.caller),
                client.originate(
                    endpoint, channel_id=self.outbound, app_args=f"outbound,{self.caller}",
                    caller_id=self.caller_id, timeout_s=settings.ring_timeout_s,
                ),
            )
            cause = await self._until_answered(settings.ring_timeout_s + 5)
            return cause if cause is not None else await self._until_either_ends()

        await self._follow(place())

    async def resume(self, *, outbound_up: bool, caller_up: bool) -> None:
        """A call placed before a restart: bridged (``self.bridge`` holds both legs), or
        the carrier leg answered (``outbound_up``) but not bridged yet (the caller maybe
        answered already: ``caller_up``), or still ringing."""
        settings = self.app.settings

        async def pick_up() -> int:
            if self.bridge is not None:
                self.bridged = True
            elif outbound_up:
                await self._connect(caller_up=caller_up)
            else:
                cause = await self._until_answered(settings.ring_timeout_s + 5)
                if cause is not None:
                    return cause
            return await self._until_either_ends()

        await self._follow(pick_up())

    async def _follow(self, steps: Any) -> None:
        """Run the call's steps; report its end once; on a failure hang up both legs. A
        cancellation (outguard stopping) leaves the call up for the next outguard."""
        app = self.app
        app.watch(self.outbound, self)
        stopping = False
        try:
            cause = await steps
            app.screener.ended(self.call_id, cause)
        except asyncio.CancelledError:
            stopping = True
            raise
        except ChannelGone:
            logger.info("bridge call %s: a channel vanished", self.call_id)
            app.screener.ended(self.call_id, None)
            await self._hangup_both()
        except (AriError, AriUnavailable) as err:
            # e.g. addChannel 400/422 when the callee hung up while outguard was bridging
            logger.error("bridge call %s failed: %s", self.call_id, err)
            app.screener.ended(self.call_id, None)
            await self._hangup_both()
        except Exception:  # a defect: still, no leg is left up and the row is closed
            logger.exception("bridge call %s failed", self.call_id)
            app.screener.ended(self.call_id, None)
            await self._hangup_both()
        finally:
            if not stopping:
                await self._teardown()
            app.unwatch(self.outbound)

    async def _connect(self, *, caller_up: bool = False) -> None:
        client, pool = self.app.client, self.app.bridges
        if not caller_up:
            await client.answer(self.caller)
        bridge = pool.take()
        if bridge is None:
            bridge = new_bridge_id()
            await client.create_bridge(bridge)
            pool.created += 1
        self.bridge = bridge
        await client.add_to_bridge(bridge, self.caller, self.outbound)
        self.bridged = True
        self.answered_at = time.time()
        self.app.screener.answered(self.call_id)

    async def _until_answered(self, timeout: float) -> int | None:
        """None once bridged; else the cause the call ended with before the answer."""
        deadline = time.monotonic() + timeout
        while (event := await self._next(deadline - time.monotonic())) is not None:
            kind, channel = event.get("type"), event.get("channel", {}).get("id")
            if kind == "StasisStart" and channel == self.outbound:
                await self._connect()
                return None
            if kind == "ChannelDestroyed" and channel == self.outbound:
                cause = int(event.get("cause") or 0) or NO_CAUSE
                await self._hangup(self.caller, cause)
                return cause
            if kind in ("ChannelDestroyed", "StasisEnd") and channel == self.caller:
                await self._hangup(self.outbound, 16)
                return int(event.get("cause") or 16)
        await self._hangup(self.outbound, 19)
        await self._hangup(self.caller, 19)
        return 19  # no answer

    async def _until_either_ends(self) -> int:
        since = self.answered_at if self.answered_at is not None else time.time()
        remaining = self.app.settings.max_duration_s - (time.time() - since)
        deadline = time.monotonic() + remaining
        while (event := await self._next(deadline - time.monotonic())) is not None:
            kind, channel = event.get("type"), event.get("channel", {}).get("id")
            if kind in ("ChannelDestroyed", "StasisEnd") and channel in (
                self.caller, self.outbound
            ):
                other = self.outbound if channel == self.caller else self.caller
                await self._hangup(other, 16)
                return int(event.get("cause") or 16)
        logger.info("bridge call %s reached its maximum duration", self.call_id)
        await self._hangup(self.outbound, 16)
        await self._hangup(self.caller, 16)
        return 16

    async def _hangup(self, channel: str, cause: int) -> None:
        try:
            await self.app.hang_up(channel, cause)
        except (AriError, AriUnavailable):  # ChannelGone included: already gone is fine
            pass

    async def _hangup_both(self, cause: int = 16) -> None:
        """After a failure: never leave the caller answered in Stasis (it would stay up
        until max_duration_s), nor the outbound leg ringing."""
        await self._hangup(self.outbound, cause)
        await self._hangup(self.caller, cause)

    async def _teardown(self) -> None:
        """Keep the call's bridge for the next call once both legs have left it; else
        destroy it."""
        if self.bridge is None:
            return
        if self.bridged and await self._both_left() and self.app.bridges.give_back(self.bridge):
            return
        try:
            await self.app.client.destroy_bridge(self.bridge)
            self.app.bridges.destroyed += 1
        except (AriError, AriUnavailable):
            pass

    async def _both_left(self) -> bool:
        """Wait (bounded) until both legs have left Stasis, and so the bridge."""
        deadline = time.monotonic() + LEAVE_WAIT_S
        legs = {self.caller, self.outbound}
        while not legs <= self.left:
            if await self._next(deadline - time.monotonic()) is None:
                return False
        return True
