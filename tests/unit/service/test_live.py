"""The live-call registry: slots held exactly once, found by channel, restored after a
restart, expired after the one maximum call age."""

from __future__ import annotations

import pytest

from outguard.live import DEFAULT_PBX, MAX_CALL_AGE_S, CallCounts, InMemoryLiveCalls, LiveCall
from rules.counters import InMemoryCounters

T0 = 1_800_000_000.0


def call(call_id: str, channel: str = "", account: str = "a1", tenant: str = "t1",
         started: float = T0) -> LiveCall:
    return LiveCall(call_id=call_id, channel_id=channel or f"ch-{call_id}", adapter="ari",
                    tenant=tenant, account=account, caller_id="+8610", destination="+86138",
                    started=started)


def test_slots_are_taken_once_per_call_and_released_exactly_once() -> None:
    live = InMemoryLiveCalls()
    assert live.reserve(call("c1")) is True
    assert live.reserve(call("c1")) is False  # a second reserve of the same call: ignored
    assert live.reserve(call("c2")) is True
    assert (live.concurrent("account", "a1"), live.concurrent("tenant", "t1")) == (2, 2)
    released = live.release("c1")
    assert released is not None and released.call_id == "c1"
    assert live.release("c1") is None
    assert live.release("never-reserved") is None
    assert live.concurrent("account", "a1") == 1
    assert live.release("c2") is not None
    assert (live.concurrent("account", "a1"), live.concurrent("tenant", "t1")) == (0, 0)
    assert len(live) == 0


def test_an_unknown_scope_is_an_error_not_a_zero() -> None:
    with pytest.raises(ValueError, match="campaign"):
        InMemoryLiveCalls().concurrent("campaign", "x")


def test_a_call_is_found_by_its_channel_until_it_is_released() -> None:
    live = InMemoryLiveCalls()
    live.reserve(call("c1", "1795400932.7"))
    found = live.on_channel(DEFAULT_PBX, "1795400932.7")
    assert found is not None and found.call_id == "c1"
    live.release("c1")
    assert live.on_channel(DEFAULT_PBX, "1795400932.7") is None


def test_a_channel_screened_again_is_found_by_its_latest_call() -> None:
    live = InMemoryLiveCalls()
    live.reserve(call("old", "ch"))
    live.reserve(call("new", "ch"))
    assert live.on_channel(DEFAULT_PBX, "ch").call_id == "new"  # type: ignore[union-attr]
    live.release("old")  # releasing the older call keeps the newer one findable
    assert live.on_channel(DEFAULT_PBX, "ch").call_id == "new"  # type: ignore[union-attr]


def test_the_first_answer_counts() -> None:
    live = InMemoryLiveCalls()
    live.reserve(call("c1"))
    assert live.answered("c1", T0 + 5).answered_at == T0 + 5  # type: ignore[union-attr]
    assert live.answered("c1", T0 + 9).answered_at == T0 + 5  # type: ignore[union-attr]
    assert live.answered("unknown", T0) is None


def test_restored_calls_hold_slots_and_are_marked() -> None:
    live = InMemoryLiveCalls()
    assert live.restore([call("c1"), call("c2", account="a2"), call("c1")]) == 2
    assert live.concurrent("tenant", "t1") == 2
    assert all(c.restored for c in live.calls())


def test_calls_older_than_the_one_maximum_age_expire() -> None:
    live = InMemoryLiveCalls()
    live.reserve(call("old", started=T0 - MAX_CALL_AGE_S - 1))
    live.reserve(call("young", started=T0 - MAX_CALL_AGE_S + 60))
    assert [c.call_id for c in live.expired(T0)] == ["old"]


def test_a_reconcile_lists_only_the_calls_of_its_pbx_decided_before_it_asked() -> None:
    from dataclasses import replace

    live = InMemoryLiveCalls()
    live.reserve(call("before", started=T0 - 1))
    live.reserve(call("at", started=T0))  # decided in the instant it asked: not before
    live.reserve(call("after", started=T0 + 1))
    live.reserve(replace(call("other-pbx", started=T0 - 1), pbx="b"))
    assert [c.call_id for c in live.calls(DEFAULT_PBX, started_before=T0)] == ["before"]
    assert [c.call_id for c in live.calls(started_before=T0)] == ["before", "other-pbx"]
    assert len(live.calls()) == 4 and len(live.calls(DEFAULT_PBX)) == 3


def test_call_counts_read_rates_from_the_counters_and_concurrency_from_the_registry() -> None:
    rates = InMemoryCounters(clock=lambda: T0)
    rates.record("t1", "a1", "+8610", "+86138", T0)
    live = InMemoryLiveCalls()
    live.reserve(call("c1"))
    counts = CallCounts(rates, live)
    assert counts.attempts("account", "a1", 60, T0) == 1
    assert counts.concurrent("account", "a1") == 1
    live.release("c1")
    assert counts.concurrent("account", "a1") == 0
