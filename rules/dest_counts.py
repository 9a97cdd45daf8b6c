"""Per-destination call counts in a few bytes per callee (for per-destination caps).

A call centre of 2,000 seats reaches hundreds of thousands of new callees a day and the
weekly caps need 8 days of them: a Python object per callee (a dict entry, a tuple key,
two arrays: ~570 bytes) makes that gigabytes. Here a callee costs two 64-bit words:

* its key: the E.164 digits as an integer (``+8613800138000`` -> 8613800138000), or a
  56-bit BLAKE2 hash with bit 60 set for numbers that are not all digits (short codes);
* its last two call minutes, packed as ``older << 32 | newer`` (minutes since the epoch,
  plus one; 0 = none). A callee called more than twice within the retention keeps the
  older minutes in a small overflow array (rare: caps stop such callees early).

Keys live in ``SHARDS`` small sorted ``array('Q')`` shards (by the key's low bits), the
packed minutes in a parallel array: a lookup is one ``bisect`` in a shard of a few hundred
entries, an insert one ``array.insert`` there. Counts are at minute granularity (per-callee
limits such as 1 a minute or 5 an hour need minutes; the packed words cost the same): a
window counts every minute bucket it overlaps, as the other counters do (errs on the side
of blocking). A shard drops callees with no call in the last ``keep_s`` when it has grown
by ``PRUNE_EVERY`` inserts since its last sweep, so memory follows the callees of the
retention, not of all time, with no pause.

Thread safety: none; call from one thread (the event loop).
"""

from __future__ import annotations

import hashlib
from array import array
from bisect import bisect_left

__all__ = ["DestCounts", "dest_key"]

BUCKET_S = 60
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
    """Calls per destination per minute bucket, kept ``keep_s`` seconds."""

    __slots__ = ("keep_buckets", "_keys", "_buckets", "_more", "_since_prune", "_size")

    def __init__(self, keep_s: int = 8 * 86400) -> None:
        self.keep_buckets = keep_s // BUCKET_S
        self._keys: list[array[int] | None] = [None] * SHARDS
        self._buckets: list[array[int] | None] = [None] * SHARDS
        self._more: dict[int, array[int]] = {}  # key -> older minutes (3rd call and on)
        self._since_prune = array("H", bytes(2 * SHARDS))
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def add(self, e164: str, ts: float) -> None:
        key = dest_key(e164)
        bucket = int(ts // BUCKET_S) + 1
        shard = key % SHARDS
        keys, buckets = self._keys[shard], self._buckets[shard]
        if keys is None or buckets is None:
            keys = self._keys[shard] = array("Q")
            buckets = self._buckets[shard] = array("Q")
        i = bisect_left(keys, key)
        if i < len(keys) and keys[i] == key:
            packed = buckets[i]
            older, newer = packed >> 32, packed & _LOW
            if older:
                self._more.setdefault(key, array("I")).append(older)
            buckets[i] = (newer << 32) | bucket
            return
        keys.insert(i, key)
        buckets.insert(i, bucket)
        self._size += 1
        self._since_prune[shard] += 1
        if self._since_prune[shard] >= PRUNE_EVERY:
            self._prune_shard(shard, bucket)

    def remove(self, e164: str, ts: float) -> bool:
        """Take back one call ``add`` counted (a decision never carried out); False when
        no call to ``e164`` is held in that minute."""
        key = dest_key(e164)
        bucket = int(ts // BUCKET_S) + 1
        keys, buckets = self._keys[key % SHARDS], self._buckets[key % SHARDS]
        if keys is None or buckets is None:
            return False
        i = bisect_left(keys, key)
        if i == len(keys) or keys[i] != key:
            return False
        older, newer = buckets[i] >> 32, buckets[i] & _LOW
        more = self._more.get(key)
        if newer == bucket:
            newer, older = older, (more.pop() if more else 0)
        elif older == bucket:
            older = more.pop() if more else 0
        elif more is not None and bucket in more:
            more.remove(bucket)
        else:
            return False
        if more is not None and not more:
            del self._more[key]
        buckets[i] = (older << 32) | newer  # an empty entry goes at the next sweep
        return True

    def count(self, e164: str, window_s: int, now: float) -> int:
        """Calls to ``e164`` in minute buckets overlapping (now - window_s, now]."""
        key = dest_key(e164)
        keys, buckets = self._keys[key % SHARDS], self._buckets[key % SHARDS]
        if keys is None or buckets is None:
            return 0
        i = bisect_left(keys, key)
        if i == len(keys) or keys[i] != key:
            return 0
        first = int((now - window_s) // BUCKET_S) + 1
        last = int(now // BUCKET_S) + 1
        packed = buckets[i]
        n = sum(1 for h in (packed >> 32, packed & _LOW) if h and first <= h <= last)
        more = self._more.get(key)
        if more is not None:
            n += sum(1 for h in more if first <= h <= last)
        return n

    def prune(self, now: float) -> None:
        """Sweep every shard now (the service's periodic prune; adds sweep as they grow)."""
        bucket = int(now // BUCKET_S) + 1
        for shard in range(SHARDS):
            if self._keys[shard]:
                self._prune_shard(shard, bucket)

    def _prune_shard(self, shard: int, bucket: int) -> None:
        self._since_prune[shard] = 0
        keys, buckets = self._keys[shard], self._buckets[shard]
        assert keys is not None and buckets is not None
        cutoff = bucket - self.keep_buckets
        if all((packed & _LOW) >= cutoff for packed in buckets):
            self._trim_more(keys, cutoff)
            return
        kept_keys, kept_buckets = array("Q"), array("Q")
        for key, packed in zip(keys, buckets):
            older, newer = packed >> 32, packed & _LOW
            if max(older, newer) < cutoff:
                self._more.pop(key, None)
                continue
            kept_keys.append(key)
            kept_buckets.append(((older if older >= cutoff else 0) << 32) | newer)
        self._size -= len(keys) - len(kept_keys)
        self._keys[shard], self._buckets[shard] = kept_keys or None, kept_buckets or None
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
        total += sum(a.buffer_info()[1] * a.itemsize for a in self._buckets if a is not None)
        return total + sum(a.buffer_info()[1] * a.itemsize for a in self._more.values())
