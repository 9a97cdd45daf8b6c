"""Immutable snapshots: everything a decision reads, built off the hot path.

``build_snapshot(policy, data, now)`` compiles the policy's rules, indexes the parties and
streams list entries into one compact index (see rules/tables.py: 8 bytes per number and
list, 12 for entries with an expiry). Rows that are wrong (not a number, unknown list, naive
expiry time, duplicate party) are reported in ``snapshot.warnings`` and skipped; expired
entries are dropped. Build raises nothing for bad data; a policy that cannot be compiled
raises ``PolicyError`` (the caller keeps the previous snapshot). The caller swaps the
snapshot whole with one assignment.

Hot-path data: ``checks`` (compiled rules in evaluation order), ``parties`` (dict),
``lists`` (name -> ListView), ``index`` (every list's numbers), ``exempting``
(allow/consent lists with exempts), ``consents`` (the consent ledger's grants in force, by
number key) and ``reassigned`` (number key -> disconnect time from reassigned lists).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

from rules.checks import CallerIdCheck, ListsCheck, PartyStatusCheck, RegisterFreshnessCheck
from rules.checks_base import Check
from rules.checks_more import LineTypeCheck, PrefixCheck, RegionCheck, TimeWindowCheck, make_cap
from rules.errors import NumberError, PolicyError, PolicyIssue
from rules.hits import RuleHits
from rules.model import ConsentGrant, ListKind, Party, PartyKind, StoreData
from rules.numbers import normalise
from rules.policy_types import EXEMPTING_LISTS, Policy, RuleKind, RuleSpec
from rules.snapshot_lists import ListView, build_views, entry_key, merge_specs
from rules.tables import ListIndex

__all__ = ["Snapshot", "build_snapshot", "MAX_WARNINGS"]

MAX_WARNINGS = 1000


@dataclass(frozen=True, slots=True)
class Snapshot:
    policy: Policy
    built_at: datetime
    checks: tuple[Check, ...]
    lists: Mapping[str, ListView]
    index: ListIndex
    parties: Mapping[tuple[PartyKind, str], Party]
    exempting: tuple[ListView, ...]
    warnings: tuple[str, ...] = ()
    stats: Mapping[str, int] = field(default_factory=dict)
    hits: RuleHits = field(default_factory=RuleHits)
    consents: Mapping[int, tuple[ConsentGrant, ...]] = field(default_factory=dict)
    reassigned: Mapping[int, float] = field(default_factory=dict)

    def party(self, kind: PartyKind, key: str) -> Party | None:
        return self.parties.get((kind, key))

    def list_bytes(self) -> int:
        return self.index.nbytes()


class _Parts:
    """Build-time view handed to rule constructors (see checks_base.Parts)."""

    def __init__(self, policy: Policy, parties: Mapping[tuple[PartyKind, str], Party]) -> None:
        self.policy = policy
        self.parties = parties
        self.warnings: list[str] = []
        self.dropped = 0

    def party(self, kind: PartyKind, key: str) -> Party | None:
        return self.parties.get((kind, key))

    def warn(self, message: str) -> None:
        if len(self.warnings) < MAX_WARNINGS:
            self.warnings.append(message)
        else:
            self.dropped += 1


def build_snapshot(
    policy: Policy, data: StoreData, now: datetime, hits: RuleHits | None = None
) -> Snapshot:
    """Compile ``policy`` over ``data``. ``now`` (aware) drops already-expired entries."""
    if now.tzinfo is None:
        raise ValueError("build_snapshot needs a timezone-aware now")
    parties: dict[tuple[PartyKind, str], Party] = {}
    parts = _Parts(policy, parties)
    _index_parties(data.parties, policy.default_region, parties, parts.warn)
    specs, imported = merge_specs(policy.lists, data.lists, parts.warn)
    views, index, st = build_views(specs, imported, data.entries, now, parts.warn)
    checks = tuple(_compile(spec, parts, views, data.extra) for spec in policy.ordered_rules())
    exempting = tuple(v for v in views.values() if v.spec.kind in EXEMPTING_LISTS and v.spec.exempts)
    consents = _index_consents(data.consents, views, parts.warn)
    if parts.dropped:
        parts.warnings.append(f"... and {parts.dropped} more warnings")
    stats = {
        "rows": st.rows,
        "numbers": st.kept,
        "expired_skipped": st.expired,
        "bad_rows": st.bad,
        "parties": len(parties),
        "rules": len(checks),
        "lists": len(views),
        "consents": sum(len(g) for g in consents.values()),
        "reassigned": len(st.disconnected),
    }
    return Snapshot(
        policy=policy,
        built_at=now,
        checks=checks,
        lists=MappingProxyType(views),
        index=index,
        parties=MappingProxyType(parties),
        exempting=exempting,
        warnings=tuple(parts.warnings),
        stats=MappingProxyType(stats),
        hits=hits if hits is not None else RuleHits(),
        consents=MappingProxyType(consents),
        reassigned=MappingProxyType(st.disconnected),
    )


def _index_consents(
    rows: Iterable[ConsentGrant], views: Mapping[str, ListView], warn: Callable[[str], None]
) -> dict[int, tuple[ConsentGrant, ...]]:
    """Ledger grants by number key; a grant naming no consent list exempts nothing."""
    out: dict[int, list[ConsentGrant]] = {}
    for n, grant in enumerate(rows, 1):
        if not isinstance(grant, ConsentGrant):
            warn(f"consent row {n}: {grant!r} is not a ConsentGrant; skipped")
            continue
        key = entry_key(grant.e164)
        view = views.get(grant.list_name)
        if key is None:
            warn(f"consent {grant.id}: {grant.e164!r} is not E.164; skipped")
        elif view is None or view.spec.kind is not ListKind.CONSENT:
            warn(f"consent {grant.id}: {grant.list_name!r} is not a consent list of the policy;"
                 " it exempts nothing")
        elif grant.given_at.tzinfo is None or (
            grant.expires_at is not None and grant.expires_at.tzinfo is None
        ):
            warn(f"consent {grant.id}: times without a time zone; skipped")
        else:
            out.setdefault(key, []).append(grant)
    return {k: tuple(v) for k, v in out.items()}


def _index_parties(
    rows: Iterable[Party],
    region: str,
    out: dict[tuple[PartyKind, str], Party],
    warn: Callable[[str], None],
) -> None:
    for n, party in enumerate(rows, 1):
        if not isinstance(party, Party) or not party.key:
            warn(f"party row {n}: {party!r} is not a Party with a key; skipped")
            continue
        key = party.key
        if party.kind is PartyKind.CALLER_ID:
            try:
                key = normalise(key, region)
            except NumberError as exc:
                warn(f"party row {n}: caller ID {party.key!r}: {exc}; skipped")
                continue
        if any(t is not None and t.tzinfo is None for t in (party.until, party.verified_until)):
            warn(f"party row {n}: {party.kind.value} {key}: times without a time zone; skipped")
            continue
        if (party.kind, key) in out:
            warn(f"party row {n}: duplicate {party.kind.value} {key}; the later row wins")
        out[(party.kind, key)] = party


def _compile(
    spec: RuleSpec, parts: _Parts, views: Mapping[str, ListView], extra: Mapping[str, Any]
) -> Check:
    k = spec.kind
    if k is RuleKind.PARTY_STATUS:
        return PartyStatusCheck(spec, parts)
    if k is RuleKind.CALLER_ID:
        return CallerIdCheck(spec, parts)
    if k is RuleKind.LISTS:
        return ListsCheck(spec, views)
    if k is RuleKind.REGISTER_FRESHNESS:
        return RegisterFreshnessCheck(spec, views)
    if k is RuleKind.PREFIX:
        prefixes = extra.get("prefixes", {})
        rows = prefixes.get(spec.id, ()) if isinstance(prefixes, Mapping) else ()
        return PrefixCheck(spec, parts, rows)
    if k is RuleKind.REGION:
        return RegionCheck(spec)
    if k is RuleKind.LINE_TYPE:
        return LineTypeCheck(spec)
    if k is RuleKind.TIME_WINDOW:
        if spec.params["window"] not in parts.policy.windows:
            raise PolicyError([PolicyIssue(spec.source, 0, f"{spec.id}.window", "unknown window")])
        return TimeWindowCheck(spec, parts)
    return make_cap(spec, parts)
