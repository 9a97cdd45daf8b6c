"""Rolling risk figures per account, caller ID and tenant, in memory.

Fed with the Screener's decision and outcome events (and complaints/marks), rebuilt from
the call log on start. Call figures are kept in minute buckets for the last two hours and
in hour buckets for the retention; a window sums the buckets that start inside it, so a
window of up to 2 h is exact to the minute and a longer one to the hour at its old end
(reading a 7-day window touches ~290 buckets, whatever the call volume). Complaints and
marks are rare and kept with their exact times. Nothing here does I/O.
"""

from __future__ import annotations

import logging
from array import array
from bisect import bisect_left, bisect_right
from collections import OrderedDict, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from outguard import figures as defs
from outguard.callevents import FAILED as FAILED_VERDICT
from outguard.callevents import went_out
from outguard.enforcement.records import RiskFigures
from outguard.store.base import LoggedCall
from rules.model import PartyKind

logger = logging.getLogger(__name__)

#: minute buckets are kept this long; older parts of a window are read from hour buckets
FINE_S = 2 * 3600.0
COARSE_BUCKET_S = 3600.0
Party = tuple[PartyKind, str]


ATTEMPTS, ALLOWED, BLOCKED, LISTED, ENDED, ANSWERED, DURATION, SHORT, FAILED = range(9)
_FIELDS = 9
_ZEROS = bytes(8 * _FIELDS)


class Bucket:
    """The counts of one bucket (``own``) and the running totals of its ring up to and
    including it (``cum``): a window's sum is two lookups and one subtraction."""

    __slots__ = ("start", "own", "cum", "by_reason")

    def __init__(self, start: float, cum: array[float] | None = None) -> None:
        self.start = start
        self.own: array[float] = array("d", _ZEROS)
        self.cum: array[float] = array("d", cum if cum is not None else _ZEROS)
        self.by_reason: dict[str, int] | None = None


class _Ring:
    """Buckets of one size, oldest first, kept for ``keep`` seconds."""

    __slots__ = ("size", "keep", "starts", "buckets")

    def __init__(self, size: float, keep: float) -> None:
        self.size = size
        self.keep = keep
        self.starts: list[float] = []
        self.buckets: list[Bucket] = []

    def _at(self, t: float) -> int:
        """Index of the bucket holding ``t`` (created, and old ones dropped, as needed)."""
        start = t - t % self.size
        starts, buckets = self.starts, self.buckets
        if starts and starts[-1] == start:
            return len(starts) - 1
        if not starts or starts[-1] < start:
            buckets.append(Bucket(start, buckets[-1].cum if buckets else None))
            starts.append(start)
            old = bisect_left(starts, t - self.keep - self.size)
            if old:
                del starts[:old], buckets[:old]
            return len(starts) - 1
        pos = bisect_left(starts, start)  # a late event (replay, clock skew)
        if starts[pos] == start:
            return pos
        after = buckets[pos]
        if pos:
            base = buckets[pos - 1].cum
        else:
            base = array("d", (c - o for c, o in zip(after.cum, after.own)))
        buckets.insert(pos, Bucket(start, base))
        starts.insert(pos, start)
        return pos

    def add(self, t: float, values: tuple[tuple[int, float], ...],
            reason: str | None = None) -> None:
        if self.starts and t < self.starts[-1] - self.keep:
            return  # older than what this ring keeps
        pos = self._at(t)
        own = self.buckets[pos].own
        for i, v in values:
            own[i] += v
        for bucket in self.buckets[pos:] if pos < len(self.buckets) - 1 else (self.buckets[pos],):
            cum = bucket.cum
            for i, v in values:
                cum[i] += v
        if reason is not None:
            b = self.buckets[pos]
            if b.by_reason is None:
                b.by_reason = {}
            b.by_reason[reason] = b.by_reason.get(reason, 0) + 1

    def span(self, lo: float, hi: float, strict: bool) -> tuple[int, int]:
        """[i, j) of the buckets that start in [lo, hi] ((lo, hi] when ``strict``)."""
        i = bisect_right(self.starts, lo) if strict else bisect_left(self.starts, lo)
        return i, bisect_right(self.starts, hi)

    def total(self, into: list[float], lo: float, hi: float, strict: bool) -> tuple[int, int]:
        i, j = self.span(lo, hi, strict)
        if j > i:
            first, last = self.buckets[i], self.buckets[j - 1]
            for k in range(_FIELDS):
                into[k] += last.cum[k] - (first.cum[k] - first.own[k])
        return i, j

    def reasons(self, into: dict[str, int], i: int, j: int) -> None:
        for bucket in self.buckets[i:j]:
            for reason, n in (bucket.by_reason or {}).items():
                into[reason] = into.get(reason, 0) + n


