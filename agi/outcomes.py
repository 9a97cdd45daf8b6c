"""Follow allowed calls to their end over AMI: answer time, duration and the real hangup
cause, reported through ``Screener.answered`` / ``Screener.ended``.

A call is known by the Uniqueid of the channel that was screened (the decision id is that
Uniqueid, or ``<uniqueid>@<pbx>`` in cluster mode, see ``dialplan/outguard.conf``); the
calls live in the Screener's registry (``outguard.live``), found by the id the handler's
event names (``DecisionId``), else by channel. Their end comes as ONE event: the
``UserEvent: OutguardEnded`` that the hangup handler ``[outguard-ended]`` raises on every
screened channel, carrying the channel's Q.850 ``Cause`` (ARI's ChannelHangupRequest 32
and AMI's SoftHangupRequest are internal soft-hangup flags and are not used), the answer's
Unix time ``Answered`` and ``Billsec`` (CDR), and Dial's talk time ``Talked`` with the
handler's own time ``At``, which are preferred (``Ended.from_event``). AMI is filtered to that event, so one event per
call crosses the wire (bench/outcomes.py measured the options: bench/RESULTS.md).

* an OutguardEnded that arrives before the hand-off (a caller who hangs up while outguard
  is still deciding) is remembered for a while and ends the call as soon as it is tracked;
* calls restored from the call log after an outguard restart are in the registry too, so
  their event closes them with the real cause;
* after a (re)connect, calls whose channel no longer exists (``CoreShowChannels``) are
  ended without a cause.

One listener per PBX (``[[ami]]`` target): its tracker finds and reconciles only the
calls of its own PBX, so a Uniqueid that another PBX also uses is never confused.

``Screener.ended`` releases concurrency slots exactly once, whichever path comes first.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from agi.ami import AmiClient, AmiError, AmiTargetRefused, AmiUnavailable
from outguard import dialplan_vars as dv
from outguard.callevents import FAIL_CLOSED, FAIL_OPEN
from outguard.config import AmiConfig
from outguard.dialplan_pbx import DialplanPbx
from outguard.pbx_claims import PbxClaims, PbxConflict
from outguard.live import DEFAULT_PBX, UNKNOWN_AFTER_RESTART, UNKNOWN_WHILE_AWAY, LiveCalls

logger = logging.getLogger(__name__)

ENDED_EVENT = "OutguardEnded"
#: what the hangup handler sends (logged at DEBUG as it came; the channel's own headers,
#: which carry the numbers, are not)
HANDLER_FIELDS = ("Uniqueid", "DecisionId", "Verdict", "Cause", "Answered", "Billsec",
                  "Talked", "At")
GONE_TTL_S = 120.0

#: AMI whitelist filters (POSIX regular expressions over each event's text; an event
#: passes when one matches): only the hangup handler's event crosses the wire, not the ~20
#: Newexten/VarSet/Newchannel/Hangup... per call. ``[[:space:]]`` because ``$`` and ``\r``
#: do not match at a header's end in Asterisk 22.
EVENT_FILTERS = (
    r"^Event: FullyBooted[[:space:]]",
    r"UserEvent: " + ENDED_EVENT + r"[[:space:]]",
    r"UserEvent: " + dv.OPTOUT_EVENT + r"[[:space:]]",
)
#: AMI event classes to receive (the AMI user needs ``read = user``)
EVENT_CLASSES = "system,user"


class Outcomes(Protocol):
    """Where the tracker reports (the Screener): calls are found in its live-call
    registry by the screened channel's Uniqueid."""

    live: LiveCalls

    def clock(self) -> float: ...

    def answered(self, decision_id: str, at: float | None = None) -> None: ...

    def ended(self, decision_id: str, cause: int | None, at: float | None = None,
              note: str | None = None, answered_at: float | None = None) -> bool: ...

    def latest_on(self, pbx: str, channel_id: str) -> str | None: ...

    async def not_carried_out(self, decision_id: str, policy: str, cause: int | None,
                              at: float | None = None) -> bool | None: ...


#: how far the CDR's answer time may stray from the one Dial's talk time gives before the
#: CDR record is taken to be a later one (see ``Ended.from_event``)
CDR_AGREES_S = 1.0


