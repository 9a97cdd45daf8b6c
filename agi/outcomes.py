"""Follow allowed calls to their end over AMI: answer time, duration and the real hangup
cause, reported through ``Screener.answered`` / ``Screener.ended``.

A call is known by the Uniqueid of the channel that was screened. It becomes known two
ways: the FastAGI server hands it over in-process (``track``) the moment it decides, and
any ``VarSet`` of ``OUTGUARD_DECISION_ID`` (FastAGI or ARI) names it too; both are
idempotent. Then:

* answered: ``Newstate`` to Up (state 6) of that channel, or of a channel whose Linkedid
  is it (the carrier leg), or ``DialEnd`` with ``DialStatus: ANSWER``;
* ended: ``Hangup`` of that channel, with its ``Cause`` (the real Q.850 cause; ARI's
  ChannelHangupRequest 32 and AMI's SoftHangupRequest are internal soft-hangup flags and
  are not used). A ``Cdr`` comes on another stasis topic, before or after the Hangup: a
  call whose Cdr is some seconds old with no Hangup ends without a cause (a missed Hangup).
* a Hangup that arrives before the hand-off (a caller who hangs up while outguard is
  still deciding) is remembered for a while and ends the call as soon as it is tracked;
* after a reconnect, calls whose channel no longer exists (``CoreShowChannels``) are
  ended without a cause.

``Screener.ended`` releases concurrency slots exactly once, whichever path comes first.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Protocol

from agi.ami import AmiClient, AmiError
from outguard import dialplan_vars as dv
from outguard.config import AmiConfig
from outguard.live import UNKNOWN_AFTER_RESTART, UNKNOWN_WHILE_AWAY, LiveCalls

logger = logging.getLogger(__name__)

UP = "6"
GONE_TTL_S = 120.0
CDR_GRACE_S = 5.0

#: AMI whitelist filters (POSIX regular expressions over each event's text; an event
#: passes when one matches): only what the tracker reads crosses the wire, not the ~20
#: Newexten/VarSet/Newchannel... per call. ``[[:space:]]`` because ``$`` and ``\r`` do not
#: match at a header's end in Asterisk 22.
EVENT_FILTERS = (
    r"^Event: (Newstate|DialEnd|Hangup|Cdr|FullyBooted)[[:space:]]",
    r"Variable: " + dv.DECISION_ID + r"[[:space:]]",
)


class Outcomes(Protocol):
    """Where the tracker reports (the Screener): calls are found in its live-call
    registry by the screened channel's Uniqueid."""

    live: LiveCalls

    def clock(self) -> float: ...

    def answered(self, decision_id: str, at: float | None = None) -> None: ...

    def ended(self, decision_id: str, cause: int | None, at: float | None = None,
              note: str | None = None) -> bool: ...


def _cause(text: str) -> int | None:
    try:
        return int(text) or None
    except (TypeError, ValueError):
        return None


