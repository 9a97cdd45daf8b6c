"""Per-destination call counts in a few bytes per callee (for per-destination caps).

A call centre of 2,000 seats reaches hundreds of thousands of new callees a day and the
weekly caps need 8 days of them: a Python object per callee (a dict entry, a tuple key,
two arrays: ~570 bytes) makes that gigabytes. Here a callee costs two 64-bit words:

* its key: the E.164 digits as an integer (``+8613800138000`` -> 8613800138000), or a
  56-bit BLAKE2 hash with bit 60 set for numbers that are not all digits (short codes);
* its last two call hours, packed as ``older << 32 | newer`` (hours since the epoch,
  plus one; 0 = none). A callee called more than twice within the retention keeps the
  older hours in a small overflow array (rare: caps stop such callees early).

Keys live in ``SHARDS`` small sorted ``array('Q')`` shards (by the key's low bits), the
packed hours in a parallel array: a lookup is one ``bisect`` in a shard of a few hundred
entries, an insert one ``array.insert`` there. Counts are at hour granularity: a window
counts every hour bucket it overlaps, as the other counters do (errs on the side of
blocking). A shard drops callees with no call in the last ``keep_hours`` when it has grown
by ``PRUNE_EVERY`` inserts since its last sweep, so memory follows the callees of the
retention, not of all time, with no pause.

Thread safety: none; call from one thread (the event loop).
"""

from __future__ import annotations

import hashlib
from array import array
from bisect import bisect_left

__all__ = ["DestCounts", "dest_key"]

SHARDS = 1024
PRUNE_EVERY = 64
_HASHED = 1 << 60
_LOW = 0xFFFFFFFF


def dest_key(e164: str) -> int:
    """The integer key of a number (see the module docstring)."""
    digits = e164[1:] if e164.startswith("+") else e164
    if digits.isascii() and digits.isdigit() and 0 < len(digits) <= 17:
        return int(digits)
    digest = hashlib.blake2b(e164.encode("utf-8", "surrogatepass"), digest_size=7).digest()
    return _HASHED | int.from_bytes(digest, "big")


class DestCounts:
    """Calls per destination per hour bucket, kept ``keep_hours``."""

    __slots__ = ("keep_hours", "_keys", "_hours", "_more", "_since_prune", "_size")

    def __init__(self, keep_hours: int = 8 * 24) -> None:
        self.keep_hours = keep_hours
        self._keys: list[array[int] | None] = [None] * SHARDS
        self._hours: list[array[int] | None] = [None] * SHARDS
        self._more: dict[int, array[int]] = {}  # key -> older hours (3rd call and on)
        self._since_prune = array("H", bytes(2 * SHARDS))
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def add(self, e164: str, ts: float) -> None:
        key = dest_key(e164)
        hour = int(ts // 3600) + 1
        shard = key % SHARDS
        keys, hours = self._keys[shard], self._hours[shard]
        if keys is None or hours is None:
            keys = self._keys[shard] = array("Q")
            hours = self._hours[shard] = array("Q")
        i = bisect_left(keys, key)
        if i < len(keys) and keys[i] == key:
            packed = hours[i]
            older, newer = packed >> 32, packed & _LOW
            if older:
                self._more.setdefault(key, array("I")).append(older)
            hours[i] = (newer << 32) | hour
            return
        keys.insert(i, key)
        hours.insert(i, hour)
        self._size += 1
        self._since_prune[shard] += 1
        if self._since_prune[shard] >= PRUNE_EVERY:
            self._prune_shard(shard, hour)

    def count(self, e164: str, window_s: int, now: float) -> int:
        """Calls to ``e164`` in hour buckets overlapping (now - window_s, now]."""
        key = dest_key(e164)
        keys, hours = self._keys[key % SHARDS], self._hours[key % SHARDS]
        if keys is None or hours is None:
            return 0
        i = bisect_left(keys, key)
        if i == len(keys) or keys[i] != key:
            return 0
        first = int((now - window_s) // 3600) + 1
        last = int(now // 3600) + 1
        packed = hours[i]
        n = sum(1 for h in (packed >> 32, packed & _LOW) if h and first <= h <= last)
        more = self._more.get(key)
        if more is not None:
            n += sum(1 for h in more if first <= h <= last)
        return n

    def prune(self, now: float) -> None:
        """Sweep every shard now (the service's periodic prune; adds sweep as they grow)."""
        hour = int(now // 3600) + 1
        for shard in range(SHARDS):
            if self._keys[shard]:
                self._prune_shard(shard, hour)

    def _prune_shard(self, shard: int, hour: int) -> None:
        self._since_prune[shard] = 0
        keys, hours = self._keys[shard], self._hours[shard]
        assert keys is not None and hours is not None
        cutoff = hour - self.keep_hours
        if all((packed & _LOW) >= cutoff for packed in hours):
            self._trim_more(keys, cutoff)
            return
        kept_keys, kept_hours = array("Q"), array("Q")
        for key, packed in zip(keys, hours):
            older, newer = packed >> 32, packed & _LOW
            if max(older, newer) < cutoff:
                self._more.pop(key, None)
                continue
            kept_keys.append(key)
            kept_hours.append(((older if older >= cutoff else 0) << 32) | newer)
        self._size -= len(keys) - len(kept_keys)
        self._keys[shard], self._hours[shard] = kept_keys or None, kept_hours or None
        self._trim_more(kept_keys, cutoff)

    def _trim_more(self, keys: array[int], cutoff: int) -> None:
        if not self._more:
            return
        for key in keys:
            more = self._more.get(key)
            if more is not None and min(more) < cutoff:
                kept = array("I", (h for h in more if h >= cutoff))
                if kept:
                    self._more[key] = kept
                else:
                    del self._more[key]

    def nbytes(self) -> int:
        """Bytes held in the arrays (for the memory figures)."""
        total = sum(a.buffer_info()[1] * a.itemsize for a in self._keys if a is not None)
        total += sum(a.buffer_info()[1] * a.itemsize for a in self._hours if a is not None)
        return total + sum(a.buffer_info()[1] * a.itemsize for a in self._more.values())
