"""The enforcement facade: the one object the CLI, the HTTP API and the dashboard use.

``Enforcer`` runs beside the call path. It never sits on it: the Screener publishes
decision and outcome events on its EventHub; the enforcer folds them into in-memory risk
figures, re-evaluates the policy's ``[enforcement]`` triggers in a debounced background
task, and writes suspensions through the store. The store bumps its data version, the
Screener rebuilds its snapshot, and the ``party_status`` rule blocks the party (until the
suspension's end, which the rule honours by itself).

Every method that changes something writes an audit record (the store's audited CRUD or
``add_audit``) and announces it on the event hub (``outguard.events.EnforcementAnnounced``) and to
the configured webhooks.

Errors: ``outguard.errors.NotFound`` (no such appeal / nothing active to lift or appeal),
``Conflict`` (appeal already decided or pending, party already disabled), ``InvalidInput``
(bad kind, category, number, duration); ``rules.errors.PolicyError`` for a bad
``[enforcement]`` table (from ``Enforcer(...)`` and ``set_policy``; the previous policy
stays).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from outguard.enforcement.base import CallSource, Kind
from outguard.enforcement.health_ops import HealthOps
from outguard.enforcement.intake import IntakeMixin
from outguard.enforcement.ledger import STRIKE_CLEARED, VERIFICATION, counts_as_strike, fold
from outguard.enforcement.policy import EnforcementPolicy, TriggerSpec, validate_enforcement
from outguard.enforcement.records import (
    Firing, PartyStatus, RiskFigures, SweepResult, appeal_dict, suspension_dict,
)
from outguard.enforcement.sweep import SWEEP_ACTOR, plan
from outguard.enforcement.triggers import Crossing, crossings
from outguard.errors import Conflict, InvalidInput, NotFound
from outguard.events import EventHub
from outguard.privacy import mask
from outguard.store.aio import AsyncStore
from outguard.store.base import Appeal, AppealState, Suspension
from rules.model import PartyKind, PartyState
from rules.policy_types import Policy

__all__ = ["Enforcer", "Kind"]

logger = logging.getLogger(__name__)

#: parties checked between two yields to the event loop
CHUNK = 200


def _dt(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


class Enforcer(HealthOps, IntakeMixin):
    """Risk figures, triggers, graded suspensions, appeals, complaints and marks.

    Build with ``Enforcer(store, policy, events=screener.events, clock=...)`` (raises
    ``PolicyError`` for a bad ``[enforcement]`` table; pass ``config=`` to skip that);
    ``await start()`` replays the call log and complaints into the risk figures and starts
    the background tasks (event intake, debounced trigger evaluation, caller-ID sweep,
    webhook delivery); ``await stop()`` ends them. ``kind`` arguments take a ``PartyKind``
    or its value ("tenant", "account", "caller_id"); caller-ID keys and callee numbers are
    normalised to E.164. ``actor`` is the person (user name), or "trigger:<name>" /
    "system:..." for automatic changes, as recorded in the audit trail.
    """

    def __init__(self, store: AsyncStore, policy: Policy, *, events: EventHub | None = None,
                 clock: Callable[[], float] = time.time,
                 config: EnforcementPolicy | None = None, feed: CallSource | None = None,
                 leads: Callable[[], bool] | None = None) -> None:
        super().__init__(store, policy, events=events, clock=clock, config=config,
                         feed=feed, leads=leads)

    def set_policy(self, policy: Policy) -> EnforcementPolicy:
        """Validate the policy's ``[enforcement]`` table and swap it in. On PolicyError
        nothing changes (call it before ``Screener.set_policy``)."""
        config = validate_enforcement(policy)
        self.policy = policy
        self._apply(config)
        return config

    # -- persons: suspend, lift, disable -------------------------------------------------

    async def suspend(self, kind: Kind, key: str, *, reason: str, actor: str,
                      duration_s: float | None = None, permanent: bool = False,
                      trigger: str = "") -> Suspension:
        """Suspend a party now. ``duration_s`` None = the next graded step of the policy's
        ``durations`` (which may be permanent); ``permanent=True`` disables (no end).
        Counts as a strike. Conflict if the party is already disabled."""
        party = self._party(kind, key)
        await self.require_party(*party)
        if duration_s is not None and not duration_s > 0:
            raise InvalidInput("duration_s must be positive", field="duration_s")
        if not reason.strip():
            raise InvalidInput("a suspension needs a reason", field="reason")
        async with self._lock:
            return await self._suspend(party, reason=reason, actor=actor, trigger=trigger,
                                       duration_s=duration_s, permanent=permanent)

    async def require_party(self, kind: Kind, key: str) -> tuple[PartyKind, str]:
        """The party, normalised; NotFound when outguard has never heard of it: no store
        row, no call in the figures, no suspension. (Suspending a mistyped key would
        report success and stop nothing.)"""
        party = self._party(kind, key)
        pk, pkey = party
        _, row_state, _ = await self._row(party, self.clock())
        if row_state is None and not self.book.known(pk, pkey) and not await \
                self.store.list_suspensions(party_kind=pk, party_key=pkey):
            raise NotFound(pk.value.replace("_", " "), pkey)
        return party

    async def lift(self, kind: Kind, key: str, *, actor: str, reason: str,
                   clear_strike: bool = False) -> list[Suspension]:
        """Lift every active suspension of the party (also permanent ones). NotFound when
        none is active. ``clear_strike`` also removes them from the strike count."""
        party = await self.require_party(kind, key)
        async with self._lock:
            lifted = await self._lift_all(party, actor=actor, reason=reason,
                                          clear_strike=clear_strike)
        if not lifted:
            raise NotFound("active suspension of", f"{party[0].value} {party[1]}")
        return lifted

    async def disable(self, kind: Kind, key: str, *, actor: str, reason: str) -> Suspension:
        """Disable a party permanently (a suspension with no end) until a person lifts it."""
        return await self.suspend(kind, key, reason=reason, actor=actor, permanent=True)

    async def status(self, kind: Kind, key: str) -> PartyStatus:
        """State, reason, end, remaining time, strikes, suspension history and appeals."""
        party = self._party(kind, key)
        pk, pkey = party
        now_ts = self.clock()
        now = datetime.fromtimestamp(now_ts, UTC)
        history: list[Suspension] = await self.store.list_suspensions(
            party_kind=pk, party_key=pkey)
        appeals = [a for a in await self.store.list_appeals(party_key=pkey)
                   if a.party_kind is pk]
        tenant, row_state, unverified = await self._row(party, now_ts)
        if not history and not appeals and row_state is None and not self.book.known(pk, pkey):
            raise NotFound(pk.value, pkey)
        state, decisive = fold(history, now)
        reason = decisive.reason if decisive is not None else ""
        if state is PartyState.ACTIVE and row_state == "disabled":
            state, reason = PartyState.DISABLED, "disabled"
        elif state is PartyState.ACTIVE and unverified is not None:
            state, reason = PartyState.UNVERIFIED, unverified
        until = decisive.ends_at if decisive is not None else None
        by_tenant = None
        if pk is not PartyKind.TENANT and tenant is not None:
            t_state, t_row = fold(await self.store.list_suspensions(
                party_kind=PartyKind.TENANT, party_key=tenant), now)
            if t_row is not None:
                until_t = (f" until {t_row.ends_at.isoformat()}"
                           if t_row.ends_at is not None else "")
                by_tenant = f"tenant {tenant} is {t_state.value}{until_t}: {t_row.reason}"
            elif (await self._row((PartyKind.TENANT, tenant), now_ts))[1] == "disabled":
                by_tenant = f"tenant {tenant} is disabled"
        strikes = sum(1 for s in history if counts_as_strike(s)
                      and s.started_at.timestamp() >= now_ts - self.config.strike_lookback_s)
        return PartyStatus(
            kind=pk, key=pkey, state=state, reason=reason, until=until,
            remaining_s=None if until is None else max(0.0, until.timestamp() - now_ts),
            strikes=strikes, next_duration_s=self.config.duration_for(strikes),
            active=tuple(s for s in history if s.active_at(now)), history=tuple(history),
            appeals=tuple(appeals), tenant=tenant, blocked_by_tenant=by_tenant,
        )

    async def list_suspensions(self, *, active_only: bool = True,
                               kind: Kind | None = None) -> list[Suspension]:
        """Suspensions (active now by default), oldest first."""
        pk = None if kind is None else self._kind(kind)
        active_at = _dt(self.clock()) if active_only else None
        rows: list[Suspension] = await self.store.list_suspensions(party_kind=pk,
                                                                   active_at=active_at)
        return rows

    # -- appeals --------------------------------------------------------------------------

    async def submit_appeal(self, kind: Kind, key: str, *, text: str, evidence: str = "",
                            actor: str) -> Appeal:
        """Queue an appeal against the party's current suspension (or, for a caller ID
        flagged by callee marks, against the marks: 误标). Conflict if one is already
        pending; NotFound if the party has nothing to appeal."""
        party = self._party(kind, key)
        now = _dt(self.clock())
        assert now is not None
        async with self._lock:
            await self._refresh()
            active = self.ledger.active(party, now)
            marked = party[0] is PartyKind.CALLER_ID and self.book.figures(
                party[0], party[1], self.config.longest_window_s, self.clock(),
                self.ledger.baseline("", party)).marks > 0
            if not active and not marked:
                raise NotFound("suspension or mark to appeal for", f"{party[0].value} {party[1]}")
            pending = await self.store.list_appeals(state=AppealState.PENDING, party_key=party[1])
            if any(a.party_kind is party[0] for a in pending):
                raise Conflict(f"{party[0].value} {party[1]} already has a pending appeal",
                               kind="appeal", key=party[1])
            target = max(active, key=lambda s: s.started_at) if active else None
            appeal: Appeal = await self.store.create_appeal(
                party[0], party[1], text=text, evidence=evidence,
                suspension_id=None if target is None else target.id, actor=actor)
        self._announce("appeal.submitted", appeal_dict(appeal))
        return appeal

    async def approve_appeal(self, appeal_id: int, *, reviewer: str, decision: str,
                             clear_strike: bool = False) -> Appeal:
        """Approve: lift every active suspension of the party, optionally clear their
        strikes; the figures the triggers count start afresh (so a mis-mark appeal
        clears the marks that raised the flag). Conflict if already decided."""
        async with self._lock:
            appeal: Appeal = await self.store.decide_appeal(
                appeal_id, approved=True, reviewer=reviewer, decision=decision)
            party = (appeal.party_kind, appeal.party_key)
            self.ledger.clear(party, self.clock())
            await self._lift_all(party, actor=reviewer,
                                 reason=f"appeal {appeal_id} approved: {decision}",
                                 clear_strike=clear_strike)
        self._announce("appeal.approved", {**appeal_dict(appeal), "clear_strike": clear_strike})
        return appeal

    async def reject_appeal(self, appeal_id: int, *, reviewer: str, decision: str) -> Appeal:
        """Reject with a reason; the suspension stays. Conflict if already decided."""
        if not decision.strip():
            raise InvalidInput("a rejection needs a reason", field="decision")
        appeal: Appeal = await self.store.decide_appeal(
            appeal_id, approved=False, reviewer=reviewer, decision=decision)
        self._announce("appeal.rejected", appeal_dict(appeal))
        return appeal

    async def list_appeals(self, state: AppealState | str | None = None,
                           *, party_key: str | None = None) -> list[Appeal]:
        """Appeals, oldest first (``state="pending"`` is the review queue)."""
        if state is not None:
            try:
                state = AppealState(state)
            except ValueError as exc:
                raise InvalidInput(f"unknown appeal state {state!r}", field="state") from exc
        rows: list[Appeal] = await self.store.list_appeals(state=state, party_key=party_key)
        return rows

    # -- figures and triggers -------------------------------------------------------------

    def risk(self, kind: Kind, key: str, *, window_s: float = 86400.0) -> RiskFigures:
        """Rolling figures of one party over the window (in memory, no I/O)."""
        pk, pkey = self._party(kind, key)
        return self.book.figures(pk, pkey, window_s, self.clock())

    def risk_table(self, kind: Kind, *, window_s: float = 86400.0) -> list[RiskFigures]:
        """Figures of every party of the kind seen within the window, most attempts first."""
        pk = self._kind(kind)
        now = self.clock()
        rows = [self.book.figures(pk, key, window_s, now)
                for key in self.book.parties(pk, since=now - window_s)]
        return sorted(rows, key=lambda f: (-f.attempts, -f.complaints, f.key))

    async def evaluate(self, *, everything: bool = True) -> list[Firing]:
        """Evaluate the triggers now: every trigger for every party seen within the
        longest window (``everything``), or only for the parties with new events (what
        the debounced task does after each burst of events)."""
        async with self._lock:
            await self._refresh()
            now = self.clock()
            if everything:
                self.book.dirty.clear()
                since = now - self.config.longest_window_s
                candidates = {k: list(self.book.parties(k, since)) for k in PartyKind}
            else:
                dirty, self.book.dirty = self.book.dirty, set()
                candidates = {k: [key for kk, key in dirty if kk is k] for k in PartyKind}
            firings = await self._run(self.config.triggers, candidates)
            await self._check_health(candidates.get(PartyKind.CALLER_ID, ()))
            return firings

    async def tick(self, since_last: float) -> list[Firing]:
        """The once-a-minute pass: the triggers that time alone can make cross (ratios,
        floors: old calls leaving the window change them) for every party, and every
        trigger for the parties whose suspension ran out since ``since_last`` (what they
        did meanwhile counts now). Counts only fall with time otherwise."""
        async with self._lock:
            await self._refresh()
            now = self.clock()
            since = now - self.config.longest_window_s
            firings: list[Firing] = []
            rolling = tuple(t for t in self.config.triggers if t.rolling)
            if rolling:
                kinds = {t.scope for t in rolling}
                firings += await self._run(
                    rolling, {k: list(self.book.parties(k, since)) for k in kinds})
            ended = self.ledger.ended_between(since_last, now)
            if ended and self.config.triggers:
                candidates = {k: [key for key in self.book.parties(k, since)
                                  if (k, key) in ended
                                  or (PartyKind.TENANT, self.book.tenant_of(k, key)) in ended]
                              for k in PartyKind}
                firings += await self._run(self.config.triggers, candidates)
            # a connect rate rolls with time: judge every caller ID seen within the span
            await self._check_health(self.book.parties(
                PartyKind.CALLER_ID, now - self.config.health.span_s))
            return firings

    async def _run(self, triggers: tuple[TriggerSpec, ...],
                   candidates: dict[PartyKind, list[str]]) -> list[Firing]:
        """Check and act, a chunk of parties at a time: the event loop (and so the call
        path) is never held for long."""
        firings: list[Firing] = []
        for kind, keys in candidates.items():
            for n in range(0, len(keys), CHUNK):
                found = crossings(self.book, triggers, self.clock(), {kind: keys[n:n + CHUNK]},
                                  lambda spec, target: self._baseline(spec.name, target))
                for c in found:
                    firing = await self._act(c)
                    if firing is not None:
                        firings.append(firing)
                if len(keys) > CHUNK:
                    await asyncio.sleep(0)
        return firings

    async def _act(self, c: Crossing) -> Firing | None:
        if not self.leads():  # cluster mode: only the leader acts, once for the cluster
            return None
        spec, target = c.trigger, c.target
        now = self.clock()
        actor = f"trigger:{spec.name}"
        firing = Firing(trigger=spec.name, action=spec.action, kind=target[0], key=target[1],
                        metric=spec.metric, value=c.value, threshold=spec.threshold,
                        message=c.message)
        shown = mask(target[1]) if target[0] is PartyKind.CALLER_ID else target[1]
        if spec.action == "warn":
            self._warned[(spec.name, target)] = now
            await self.store.add_audit(actor, "trigger.warn", party_kind=target[0].value,
                                       party_key=target[1], after=firing.to_dict())
            logger.info("trigger %s warns about %s %s (%s %g)", spec.name, target[0].value,
                        shown, spec.metric, c.value)
            self._announce("trigger.warned", firing.to_dict())
            return firing
        active = self.ledger.active(target, datetime.fromtimestamp(now, UTC))
        if any(s.ends_at is None for s in active) or (active and spec.action == "suspend"):
            return None  # already suspended: nothing more to do
        suspension = await self._suspend(target, reason=c.message, actor=actor,
                                         trigger=spec.name, duration_s=spec.duration_s,
                                         permanent=spec.action == "disable")
        logger.warning("trigger %s: %s %s %s (%s %g)", spec.name, spec.action,
                       target[0].value, shown, spec.metric, c.value)
        return replace(firing, suspension=suspension)

    def _baseline(self, trigger: str, target: tuple[PartyKind, str]) -> float | None:
        base = self.ledger.baseline(trigger, target)
        warned = self._warned.get((trigger, target))
        if warned is not None and (base is None or warned > base):
            return warned
        return base

    # -- caller-ID verification -----------------------------------------------------------

    async def sweep_caller_ids(self) -> SweepResult:
        """Suspend caller IDs whose real-name verification is missing or expired and
        disable them after the policy's grace period (the periodic task does this)."""
        spec = self.config.verification
        if not spec.suspend:
            return SweepResult()
        suspended: list[str] = []
        disabled: list[str] = []
        async with self._lock:
            await self._refresh()
            now = self.clock()
            for step in plan(await self.store.list_caller_ids(), self.ledger, spec, now):
                party = (PartyKind.CALLER_ID, step.caller_id)
                if step.action == "lift" and step.suspension is not None:
                    await self._lift_one(step.suspension, actor=SWEEP_ACTOR, reason=step.reason)
                elif step.action == "disable":
                    await self._suspend(party, reason=step.reason, actor=SWEEP_ACTOR,
                                        trigger=VERIFICATION, duration_s=None, permanent=True)
                    disabled.append(step.caller_id)
                elif step.ends_at is not None:
                    await self._suspend(party, reason=step.reason, actor=SWEEP_ACTOR,
                                        trigger=VERIFICATION, duration_s=step.ends_at - now,
                                        permanent=False)
                    suspended.append(step.caller_id)
        return SweepResult(tuple(suspended), tuple(disabled))

    # -- the writes every path shares (callers hold self._lock) --------------------------

    async def _suspend(self, party: tuple[PartyKind, str], *, reason: str, actor: str,
                       trigger: str, duration_s: float | None,
                       permanent: bool) -> Suspension:
        now_ts = self.clock()
        now = datetime.fromtimestamp(now_ts, UTC)
        if any(s.ends_at is None for s in self.ledger.active(party, now)):
            raise Conflict(f"{party[0].value} {party[1]} is already disabled",
                           kind=party[0].value, key=party[1])
        strikes = self.ledger.strikes(party, now, self.config.strike_lookback_s)
        if permanent:
            length: float | None = None
        elif duration_s is not None:
            length = duration_s
        else:
            length = self.config.duration_for(strikes)
        suspension: Suspension = await self.store.create_suspension(
            party[0], party[1], reason=reason, created_by=actor, trigger=trigger,
            started_at=now, ends_at=None if length is None else _dt(now_ts + length))
        self.ledger.put(suspension)
        self._announce("suspension.created", {
            **suspension_dict(suspension),
            "strike": trigger != VERIFICATION, "strikes_before": strikes,
        })
        return suspension

    async def _lift_all(self, party: tuple[PartyKind, str], *, actor: str, reason: str,
                        clear_strike: bool) -> list[Suspension]:
        await self._refresh()
        now = _dt(self.clock())
        assert now is not None
        out = []
        for s in self.ledger.active(party, now):
            out.append(await self._lift_one(s, actor=actor, reason=reason,
                                            clear_strike=clear_strike))
        return out

    async def _lift_one(self, s: Suspension, *, actor: str, reason: str,
                        clear_strike: bool = False) -> Suspension:
        why = f"{reason} {STRIKE_CLEARED}" if clear_strike else reason
        lifted: Suspension = await self.store.lift_suspension(
            s.id, lifted_by=actor, lift_reason=why, lifted_at=_dt(self.clock()))
        self.ledger.put(lifted)
        self._announce("suspension.lifted", {**suspension_dict(lifted),
                                             "clear_strike": clear_strike})
        return lifted

    async def _row(self, party: tuple[PartyKind, str],
                   now: float) -> tuple[str | None, str | None, str | None]:
        """(tenant, row state, unverified reason) of the party's store row."""
        kind, key = party
        try:
            if kind is PartyKind.TENANT:
                t: Any = await self.store.get_tenant(key)
                return key, t.state, None
            if kind is PartyKind.ACCOUNT:
                a: Any = await self.store.get_account(key)
                return a.tenant_id, a.state, None
            c: Any = await self.store.get_caller_id(key)
        except NotFound:
            return self.book.tenant_of(kind, key), None, None
        until = c.verified_until.timestamp() if c.verified_until is not None else None
        unverified = None
        if c.verification != "verified":
            unverified = f"real-name verification {c.verification}"
        elif until is not None and until <= now:
            unverified = "real-name verification expired"
        return c.tenant_id, c.state, unverified

    # -- background ------------------------------------------------------------------------

    async def _loop(self) -> None:
        """Debounced evaluation: at most once per ``evaluate_every_ms`` after new events;
        the rolling triggers once a minute; everything after a policy change; the sweep
        on its own period."""
        last_full = last_sweep = self.clock()
        while True:
            try:  # not wait_for: on 3.11 its inner task can outlive a cancellation
                async with asyncio.timeout(60.0):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()
            await asyncio.sleep(self.config.evaluate_every_ms / 1000)
            now = self.clock()
            if not self.leads():  # cluster mode: another instance enforces
                self.book.dirty.clear()
                last_full = last_sweep = now
                continue
            try:
                if self._full_pending:
                    self._full_pending = False
                    await self.evaluate(everything=True)
                else:
                    await self.evaluate(everything=False)
                if now - last_full >= 60.0:
                    await self.tick(last_full)
                    last_full = now
                if now - last_sweep >= self.config.verification.sweep_every_s:
                    last_sweep = now
                    await self.sweep_caller_ids()
            except Exception:
                logger.exception("enforcement evaluation failed; retrying on the next event")
