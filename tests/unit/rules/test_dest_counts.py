"""Per-destination counts: the same answers as hour buckets, in bytes per callee."""

from __future__ import annotations

import tracemalloc

from rules.counters import InMemoryCounters
from rules.dest_counts import PRUNE_EVERY, SHARDS, DestCounts, dest_key

H = 3600
T0 = 1_800_000_000.0 - 1_800_000_000.0 % 86400  # a UTC midnight


def test_counts_by_hour_buckets_over_the_window() -> None:
    d = DestCounts()
    d.add("+8613800138000", T0 + 10)
    d.add("+8613800138000", T0 + 2 * H)
    d.add("+8613800138000", T0 + 30 * H)
    assert d.count("+8613800138000", 86400, T0 + 30 * H) == 1  # buckets 6h..30h only
    assert d.count("+8613800138000", 86400, T0 + 23 * H) == 2
    assert d.count("+8613800138000", 7 * 86400, T0 + 30 * H) == 3
    assert d.count("+8613800138000", 3600, T0 + 30 * H + 10) == 1
    assert d.count("+8613900139000", 86400, T0) == 0


def test_more_than_two_calls_and_out_of_order_replay() -> None:
    d = DestCounts()
    for at in (T0 + 5 * H, T0 + H, T0 + 3 * H, T0 + 2 * H, T0 + 4 * H):
        d.add("+12125550123", at)
    assert d.count("+12125550123", 86400, T0 + 5 * H) == 5
    assert d.count("+12125550123", 2 * H, T0 + 5 * H) == 3  # hours 3, 4, 5
    assert len(d) == 1


def test_short_codes_are_hashed_apart_from_digits() -> None:
    assert dest_key("+86:95588") != dest_key("+8695588")
    assert dest_key("+86:95588") >= 1 << 60 > dest_key("+8613800138000")
    d = DestCounts()
    d.add("+86:95588", T0)
    assert d.count("+86:95588", 86400, T0) == 1 and d.count("+8695588", 86400, T0) == 0


def test_callees_leave_after_the_retention() -> None:
    d = DestCounts(keep_s=8 * 86400)
    for i in range(5000):
        d.add(f"+86139{i:08d}", T0)
    d.add("+8613900000001", T0 + 3 * 86400)  # called again: stays
    d.prune(T0 + 8 * 86400 + H)
    assert len(d) == 1
    assert d.count("+8613900000001", 7 * 86400, T0 + 8 * 86400 + H) == 1
    d.add("+8613700000000", T0)
    for j in range(1, PRUNE_EVERY + 1):  # new callees of that shard sweep it as they come
        d.add(f"+{8613700000000 + j * SHARDS}", T0 + 20 * 86400)
    assert d.count("+8613700000000", 30 * 86400, T0 + 20 * 86400) == 0
    assert len(d) == PRUNE_EVERY + 1  # (+ the one from day 3: its shard is swept later)


def test_a_distinct_callee_costs_bytes_not_hundreds_of_bytes() -> None:
    """Memory of the counters per distinct callee, 8 days of retention: the issue measured
    ~570 bytes per callee before."""
    now = [T0]
    counters = InMemoryCounters(lambda: now[0])
    n = 20_000
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(n):
            counters.record("t1", "seat-1", "+861088886666", f"+86139{i:08d}", T0 + i * 0.5)
        now[0] = T0 + 86400 + 60  # the next day: the callee set of the day is gone
        counters.prune()
        counters.record("t1", "seat-1", "+861088886666", "+8613800138000", now[0])
        per_callee = (tracemalloc.get_traced_memory()[0] - before) / n
    finally:
        tracemalloc.stop()
    assert counters.destination_attempts("t1", "+8613900000007", 7 * 86400, now[0]) == 1
    print(f"{per_callee:.1f} bytes per distinct callee")
    assert per_callee < 40, per_callee  # ~17 at a million callees: the shards' fixed cost


def test_minute_buckets_count_one_a_minute_and_five_an_hour() -> None:
    """The carriers' per-callee limits (cn-callee-caps: 1 a minute, 5 an hour) need minutes:
    a call 2 minutes ago is outside a 1-minute window, one 61 minutes ago outside the hour."""
    d = DestCounts()
    d.add("+8613800138000", T0)
    assert d.count("+8613800138000", 60, T0 + 30) == 1
    assert d.count("+8613800138000", 60, T0 + 120) == 0
    for m in (2, 10, 20, 30):
        d.add("+8613800138000", T0 + m * 60)
    assert d.count("+8613800138000", 3600, T0 + 59 * 60) == 5
    assert d.count("+8613800138000", 3600, T0 + 61 * 60) == 4
