"""The enforcer's in-memory copy of suspensions and appeal approvals (pure, no I/O).

Strikes, active suspensions and trigger baselines are read from here, so evaluating the
triggers costs no database round trip. The enforcer reloads it from the store whenever the
store reports a change (the CLI in another process may have lifted something).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from outguard.store.base import Appeal, AppealState, Suspension, to_ts
from rules.model import PartyKind, PartyState

Party = tuple[PartyKind, str]

#: appended to a lift reason when the lift also clears the strike (durable with the row)
STRIKE_CLEARED = "[strike cleared]"
#: the trigger name of caller-ID verification suspensions (not a strike)
VERIFICATION = "verification"


def counts_as_strike(s: Suspension) -> bool:
    return s.trigger != VERIFICATION and STRIKE_CLEARED not in (s.lift_reason or "")


def fold(suspensions: Iterable[Suspension], now: datetime) -> tuple[PartyState, Suspension | None]:
    """The party's state from its active suspensions, as the store folds it for the
    snapshot: a permanent one wins (DISABLED), else the one that ends last (SUSPENDED)."""
    best: Suspension | None = None
    for s in suspensions:
        if not s.active_at(now):
            continue
        if s.ends_at is None:
            if best is None or best.ends_at is not None:
                best = s
        elif best is None or (best.ends_at is not None and best.ends_at < s.ends_at):
            best = s
    if best is None:
        return PartyState.ACTIVE, None
    return (PartyState.DISABLED if best.ends_at is None else PartyState.SUSPENDED), best


class Ledger:
    def __init__(self) -> None:
        self._by_party: dict[Party, list[Suspension]] = {}
        self._cleared: dict[Party, float] = {}  # latest approved appeal per party

    def load(self, suspensions: Iterable[Suspension], appeals: Iterable[Appeal]) -> None:
        by_party: dict[Party, list[Suspension]] = {}
        for s in suspensions:
            by_party.setdefault((s.party_kind, s.party_key), []).append(s)
        cleared: dict[Party, float] = {}
        for a in appeals:
            if a.state is AppealState.APPROVED and a.decided_at is not None:
                party = (a.party_kind, a.party_key)
                cleared[party] = max(cleared.get(party, 0.0), a.decided_at.timestamp())
        # keep clearings made with an injected clock that the store's rows do not show
        for party, at in self._cleared.items():
            cleared[party] = max(cleared.get(party, 0.0), at)
        self._by_party, self._cleared = by_party, cleared

    def put(self, s: Suspension) -> None:
        """Add or replace (after a lift) one suspension."""
        rows = self._by_party.setdefault((s.party_kind, s.party_key), [])
        for i, old in enumerate(rows):
            if old.id == s.id:
                rows[i] = s
                return
        rows.append(s)

    def clear(self, party: Party, at: float) -> None:
        self._cleared[party] = max(self._cleared.get(party, 0.0), at)

    def of(self, party: Party) -> list[Suspension]:
        return list(self._by_party.get(party, ()))

    def active(self, party: Party, now: datetime) -> list[Suspension]:
        return [s for s in self._by_party.get(party, ()) if s.active_at(now)]

    def ended_between(self, start: float, end: float) -> set[Party]:
        """Parties with a timed suspension that ran out (not lifted) in (start, end]."""
        out: set[Party] = set()
        for party, rows in self._by_party.items():
            for s in rows:
                t = to_ts(s.ends_at)
                if t is not None and s.lifted_at is None and start < t <= end:
                    out.add(party)
        return out

    def parties(self) -> list[Party]:
        return list(self._by_party)

    def strikes(self, party: Party, now: datetime, lookback_s: float) -> int:
        """Suspensions of the party that started within the lookback and still count."""
        oldest = now.timestamp() - lookback_s
        return sum(1 for s in self._by_party.get(party, ())
                   if counts_as_strike(s) and s.started_at.timestamp() >= oldest)

    def baseline(self, trigger: str, party: Party) -> float | None:
        """From when the trigger counts for this party again: after its last suspension
        by this trigger started (or was lifted by a person), or after an approved appeal."""
        best = self._cleared.get(party)
        for s in self._by_party.get(party, ()):
            if s.trigger != trigger:
                continue
            at = to_ts(s.lifted_at) if s.lifted_at is not None else to_ts(s.started_at)
            if at is not None and (best is None or at > best):
                best = at
        return best
