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
from dataclasses import dataclass
from typing import Protocol

from agi.ami import AmiClient, AmiError
from outguard import dialplan_vars as dv
from outguard.config import AmiConfig

logger = logging.getLogger(__name__)

UP = "6"
GONE_TTL_S = 120.0
CDR_GRACE_S = 5.0
MAX_TRACKED = 10_000
MAX_AGE_S = 6 * 3600.0  # the screener's default max call age

#: AMI whitelist filters (POSIX regular expressions over each event's text; an event
#: passes when one matches): only what the tracker reads crosses the wire, not the ~20
#: Newexten/VarSet/Newchannel... per call. ``[[:space:]]`` because ``$`` and ``\r`` do not
#: match at a header's end in Asterisk 22.
EVENT_FILTERS = (
    r"^Event: (Newstate|DialEnd|Hangup|Cdr|FullyBooted)[[:space:]]",
    r"Variable: " + dv.DECISION_ID + r"[[:space:]]",
)


class Outcomes(Protocol):
    def answered(self, decision_id: str, at: float | None = None) -> None: ...

    def ended(self, decision_id: str, cause: int | None, at: float | None = None) -> bool: ...


@dataclass(slots=True)
class _Tracked:
    decision_id: str
    since: float


def _cause(text: str) -> int | None:
    try:
        return int(text) or None
    except (TypeError, ValueError):
        return None


class OutcomeTracker:
    """Pure correlation: events in, ``answered`` / ``ended`` calls out."""

    def __init__(self, outcomes: Outcomes, clock: Callable[[], float] = time.monotonic) -> None:
        self.outcomes = outcomes
        self.clock = clock
        self.calls: dict[str, _Tracked] = {}  # screened channel's Uniqueid -> decision
        self._gone: dict[str, tuple[int | None, float]] = {}  # untracked hangups
        self._cdr_seen: dict[str, float] = {}  # tracked calls whose Cdr came first
        self.ended_count = 0

    def track(self, uniqueid: str, decision_id: str) -> None:
        if not uniqueid or not decision_id:
            return
        current = self.calls.get(uniqueid)
        if current is not None:
            if current.decision_id == decision_id:
                return
            # screened again on the same channel: the earlier decision's call is over
            self._end(current.decision_id, None)
        gone = self._gone.pop(uniqueid, None)
        if gone is not None:  # it hung up before we heard of it
            self._end(decision_id, gone[0])
            return
        now = self.clock()
        self.calls[uniqueid] = _Tracked(decision_id, now)
        if len(self.calls) > MAX_TRACKED and len(self.calls) % 1000 == 0:
            # calls never seen ending (AMI away for hours): the screener released them
            # after its max call age; forget them here too
            for uid in [u for u, t in self.calls.items() if now - t.since > MAX_AGE_S]:
                del self.calls[uid]

    def on_event(self, event: Mapping[str, str]) -> None:
        kind = event.get("Event", "")
        uniqueid = event.get("Uniqueid", "")
        if kind == "Hangup":
            tracked = self.calls.pop(uniqueid, None)
            cause = _cause(event.get("Cause", ""))
            if tracked is not None:
                self._end(tracked.decision_id, cause)
            else:
                self._remember_gone(uniqueid, cause)
        elif kind == "Newstate":
            if event.get("ChannelState") == UP:
                tracked = self.calls.get(uniqueid) or self.calls.get(event.get("Linkedid", ""))
                if tracked is not None:
                    self.outcomes.answered(tracked.decision_id)
        elif kind == "DialEnd":
            if event.get("DialStatus") == "ANSWER":
                tracked = self.calls.get(uniqueid)
                if tracked is not None:
                    self.outcomes.answered(tracked.decision_id)
        elif kind == "VarSet":
            if event.get("Variable") == dv.DECISION_ID:
                self.track(uniqueid, event.get("Value", ""))
        elif kind == "Cdr":
            uniqueid = event.get("UniqueID", "")
            if uniqueid in self.calls:
                self._cdr_seen.setdefault(uniqueid, self.clock())
        if self._cdr_seen:
            self._sweep()

    def _sweep(self) -> None:
        """A Cdr may come before or after its Hangup (separate stasis topics): a call whose
        Cdr has been seen and whose Hangup has not, CDR_GRACE_S later, ends without a
        cause."""
        horizon = self.clock() - CDR_GRACE_S
        for uid, seen in list(self._cdr_seen.items()):
            if uid not in self.calls:
                del self._cdr_seen[uid]
            elif seen < horizon:
                del self._cdr_seen[uid]
                self._end(self.calls.pop(uid).decision_id, None)

    def reconcile(self, live: set[str], asked_at: float) -> int:
        """End the calls tracked before ``asked_at`` whose channel is not in ``live``."""
        lost = [uid for uid, t in self.calls.items() if t.since < asked_at and uid not in live]
        for uid in lost:
            self._end(self.calls.pop(uid).decision_id, None)
        return len(lost)

    def _end(self, decision_id: str, cause: int | None) -> None:
        self.ended_count += 1
        self.outcomes.ended(decision_id, cause)

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

    def track(self, uniqueid: str, decision_id: str) -> None:
        self.tracker.track(uniqueid, decision_id)

    async def run(self) -> None:
        await self.client.run()

    async def close(self) -> None:
        await self.client.close()

    async def _reconcile(self, client: AmiClient) -> None:
        if not self.tracker.calls:
            return
        asked_at = self.tracker.clock()
        try:
            reply = await client.action("CoreShowChannels")
        except AmiError as err:
            logger.warning("AMI reconcile: cannot list channels: %s", err)
            return
        live = {e.get("Uniqueid", "") for e in getattr(reply, "events", [])}
        lost = self.tracker.reconcile(live, asked_at)
        if lost:
            logger.warning("AMI reconcile: %d call(s) ended while AMI was away; released", lost)
