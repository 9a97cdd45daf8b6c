"""What the two adapters (ARI ``ari_app/``, FastAGI ``agi/``) share about screening a
channel, so that neither imports the other:

* :func:`decide` - wait for readiness (an event, set when the first snapshot is swapped
  in, bounded by the call's budget), screen, and turn "cannot decide" into
  :class:`Unscreened` with the reason: the adapter then applies the failure policy and
  records the call with verdict ``failed`` (``Screener.failed``), so every call that
  reached outguard has its call-log row;
* :func:`verdict_vars` - the verdict as the ``OUTGUARD_*`` channel variables;
* :func:`failure_vars` - the variables a call outguard could not screen gets;
* :func:`log_decision` - the one decision log line (numbers masked);
* :class:`Backoff` - the reconnect delays of the ARI and AMI connections;
* :class:`CallTracker` - who follows a call that went out to its end (the AMI listener).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Protocol

from outguard import dialplan_vars as dv
from outguard import faults
from outguard.callevents import FAIL_CLOSED, FAIL_OPEN
from outguard.callfacts import ChannelFacts
from outguard.privacy import mask
from outguard.service import Decision, ScreeningUnavailable

logger = logging.getLogger(__name__)


class CallTracker(Protocol):
    """Who follows a call that went out to its end (the AMI listener, from the hangup
    handler's event): told of each call the moment it is in the live-call registry, in
    case its end came first. ARI continue mode and FastAGI share it."""

    def track(self, uniqueid: str) -> None: ...


class Screens(Protocol):
    """The part of the Screener the adapters decide through."""

    #: True in cluster mode: the caps are reserved in a shared store (one await)
    reserves: bool

    async def wait_ready(self, timeout_s: float) -> bool: ...

    def screen(self, facts: ChannelFacts) -> Decision: ...

    async def screen_reserving(self, facts: ChannelFacts) -> Decision: ...


#: why screening failed (``OUTGUARD_REASON`` of a ``failed`` call, and its call-log reason)
NOT_READY = "screening_unavailable"  # no snapshot within the call's budget (store fault)
ENGINE_ERROR = "screening_error"  # the decision raised
CHANNEL_GONE = "channel_gone"  # the channel hung up before outguard could answer
SHUTDOWN = "outguard_stopping"  # outguard stopped while the call waited for its answer


@dataclass(frozen=True, slots=True)
class Unscreened:
    """No decision: ``reason`` says why; the adapter applies the failure policy and
    records the call (``Screener.failed``)."""

    reason: str


async def decide(screener: Screens, facts: ChannelFacts,
                 budget_ms: float) -> Decision | Unscreened:
    """The decision for one channel, or :class:`Unscreened` when screening cannot answer
    within the budget (no snapshot yet, an engine error): the caller applies the failure
    policy."""
    try:
        await screener.wait_ready(budget_ms / 1000)
        if faults.ARMED:
            faults.raise_if_armed(faults.SCREENING_ERROR)
        if screener.reserves:
            return await screener.screen_reserving(facts)
        return screener.screen(facts)
    except ScreeningUnavailable:
        logger.warning("%s to %s: screening unavailable; the failure policy applies",
                       facts.channel_name or facts.channel_id, mask(facts.dialed))
        return Unscreened(NOT_READY)
    except Exception:
        logger.exception("screening %s to %s raised; the failure policy applies",
                         facts.channel_name or facts.channel_id, mask(facts.dialed))
        return Unscreened(ENGINE_ERROR)


def fail_rule(mode: str) -> str:
    """The call log's rule of a failed call: the failure policy applied (``closed`` /
    ``open``, as ``dialplan_vars.failure_policy`` resolves it)."""
    return FAIL_OPEN if mode == "open" else FAIL_CLOSED


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


def plainly_allowed(decision: Decision, dialplan_id: str | None) -> bool:
    """True when the dialplan's ``[outguard-allow]`` can record this verdict by itself:
    allowed with every rule passed (reason ``ok``, no rule, no shadow flag), and the
    decision id is the one the dialplan builds (``dialplan_id``: the unique id, at
    ``OUTGUARD_PBX`` when that is set; None when outguard does not know the dialplan's
    ``OUTGUARD_PBX`` to be right, ``outguard.dialplan_pbx``). ARI then sends one request
    (continue), FastAGI one command (``OUTGUARD_VERDICT=allow``)."""
    v = decision.verdict
    return (v.allowed and v.reason == "ok" and not v.rule_id and not v.shadow
            and dialplan_id is not None and decision.id == dialplan_id)


def failure_vars(verdict: str, reason: str, decision_id: str = "") -> dict[str, str]:
    """A call outguard could not screen: ``verdict`` is ``failed`` (the dialplan's failure
    branch, or a fail-closed hangup) or ``unscreened`` (fail-open); ``decision_id`` is its
    call-log row's."""
    out = {dv.REASON: reason, dv.VERDICT: verdict}
    if decision_id:
        out[dv.DECISION_ID] = decision_id
    return out


def log_decision(channel: str, decision: Decision) -> None:
    v, a = decision.verdict, decision.attempt
    logger.info(
        "%s %s -> %s account=%s tenant=%s: %s %s (rule %s, cause %s) in %d us",
        channel, mask(v.destination_e164 or a.destination),
        mask(v.caller_id_e164 or a.caller_id), a.account, a.tenant,
        "allow" if v.allowed else "BLOCK", v.reason, v.rule_id or "-",
        v.cause if not v.allowed else "-", decision.elapsed_us,
    )


class Backoff:
    """Reconnect delays: 0.1 s doubling to 5 s, back to 0.1 s after a connection that
    lasted more than 10 s."""

    def __init__(self, first_s: float = 0.1, max_s: float = 5.0,
                 stable_s: float = 10.0) -> None:
        self.first_s = first_s
        self.max_s = max_s
        self.stable_s = stable_s
        self.delay_s = first_s
        self._began = time.monotonic()

    def connecting(self) -> None:
        """A connection attempt starts now."""
        self._began = time.monotonic()

    def next_delay(self) -> float:
        """The connection ended: how long to wait before the next attempt."""
        if time.monotonic() - self._began > self.stable_s:
            self.delay_s = self.first_s
        delay = self.delay_s
        self.delay_s = min(self.delay_s * 2, self.max_s)
        return delay

    async def wait(self) -> float:
        delay = self.next_delay()
        await asyncio.sleep(delay)
        return delay
