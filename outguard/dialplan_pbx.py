"""The PBX name the dialplan builds call ids from: the global ``OUTGUARD_PBX``.

A plainly allowed call costs one request (ARI continue) or one command (FastAGI ``SET
VARIABLE OUTGUARD_VERDICT allow``) only if the dialplan can name the call's id itself:
``[outguard-allow]`` sets ``OUTGUARD_DECISION_ID=${UNIQUEID}`` and appends
``@${OUTGUARD_PBX}`` when that global is set. Embedded outguard keys the call log by the
unique id (the global must be empty); cluster mode by ``<uniqueid>@<pbx>``
(``cluster.model.cluster_call_id``), so there the global must be the PBX's name.

Once per connect (ARI: ``/asterisk/variable``; AMI: ``Getvar`` / ``Setvar``) outguard
reads the global, sets it when it is empty and a name is wanted, and otherwise checks it.
outguard owns the values it sets: beside the global it sets ``OUTGUARD_PBX_SET`` to the
same value. A global that says something else while that marker still equals it was set
by an outguard for a name no longer configured for this Asterisk (the PBX renamed, or
moved to another outguard's configuration, Asterisk not restarted since): it is replaced
by what this outguard needs (emptied for an embedded one), with a warning; unless, in
cluster mode, another instance holds a live claim of that name for this same Asterisk
(one Asterisk attached under two names: replacing would only flip it back and forth).
A value an administrator set (in ``[globals]``, by hand: the marker differs) and that
case are never overwritten; they are logged as an error and shown in ``/health``
(``degraded``), and until the value is right every allowed call of that PBX gets its
variables from outguard (one more request or command): never a wrong decision id on a
channel.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from outguard import dialplan_vars as dv
from outguard.cluster.model import cluster_call_id

logger = logging.getLogger(__name__)

#: channels that entered Stasis before outguard set the global show it empty: for this
#: long after setting it, an empty value a channel reports is not taken for a wrong one
SET_GRACE_S = 5.0


def dialplan_call_id(uniqueid: str, pbx_global: str) -> str:
    """The call id ``[outguard-allow]`` builds from the channel's unique id and the
    dialplan's ``OUTGUARD_PBX``."""
    return cluster_call_id(uniqueid, pbx_global) if pbx_global else uniqueid


class DialplanPbx:
    """One PBX's ``OUTGUARD_PBX``: what outguard needs it to be, and what it was found."""

    def __init__(self, pbx: str, expected: str) -> None:
        self.pbx = pbx  # the target's name (outguard.config)
        self.expected = expected  # "" (embedded) or the PBX name (cluster mode)
        self.found: str | None = None  # None: not read yet, or the read failed
        #: why plain allows cost one more request ("" when the global is right)
        self.problem = "not checked yet"
        self._settling = 0  # settles under way or waiting for the lock
        #: the ARI app and the AMI listener of one PBX both settle at connect: one at a
        #: time, so neither decides from a read the other's writes made stale
        self._settle_lock = asyncio.Lock()
        self._set_at = float("-inf")  # when outguard last set the global (monotonic)

    def call_id(self, uniqueid: str, reported: str | None = None) -> str | None:
        """The decision id the dialplan builds for this channel, or None while the global
        is not known to be what outguard needs. ``reported``: the global's value as the
        channel itself shows it (ARI ``channelvars``, a FastAGI argument), checked on
        every call; else the value checked at connect."""
        if reported is not None:
            return dialplan_call_id(uniqueid, reported) if self.seen(reported) else None
        if self.found is None or self.found != self.expected:
            return None
        return dialplan_call_id(uniqueid, self.found)

    def seen(self, value: str) -> bool:
        """A value of the global the dialplan reported itself (FastAGI passes it as an
        AGI argument): True when it is what outguard needs (else logged, once)."""
        if value == self.expected:
            if self.found != value:
                self.found, self.problem = value, ""
            return True
        if not value and (self._settling or time.monotonic() < self._set_at + SET_GRACE_S):
            return False  # being set at this connect: the channel's snapshot came first
        self._wrong(value)
        return False

    async def settle(self, read: Callable[[str], Awaitable[str]],
                     write: Callable[[str, str], Awaitable[None]],
                     live_elsewhere: Callable[[str], Awaitable[str]] | None = None) -> None:
        """Read the global (once per connect); set it when it is empty and a name is
        wanted, or when an outguard set it to a name no longer in use here; otherwise
        check it. ``read(name)`` / ``write(name, value)``: a global of this Asterisk;
        ``live_elsewhere(value)``: who else claims that name for this Asterisk ("" for
        nobody; cluster mode). Never raises: a failure leaves the plain path off.
        Settles of one PBX run one at a time (its ARI app and AMI listener both settle)."""
        self._settling += 1
        try:
            async with self._settle_lock:
                await self._settle(read, write, live_elsewhere)
        finally:
            self._settling -= 1

    async def _settle(self, read: Callable[[str], Awaitable[str]],
                      write: Callable[[str, str], Awaitable[None]],
                      live_elsewhere: Callable[[str], Awaitable[str]] | None) -> None:
        try:
            value = (await read(dv.PBX)).strip()
            stale = bool(value) and value != self.expected \
                and (await read(dv.PBX_SET)).strip() == value
            if stale and live_elsewhere is not None:
                holder = await live_elsewhere(value)
                if holder:
                    stale = False
                    logger.error("pbx %s: the dialplan's global %s=%s was set by an outguard"
                                 " and %s; not replaced", self.pbx, dv.PBX, value, holder)
            if (not value and self.expected) or stale:
                await write(dv.PBX, self.expected)
                await write(dv.PBX_SET, self.expected)
                self._set_at = time.monotonic()
                if stale:
                    logger.warning(
                        "pbx %s: replaced the dialplan's global %s=%r, which an outguard set"
                        " for a name no longer configured for this Asterisk (renamed, or"
                        " moved to another configuration), by %r", self.pbx, dv.PBX, value,
                        self.expected)
                else:
                    logger.info("pbx %s: set the dialplan's global %s=%s", self.pbx, dv.PBX,
                                self.expected)
                value = self.expected
        except Exception as exc:  # noqa: BLE001 - any failure: stay on the safe path
            self.found = None
            self.problem = f"cannot read the dialplan's global {dv.PBX}: {exc}"
            logger.warning("pbx %s: %s; allowed calls get their variables from outguard",
                           self.pbx, self.problem)
            return
        if value == self.expected:
            self.found, self.problem = value, ""
            return
        self._wrong(value)

    def _wrong(self, value: str) -> None:
        first = self.found != value or not self.problem
        self.found = value
        want = f"{self.expected!r} (this PBX's name: outguard runs in cluster mode)" \
            if self.expected else "empty (embedded outguard keys calls by the unique id)"
        self.problem = (f"the dialplan's global {dv.PBX} is {value!r}, not {want}: every "
                        "allowed call costs one more request until it is fixed (outguard"
                        " replaces only a value it set itself, for a name no longer in use:"
                        f" {dv.PBX_SET})")
        if first:
            logger.error("pbx %s: %s", self.pbx, self.problem)
