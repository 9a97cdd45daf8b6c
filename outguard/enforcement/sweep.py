"""Caller-ID real-name verification lifecycle: what the periodic sweep should do (pure).

A caller ID whose verification is not "verified", or whose ``verified_until`` has passed,
is unverified since then (since its creation when it never was verified). The sweep

* suspends it until ``since + disable_after`` (trigger ``verification``; not a strike),
* disables it (permanent suspension) once that time has passed and it is still
  unverified,
* lifts a timed verification suspension once the caller ID is verified again.

A verification suspension that a person lifted is respected for the rest of that
unverified period (the sweep does not re-impose it). A disable is only lifted by a person.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from outguard.enforcement.ledger import VERIFICATION, Ledger
from outguard.enforcement.policy import VerificationSpec
from outguard.store.base import CallerId, Suspension
from rules.model import PartyKind

SWEEP_ACTOR = "system:verification"


@dataclass(frozen=True, slots=True)
class SweepStep:
    action: str  # suspend | disable | lift
    caller_id: str
    reason: str
    ends_at: float | None = None  # suspend: end of the suspension
    suspension: Suspension | None = None  # lift: the one to lift


def unverified_since(c: CallerId, now: float) -> float | None:
    """When the caller ID stopped being verified, or None while it is verified."""
    until = c.verified_until.timestamp() if c.verified_until is not None else None
    if c.verification == "verified" and (until is None or until > now):
        return None
    if c.verification == "verified" and until is not None:
        return until
    if until is not None and until <= now:
        return until
    return c.created_at.timestamp() if c.created_at is not None else now


def plan(caller_ids: Iterable[CallerId], ledger: Ledger, spec: VerificationSpec,
         now: float) -> list[SweepStep]:
    steps: list[SweepStep] = []
    when = datetime.fromtimestamp(now, UTC)
    for c in caller_ids:
        if c.state == "disabled":
            continue
        rows = [s for s in ledger.of((PartyKind.CALLER_ID, c.e164)) if s.trigger == VERIFICATION]
        since = unverified_since(c, now)
        if since is None:
            steps.extend(SweepStep("lift", c.e164, "real-name verification renewed", suspension=s)
                         for s in rows if s.active_at(when) and s.ends_at is not None)
            continue
        current = [s for s in rows if _overlaps(s, since)]
        if any(s.lifted_by not in (None, SWEEP_ACTOR) for s in current):
            continue  # a person decided for this period
        how = "missing" if c.verification != "verified" else "expired"
        deadline = since + spec.disable_after_s
        if now >= deadline:
            if not any(s.ends_at is None and s.active_at(when) for s in current):
                steps.append(SweepStep(
                    "disable", c.e164,
                    f"real-name verification {how} for more than "
                    f"{spec.disable_after_s / 86400:g} days"))
        elif not any(s.active_at(when) for s in current):
            steps.append(SweepStep("suspend", c.e164,
                                   f"real-name verification {how} ({c.verification})",
                                   ends_at=deadline))
    return steps


def _overlaps(s: Suspension, since: float) -> bool:
    """Whether the suspension belongs to the unverified period that began at ``since``."""
    if s.lifted_at is not None and s.lifted_at.timestamp() <= since:
        return False
    return s.ends_at is None or s.ends_at.timestamp() > since