@dataclass(frozen=True, slots=True)
class Ended:
    """What the hangup handler reports: cause, and the answer's time and billed seconds
    (Asterisk's clock; None when the call was never answered)."""

    cause: int | None
    answered_at: float | None
    billsec: float

    @classmethod
    def from_event(cls, event: Mapping[str, str]) -> Ended:
        """The call's end from the handler's fields.

        ``Talked`` (Dial's ``ANSWEREDTIME_MS``) and ``At`` (the handler's own time) are
        preferred to the CDR's ``Answered`` / ``Billsec``: the CDR function reads the
        channel's *current* CDR record, and when the engine has opened a new record after
        the bridge ended (the caller executing ``Hangup()`` after ``Dial``), that record's
        answer time is its own start, so the talk time reads as a fraction of a second
        (seen once on a loaded host: 0.19 s for a call held 5.5 s). Dial's talk time is a
        channel variable, untouched by CDR records. Without it (a dialplan that connects
        the call by other means than ``Dial``) the CDR's figures are used as before.
        """
        cause = _cause(event.get("Cause", ""))
        answered = _number(event.get("Answered", "")) or None
        billsec = _number(event.get("Billsec", "")) or 0.0
        talked_ms = _number(event.get("Talked", ""))
        at = _number(event.get("At", ""))
        if talked_ms is not None and talked_ms >= 0 and at:
            talked = talked_ms / 1000.0
            from_dial = round(at - talked, 6)
            if answered is None or abs(answered - from_dial) > CDR_AGREES_S:
                answered = from_dial  # the CDR record is a later one (or has no answer)
            return cls(cause, answered, talked)
        return cls(cause, answered, billsec)


UNKNOWN = Ended(None, None, 0.0)


def _cause(text: str) -> int | None:
    try:
        return int(text) or None
    except (TypeError, ValueError):
        return None


def _number(text: str) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def _uniqueid(event: Mapping[str, str]) -> str:
    value: object = event.get("Uniqueid", "")
    if isinstance(value, list):  # a UserEvent body that repeats the header
        value = value[0] if value else ""
    return str(value)


