"""In-memory rate counters: the rate side of the ``model.Counters`` protocol (calls in
progress, the concurrency side, are the live-call registry's: ``outguard.live``).

What counts: only calls the engine let through. The service calls ``record()`` once for
each allowed call (shadow-mode "would block" calls included, since they were placed);
blocked attempts never count toward a cap, so a blocked dialer cannot lock itself out
further by retrying. After a restart the service replays the durable call log by calling
``record()`` with each row's own timestamp (oldest first), or ``rebuild(rows)``.

Sliding windows are bucketed: per-second buckets (kept 120 s) answer windows up to two
minutes, per-minute buckets (kept 25 h) windows up to 25 hours, per-day buckets (kept 8
days) longer ones up to a week; destinations use per-minute buckets (kept 8 days) in
``rules.dest_counts``, two 64-bit words per callee, so that hundreds of thousands of new
callees a day stay megabytes, not gigabytes, and per-callee limits of 1 a minute or 5 an
hour can be counted. A window
counts every bucket that overlaps it, so a count may include up to one bucket more than
the exact window: caps err on the side of blocking. Memory is bounded: old buckets are
dropped on write, idle keys by ``prune()`` (run automatically every five clock minutes).

Each series keeps bucket starts and running totals (a prefix sum) in two int64 arrays,
so a window query is one ``bisect`` whatever the window length.

Thread safety: none; call from one thread (the event loop).
"""

from __future__ import annotations

import time
from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from rules.dest_counts import DestCounts, dest_key

__all__ = ["InMemoryCounters", "CallRow", "TRACKABLE"]

_PARTY_SCOPES = ("account", "caller_id", "tenant")
#: every scope ``record`` can count (a cap's ``scope``, concurrency aside)
TRACKABLE = frozenset((*_PARTY_SCOPES, "destination", "distinct_callees"))
_RESOLUTIONS = ((1, 120), (60, 25 * 60), (86400, 8))  # (bucket seconds, buckets kept)
_DEST_KEEP_S = 8 * 86400
_PRUNE_EVERY_S = 300.0


