"""Compact lookup tables for snapshots: one index over all lists, longest-prefix tables.

``ListIndex`` holds every (number, list) pair of a snapshot in one sorted ``array('q')``
of packed ints ``key << 13 | list_id`` (``key`` = ``numbers.to_key``: the E.164 digits,
negative for short codes; up to ``MAX_LISTS`` lists). 8 bytes per listed number and list.
One search finds every list a number is on, so a decision costs one lookup however many
lists the policy uses. A fence of every ``FENCE``-th value (1/256 of the array, small
enough to stay in the CPU cache) narrows the search to one 2 KB stretch of the big array,
and a bit filter (one byte per entry) skips the search for most numbers on no list.
Entries with an expiry live in a second packed array with a parallel ``array('I')`` of
expiry minutes since the epoch, so lists without expiring entries pay nothing for expiry.

``ListIndexBuilder`` sorts in chunks of ``CHUNK`` values (one Python list of at most that
many ints at a time) and merges the sorted chunks, so building from 10M numbers never
holds 10M Python objects at once.

``PrefixTable`` maps digit prefixes to allow/deny; the longest matching prefix decides.
Lookups try each distinct prefix length present, longest first: one dict probe per length.
"""

from __future__ import annotations

import heapq
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Iterator

CHUNK = 1 << 18
FENCE = 256
BITS_PER_KEY = 8
LIST_BITS = 13
MAX_LISTS = (1 << LIST_BITS) - 1
_LIST_MASK = MAX_LISTS
_MIN32 = 0xFFFFFFFF
_NO_LISTS: tuple[int, ...] = ()


def _lower_bound(values: array, fence: array, target: int) -> int:  # type: ignore[type-arg]
    """First index with values[i] >= target (fence = values[::FENCE])."""
    f = bisect_left(fence, target)
    if f == 0:
        return 0
    lo = (f - 1) * FENCE
    n = len(values)
    hi = f * FENCE if f * FENCE < n else n
    return bisect_left(values, target, lo, hi)


class ListIndex:
    """Immutable: which lists each number is on, some entries with an expiry minute.

    A one-hash bit filter (8 bits per listed number, ~12% false positives) answers "on no
    list" for most numbers without touching the big arrays.
    """

    __slots__ = ("_vals", "_fence", "_exp", "_exp_fence", "_exp_until", "_bits", "_m")

    def __init__(self, vals: array, exp: array, exp_until: array) -> None:  # type: ignore[type-arg]
        self._vals = vals
        self._fence = vals[::FENCE]
        self._exp = exp
        self._exp_fence = exp[::FENCE]
        self._exp_until = exp_until
        self._m = max(64, BITS_PER_KEY * (len(vals) + len(exp))) | 1
        self._bits = _filter(self._m, vals, exp)

    def __len__(self) -> int:
        """(number, list) pairs held."""
        return len(self._vals) + len(self._exp)

    def lists_of(self, key: int, now_min: int) -> tuple[int, ...]:
        """Ids of the lists ``key`` is on and not expired at ``now_min``; () when none."""
        h = key % self._m
        if not (self._bits[h >> 3] >> (h & 7)) & 1:
            return _NO_LISTS
        target = key << LIST_BITS
        vals = self._vals
        i = _lower_bound(vals, self._fence, target)
        n = len(vals)
        found = _NO_LISTS
        while i < n and vals[i] >> LIST_BITS == key:
            found = (*found, vals[i] & _LIST_MASK)
            i += 1
        if self._exp:
            found = self._expiring(key, target, now_min, found)
        return found

    def _expiring(self, key: int, target: int, now_min: int, found: tuple[int, ...]) -> tuple[int, ...]:
        exp, until = self._exp, self._exp_until
        j = _lower_bound(exp, self._exp_fence, target)
        n = len(exp)
        while j < n and exp[j] >> LIST_BITS == key:
            lid = exp[j] & _LIST_MASK
            if until[j] > now_min and lid not in found:
                found = (*found, lid)
            j += 1
        return found

    def expiry(self, key: int, list_id: int) -> int | None:
        """Expiry minute of an expiring entry, None when absent or never expiring."""
        packed = (key << LIST_BITS) | list_id
        j = _lower_bound(self._exp, self._exp_fence, packed)
        if j < len(self._exp) and self._exp[j] == packed:
            return int(self._exp_until[j])
        return None

    def nbytes(self) -> int:
        arrays = (self._vals, self._fence, self._exp, self._exp_fence, self._exp_until)
        return sum(a.itemsize * len(a) for a in arrays) + len(self._bits)


