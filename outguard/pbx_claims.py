"""One PBX name, one Asterisk server: claimed in the store when a target connects.

outguard finds a call by its PBX and its channel, and in cluster mode a call's id is
``<uniqueid>@<pbx>``: two Asterisk servers under one PBX name would mix their live calls,
reservations, call-log rows and per-PBX figures. The settings refuse what one file can
show (two targets of one kind naming one PBX or one Asterisk address; an unnamed PBX in
cluster mode: ``outguard.config``); what only the servers can tell is checked here.

Each ARI and AMI target, once connected and before it is used, asks its Asterisk for its
entity id (ARI ``GET /asterisk/info`` ``system.entity_id``; AMI ``Getvar ENTITYID``, the
same value) and claims its PBX name for that entity in the store (``pbx_claims``, shared
by every instance in cluster mode). The claim is a lease, renewed every third of
``lease_s`` while the target stays connected. A claim is refused while another target
(of this instance or another one) holds the name for another Asterisk and renewed it
within the lease: the refused target is not used (its connection is closed and retried
with back-off), ``/health`` names both sides, ``outguard_pbx_conflicts_total`` counts it
and an error is logged. A name whose holder stopped renewing (an Asterisk replaced, an
instance gone) is taken over once the lease has passed.

Several targets may claim one name for one Asterisk (same entity id): the ARI and the AMI
target of a PBX, and several instances attached to the same Asterisk (e.g. two FastAGI
servers a dialplan fails over between, each following outcomes over AMI): its unique ids
are unique, so its calls stay apart whichever instance screens them. Over ARI, though,
Asterisk gives a Stasis application's calls to one connection at a time (the last one
to register it; the one before gets ``ApplicationReplaced`` and nothing more, which
``ari_app.replaced`` watches for whoever the other client is): an ARI
target also claims its application on its Asterisk for its instance (the same table, key
``<entity id>/ari/<app>``), and a second instance's ARI target of the same application on
the same Asterisk is refused the same way; give it an application of its own (``app`` in
its ``[[ari]]`` target, and ``Stasis(<app>)`` in the dialplan that sends it calls).

FastAGI has no connection to an Asterisk to ask: the dialplan passes its ``${ENTITYID}``
as an AGI argument, and the first call of each Asterisk under a PBX name claims the name
for it (kind ``agi(<entity id>)``, renewed while its calls keep coming; later calls cost
no store round trip). Calls of a second Asterisk under a live claim get verdict
``failed`` (reason ``agi_pbx_conflict``: the dialplan's failure policy), with the same
``/health``, metric and log as a refused target. A conflict that no target met again for
a lease is no longer reported.

When the store cannot answer, the claim cannot be checked: the target is used (calls keep
being screened, as everything else keeps working from the snapshot) and a warning is
logged; the claim is made at the next renewal.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from outguard.errors import OutguardError, StoreError
from outguard.store.aio import AsyncStore

logger = logging.getLogger(__name__)

LEASE_S = 30.0


class PbxConflict(OutguardError):
    """Another Asterisk holds this PBX name: the target is not used."""

    error_id = "pbx_name_conflict"


@dataclass
class _Held:
    again: Callable[[], Awaitable[None]]  # makes the claim again (renewal)
    drop: Callable[[], Awaitable[None]] | None
    connected: Callable[[], bool] | None


class PbxClaims:
    """This instance's claims of PBX names and ARI applications (see the module
    docstring)."""

    def __init__(self, store: AsyncStore, instance: str, *, lease_s: float = LEASE_S,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.instance = instance
        self.lease_s = lease_s
        self.clock = clock
        self._held: dict[tuple[str, str], _Held] = {}
        #: (pbx, kind) -> why its target is refused, while it is (for /health)
        self.conflicts: dict[tuple[str, str], str] = {}
        #: pbx -> claims refused so far (for /metrics)
        self.refused: dict[str, int] = {}
        self._refused_at: dict[tuple[str, str], float] = {}  # last refusal, per conflict

    async def claim(self, pbx: str, kind: str, entity_id: str, where: str,
                    drop: Callable[[], Awaitable[None]] | None = None,
                    connected: Callable[[], bool] | None = None) -> None:
        """Claim ``pbx`` for the Asterisk ``entity_id`` that the ``kind`` target (ari /
        ami) at ``where`` reaches; ``PbxConflict`` when another Asterisk holds it. The
        claim is renewed while ``connected()`` (it lapses after); ``drop`` closes the
        target's connection if a renewal is refused."""
        if not entity_id:
            logger.warning("pbx %s: the %s target at %s reports no Asterisk entity id; its"
                           " name cannot be checked against the other targets'", pbx, kind,
                           where)
            return

        def conflict(holder: tuple[str, str, str, float], now: float) -> str:
            return self._name_taken(
                pbx, f"the {kind} target at {where} reaches Asterisk {entity_id}", holder,
                now, "This target is not used until then")

        async def again() -> None:
            await self.claim(pbx, kind, entity_id, where, drop, connected)

        await self._claim(pbx, kind, pbx, entity_id, kind, conflict,
                          _Held(again, drop, connected), where)

    async def claim_agi(self, pbx: str, entity_id: str, peer: str,
                        connected: Callable[[], bool]) -> None:
        """Claim ``pbx`` for the Asterisk ``entity_id`` that FastAGI calls from ``peer``
        name (``${ENTITYID}``, an AGI argument); ``PbxConflict`` when another Asterisk
        holds it. One FastAGI server takes the calls of many Asterisks, so each one's claim
        is a target of its own (kind ``agi(<entity id>)``): a second Asterisk under the
        name never takes over the first's claim while it is renewed, i.e. while
        ``connected()`` (its calls keep coming)."""
        kind = f"agi({entity_id})"

        def conflict(holder: tuple[str, str, str, float], now: float) -> str:
            return self._name_taken(
                pbx, f"FastAGI calls from {peer} come from Asterisk {entity_id}", holder,
                now, "Its FastAGI calls get verdict failed (reason agi_pbx_conflict: the"
                " dialplan's failure policy) until then")

        async def again() -> None:
            await self.claim_agi(pbx, entity_id, peer, connected)

        await self._claim(pbx, kind, pbx, entity_id, kind, conflict,
                          _Held(again, None, connected), f"FastAGI from {peer}")

    def _name_taken(self, pbx: str, this: str, holder: tuple[str, str, str, float],
                    now: float, consequence: str) -> str:
        other_entity, other_instance, other_kind, seen_at = holder
        return (
            f"pbx {pbx!r}: {this}, but {self._who(other_instance)}'s {other_kind} target"
            f" claims the name for Asterisk {other_entity} (renewed"
            f" {max(0.0, now - seen_at):.0f} s ago): two Asterisk servers cannot share a PBX"
            f" name (calls are found by pbx and channel, and cluster call ids are"
            f" <uniqueid>@{pbx}); give each its own pbx name. {consequence}")

    async def claim_app(self, pbx: str, entity_id: str, app: str, where: str,
                        drop: Callable[[], Awaitable[None]] | None = None,
                        connected: Callable[[], bool] | None = None) -> None:
        """Claim the Stasis application ``app`` on the Asterisk ``entity_id`` for this
        instance's ARI target of ``pbx``; ``PbxConflict`` while another instance's ARI
        target uses it there (Asterisk would give its calls to one of the two only)."""
        if not entity_id:
            return

        def conflict(holder: tuple[str, str, str, float], now: float) -> str:
            _, other_instance, _, seen_at = holder
            return (
                f"pbx {pbx!r}: the ari target at {where} would register Stasis application"
                f" {app!r} on Asterisk {entity_id}, which {self._who(other_instance)} uses"
                f" there (renewed {max(0.0, now - seen_at):.0f} s ago): Asterisk gives an"
                f" application's calls to one connection at a time, so each instance needs"
                f" an application of its own on a shared Asterisk (app = \"...\" in its"
                f" [[ari]] target, Stasis(<app>) in the dialplan that sends it calls). This"
                f" target is not used until then")

        async def again() -> None:
            await self.claim_app(pbx, entity_id, app, where, drop, connected)

        await self._claim(pbx, "ari-app", f"{entity_id}/ari/{app}", self.instance, "ari",
                          conflict, _Held(again, drop, connected), where)

    async def live_elsewhere(self, name: str, entity_id: str) -> str:
        """Whether another instance's target holds a live claim of the PBX name ``name`` for the Asterisk ``entity_id``: who, or "". A
        value of OUTGUARD_PBX that names it belongs to that target (the Asterisk is
        attached under two names: not overwritten)."""
        if not entity_id or not name:
            return ""
        now = self.clock()
        try:
            holder = await self.store.run(self.store.store.pbx_claim, name)
        except StoreError as exc:
            return f"the store cannot tell ({exc})"
        if holder is None:
            return ""
        other_entity, other_instance, other_kind, seen_at = holder
        if (other_entity != entity_id or seen_at < now - self.lease_s
                or other_instance == self.instance):  # its own old name: renamed here
            return ""
        return (f"{self._who(other_instance)}'s {other_kind} target claims PBX name {name!r}"
                f" for this Asterisk ({entity_id}, renewed {max(0.0, now - seen_at):.0f} s"
                f" ago): one Asterisk attached under two PBX names")

    def _who(self, instance: str) -> str:
        if instance == self.instance:
            return f"this instance ({instance})"
        return f"instance {instance}"

    async def _claim(self, pbx: str, kind: str, key: str, value: str, target: str,
                     conflict: Callable[[tuple[str, str, str, float], float], str],
                     held: _Held, where: str) -> None:
        now = self.clock()
        try:
            holder = await self.store.run(self.store.store.claim_pbx, key, value,
                                          self.instance, target, now, now - self.lease_s)
        except StoreError as exc:
            logger.warning("pbx %s: cannot check its claim in the store (%s); the %s target"
                           " at %s is used", pbx, exc, target, where)
            self._held[(pbx, kind)] = held
            return
        if holder is None:
            self._held[(pbx, kind)] = held
            if self.conflicts.pop((pbx, kind), None) is not None:
                logger.warning("pbx %s: its %s claim is granted again; the target at %s is"
                               " used", pbx, kind, where)
            return
        self._held.pop((pbx, kind), None)
        message = conflict(holder, now)
        self.refused[pbx] = self.refused.get(pbx, 0) + 1
        self._refused_at[(pbx, kind)] = now
        if (pbx, kind) not in self.conflicts:
            logger.error("%s", message)
        self.conflicts[(pbx, kind)] = message
        raise PbxConflict(message)

    async def renew(self) -> None:
        """Renew the claims of the targets still connected (the others lapse); a target
        whose renewal is refused is dropped. A conflict no target ran into again for a
        lease (a refused ARI/AMI target retries within seconds; an Asterisk whose FastAGI
        calls were refused sends no more) is no longer reported."""
        now = self.clock()
        for key in list(self.conflicts):
            if now - self._refused_at.get(key, now) > self.lease_s:
                del self.conflicts[key]
                self._refused_at.pop(key, None)
        for key, held in list(self._held.items()):
            if held.connected is not None and not held.connected():
                del self._held[key]
                continue
            try:
                await held.again()
            except PbxConflict:
                if held.drop is not None:
                    await held.drop()

    async def run(self) -> None:
        """Renew the claims every third of the lease (until cancelled)."""
        while True:
            await asyncio.sleep(self.lease_s / 3)
            await self.renew()