@dataclass(slots=True)
class _Series:
    minutes: _Ring
    hours: _Ring
    marks: deque[tuple[float, str]] = field(default_factory=deque)  # (at, reporter)
    complaints: deque[float] = field(default_factory=deque)  # exact times (rare events)
    last_seen: float = 0.0


class RiskBook:
    """The figures; ``figures(kind, key, window_s, now, since)`` reads them."""

    def __init__(self, *, short_call_s: float = defs.DEFAULT_SHORT_CALL_S,
                 retention_s: float = 8 * 86400.0, bucket_s: float = 60.0,
                 max_recent: int = 200_000) -> None:
        self.short_call_s = short_call_s
        self.retention_s = retention_s
        self.bucket_s = bucket_s
        self._series: dict[Party, _Series] = {}
        self._tenant_of: dict[Party, str] = {}
        self._recent: OrderedDict[tuple[str, str], tuple[str, str, float]] = OrderedDict()
        self._max_recent = max_recent
        self.dirty: set[Party] = set()

    # -- feeding ----------------------------------------------------------------------------

    def _add(self, party: Party, at: float, values: tuple[tuple[int, float], ...],
             reason: str | None = None) -> _Series:
        """Count ``values`` at ``at`` in the party's minute and hour buckets."""
        series = self._series.get(party)
        if series is None:
            series = self._series[party] = _Series(
                _Ring(self.bucket_s, FINE_S), _Ring(COARSE_BUCKET_S, self.retention_s))
        series.last_seen = max(series.last_seen, at)
        series.hours.keep = self.retention_s
        if values:
            series.minutes.add(at, values, reason)
            series.hours.add(at, values, reason)
        return series

    def _parties(self, tenant: str, account: str, caller_id: str) -> list[Party]:
        out: list[Party] = []
        if account:
            out.append((PartyKind.ACCOUNT, account))
            if tenant:
                self._tenant_of[(PartyKind.ACCOUNT, account)] = tenant
        if caller_id:
            out.append((PartyKind.CALLER_ID, caller_id))
            if tenant:
                self._tenant_of[(PartyKind.CALLER_ID, caller_id)] = tenant
        if tenant:
            out.append((PartyKind.TENANT, tenant))
        return out

    def decision(self, *, decision_id: str, at: float, tenant: str, account: str,
                 caller_id: str, callee: str, allowed: bool, reason: str,
                 failed: bool = False) -> None:
        """A call was decided. ``failed``: outguard could not screen it (an attempt, neither
        allowed nor blocked); ``allowed`` then says whether fail-open let it out, and its
        outcome counts like an allowed call's."""
        if failed:
            values: tuple[tuple[int, float], ...] = ((ATTEMPTS, 1), (FAILED, 1))
        elif allowed:
            values = ((ATTEMPTS, 1), (ALLOWED, 1))
        else:
            values = ((ATTEMPTS, 1), (BLOCKED, 1), (LISTED, defs.is_listed(reason)))
        blocked_by = None if allowed or failed else reason
        for party in self._parties(tenant, account, caller_id):
            self._add(party, at, values, blocked_by)
            self.dirty.add(party)
        if allowed:
            self.remember_call(caller_id, callee, account, tenant, at)

    def outcome(self, *, at: float, answered: bool, duration: float | None, tenant: str,
                account: str, caller_id: str) -> None:
        """An allowed call ended (the parties come with it: the live-call registry holds
        them while the call is up). An answered call of unknown duration (its end was
        learnt after a restart) counts as answered, not as short."""
        values: tuple[tuple[int, float], ...] = ((ENDED, 1),)
        if answered and duration is None:
            values = ((ENDED, 1), (ANSWERED, 1))
        elif answered and duration is not None:
            values = ((ENDED, 1), (ANSWERED, 1), (DURATION, duration),
                      (SHORT, defs.is_short(duration, self.short_call_s)))
        for party in self._parties(tenant, account, caller_id):
            self._add(party, at, values)
            self.dirty.add(party)

    def complaint(self, *, at: float, caller_id: str, tenant: str | None,
                  account: str | None) -> None:
        for party in self._parties(tenant or "", account or "", caller_id):
            _keep(self._add(party, at, ()).complaints, at, at - self.retention_s)
            self.dirty.add(party)

    def mark(self, *, at: float, caller_id: str, reporter: str, tenant: str | None) -> None:
        party = (PartyKind.CALLER_ID, caller_id)
        marks = self._add(party, at, ()).marks
        if tenant:
            self._tenant_of[party] = tenant
        marks.append((at, reporter))
        while marks and marks[0][0] < at - self.retention_s:
            marks.popleft()
        self.dirty.add(party)

    def replay(self, calls: Iterable[LoggedCall]) -> int:
        """Feed the call log (oldest first) as if the events had just happened."""
        n = 0
        for logged in calls:
            c = logged.call
            allowed = went_out(c.verdict, c.rule)
            self.decision(decision_id=c.decision_id, at=c.at, tenant=c.tenant,
                          account=c.account, caller_id=c.caller_id, callee=c.destination,
                          allowed=allowed, reason=c.reason, failed=c.verdict == FAILED_VERDICT)
            if allowed and logged.ended_at is not None:
                self.outcome(at=logged.ended_at, answered=logged.answered_at is not None,
                             duration=logged.duration, tenant=c.tenant, account=c.account,
                             caller_id=c.caller_id)
            n += 1
        return n

    # -- who called whom -------------------------------------------------------------------

    def remember_call(self, caller_id: str, callee: str, account: str, tenant: str,
                      at: float) -> None:
        key = (caller_id, callee)
        self._recent.pop(key, None)
        self._recent[key] = (account, tenant, at)
        if len(self._recent) > self._max_recent:
            self._recent.popitem(last=False)

    def last_call(self, caller_id: str, callee: str) -> tuple[str, str, float] | None:
        """(account, tenant, at) of the last allowed call from caller_id to callee."""
        return self._recent.get((caller_id, callee))

    def known(self, kind: PartyKind, key: str) -> bool:
        """Whether the party has any figures."""
        return (kind, key) in self._series

    def tenant_of(self, kind: PartyKind, key: str) -> str | None:
        if kind is PartyKind.TENANT:
            return key
        return self._tenant_of.get((kind, key))

    # -- reading ---------------------------------------------------------------------------

    def parties(self, kind: PartyKind, since: float = 0.0) -> Iterator[str]:
        for (k, key), series in self._series.items():
            if k is kind and series.last_seen >= since:
                yield key

    def figures(self, kind: PartyKind, key: str, window_s: float, now: float,
                since: float | None = None, *, reasons: bool = True) -> RiskFigures:
        """Figures over [now - window_s, now], or over (since, now] when ``since`` is
        later (a trigger's baseline: the bucket holding it is left out too).
        ``reasons=False`` skips ``blocks_by_reason`` (the only part that costs a loop)."""
        start = now - window_s
        after = since is not None and since >= start  # the baseline binds: strictly after it
        if since is not None and after:
            start = since
        series = self._series.get((kind, key))
        f = [0.0] * _FIELDS
        by_reason: dict[str, int] = {}
        marks = complaints = 0
        if series is not None:
            if start >= now - FINE_S:
                i, j = series.minutes.total(f, start, now, after)
                if reasons:
                    series.minutes.reasons(by_reason, i, j)
            else:  # whole hours up to the last hour, minutes after that
                cut = now - 3600.0
                cut -= cut % COARSE_BUCKET_S
                i, j = series.hours.total(f, start, cut - COARSE_BUCKET_S, after)
                k, m = series.minutes.total(f, cut, now, False)
                if reasons:
                    series.hours.reasons(by_reason, i, j)
                    series.minutes.reasons(by_reason, k, m)
            lo = start
            complaints = sum(1 for at in series.complaints
                             if (lo < at if after else lo <= at) and at <= now)
            marks = len({r for at, r in series.marks
                         if (lo < at if after else lo <= at) and at <= now})
        return _result(kind, key, window_s, f, by_reason, complaints, marks)

    def between(self, kind: PartyKind, key: str, lo: float, hi: float) -> RiskFigures:
        """Figures over [lo, hi) to the hour: the hour buckets that start in it (a day in
        the policy's zone, a trigger's baseline). Complaints and marks to the second."""
        series = self._series.get((kind, key))
        f = [0.0] * _FIELDS
        complaints = marks = 0
        if series is not None and hi > lo:
            series.hours.total(f, lo, hi - 1e-6, False)
            complaints = sum(1 for at in series.complaints if lo <= at < hi)
            marks = len({r for at, r in series.marks if lo <= at < hi})
        return _result(kind, key, hi - lo, f, {}, complaints, marks)


def _result(kind: PartyKind, key: str, window_s: float, f: list[float],
            by_reason: dict[str, int], complaints: int, marks: int) -> RiskFigures:
    """The figures of summed bucket counts, each with its one definition (figures.py)."""
    n = [round(v) for v in f]
    ended, answered, short = n[ENDED], n[ANSWERED], n[SHORT]
    return RiskFigures(
        kind=kind, key=key, window_s=window_s, attempts=n[ATTEMPTS], allowed=n[ALLOWED],
        blocked=n[BLOCKED], failed=n[FAILED], ended=ended, answered=answered,
        connect_rate=defs.connect_rate(answered, ended),
        avg_duration_s=defs.avg_duration(f[DURATION], answered),
        short_calls=short, short_call_ratio=defs.short_call_ratio(short, answered),
        listed_blocks=n[LISTED], blocks_by_reason=by_reason,
        complaints=complaints, marks=marks,
    )


def _keep(times: deque[float], at: float, oldest: float) -> None:
    times.append(at)
    while times and times[0] < oldest:
        times.popleft()
