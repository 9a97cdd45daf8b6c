"""Caps counted elsewhere (cluster mode): the engine decides every other rule from the
snapshot and *collects* the caps that apply to the call; a shared store (Redis,
``outguard.cluster``) checks and reserves them in one atomic step; :func:`settle` turns
its answer into the verdict, as if the engine had counted them itself.

* :func:`defer_caps` - a snapshot whose cap checks collect instead of count (built once
  per snapshot swap; the embedded mode never uses it and pays nothing for it);
* :class:`CapDemands` - the ``Counters`` of one deferred decision: the caps collected,
  in evaluation order (caps are the last stage, so an allowed local verdict means only
  caps can still block);
* :func:`settle` - the final verdict: the first enforced cap the store found reached
  blocks with the rule's reason, message and cause; shadow caps reached are flagged;
  ``cap_store_unavailable`` when the store could not answer and the cap fails closed.

Pure: no I/O. ``CapSpec`` is the one description of a cap as it applies to one call.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rules.checks_base import Check, Ctx, Hit
from rules.checks_more import CapCheck
from rules.engine import render_message
from rules.model import RuleMode, Verdict
from rules.policy_types import RuleKind
from rules.policy_validate import CAP_SCOPES
from rules.snapshot import Snapshot

__all__ = ["CapSpec", "CapDemands", "CountedCaps", "DeferredCap", "defer_caps", "settle",
           "UNAVAILABLE", "FAIL_POLICIES"]

#: the reason of a call blocked because the cap store could not answer
UNAVAILABLE = "cap_store_unavailable"
#: a cap's ``when_unavailable``: block (closed, the default) or allow (open)
FAIL_POLICIES = ("block", "allow")


@dataclass(frozen=True, slots=True)
class CapSpec:
    """One cap as it applies to one call: the rule, what it counts, for whom, its limit."""

    rule_id: str
    scope: str  # rules.policy_validate.CAP_SCOPES
    key: str  # account id, caller ID, tenant, destination E.164
    window_s: int
    limit: int
    enforce: bool = True  # False: shadow mode (reported, never blocks)
    when_unavailable: str = "block"  # or "allow": the failure policy when the store is down

    def __post_init__(self) -> None:
        if self.scope not in CAP_SCOPES:
            raise ValueError(f"unknown cap scope {self.scope!r}")
        if self.when_unavailable not in FAIL_POLICIES:
            raise ValueError(f"when_unavailable must be block or allow, not"
                             f" {self.when_unavailable!r}")


class CapDemands:
    """The counters of a deferred decision: every count is 0 (the store counts), and the
    caps that applied are collected in ``caps``."""

    __slots__ = ("caps", "keys", "tenant")

    def __init__(self) -> None:
        self.caps: list[CapSpec] = []
        self.keys: dict[str, str] = {}  # rule id -> key counted (for the block message)
        self.tenant = ""  # the call's tenant (destination caps count per tenant)

    def attempts(self, scope: str, key: str, window_s: int, now: float) -> int:
        return 0

    def destination_attempts(self, tenant: str, e164: str, window_s: int, now: float) -> int:
        return 0

    def distinct_callees(self, account: str, now: float) -> int:
        return 0

    def concurrent(self, scope: str, key: str) -> int:
        return 0


class DeferredCap(Check):
    """A cap check that collects itself into ``CapDemands``; with other counters (explain,
    a test) it counts as the cap it wraps."""

    kind = RuleKind.CAP
    __slots__ = ("cap", "_template")

    def __init__(self, cap: CapCheck) -> None:
        super().__init__(cap.spec)
        self.cap = cap
        p = cap.spec.params
        self._template = CapSpec(cap.spec.id, p["scope"], "", p["window_s"], p["limit"],
                                 cap.spec.mode is RuleMode.ENFORCE,
                                 p.get("when_unavailable", "block"))

    def evaluate(self, ctx: Ctx) -> Hit | None:
        demands = ctx.counters
        if isinstance(demands, CapDemands):
            _, key = self.cap.count(ctx)  # counts 0: only the key is wanted
            demands.caps.append(dataclasses.replace(self._template, key=key,
                                                    limit=self.cap.limit_for(key)))
            demands.keys[self.spec.id] = key
            demands.tenant = ctx.attempt.tenant
            return None
        return self.cap.evaluate(ctx)

    def figures(self, ctx: Ctx) -> dict[str, Any]:
        return self.cap.figures(ctx)


class CountedCaps:
    """Counters that answer from counts read in the shared store, one per cap (a dry run in
    cluster mode: ``outguard check`` / ``POST /api/check`` show the cluster's counts)."""

    __slots__ = ("_counts",)

    def __init__(self, counts: Mapping[CapSpec, int]) -> None:
        self._counts = {count_key(c.scope, c.key, c.window_s): n for c, n in counts.items()}

    def attempts(self, scope: str, key: str, window_s: int, now: float) -> int:
        return self._counts.get(count_key(scope, key, window_s), 0)

    def destination_attempts(self, tenant: str, e164: str, window_s: int, now: float) -> int:
        return self._counts.get(count_key("destination", e164, window_s), 0)

    def distinct_callees(self, account: str, now: float) -> int:
        return self._counts.get(count_key("distinct_callees", account, 0), 0)

    def concurrent(self, scope: str, key: str) -> int:
        return self._counts.get(count_key(f"concurrent_{scope}", key, 0), 0)


def count_key(scope: str, key: str, window_s: int) -> tuple[str, str, int]:
    """What identifies one count (distinct callees and calls in progress have no window)."""
    if scope == "distinct_callees" or scope.startswith("concurrent_"):
        window_s = 0
    return scope, key, window_s


def defer_caps(snapshot: Snapshot) -> Snapshot:
    """The snapshot with its cap checks collecting instead of counting (same order)."""
    return dataclasses.replace(snapshot, checks=tuple(
        DeferredCap(c) if isinstance(c, CapCheck) else c for c in snapshot.checks))


def settle(verdict: Verdict, snapshot: Snapshot, demands: CapDemands, *, blocked_by: str = "",
           count: int = 0, shadow: Sequence[str] = (), unavailable: bool = False) -> Verdict:
    """The verdict once the store answered for the caps of ``demands``: ``blocked_by`` the
    enforced cap it found reached (with its ``count``), or that failed closed while the
    store was ``unavailable``; ``shadow`` the shadow caps reached. Counts the rule hits
    the engine could not (``verdict`` was the engine's allowed verdict)."""
    hits = snapshot.hits
    for rule in shadow:
        hits.add(rule, "shadow")
    shadows = verdict.shadow + tuple(r for r in shadow if r not in verdict.shadow)
    if not blocked_by:
        return dataclasses.replace(verdict, shadow=shadows) if shadows != verdict.shadow \
            else verdict
    check = next(c for c in snapshot.checks
                 if isinstance(c, DeferredCap) and c.spec.id == blocked_by)
    hits.retract("", "allowed")
    hits.add(blocked_by, "block")
    spec = check.spec
    if unavailable:
        return Verdict(
            False, blocked_by, UNAVAILABLE,
            f"rule {blocked_by}: the cap store (Redis) cannot answer and this cap fails"
            " closed (when_unavailable = block)",
            cause=snapshot.policy.cause_for(UNAVAILABLE), shadow=shadows,
            destination_e164=verdict.destination_e164, caller_id_e164=verdict.caller_id_e164)
    hit = check.cap.hit(count, demands.keys.get(blocked_by, ""))
    return Verdict(
        False, blocked_by, hit.reason, render_message(check, hit, verdict.destination_e164),
        cause=spec.cause if spec.cause is not None else snapshot.policy.cause_for(hit.reason),
        announcement=spec.announcement, shadow=shadows,
        destination_e164=verdict.destination_e164, caller_id_e164=verdict.caller_id_e164)
