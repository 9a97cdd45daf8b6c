"""The dry run behind ``outguard check`` and ``POST /api/check``: what would outguard say
about this call, rule by rule, without placing it.

It uses ``rules.engine.explain`` only (``decide`` would count the dry run in the live
snapshot's hit counters): the verdict is the decisive outcome, if any.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from outguard import views
from outguard.callfacts import parse_purpose
from outguard.errors import InvalidInput
from outguard.live import CallCounts, InMemoryLiveCalls
from outguard.store.base import Store
from rules.counters import InMemoryCounters
from rules.engine import explain
from rules.model import CallAttempt, Counters, PartyKind, RuleOutcome
from rules.policy_types import Policy
from rules.snapshot import Snapshot, build_snapshot

#: the counters a dry run replays from the call log (weekly destination caps)
REPLAY_S = 8 * 86400


@dataclass(frozen=True)
class CheckResult:
    attempt: CallAttempt
    outcomes: tuple[RuleOutcome, ...]

    @property
    def decisive(self) -> RuleOutcome | None:
        return next((o for o in self.outcomes if o.decisive), None)

    @property
    def allowed(self) -> bool:
        return self.decisive is None

    def as_dict(self, mask: views.Mask = views.plain) -> dict[str, Any]:
        d = self.decisive
        a = self.attempt
        return {
            "verdict": "allow" if d is None else "block",
            "rule": d.rule_id if d else "", "reason": d.reason if d else "ok",
            "message": d.message if d else "allowed", "cause": d.cause if d else None,
            "shadow": [o.rule_id for o in self.outcomes
                       if o.outcome == "matched" and o.mode.value == "shadow"],
            "attempt": {"tenant": a.tenant, "account": a.account,
                        "caller_id": mask(a.caller_id), "destination": mask(a.destination),
                        "purpose": a.purpose.value, "campaign": a.campaign,
                        "at": a.at.isoformat()},
            "rules": [_masked(views.outcome(o), mask) for o in self.outcomes],
        }


def _masked(outcome: dict[str, Any], mask: views.Mask) -> dict[str, Any]:
    figures = outcome["figures"]
    for key in ("destination", "caller_id", "number"):
        if isinstance(figures.get(key), str):
            figures[key] = mask(figures[key])
    return outcome


def parse_at(text: str | None, tz: str) -> datetime:
    """``None`` (now), ISO 8601 (naive: the policy's zone) or ``HH:MM`` (today there)."""
    zone = ZoneInfo(tz)
    if not text:
        return datetime.now(UTC)
    try:
        if len(text) <= 5 and ":" in text:
            hour, minute = (int(p) for p in text.split(":"))
            today = datetime.now(zone)
            return today.replace(hour=hour, minute=minute, second=0, microsecond=0)
        at = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"time {text!r} is neither ISO 8601 nor HH:MM", field="at") from None
    return at if at.tzinfo is not None else at.replace(tzinfo=zone)


def dry_run(
    snapshot: Snapshot, counters: Counters, *, number: str, account: str, caller_id: str,
    at: datetime, tenant: str = "", purpose: str = "", campaign: str = "",
    default_tenant: str = "default",
) -> CheckResult:
    """Explain one would-be call against a snapshot and counters."""
    try:
        why = parse_purpose(purpose)
    except ValueError as exc:
        raise InvalidInput(str(exc), field="purpose") from None
    if not number.strip():
        raise InvalidInput("a number to check is required", field="number")
    party = snapshot.party(PartyKind.ACCOUNT, account)
    attempt = CallAttempt(
        tenant=tenant or (party.tenant if party and party.tenant else default_tenant),
        account=account, caller_id=caller_id, destination=number, at=at,
        purpose=why, campaign=campaign or None, call_id="dry-run",
    )
    return CheckResult(attempt, tuple(explain(attempt, snapshot, counters, at)))


def offline_inputs(store: Store, policy: Policy, at: datetime) -> tuple[Snapshot, CallCounts]:
    """A snapshot and counters from the store alone (the CLI, no service running: no
    call in progress is known)."""
    snapshot = build_snapshot(policy, store.load_store_data(at), at)
    counters = InMemoryCounters(clock=lambda: at.timestamp())
    since = min(at.timestamp(), time.time()) - REPLAY_S
    counters.rebuild(row for row in store.iter_counter_rows_since(since)
                     if row[4] <= at.timestamp())
    return snapshot, CallCounts(counters, InMemoryLiveCalls())


def default_window(days: int) -> tuple[float, float]:
    now = datetime.now(UTC)
    return (now - timedelta(days=days)).timestamp(), now.timestamp() + 1
