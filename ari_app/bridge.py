"""Bridge mode: outguard originates the carrier leg itself and bridges it to the caller.

Caller rings (180) while the carrier leg is set up; when the callee answers, the caller is
answered and both join a mixing bridge. Either side hanging up hangs up the other; a call
connected longer than the maximum duration is ended by outguard.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from ari_app.client import AriError, AriUnavailable, ChannelGone

if TYPE_CHECKING:
    from ari_app.app import StasisApp
    from outguard.service import Decision

logger = logging.getLogger(__name__)

#: a carrier leg that failed without a cause is reported to the caller as congestion
NO_CAUSE = 34


class BridgeCall:
    """One bridged call: the caller's channel, the outbound channel and their bridge."""

    def __init__(self, app: StasisApp, caller: str, decision: Decision, dialed: str) -> None:
        self.app = app
        self.caller = caller
        self.decision = decision
        self.dialed = dialed
        self.outbound = f"og-out-{decision.id}"
        self.bridge = f"og-br-{decision.id}"
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.bridged = False

    def feed(self, event: dict[str, Any]) -> None:
        self.queue.put_nowait(event)

    async def _next(self, timeout: float) -> dict[str, Any] | None:
        try:
            return await asyncio.wait_for(self.queue.get(), timeout)
        except TimeoutError:
            return None

    async def run(self) -> None:
        app, client, settings = self.app, self.app.client, self.app.settings
        verdict = self.decision.verdict
        endpoint = settings.bridge_endpoint.format(
            number=self.dialed, e164=verdict.destination_e164 or self.dialed
        )
        app.watch(self.outbound, self)
        try:
            await client.ring(self.caller)
            await client.originate(
                endpoint, channel_id=self.outbound, app_args=f"outbound,{self.caller}",
                caller_id=self.decision.attempt.caller_id, timeout_s=settings.ring_timeout_s,
            )
            cause = await self._until_answered(settings.ring_timeout_s + 5)
            if cause is None:
                cause = await self._until_either_ends(settings.max_duration_s)
            app.screener.ended(self.decision.id, cause)
        except ChannelGone:
            logger.info("bridge call %s: a channel vanished", self.decision.id)
            app.screener.ended(self.decision.id, None)
            await self._hangup_both()
        except (AriError, AriUnavailable) as err:
            # e.g. addChannel 400/422 when the callee hung up while outguard was bridging
            logger.error("bridge call %s failed: %s", self.decision.id, err)
            app.screener.ended(self.decision.id, None)
            await self._hangup_both()
        finally:
            await self._teardown()
            app.unwatch(self.outbound)

    async def _until_answered(self, timeout: float) -> int | None:
        """None once bridged; else the cause the call ended with before the answer."""
        deadline = time.monotonic() + timeout
        while (event := await self._next(deadline - time.monotonic())) is not None:
            kind, channel = event.get("type"), event.get("channel", {}).get("id")
            if kind == "StasisStart" and channel == self.outbound:
                await self.app.client.answer(self.caller)
                await self.app.client.create_bridge(self.bridge)
                await self.app.client.add_to_bridge(self.bridge, self.caller, self.outbound)
                self.bridged = True
                self.app.screener.answered(self.decision.id)
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

    async def _until_either_ends(self, max_duration: float) -> int:
        deadline = time.monotonic() + max_duration
        while (event := await self._next(deadline - time.monotonic())) is not None:
            kind, channel = event.get("type"), event.get("channel", {}).get("id")
            if kind in ("ChannelDestroyed", "StasisEnd") and channel in (
                self.caller, self.outbound
            ):
                other = self.outbound if channel == self.caller else self.caller
                await self._hangup(other, 16)
                return int(event.get("cause") or 16)
        logger.info("bridge call %s reached its maximum duration", self.decision.id)
        await self._hangup(self.outbound, 16)
        await self._hangup(self.caller, 16)
        return 16

    async def _hangup(self, channel: str, cause: int) -> None:
        try:
            await self.app.client.hangup(channel, cause)
        except (AriError, AriUnavailable):  # ChannelGone included: already gone is fine
            pass

    async def _hangup_both(self, cause: int = 16) -> None:
        """After a failure: never leave the caller answered in Stasis (it would stay up
        until max_duration_s), nor the outbound leg ringing."""
        await self._hangup(self.outbound, cause)
        await self._hangup(self.caller, cause)

    async def _teardown(self) -> None:
        if self.bridged:
            try:
                await self.app.client.destroy_bridge(self.bridge)
            except (AriError, AriUnavailable):
                pass