class OutcomeTracker:
    """Pure correlation: events in, ``answered`` / ``ended`` calls out. The calls
    themselves live in the registry (``outcomes.live``); the tracker keeps only what it
    needs for races: hangups of channels not screened yet, and Cdrs seen before their
    Hangup."""

    def __init__(self, outcomes: Outcomes, clock: Callable[[], float] = time.monotonic) -> None:
        self.outcomes = outcomes
        self.clock = clock
        self._gone: dict[str, tuple[int | None, float]] = {}  # untracked hangups
        self._cdr_seen: dict[str, float] = {}  # live calls whose Cdr came first
        self.ended_count = 0

    def _call(self, uniqueid: str) -> str | None:
        call = self.outcomes.live.on_channel(uniqueid) if uniqueid else None
        return call.call_id if call is not None else None

    def track(self, uniqueid: str) -> None:
        """A call was just screened on this channel: end it at once if its Hangup came
        first (a caller who hung up while outguard was deciding)."""
        gone = self._gone.pop(uniqueid, None) if uniqueid else None
        call_id = self._call(uniqueid)
        if gone is not None and call_id is not None:
            self._end(call_id, gone[0])

    def on_event(self, event: Mapping[str, str]) -> None:
        kind = event.get("Event", "")
        uniqueid = event.get("Uniqueid", "")
        if kind == "Hangup":
            call_id = self._call(uniqueid)
            cause = _cause(event.get("Cause", ""))
            if call_id is not None:
                self._cdr_seen.pop(uniqueid, None)
                self._end(call_id, cause)
            else:
                self._remember_gone(uniqueid, cause)
        elif kind == "Newstate":
            if event.get("ChannelState") == UP:
                call_id = self._call(uniqueid) or self._call(event.get("Linkedid", ""))
                if call_id is not None:
                    self.outcomes.answered(call_id)
        elif kind == "DialEnd":
            if event.get("DialStatus") == "ANSWER":
                call_id = self._call(uniqueid)
                if call_id is not None:
                    self.outcomes.answered(call_id)
        elif kind == "VarSet":
            if event.get("Variable") == dv.DECISION_ID:
                self.track(uniqueid)
        elif kind == "Cdr":
            uniqueid = event.get("UniqueID", "")
            if self._call(uniqueid) is not None:
                self._cdr_seen.setdefault(uniqueid, self.clock())
        if self._cdr_seen:
            self._sweep()

    def _sweep(self) -> None:
        """A Cdr may come before or after its Hangup (separate stasis topics): a call whose
        Cdr has been seen and whose Hangup has not, CDR_GRACE_S later, ends without a
        cause."""
        horizon = self.clock() - CDR_GRACE_S
        for uid, seen in list(self._cdr_seen.items()):
            call_id = self._call(uid)
            if call_id is None:
                del self._cdr_seen[uid]
            elif seen < horizon:
                del self._cdr_seen[uid]
                self._end(call_id, None)

    def reconcile(self, live: set[str], asked_at: float) -> int:
        """After a (re)connect: end the calls reserved before ``asked_at`` (the registry's
        clock) whose channel is not in ``live`` (CoreShowChannels), their cause unknown.
        Calls restored from the call log after a restart included."""
        lost = [c for c in self.outcomes.live.calls()
                if c.started < asked_at and c.channel_id and c.channel_id not in live]
        for call in lost:
            self._end(call.call_id, None,
                      UNKNOWN_AFTER_RESTART if call.restored else UNKNOWN_WHILE_AWAY)
        return len(lost)

    def _end(self, decision_id: str, cause: int | None, note: str | None = None) -> None:
        self.ended_count += 1
        self.outcomes.ended(decision_id, cause, note=note)

    def _remember_gone(self, uniqueid: str, cause: int | None) -> None:
        if not uniqueid:
            return
        now = self.clock()
        self._gone[uniqueid] = (cause, now)
        if len(self._gone) > 2000:
            horizon = now - GONE_TTL_S
            for uid in [u for u, (_, at) in self._gone.items() if at < horizon]:
                del self._gone[uid]


class AmiListener:
    """The AMI client feeding an :class:`OutcomeTracker`, with a reconcile on connect."""

    def __init__(self, outcomes: Outcomes, cfg: AmiConfig) -> None:
        self.tracker = OutcomeTracker(outcomes)
        self.client = AmiClient(
            cfg.host, cfg.port, cfg.user, cfg.password,
            events="call,dialplan,cdr", filters=EVENT_FILTERS,
            on_event=self.tracker.on_event, on_connect=self._reconcile,
        )

    @property
    def connected(self) -> bool:
        return self.client.connected

    @property
    def reconnects(self) -> int:
        return self.client.reconnects

    def track(self, uniqueid: str) -> None:
        self.tracker.track(uniqueid)

    async def run(self) -> None:
        await self.client.run()

    async def close(self) -> None:
        await self.client.close()

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
            logger.warning("AMI reconcile: %d call(s) ended while AMI was away; released", lost)