def _filter(m: int, *sources: array) -> bytearray:  # type: ignore[type-arg]
    """Bit ``key % m`` set for every key in the packed arrays."""
    bits = bytearray((m >> 3) + 1)
    for packed in sources:
        for v in packed:
            h = (v >> LIST_BITS) % m
            bits[h >> 3] |= 1 << (h & 7)
    return bits


class ListIndexBuilder:
    """Collects (key, list id, expiry) in sorted chunks; ``build()`` merges them."""

    def __init__(self) -> None:
        self._pending: list[int] = []
        self._chunks: list[array] = []  # type: ignore[type-arg]
        self._exp_pending: list[int] = []  # packed << 32 | minute: sorts by packed, minute
        self._exp_chunks: list[list[int]] = []

    def add(self, key: int, list_id: int, until_min: int | None = None) -> None:
        packed = (key << LIST_BITS) | list_id
        if until_min is None:
            self._pending.append(packed)
            if len(self._pending) >= CHUNK:
                self._flush()
        else:
            self._exp_pending.append((packed << 32) | (until_min & _MIN32))
            if len(self._exp_pending) >= CHUNK:
                self._exp_pending.sort()
                self._exp_chunks.append(self._exp_pending)
                self._exp_pending = []

    def _flush(self) -> None:
        self._pending.sort()
        self._chunks.append(array("q", self._pending))
        self._pending = []

    def build(self) -> ListIndex:
        if self._pending:
            self._flush()
        vals = array("q")
        last: int | None = None
        for v in _merge(self._chunks):
            if v != last:  # the same number twice on one list
                vals.append(v)
                last = v
        self._chunks = []
        self._exp_pending.sort()
        exp, exp_until = array("q"), array("I")
        for packed in heapq.merge(*self._exp_chunks, self._exp_pending):
            v, m = packed >> 32, packed & _MIN32
            if exp and exp[-1] == v:
                exp_until[-1] = max(exp_until[-1], m)  # the later expiry wins
            else:
                exp.append(v)
                exp_until.append(m)
        self._exp_chunks, self._exp_pending = [], []
        return ListIndex(vals, exp, exp_until)


def _merge(chunks: list[array]) -> Iterator[int]:  # type: ignore[type-arg]
    if len(chunks) == 1:
        return iter(chunks[0])
    return heapq.merge(*chunks)


class PrefixTable:
    """Longest-prefix match of digit strings against allow/deny prefixes."""

    __slots__ = ("_table", "_lengths", "conflicts")

    def __init__(self, allow: Iterable[str] = (), deny: Iterable[str] = ()) -> None:
        table: dict[str, bool] = {}
        self.conflicts: list[str] = []  # prefixes both allowed and denied (deny kept)
        for p in allow:
            table[p] = True
        for p in deny:
            if table.get(p) is True:
                self.conflicts.append(p)
            table[p] = False
        self._table = table
        self._lengths = tuple(sorted({len(p) for p in table}, reverse=True))

    def __len__(self) -> int:
        return len(self._table)

    def match(self, digits: str) -> tuple[str, bool] | None:
        """(prefix, allowed) of the longest matching prefix, or None."""
        table, n = self._table, len(digits)
        for length in self._lengths:
            if length <= n:
                hit = table.get(digits[:length])
                if hit is not None:
                    return digits[:length], hit
        return None
