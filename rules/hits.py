"""Per-rule hit counters: how often each rule blocked, would have blocked, was exempted.

A ``RuleHits`` lives on the snapshot (``snapshot.hits``); it is the one mutable part of
it. Pass the old snapshot's ``hits`` to ``build_snapshot(..., hits=...)`` to keep counting
across reloads. Outcomes: "block", "shadow" (would block), "exempt" (allow/consent list),
plus the totals "decisions" and "allowed" under the rule id "". Not locked: increments
from one thread (the event loop); readers get a copy.
"""

from __future__ import annotations



class RuleHits:
    __slots__ = ("_counts",)

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str], int] = {}

    def add(self, rule_id: str, outcome: str) -> None:
        key = (rule_id, outcome)
        counts = self._counts
        counts[key] = counts.get(key, 0) + 1

    def retract(self, rule_id: str, outcome: str) -> None:
        """Take back one ``add`` (a verdict changed after the engine counted it)."""
        key = (rule_id, outcome)
        left = self._counts.get(key, 0) - 1
        if left > 0:
            self._counts[key] = left
        else:
            self._counts.pop(key, None)

    def get(self, rule_id: str, outcome: str) -> int:
        return self._counts.get((rule_id, outcome), 0)

    def as_dict(self) -> dict[str, dict[str, int]]:
        """{rule id: {outcome: count}}; totals under ""."""
        out: dict[str, dict[str, int]] = {}
        for (rid, outcome), n in self._counts.items():
            out.setdefault(rid, {})[outcome] = n
        return out

    def counts(self) -> dict[tuple[str, str], int]:
        """A copy of every count, keyed (rule id, outcome)."""
        return dict(self._counts)

    def load(self, counts: dict[tuple[str, str], int]) -> None:
        """Add durable counts (read at start) to what is counted here."""
        for key, n in counts.items():
            self._counts[key] = self._counts.get(key, 0) + n

    def reset(self) -> None:
        self._counts.clear()