@dataclass(slots=True)
class _Series:
    """Counts per bucket as parallel lists: bucket index, running total up to it."""

    res: int
    keep: int
    # arrays, not lists: the values sit inline, so a cold lookup touches few cache lines
    starts: array[int] = field(default_factory=lambda: array("q"))
    totals: array[int] = field(default_factory=lambda: array("q"))
    dropped: int = 0  # the calls in buckets already dropped: the running totals start here

    def add(self, ts: float, n: int = 1) -> None:
        b = int(ts // self.res)
        starts, totals = self.starts, self.totals
        if starts and starts[-1] == b:
            totals[-1] += n
        elif not starts or starts[-1] < b:
            starts.append(b)
            totals.append((totals[-1] if totals else self.dropped) + n)
            self._drop_before(b - self.keep)
        else:
            self._insert(b, n)

    def _insert(self, b: int, n: int) -> None:
        """An out-of-order write (replay not sorted): rare, linear in the buckets kept."""
        i = bisect_left(self.starts, b)
        if i < len(self.starts) and self.starts[i] == b:
            pass
        else:
            self.starts.insert(i, b)
            self.totals.insert(i, self.totals[i - 1] if i else self.dropped)
        for j in range(i, len(self.totals)):
            self.totals[j] += n

    def _drop_before(self, b: int) -> None:
        if self.starts and self.starts[0] < b:
            i = bisect_left(self.starts, b)
            self.dropped = self.totals[i - 1]
            del self.starts[:i]
            del self.totals[:i]

    def count(self, window_s: int, now: float) -> int:
        """Total of buckets overlapping (now - window_s, now]."""
        starts = self.starts
        if not starts:
            return 0
        res = self.res
        first = int((now - window_s) // res)
        last = int(now // res)
        hi = len(starts) if starts[-1] <= last else bisect_left(starts, last + 1)
        lo = 0 if starts[0] >= first else bisect_left(starts, first)
        if hi <= lo:
            return 0
        totals = self.totals
        return totals[hi - 1] - (totals[lo - 1] if lo else self.dropped)

    def remove(self, ts: float) -> None:
        """Take back one call counted at ``ts`` (its bucket, if still held)."""
        b = int(ts // self.res)
        i = bisect_left(self.starts, b)
        if i < len(self.starts) and self.starts[i] == b and self.count_at(i) > 0:
            totals = self.totals
            for j in range(i, len(totals)):
                totals[j] -= 1

    def count_at(self, i: int) -> int:
        return self.totals[i] - (self.totals[i - 1] if i else self.dropped)

    def idle(self, now: float) -> bool:
        return not self.starts or self.starts[-1] < int(now // self.res) - self.keep


@dataclass(slots=True)
class _Party:
    series: tuple[_Series, ...] = field(
        default_factory=lambda: tuple(_Series(r, k) for r, k in _RESOLUTIONS)
    )

    def add(self, ts: float) -> None:
        for s in self.series:
            s.add(ts)

    def remove(self, ts: float) -> None:
        for s in self.series:
            s.remove(ts)

    def count(self, window_s: int, now: float) -> int:
        """From the finest series whose retention covers the window."""
        series = self.series
        if window_s < 120:
            return series[0].count(window_s, now)
        if window_s < 60 * 1499:
            return series[1].count(window_s, now)
        return series[2].count(window_s, now)


@dataclass(frozen=True, slots=True)
class CallRow:
    """A historical allowed call, for ``rebuild``."""

    tenant: str
    account: str
    caller_id: str
    destination_e164: str
    at: float  # epoch seconds


class InMemoryCounters:
    """Rate and distinct-callee counters with an injectable clock.

    ``day_offset_s`` shifts the calendar day used by ``distinct_callees`` (e.g. 28800
    for Asia/Shanghai midnight); the default is UTC days.
    """

    def __init__(self, clock: Callable[[], float] = time.time, day_offset_s: int = 0,
                 prune_every_s: float = _PRUNE_EVERY_S,
                 track: Iterable[str] = TRACKABLE) -> None:
        self._clock = clock
        self._day_offset = day_offset_s
        self._prune_every_s = prune_every_s  # policy replay walks a week: prunes daily
        tracked = frozenset(track)
        if tracked - TRACKABLE:
            raise ValueError(f"unknown counter scopes {sorted(tracked - TRACKABLE)}")
        #: what record() counts: every scope (the service), or only those a policy's caps
        #: read (policy replay: a counter nobody reads is work for nothing)
        self._party_scopes = tuple(s for s in _PARTY_SCOPES if s in tracked)
        self._track_dests = "destination" in tracked
        self._track_callees = "distinct_callees" in tracked
        self._parties: dict[tuple[str, str], _Party] = {}
        self._dests: dict[str, DestCounts] = {}  # per tenant
        #: (account, day) -> {dest_key(): calls}: the calls, so that one taken back
        #: (``forget``) leaves a callee called again that day counted
        self._callees: dict[tuple[str, int], dict[int, int]] = {}
        self._last_prune = -1e18

    # write side -----------------------------------------------------------------------
    def record(
        self,
        tenant: str,
        account: str,
        caller_id: str,
        destination_e164: str,
        now: float | None = None,
    ) -> None:
        """Count one allowed call placed at ``now`` (default: the clock)."""
        ts = self._clock() if now is None else now
        keys = {"account": account, "caller_id": caller_id, "tenant": tenant}
        for scope in self._party_scopes:
            key = keys[scope]
            if key:
                party = self._parties.get((scope, key))
                if party is None:
                    party = self._parties[(scope, key)] = _Party()
                party.add(ts)
        if self._track_dests:
            dests = self._dests.get(tenant)
            if dests is None:
                dests = self._dests[tenant] = DestCounts(_DEST_KEEP_S)
            dests.add(destination_e164, ts)
        if self._track_callees:
            callees = self._callees.setdefault((account, self._day(ts)), {})
            ckey = dest_key(destination_e164)
            callees[ckey] = callees.get(ckey, 0) + 1
        if ts - self._last_prune > self._prune_every_s:
            self._prune(max(ts, self._clock()), destinations=False)

    def forget(self, tenant: str, account: str, caller_id: str, destination_e164: str,
               at: float) -> None:
        """Take back one call ``record`` counted at ``at`` with these keys: a decision that
        was never carried out (``outguard.service``: only calls that went out count).
        Buckets already dropped are left alone."""
        keys = {"account": account, "caller_id": caller_id, "tenant": tenant}
        for scope in self._party_scopes:
            party = self._parties.get((scope, keys[scope])) if keys[scope] else None
            if party is not None:
                party.remove(at)
        dests = self._dests.get(tenant) if self._track_dests else None
        held = dests.remove(destination_e164, at) if dests is not None else (
            not self._track_dests)
        # the callee only when its call was held (the destination counts say so)
        callees = self._callees.get((account, self._day(at))) if self._track_callees else None
        ckey = dest_key(destination_e164)
        if held and callees is not None and ckey in callees:
            if callees[ckey] > 1:
                callees[ckey] -= 1
            else:
                del callees[ckey]

    def rebuild(self, rows: Iterable[CallRow | tuple[str, str, str, str, float]]) -> int:
        """Replay historical allowed calls (oldest first is fastest); returns the count."""
        n = 0
        for row in rows:
            if isinstance(row, CallRow):
                self.record(row.tenant, row.account, row.caller_id, row.destination_e164, row.at)
            else:
                self.record(*row)
            n += 1
        return n

    def prune(self, now: float | None = None) -> None:
        """Drop keys with no bucket left in their retention, and past days' callee sets.
        (``record`` prunes by itself: parties every five minutes, destinations shard by
        shard as they grow, so that no call pays for a sweep of every callee.)"""
        self._prune(self._clock() if now is None else now, destinations=True)

    def _prune(self, ts: float, *, destinations: bool) -> None:
        self._last_prune = ts
        for pkey in [k for k, p in self._parties.items() if all(s.idle(ts) for s in p.series)]:
            del self._parties[pkey]
        if destinations:
            for tenant, dests in list(self._dests.items()):
                dests.prune(ts)
                if not len(dests):
                    del self._dests[tenant]
        today = self._day(ts)
        for ckey in [k for k in self._callees if k[1] < today]:
            del self._callees[ckey]

    # read side (model.Counters) ---------------------------------------------------------
    def attempts(self, scope: str, key: str, window_s: int, now: float) -> int:
        party = self._parties.get((scope, key))
        if party is None:
            if scope not in _PARTY_SCOPES:
                raise ValueError(f"unknown counter scope {scope!r}")
            return 0
        # _Party.count inlined (hot path): the finest series whose retention covers it
        series = party.series[0 if window_s < 120 else 1 if window_s < 89940 else 2]
        return series.count(window_s, now)

    def destination_attempts(self, tenant: str, e164: str, window_s: int, now: float) -> int:
        dests = self._dests.get(tenant)
        return 0 if dests is None else dests.count(e164, window_s, now)

    def distinct_callees(self, account: str, now: float) -> int:
        return len(self._callees.get((account, self._day(now)), ()))

    # introspection ----------------------------------------------------------------------
    def sizes(self) -> dict[str, int]:
        """How many keys each table holds (for metrics and memory checks)."""
        return {
            "parties": len(self._parties),
            "destinations": sum(len(d) for d in self._dests.values()),
            "callee_days": len(self._callees),
        }

    def _day(self, ts: float) -> int:
        return int((ts + self._day_offset) // 86400)