class OutcomeTracker:
    """Pure correlation: events in, ``answered`` / ``ended`` calls out. The calls
    themselves live in the registry (``outcomes.live``); the tracker keeps only the ends
    of channels not screened yet (a race)."""

    def __init__(self, outcomes: Outcomes, clock: Callable[[], float] = time.monotonic,
                 pbx: str = DEFAULT_PBX) -> None:
        self.outcomes = outcomes
        self.clock = clock
        self.pbx = pbx  # the PBX whose events this tracker reads
        self._gone: dict[str, tuple[Ended, float]] = {}  # ends of untracked channels
        self.ended_count = 0
        self._corrections: set[asyncio.Task[None]] = set()

    def _call(self, uniqueid: str) -> str | None:
        call = self.outcomes.live.on_channel(self.pbx, uniqueid) if uniqueid else None
        return call.call_id if call is not None else None

    def _named(self, event: Mapping[str, str], uniqueid: str) -> str | None:
        """The call the handler's ``DecisionId`` names (the id the channel holds: the
        unique id, at ``OUTGUARD_PBX`` in cluster mode), if it is a live call of this PBX
        on this channel."""
        named = str(event.get("DecisionId", "") or "")
        call = self.outcomes.live.get(named) if named else None
        if call is None or call.pbx != self.pbx or call.channel_id != uniqueid:
            return None
        return named

    def track(self, uniqueid: str) -> None:
        """A call was just screened on this channel: end it at once if its end came
        first (a caller who hung up while outguard was deciding)."""
        gone = self._gone.pop(uniqueid, None) if uniqueid else None
        call_id = self._call(uniqueid)
        if gone is not None and call_id is not None:
            self._end(call_id, gone[0])

    def on_event(self, event: Mapping[str, str]) -> None:
        if event.get("Event") != "UserEvent" or event.get("UserEvent") != ENDED_EVENT:
            return
        uniqueid = _uniqueid(event)
        logger.debug("%s on pbx %s: %s", ENDED_EVENT, self.pbx,
                     {k: event.get(k) for k in HANDLER_FIELDS if k in event})
        ended = Ended.from_event(event)
        undone = self._undone(event, uniqueid)
        if undone is not None:
            task = asyncio.get_running_loop().create_task(
                self._correct(undone, event, uniqueid, ended))
            self._corrections.add(task)
            task.add_done_callback(self._corrections.discard)
            return
        self._close(event, uniqueid, ended)

    def _undone(self, event: Mapping[str, str], uniqueid: str) -> tuple[str, str] | None:
        """(decision id, failure policy) when the event says the channel's latest decision
        was never carried out: the dialplan's failure branch ran (``Verdict``, the
        channel's OUTGUARD_VERDICT, is ``failed`` or ``unscreened``) and the decision the
        channel holds (``DecisionId``) is not outguard's latest for it. An older hangup
        handler sends no ``Verdict``: nothing is corrected."""
        applied = event.get("Verdict")
        if applied not in (dv.FAILED, dv.UNSCREENED) or not uniqueid:
            return None
        latest = self.outcomes.latest_on(self.pbx, uniqueid)
        if latest is None or latest == str(event.get("DecisionId", "") or ""):
            return None
        return latest, FAIL_OPEN if applied == dv.UNSCREENED else FAIL_CLOSED

    async def _correct(self, undone: tuple[str, str], event: Mapping[str, str],
                       uniqueid: str, ended: Ended) -> None:
        decision_id, policy = undone
        try:
            went_out = await self.outcomes.not_carried_out(decision_id, policy, ended.cause)
        except Exception:
            logger.exception("correcting the undone decision %s failed", decision_id)
            went_out = None
        if went_out is None:  # nothing to correct: the event is an ordinary end
            self._close(event, uniqueid, ended)
        elif went_out:
            self._end(decision_id, ended)

    async def corrected(self) -> None:
        """Wait for the corrections of undone decisions under way (tests, tools)."""
        while self._corrections:
            await asyncio.gather(*self._corrections)

    def _close(self, event: Mapping[str, str], uniqueid: str, ended: Ended) -> None:
        call_id = self._named(event, uniqueid) or self._call(uniqueid)
        if call_id is not None:
            self._end(call_id, ended)
        else:
            self._remember_gone(uniqueid, ended)

    def reconcile(self, live: set[str], asked_at: float) -> int:
        """After a (re)connect: end this PBX's calls reserved before ``asked_at`` (the
        registry's clock) whose channel is not in ``live`` (CoreShowChannels), their cause
        unknown. Calls restored from the call log after a restart included."""
        lost = [c for c in self.outcomes.live.calls(self.pbx, started_before=asked_at)
                if c.channel_id and c.channel_id not in live]
        for call in lost:
            self._end(call.call_id, UNKNOWN,
                      UNKNOWN_AFTER_RESTART if call.restored else UNKNOWN_WHILE_AWAY)
        return len(lost)

    def _end(self, decision_id: str, ended: Ended, note: str | None = None) -> None:
        self.ended_count += 1
        if ended.answered_at is not None:
            self.outcomes.answered(decision_id, ended.answered_at)
            # the handler's answer time, whatever answer was recorded before (a reconcile's
            # first sight of the channel up after a restart comes later than the answer)
            self.outcomes.ended(decision_id, ended.cause,
                                round(ended.answered_at + ended.billsec, 6), note=note,
                                answered_at=ended.answered_at)
        else:
            self.outcomes.ended(decision_id, ended.cause, note=note)

    def _remember_gone(self, uniqueid: str, ended: Ended) -> None:
        if not uniqueid:
            return
        now = self.clock()
        self._gone[uniqueid] = (ended, now)
        if len(self._gone) > 2000:
            horizon = now - GONE_TTL_S
            for uid in [u for u, (_, at) in self._gone.items() if at < horizon]:
                del self._gone[uid]


UserEventHandler = Callable[[Mapping[str, str]], None]


