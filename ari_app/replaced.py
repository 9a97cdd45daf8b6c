"""Another connection took this PBX's Stasis application: ARI ``ApplicationReplaced``.

Asterisk gives a Stasis application's calls to one events WebSocket at a time: the last
one to register the name. When another process (a second outguard on another store, a
test tool, an instance with a copied configuration) connects to the same Asterisk with
the same application name, Asterisk sends ``ApplicationReplaced`` to outguard's WebSocket
and from then on every ``Stasis(<app>)`` call goes to the other process: outguard hears
nothing more, and without this watch it would look connected and healthy while screening
nothing.

Taking the application back at once would only start a tug of war (each registration
replaces the other, and calls land on whichever registered last), so outguard stands
aside instead: the error is logged loudly, ``/health`` says ``degraded`` naming the
application, the PBX and the Asterisk, ``outguard_ari_app_replaced_total`` counts it and
``outguard_ari_app_standing_aside`` is 1 while it lasts; the target's WebSocket is closed (the
other connection keeps the application; Asterisk does not unregister a replaced one), and
it is not opened again while Asterisk still lists the application (``GET
/applications/<app>``, every ``poll_s``). Once the other process has gone and Asterisk
no longer has the application, outguard registers it again and reconciles the channels
left in it. To hand the application back sooner, stop the other process (or give it an
application of its own); restarting outguard takes it back at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from ari_app.client import AriError, AriUnavailable

logger = logging.getLogger(__name__)

EVENT = "ApplicationReplaced"


class Replaced:
    """One ARI target's watch for ``ApplicationReplaced`` (see the module docstring)."""

    def __init__(self, pbx: str, app: str, where: str, poll_s: float = 5.0) -> None:
        self.pbx = pbx
        self.app = app
        self.where = where
        self.poll_s = poll_s
        self.times = 0  # how often the application was taken (for /metrics)
        #: why this target stands aside ("" while it does not), for /health
        self.problem = ""

    def concerns(self, event: dict[str, Any]) -> bool:
        """Whether ``event`` says this target's application was taken."""
        return event.get("type") == EVENT and event.get("application", self.app) == self.app

    def happened(self, event: dict[str, Any]) -> None:
        """Asterisk gave the application to another connection: say so, loudly."""
        self.times += 1
        when = str(event.get("timestamp") or time.strftime("%Y-%m-%dT%H:%M:%S"))
        self.problem = (
            f"pbx {self.pbx}: another connection registered Stasis application {self.app!r}"
            f" on the Asterisk at {self.where} ({EVENT} at {when}): Asterisk now sends every"
            f" Stasis({self.app}) call there, not to this outguard. This target stands aside"
            f" (taking it back would only move the calls back and forth) until Asterisk no"
            f" longer has the application, then registers it again. Find the other ARI"
            f" client (Asterisk CLI 'ari show apps', 'http show status') and stop it or give"
            f" it an application of its own")
        logger.error("%s", self.problem)

    async def wait_free(self, listed: Callable[[], Awaitable[Any]]) -> None:
        """Return once Asterisk no longer has the application (``listed`` answers 404),
        checking every ``poll_s``; the problem is cleared then."""
        while True:
            await asyncio.sleep(self.poll_s)
            try:
                await listed()
            except AriError as err:
                if err.status == 404:
                    break
            except AriUnavailable:
                pass  # Asterisk restarting: its application is free once it answers
        logger.warning("pbx %s: Stasis application %r is free again on the Asterisk at %s"
                       " (the other connection has gone): registering it", self.pbx,
                       self.app, self.where)
        self.problem = ""
