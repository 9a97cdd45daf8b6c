"""Stories: an account crosses each kind of trigger, is suspended for the graded
duration, and the suspension runs out by itself; escalation ends in a permanent disable."""

from __future__ import annotations

from outguard.enforcement import Enforcer
from outguard.events import EnforcementAnnounced
from rules.model import PartyKind, PartyState
from tests.unit.enforcement.conftest import DAY, HOUR, Clock, EnforcerFactory, play_call

TWO_COMPLAINTS = """
[enforcement.triggers.two_complaints]
metric = "complaints"
scope = "account"
window = "7d"
at_least = 2
"""


async def complain(enforcer: Enforcer, callee: str = "+8613900000001") -> None:
    await enforcer.add_complaint(callee, "+8613800000001", category="harassment",
                                 source="12321", actor="ops")


async def test_two_complaints_suspend_the_account_for_a_day_then_it_expires(
    make_enforcer: EnforcerFactory, clock: Clock
) -> None:
    enforcer = await make_enforcer(TWO_COMPLAINTS)
    play_call(enforcer, callee="+8613900000001")
    play_call(enforcer, callee="+8613900000002")
    await complain(enforcer, "+8613900000001")
    assert await enforcer.evaluate() == []
    assert enforcer.risk("account", "a1", window_s=7 * DAY).complaints == 1

    await complain(enforcer, "+8613900000002")
    [firing] = await enforcer.evaluate()
    assert (firing.trigger, firing.action, firing.kind, firing.key) == (
        "two_complaints", "suspend", PartyKind.ACCOUNT, "a1")
    status = await enforcer.status("account", "a1")
    assert status.state is PartyState.SUSPENDED
    assert status.remaining_s == DAY and status.strikes == 1
    assert status.next_duration_s == 7 * DAY
    assert "complaints 2 >= 2" in status.reason

    clock.advance(DAY - 1)
    assert (await enforcer.status("account", "a1")).state is PartyState.SUSPENDED
    clock.advance(1)
    status = await enforcer.status("account", "a1")
    assert status.state is PartyState.ACTIVE and status.remaining_s is None
    # the same two complaints do not suspend it again
    assert await enforcer.evaluate() == []


async def test_escalation_24h_7d_30d_then_permanent(make_enforcer: EnforcerFactory,
                                                    clock: Clock) -> None:
    enforcer = await make_enforcer(TWO_COMPLAINTS)
    expected = [DAY, 7 * DAY, 30 * DAY, None]
    for n, length in enumerate(expected):
        play_call(enforcer, callee=f"+86139000001{n}0")
        play_call(enforcer, callee=f"+86139000001{n}1")
        await complain(enforcer, f"+86139000001{n}0")
        await complain(enforcer, f"+86139000001{n}1")
        [firing] = await enforcer.evaluate()
        assert firing.suspension is not None
        s = firing.suspension
        if length is None:
            assert s.ends_at is None
        else:
            assert s.ends_at is not None
            assert (s.ends_at - s.started_at).total_seconds() == length
            clock.advance(length)
    status = await enforcer.status("account", "a1")
    assert status.state is PartyState.DISABLED and status.until is None
    assert status.strikes == 4 and len(status.history) == 4

    await enforcer.lift("account", "a1", actor="boss", reason="retrained the team")
    assert (await enforcer.status("account", "a1")).state is PartyState.ACTIVE


async def test_strikes_older_than_the_lookback_are_forgotten(make_enforcer: EnforcerFactory,
                                                            clock: Clock) -> None:
    enforcer = await make_enforcer(TWO_COMPLAINTS)
    first = await enforcer.suspend("account", "a1", reason="manual", actor="ops")
    assert first.ends_at is not None and (first.ends_at - first.started_at).total_seconds() == DAY
    clock.advance(181 * DAY)
    second = await enforcer.suspend("account", "a1", reason="manual", actor="ops")
    assert second.ends_at is not None
    assert (second.ends_at - second.started_at).total_seconds() == DAY


async def test_short_call_ratio_needs_enough_answered_calls(make_enforcer: EnforcerFactory,
                                                           clock: Clock) -> None:
    enforcer = await make_enforcer("""
[enforcement.triggers.short_calls]
metric = "short_call_ratio"
scope = "account"
window = "1h"
above = 0.6
min_calls = 10
""")
    for _ in range(9):
        play_call(enforcer, duration=3.0)
    assert await enforcer.evaluate() == []
    assert enforcer.risk("account", "a1", window_s=HOUR).short_call_ratio == 1.0
    play_call(enforcer, duration=40.0)
    play_call(enforcer, duration=3.0)
    [firing] = await enforcer.evaluate()
    assert firing.metric == "short_call_ratio" and round(firing.value, 2) == 0.91
    assert (await enforcer.status("account", "a1")).state is PartyState.SUSPENDED


