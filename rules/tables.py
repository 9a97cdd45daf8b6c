"""Compact lookup tables for snapshots: number sets and longest-prefix tables.

``NumberSet`` keeps a list's numbers as a sorted ``array('q')`` of integer keys
(``numbers.to_key``: the E.164 digits; negative for short codes), 8 bytes per number,
looked up with ``bisect`` (C code, about a microsecond). Entries with an expiry live in a
second sorted key array with a parallel ``array('I')`` of expiry minutes since the epoch,
so lists without expiring entries pay nothing for expiry.

``NumberSetBuilder`` sorts in chunks of ``CHUNK`` keys (one Python list of at most that
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
_MASK = 0xFFFFFFFF


class NumberSet:
    """An immutable set of number keys, some with an expiry minute."""

    __slots__ = ("_keys", "_exp_keys", "_exp_until")

    def __init__(self, keys: array, exp_keys: array, exp_until: array) -> None:  # type: ignore[type-arg]
        self._keys = keys
        self._exp_keys = exp_keys
        self._exp_until = exp_until

    def __len__(self) -> int:
        return len(self._keys) + len(self._exp_keys)

    def contains(self, key: int, now_min: int) -> bool:
        """Listed and not expired at ``now_min`` (minutes since the epoch)."""
        keys = self._keys
        i = bisect_left(keys, key)
        if i < len(keys) and keys[i] == key:
            return True
        if not self._exp_keys:
            return False
        until = self.expiry(key)
        return until is not None and until > now_min

    def expiry(self, key: int) -> int | None:
        """Expiry minute of an expiring entry, None when absent or never expiring."""
        ek = self._exp_keys
        j = bisect_left(ek, key)
        if j < len(ek) and ek[j] == key:
            return int(self._exp_until[j])
        return None

    def nbytes(self) -> int:
        return sum(a.itemsize * len(a) for a in (self._keys, self._exp_keys, self._exp_until))


class NumberSetBuilder:
    """Collects keys in sorted chunks; ``build()`` merges them into a ``NumberSet``."""

    def __init__(self) -> None:
        self._pending: list[int] = []
        self._chunks: list[array] = []  # type: ignore[type-arg]
        self._exp_pending: list[int] = []  # key << 32 | minute, sorts by key then minute
        self._exp_chunks: list[list[int]] = []

    def add(self, key: int, until_min: int | None = None) -> None:
        if until_min is None:
            self._pending.append(key)
            if len(self._pending) >= CHUNK:
                self._flush()
        else:
            self._exp_pending.append((key << 32) | (until_min & _MASK))
            if len(self._exp_pending) >= CHUNK:
                self._exp_pending.sort()
                self._exp_chunks.append(self._exp_pending)
                self._exp_pending = []

    def _flush(self) -> None:
        self._pending.sort()
        self._chunks.append(array("q", self._pending))
        self._pending = []

    def build(self) -> NumberSet:
        if self._pending:
            self._flush()
        keys = array("q")
        last: int | None = None
        for k in _merge(self._chunks):
            if k != last:
                keys.append(k)
                last = k
        self._chunks = []
        self._exp_pending.sort()
        exp_keys, exp_until = array("q"), array("I")
        for packed in heapq.merge(*self._exp_chunks, self._exp_pending):
            k, m = packed >> 32, packed & _MASK
            if exp_keys and exp_keys[-1] == k:
                exp_until[-1] = max(exp_until[-1], m)  # the later expiry wins
            else:
                exp_keys.append(k)
                exp_until.append(m)
        self._exp_chunks, self._exp_pending = [], []
        return NumberSet(keys, exp_keys, exp_until)


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
