"""InMemoryCounters: sliding windows, pruning, replay after restart."""

from __future__ import annotations

import pytest

from rules.counters import CallRow, InMemoryCounters

T0 = 1_800_000_000.0  # a fixed epoch second


class Clock:
    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def filled(times: list[float]) -> InMemoryCounters:
    c = InMemoryCounters(clock=Clock(max(times) if times else T0))
    for t in times:
        c.record("t1", "a1", "+861088886666", "+8613700137000", t)
    return c


@pytest.mark.parametrize(
    ("offsets", "window", "expected"),
    [
        pytest.param([0, -10, -30], 60, 3, id="all-in-minute"),
        pytest.param([0, -10, -70], 60, 2, id="one-outside-minute"),
        pytest.param([0, -1800, -3500], 3600, 3, id="all-in-hour"),
        pytest.param([0, -1800, -3700], 3600, 2, id="one-outside-hour"),
        pytest.param([0, -40000, -86000], 86400, 3, id="all-in-day"),
        pytest.param([0, -40000, -90000], 86400, 2, id="one-outside-day"),
        pytest.param([0, -3 * 86400, -8 * 86400], 7 * 86400, 2, id="week"),
        pytest.param([], 60, 0, id="nothing-recorded"),
    ],
)
def test_attempt_windows(offsets: list[int], window: int, expected: int) -> None:
    c = filled([T0 + o for o in offsets])
    for scope, key in (("account", "a1"), ("caller_id", "+861088886666"), ("tenant", "t1")):
        assert c.attempts(scope, key, window, T0) == expected


def test_destination_attempts_across_accounts_of_a_tenant() -> None:
    c = InMemoryCounters(clock=Clock())
    c.record("t1", "a1", "x", "+8613700137000", T0 - 100)
    c.record("t1", "a2", "y", "+8613700137000", T0 - 50)
    c.record("t2", "a3", "z", "+8613700137000", T0 - 50)
    assert c.destination_attempts("t1", "+8613700137000", 86400, T0) == 2
    assert c.destination_attempts("t2", "+8613700137000", 86400, T0) == 1
    assert c.destination_attempts("t1", "+8613700137000", 7 * 86400, T0 + 2 * 86400) == 2
    assert c.destination_attempts("t1", "+8613700137000", 86400, T0 + 2 * 86400) == 0


def test_distinct_callees_per_day() -> None:
    c = InMemoryCounters(clock=Clock())
    for n in ("+8613700000001", "+8613700000002", "+8613700000001"):
        c.record("t1", "a1", "x", n, T0)
    assert c.distinct_callees("a1", T0) == 2
    assert c.distinct_callees("a1", T0 + 86400) == 0


def test_replay_rebuilds_the_same_counts_after_restart() -> None:
    rows = [CallRow("t1", "a1", "+861088886666", f"+86137000000{i:02d}", T0 - 3600 + i * 60) for i in range(50)]
    live = InMemoryCounters(clock=Clock())
    for r in rows:
        live.record(r.tenant, r.account, r.caller_id, r.destination_e164, r.at)
    restarted = InMemoryCounters(clock=Clock())
    assert restarted.rebuild(reversed(rows)) == 50  # order does not matter
    for window in (60, 3600, 86400):
        assert restarted.attempts("account", "a1", window, T0) == live.attempts("account", "a1", window, T0)
    assert restarted.distinct_callees("a1", T0) == live.distinct_callees("a1", T0) == 50


def test_old_buckets_and_idle_keys_are_pruned() -> None:
    clock = Clock()
    c = InMemoryCounters(clock=clock)
    for i in range(1000):
        c.record("t1", f"a{i}", "x", f"+86137{i:08d}", T0 + i)
    assert c.sizes()["parties"] == 1002
    clock.t = T0 + 10 * 86400
    c.prune()
    assert c.sizes() == {"parties": 0, "destinations": 0, "callee_days": 0}


def test_second_buckets_stay_bounded() -> None:
    c = InMemoryCounters(clock=Clock())
    for i in range(5000):
        c.record("t1", "a1", "x", "+8613700137000", T0 + i)
    party = c._parties[("account", "a1")]
    assert len(party.series[0].starts) <= 121
    # the bucket of the call exactly 60 s ago overlaps the window: counted (conservative)
    assert c.attempts("account", "a1", 60, T0 + 4999) == 61


def test_unknown_scope_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown counter scope"):
        InMemoryCounters().attempts("campaign", "c1", 60, T0)


