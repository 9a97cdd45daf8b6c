"""Which rules a destination is exempt from, and why (consent and allow lists, the consent
ledger, reassigned numbers). Pure; the engine calls ``exemptions`` once per call when the
destination is on an exempting list or has ledger grants.

A consent exempts only what it covers:

* a list entry (allow or consent list) covers the calls its list's scope covers (global,
  one tenant, one campaign);
* a ledger grant covers its tenant, and its campaign and purpose when it names them, until
  it expires or is revoked (revocations are folded out by the store);
* a consent given before the number was disconnected (a reassigned list's entry) is void:
  the number now belongs to someone else. List entries count as given when recorded.
* nothing lifts a litigator list's block (``Check.unexempt``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from rules.model import CallAttempt, ConsentGrant, ListKind
from rules.snapshot import Snapshot
from rules.snapshot_lists import ListView

__all__ = ["exemptions", "explain_exemption", "covering_grant"]


def _void(snap: Snapshot, key: int, given_ts: float | None) -> bool:
    disconnected = snap.reassigned.get(key)
    return disconnected is not None and (given_ts is None or given_ts < disconnected)


def _entry_counts(snap: Snapshot, view: ListView, key: int) -> bool:
    if view.spec.kind is not ListKind.CONSENT or not snap.reassigned:
        return True
    return not _void(snap, key, view.given.get(key))


def covering_grant(
    snap: Snapshot, attempt: CallAttempt, key: int, now: datetime, rule_id: str | None = None
) -> ConsentGrant | None:
    """The first ledger grant in force that covers this call (and exempts ``rule_id``)."""
    for grant in snap.consents.get(key, ()):
        if not grant.covers(attempt.tenant, attempt.campaign, attempt.purpose, now):
            continue
        if _void(snap, key, grant.given_at.timestamp()):
            continue
        view = snap.lists.get(grant.list_name)
        if view is None:
            continue
        if rule_id is None or rule_id in view.spec.exempts:
            return grant
    return None


def exemptions(
    snap: Snapshot, attempt: CallAttempt, key: int, on: tuple[int, ...], now: datetime
) -> dict[str, str]:
    """rule id -> the list whose entry or ledger grant exempts the destination from it."""
    found: dict[str, str] = {}
    if on:
        for view in snap.exempting:
            if (view.list_id in on and view.applies(attempt.tenant, attempt.campaign)
                    and _entry_counts(snap, view, key)):
                for rid in view.spec.exempts:
                    found.setdefault(rid, view.spec.name)
    for grant in snap.consents.get(key, ()):
        if not grant.covers(attempt.tenant, attempt.campaign, attempt.purpose, now):
            continue
        if _void(snap, key, grant.given_at.timestamp()):
            continue
        granted = snap.lists.get(grant.list_name)
        if granted is not None:
            for rid in granted.spec.exempts:
                found.setdefault(rid, granted.spec.name)
    return found


def explain_exemption(
    snap: Snapshot, attempt: CallAttempt, key: int, now: datetime, exempt: Mapping[str, str],
    rule_id: str,
) -> str:
    """A sentence naming the list (and the ledger grant or entry evidence) that exempts."""
    name = exempt[rule_id]
    view = snap.lists[name]
    grant = covering_grant(snap, attempt, key, now, rule_id)
    if grant is not None and grant.list_name == name:
        scope = ", ".join(
            x for x in (f"tenant {grant.tenant}",
                        f"campaign {grant.campaign}" if grant.campaign else "",
                        f"purpose {grant.purpose.value}" if grant.purpose else "") if x
        )
        ev = f"; evidence: {grant.evidence}" if grant.evidence else ""
        return (f"exempted by consent #{grant.id} on list {name!r} ({scope}; source "
                f"{grant.source or '-'}, given {grant.given_at.isoformat(timespec='minutes')}{ev})")
    ev_text = view.evidence.get(key)
    return f"exempted by list {name!r}" + (f" (evidence: {ev_text})" if ev_text else "")