class AmiListener:
    """The AMI client feeding an :class:`OutcomeTracker`, with a reconcile on connect.

    ``on_optout`` receives the dialplan's ``UserEvent(OutguardOptOut,...)`` events (an IVR
    opt-out; see ``[outguard-optout]`` in dialplan/outguard.conf)."""

    def __init__(self, outcomes: Outcomes, cfg: AmiConfig,
                 on_optout: UserEventHandler | None = None,
                 dialplan: DialplanPbx | None = None,
                 claims: PbxClaims | None = None) -> None:
        self.pbx = cfg.pbx
        #: the dialplan's OUTGUARD_PBX, checked (set when empty) at every connect
        self.dialplan = dialplan or DialplanPbx(cfg.pbx, "")
        self.tracker = OutcomeTracker(outcomes, pbx=cfg.pbx)
        self.on_optout = on_optout
        self.claims = claims
        self.client = AmiClient(
            cfg.host, cfg.port, cfg.user, cfg.password,
            events=EVENT_CLASSES, filters=EVENT_FILTERS,
            on_event=self._on_event, on_connect=self._connected,
            on_login=self._claim if claims is not None else None,
        )
        self.entity = ""  # its Asterisk's entity id, once read (cluster mode)

    async def _claim(self, client: AmiClient) -> None:
        """Before any event is used: this PBX name is this Asterisk's (``PbxClaims``), by
        its entity id (``Getvar ENTITYID``: what ARI reports as ``system.entity_id``)."""
        assert self.claims is not None
        try:
            reply = await client.action("Getvar", Variable="ENTITYID")
            entity = reply.get("Value", "") if reply.get("Response") == "Success" else ""
        except AmiUnavailable:
            raise
        except AmiError:
            entity = ""
        self.entity = entity
        try:
            await self.claims.claim(self.pbx, "ami", entity, f"{client.host}:{client.port}",
                                    drop=client.drop, connected=lambda: client.connected)
        except PbxConflict as exc:
            raise AmiTargetRefused(str(exc)) from None

    def _on_event(self, event: Mapping[str, str]) -> None:
        if event.get("Event") == "UserEvent" and event.get("UserEvent") == dv.OPTOUT_EVENT:
            if self.on_optout is not None:
                self.on_optout(event)
            return
        self.tracker.on_event(event)

    @property
    def connected(self) -> bool:
        return self.client.connected

    @property
    def reconnects(self) -> int:
        return self.client.reconnects

    @property
    def last_error(self) -> str:
        return self.client.last_error

    def track(self, uniqueid: str) -> None:
        self.tracker.track(uniqueid)

    async def run(self) -> None:
        await self.client.run()

    async def close(self) -> None:
        await self.client.close()

    async def _connected(self, client: AmiClient) -> None:
        claims, entity = self.claims, self.entity
        await self.dialplan.settle(
            lambda name: _getvar(client, name), lambda name, v: _setvar(client, name, v),
            (lambda name: claims.live_elsewhere(name, entity)) if claims is not None
            else None)
        await self._reconcile(client)

    async def _reconcile(self, client: AmiClient) -> None:
        if not len(self.tracker.outcomes.live):
            return
        asked_at = self.tracker.outcomes.clock()
        try:
            reply = await client.action("CoreShowChannels")
        except AmiError as err:
            logger.warning("AMI reconcile: cannot list channels: %s", err)
            return
        live = {e.get("Uniqueid", "") for e in getattr(reply, "events", [])}
        lost = self.tracker.reconcile(live, asked_at)
        if lost:
            logger.warning("AMI reconcile: %d call(s) of pbx %s ended while AMI was away; "
                           "released", lost, self.pbx)


async def _getvar(client: AmiClient, name: str) -> str:
    """A global dialplan variable over AMI ("" when it is not set)."""
    reply = await client.action("Getvar", Variable=name)
    if reply.get("Response") != "Success":
        raise AmiError(f"Getvar {name}: {reply.get('Message', 'refused')}")
    value = reply.get("Value", "")
    return "" if value in (None, "(null)") else str(value)


async def _setvar(client: AmiClient, name: str, value: str) -> None:
    reply = await client.action("Setvar", Variable=name, Value=value)
    if reply.get("Response") != "Success":
        raise AmiError(f"Setvar {name}: {reply.get('Message', 'refused')}")
