"""Policy replay: what a candidate policy would have decided for the calls already logged.

``replay(store, candidate, since, until)`` builds one snapshot of the candidate over the
store's current lists, parties and consents, then walks the call log in time order and
decides each logged attempt again, with counters of its own that count only the calls the
candidate lets through (so caps behave as they would have). It reports every call whose
verdict would change: newly blocked (by the candidate's rule and reason), newly allowed
(by the rule and reason that blocked it), or blocked by another rule, each with counts and
a few examples.

What it cannot know, and assumes: lists, parties, suspensions and consents as they are
now (not as they were at each call); calls older than migration 52 carry no purpose
(replayed as marketing) and no campaign; concurrency caps see no calls in progress. Calls
the service could not screen (no verdict logged) are skipped.

The counters are warmed with the logged allowed calls of the ``WARM_S`` before ``since``,
as the service warms them at start. Pure CPU over a stream: no database writes, so it may
run beside the service (the CLI runs it in its own process; the API in a subprocess).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from outguard.store.sqlite import SQLiteStore
from rules.counters import TRACKABLE, InMemoryCounters
from rules.engine import decide
from rules.model import CallAttempt, Purpose
from rules.policy_types import Policy, RuleKind
from rules.snapshot import build_snapshot

WARM_S = 7 * 86400
FETCH = 20_000
_PURPOSES = {p.value: p for p in Purpose}

Mask = Callable[[str], str]


@dataclass
class Change:
    """One kind of verdict change, with its count and the first examples."""

    change: str  # newly_blocked | newly_allowed | other_rule
    rule: str  # the candidate's rule ("" when it allows)
    reason: str
    was_rule: str
    was_reason: str
    count: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"change": self.change, "rule": self.rule, "reason": self.reason,
                "was_rule": self.was_rule, "was_reason": self.was_reason,
                "count": self.count, "examples": self.examples}


@dataclass
class ReplayReport:
    candidate: str
    since: float
    until: float
    calls: int = 0
    skipped: int = 0
    changed: int = 0
    unchanged_allow: int = 0
    unchanged_block: int = 0
    warmed: int = 0
    seconds: float = 0.0
    changes: dict[tuple[str, str, str, str, str], Change] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        ordered = sorted(self.changes.values(), key=lambda c: (-c.count, c.change, c.rule))
        return {
            "candidate": self.candidate,
            "since": datetime.fromtimestamp(self.since, UTC).isoformat(),
            "until": datetime.fromtimestamp(self.until, UTC).isoformat(),
            "calls": self.calls, "skipped": self.skipped, "changed": self.changed,
            "unchanged": {"allow": self.unchanged_allow, "block": self.unchanged_block},
            "by_change": {k: sum(c.count for c in ordered if c.change == k)
                          for k in ("newly_blocked", "newly_allowed", "other_rule")},
            "changes": [c.as_dict() for c in ordered],
            "warmed_calls": self.warmed, "seconds": round(self.seconds, 3),
            "calls_per_second": round(self.calls / self.seconds) if self.seconds else None,
            "warnings": list(self.warnings[:20]),
        }


_SELECT = ("SELECT decision_id, tenant, account, caller_id, destination, verdict, rule,"
           " reason, at, purpose, campaign FROM calls WHERE at >= ? AND at < ? ORDER BY at")


class _ReplayCounts:
    """The rate counters, and no calls in progress (concurrency is not replayed)."""

    def __init__(self, counters: InMemoryCounters) -> None:
        self.c = counters

    def attempts(self, scope: str, key: str, window_s: int, now: float) -> int:
        return self.c.attempts(scope, key, window_s, now)

    def destination_attempts(self, tenant: str, e164: str, window_s: int, now: float) -> int:
        return self.c.destination_attempts(tenant, e164, window_s, now)

    def distinct_callees(self, account: str, now: float) -> int:
        return self.c.distinct_callees(account, now)

    def concurrent(self, scope: str, key: str) -> int:
        return 0


def counted_scopes(policy: Policy) -> frozenset[str]:
    """The counter scopes the policy's caps read (concurrency is not replayed)."""
    return frozenset(r.params["scope"] for r in policy.ordered_rules()
                     if r.kind is RuleKind.CAP) & TRACKABLE


def _rows(store: SQLiteStore, sql: str, params: tuple[Any, ...]) -> Iterator[tuple[Any, ...]]:
    conn = store.open_reader()
    try:
        cur = conn.execute(sql, params)
        while rows := cur.fetchmany(FETCH):
            yield from rows
    finally:
        conn.close()


def replay(store: SQLiteStore, candidate: Policy, since: float, until: float, *,
           examples: int = 3, mask: Mask = lambda n: n,
           progress: Callable[[int], None] | None = None) -> ReplayReport:
    """Replay the call log in [since, until) against ``candidate``."""
    started = time.perf_counter()
    now = datetime.now(UTC)
    snap = build_snapshot(candidate, store.load_store_data(now), now)
    clock = [since]
    # pruning idle keys walks them all: every 5 minutes of a week of replay would be 2,016
    # walks over ~a million callees (kept 8 days anyway); daily is enough for a replay.
    # Only the counters the candidate's caps read are kept.
    counters = InMemoryCounters(lambda: clock[0], prune_every_s=86400.0,
                                track=counted_scopes(candidate))
    report = ReplayReport(candidate.source, since, until, warnings=snap.warnings)
    for row in _rows(store, "SELECT tenant, account, caller_id, destination, at FROM calls"
                     " WHERE at >= ? AND at < ? AND verdict = 'allow' ORDER BY at",
                     (since - WARM_S, since)):
        clock[0] = row[4]
        counters.record(*row)
        report.warmed += 1
    record, changes = counters.record, report.changes
    marketing = Purpose.MARKETING
    counts = _ReplayCounts(counters)
    for n, (did, tenant, account, caller, dest, was, was_rule, was_reason, at, purpose,
            campaign) in enumerate(_rows(store, _SELECT, (since, until)), 1):
        if was not in ("allow", "block"):
            report.skipped += 1
            continue
        clock[0] = at
        when = datetime.fromtimestamp(at, UTC)
        attempt = CallAttempt(tenant or "", account or "", caller or "", dest, when,
                              _PURPOSES.get(purpose, marketing) if purpose else marketing,
                              campaign or None, "", did)
        verdict = decide(attempt, snap, counts, when)
        report.calls += 1
        if verdict.allowed:
            record(tenant or "", account or "", verdict.caller_id_e164 or caller or "",
                   verdict.destination_e164, at)
            if was == "allow":
                report.unchanged_allow += 1
                continue
            kind = "newly_allowed"
        elif was == "allow":
            kind = "newly_blocked"
        elif was_rule == verdict.rule_id and was_reason == verdict.reason:
            report.unchanged_block += 1
            continue
        else:
            kind = "other_rule"
        report.changed += 1
        key = (kind, verdict.rule_id, verdict.reason, was_rule or "", was_reason or "")
        change = changes.get(key)
        if change is None:
            change = changes[key] = Change(kind, *key[1:])
        change.count += 1
        if len(change.examples) < examples:
            change.examples.append({
                "decision_id": did, "at": when.isoformat(), "tenant": tenant,
                "account": account, "destination": mask(dest),
                "message": verdict.message if not verdict.allowed else "allowed",
            })
        if progress is not None and n % 100_000 == 0:
            progress(n)
    report.seconds = time.perf_counter() - started
    return report