async def test_connect_rate_below_the_floor_suspends_with_a_fixed_duration(
    make_enforcer: EnforcerFactory
) -> None:
    enforcer = await make_enforcer("""
[enforcement.triggers.low_connect]
metric = "connect_rate"
scope = "caller_id"
window = "24h"
below = 0.2
min_calls = 20
duration = "2h"
""")
    for n in range(20):
        play_call(enforcer, answered=n < 3)
    figures = enforcer.risk("caller_id", "+8613800000001")
    assert figures.ended == 20 and figures.connect_rate == 0.15
    [firing] = await enforcer.evaluate()
    assert firing.kind is PartyKind.CALLER_ID and firing.suspension is not None
    s = firing.suspension
    assert s.ends_at is not None and (s.ends_at - s.started_at).total_seconds() == 2 * HOUR


async def test_repeated_blocked_attempts_to_listed_numbers(make_enforcer: EnforcerFactory) -> None:
    enforcer = await make_enforcer("""
[enforcement.triggers.listed]
metric = "listed_blocks"
scope = "account"
window = "24h"
at_least = 5
action = "disable"
""")
    for _ in range(4):
        play_call(enforcer, allowed=False, reason="dnc_listed")
    play_call(enforcer, allowed=False, reason="quiet_hours")
    assert await enforcer.evaluate() == []
    figures = enforcer.risk("account", "a1")
    assert figures.blocks_by_reason == {"dnc_listed": 4, "quiet_hours": 1}
    play_call(enforcer, allowed=False, reason="blacklisted")
    [firing] = await enforcer.evaluate()
    assert firing.action == "disable"
    assert (await enforcer.status("account", "a1")).state is PartyState.DISABLED


async def test_daily_cap_warns_once_without_suspending(make_enforcer: EnforcerFactory,
                                                       clock: Clock) -> None:
    enforcer = await make_enforcer("""
[enforcement.triggers.daily_cap]
metric = "attempts"
scope = "account"
window = "24h"
above = 30
action = "warn"
""")
    with enforcer.events.subscribe() as feed:
        for _ in range(31):
            play_call(enforcer, answered=False)
        [firing] = await enforcer.evaluate()
        assert firing.action == "warn" and firing.suspension is None
        assert await enforcer.evaluate() == []  # counted afresh after the warning
        events = [feed.queue.get_nowait() for _ in range(feed.queue.qsize())]
    warned = [e.kind for e in events if isinstance(e, EnforcementAnnounced)]
    assert warned == ["trigger.warned"] and len(events) == 1
    assert (await enforcer.status("account", "a1")).state is PartyState.ACTIVE
    audit = await enforcer.store.list_audit(party_key="a1")
    assert [a.action for a in audit if a.action.startswith("trigger")] == ["trigger.warn"]


async def test_only_new_events_are_evaluated_by_the_debounced_pass(
    make_enforcer: EnforcerFactory
) -> None:
    enforcer = await make_enforcer(TWO_COMPLAINTS)
    play_call(enforcer, account="a2", callee="+8613900000001")
    play_call(enforcer, account="a2", callee="+8613900000002")
    await complain(enforcer, "+8613900000001")
    await complain(enforcer, "+8613900000002")
    [firing] = await enforcer.evaluate(everything=False)
    assert firing.key == "a2"
    assert await enforcer.evaluate(everything=False) == []


async def test_the_minute_tick_catches_what_time_alone_changes(make_enforcer: EnforcerFactory,
                                                              clock: Clock) -> None:
    enforcer = await make_enforcer("""
[enforcement.triggers.low_connect]
metric = "connect_rate"
scope = "account"
window = "1h"
below = 0.2
min_calls = 10
""" + TWO_COMPLAINTS)
    for _ in range(10):
        play_call(enforcer, answered=True, duration=30)
    clock.advance(45 * 60)
    for _ in range(10):
        play_call(enforcer, answered=False)
    assert await enforcer.evaluate(everything=False) == []  # 50 %: fine
    clock.advance(16 * 60)  # the answered calls leave the 1 h window; no new event
    [firing] = await enforcer.tick(since_last=clock() - 60)
    assert firing.trigger == "low_connect"


async def test_complaints_during_a_suspension_count_once_it_runs_out(
    make_enforcer: EnforcerFactory, clock: Clock
) -> None:
    enforcer = await make_enforcer(TWO_COMPLAINTS)
    for n in range(4):
        play_call(enforcer, callee=f"+86139000002{n}0")
    await complain(enforcer, "+8613900000200")
    await complain(enforcer, "+8613900000210")
    [first] = await enforcer.evaluate()
    clock.advance(HOUR)
    await complain(enforcer, "+8613900000220")
    await complain(enforcer, "+8613900000230")
    assert await enforcer.evaluate() == []  # already suspended
    clock.advance(DAY)
    [second] = await enforcer.tick(since_last=clock() - 2 * HOUR)
    assert second.suspension is not None and second.suspension.ends_at is not None
    s = second.suspension
    assert s.ends_at is not None and (s.ends_at - s.started_at).total_seconds() == 7 * DAY