def test_calls_in_dropped_buckets_stop_counting_in_every_window() -> None:
    """Once old buckets are dropped, a window starting at the oldest kept bucket must not
    count the dropped calls (they used to linger in the running totals)."""
    now = 1_764_000_000.0
    c = InMemoryCounters(clock=lambda: now)
    for i in range(10):
        c.record("t1", "a1", "+8610", "+8613900000000", now - 30 * 3600 + i)
    c.record("t1", "a1", "+8610", "+8613900000000", now)
    assert [c.attempts("account", "a1", w, now) for w in (60, 3600, 86400)] == [1, 1, 1]
    assert c.attempts("account", "a1", 7 * 86400, now) == 11


def test_out_of_order_records_count_like_ordered_ones() -> None:
    now = 1_764_000_000.0
    ats = [now - (i * 7919) % (8 * 86400) for i in range(300)]
    shuffled, ordered = InMemoryCounters(clock=lambda: now), InMemoryCounters(clock=lambda: now)
    for at in ats:
        shuffled.record("t1", "a1", "+8610", "+8613900000000", at)
    for at in sorted(ats):
        ordered.record("t1", "a1", "+8610", "+8613900000000", at)
    for window in (60, 119, 3600, 86400, 89939, 7 * 86400):
        assert shuffled.attempts("account", "a1", window, now) == \
            ordered.attempts("account", "a1", window, now), window


def test_tracking_some_scopes_counts_those_alone() -> None:
    c = InMemoryCounters(clock=Clock(), track=("account", "destination"))
    c.record("t1", "a1", "+861088886666", "+8613700137000", T0)
    assert c.attempts("account", "a1", 60, T0) == 1
    assert c.destination_attempts("t1", "+8613700137000", 60, T0) == 1
    assert c.attempts("caller_id", "+861088886666", 60, T0) == 0
    assert c.attempts("tenant", "t1", 60, T0) == 0
    assert c.distinct_callees("a1", T0) == 0
    with pytest.raises(ValueError, match="unknown counter scopes"):
        InMemoryCounters(track=("campaign",))


@pytest.mark.parametrize(
    ("offsets", "forgotten"),
    [
        pytest.param([0], 0, id="the-only-call"),
        pytest.param([0, -10, -3700], -10, id="one-of-several"),
        pytest.param([0, 0, 0], 0, id="one-of-three-in-one-bucket"),
        pytest.param([0, -2 * 86400], -2 * 86400, id="days-ago"),
    ],
)
def test_a_forgotten_call_no_longer_counts_anywhere(offsets: list[int], forgotten: int) -> None:
    """A decision never carried out is taken back: every window, the callee's count and
    the distinct callees are as if only the other calls had been recorded."""
    times = [T0 + o for o in offsets]
    c = filled(times)
    c.forget("t1", "a1", "+861088886666", "+8613700137000", T0 + forgotten)
    rest = list(times)
    rest.remove(T0 + forgotten)
    expected = filled(rest) if rest else InMemoryCounters(clock=Clock())
    for window in (60, 3600, 86400, 7 * 86400):
        for scope, key in (("account", "a1"), ("caller_id", "+861088886666"), ("tenant", "t1")):
            assert c.attempts(scope, key, window, T0) == expected.attempts(scope, key, window, T0)
        assert (c.destination_attempts("t1", "+8613700137000", window, T0)
                == expected.destination_attempts("t1", "+8613700137000", window, T0))
    assert c.distinct_callees("a1", T0) == expected.distinct_callees("a1", T0)


def test_forgetting_keeps_a_callee_called_again_that_day() -> None:
    c = InMemoryCounters(clock=Clock())
    c.record("t1", "a1", "x", "+8613700000001", T0 - 60)
    c.record("t1", "a1", "x", "+8613700000001", T0)
    c.record("t1", "a1", "x", "+8613700000002", T0)
    c.forget("t1", "a1", "x", "+8613700000001", T0)
    assert c.distinct_callees("a1", T0) == 2
    c.forget("t1", "a1", "x", "+8613700000002", T0)
    assert c.distinct_callees("a1", T0) == 1
    assert c.attempts("account", "a1", 3600, T0) == 1


def test_forgetting_a_call_never_recorded_changes_nothing() -> None:
    c = filled([T0])
    c.forget("t1", "a1", "+861088886666", "+8613700137000", T0 - 3600)
    c.forget("t9", "a9", "y", "+8613700000009", T0)
    assert c.attempts("account", "a1", 86400, T0) == 1
    assert c.destination_attempts("t1", "+8613700137000", 86400, T0) == 1
    assert c.distinct_callees("a1", T0) == 1
