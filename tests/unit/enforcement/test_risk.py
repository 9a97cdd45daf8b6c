"""Risk figures: rolling windows, rebuilt from the call log on start, fed live from the
Screener's events; the debounced background pass suspends without being asked."""

from __future__ import annotations

import asyncio
import random
import uuid

from outguard.enforcement import Enforcer
from outguard.enforcement.risk import RiskBook
from outguard.events import EnforcementAnnounced
from outguard.store.aio import AsyncStore
from outguard.store.base import CallRecord
from rules.model import PartyKind, PartyState
from tests.unit.enforcement.conftest import (
    DAY, HOUR, Clock, EnforcerFactory, PolicyFactory, play_call,
)
from tests.waiting import eventually


def test_windows_roll() -> None:
    book = RiskBook(short_call_s=6)
    t0 = 1_000_000.0 * 60
    for n, (offset, duration) in enumerate([(0, 3.0), (HOUR, 30.0), (2 * HOUR, 2.0)]):
        book.decision(decision_id=str(n), at=t0 + offset, tenant="t1", account="a1",
                      caller_id="+8613800000001", callee="+8613900000001", allowed=True,
                      reason="ok")
        book.outcome(at=t0 + offset + 60, answered=True, duration=duration, tenant="t1",
                     account="a1", caller_id="+8613800000001")
    book.decision(decision_id="x", at=t0 + 2 * HOUR, tenant="t1", account="a1",
                  caller_id="+8613800000001", callee="+8613900000002", allowed=False,
                  reason="dnc_listed")
    now = t0 + 2 * HOUR + 120
    day = book.figures(PartyKind.ACCOUNT, "a1", DAY, now)
    assert (day.attempts, day.allowed, day.blocked) == (4, 3, 1)
    assert (day.answered, day.short_calls) == (3, 2)
    assert day.connect_rate == 1.0 and day.avg_duration_s == round(35 / 3, 3)
    assert day.listed_blocks == 1 and day.blocks_by_reason == {"dnc_listed": 1}
    hour = book.figures(PartyKind.ACCOUNT, "a1", HOUR, now)
    assert (hour.attempts, hour.answered, hour.short_call_ratio) == (2, 1, 1.0)
    later = book.figures(PartyKind.TENANT, "t1", DAY, now + DAY)
    assert later.attempts == 0 and later.connect_rate is None


async def test_figures_are_rebuilt_from_the_call_log_on_start(
    store: AsyncStore, clock: Clock, make_policy: PolicyFactory
) -> None:
    for n in range(5):
        did = uuid.uuid4().hex
        at = clock() - HOUR + n * 60
        store.record_decision(CallRecord(
            decision_id=did, channel_id="c", adapter="ari", tenant="t1", account="a1",
            caller_id="+8613800000001", destination=f"+861390000000{n}",
            verdict="allow", rule="", reason="ok", shadow=(), decision_us=10, at=at))
        store.record_outcome(did, answered_at=at + 5 if n < 2 else None, ended_at=at + 20,
                             duration=15.0 if n < 2 else 0.0, cause=16)
    await store.flush_async()
    await store.add_complaint("+8613800000001", category="fraud", source="12321",
                              reporter="+8613900000001", tenant_id="t1")
    enforcer = Enforcer(store, make_policy(""), clock=clock)
    await enforcer.start(background=False)
    try:
        figures = enforcer.risk("account", "a1")
        assert (figures.attempts, figures.ended, figures.answered) == (5, 5, 2)
        assert figures.connect_rate == 0.4 and figures.complaints == 1  # attributed via the log
        [row] = enforcer.risk_table("tenant")
        assert row.key == "t1" and row.attempts == 5
    finally:
        await enforcer.stop()


async def test_the_background_pass_suspends_on_its_own(
    store: AsyncStore, make_policy: PolicyFactory
) -> None:
    enforcer = Enforcer(store, make_policy("""evaluate_every_ms = 20

[enforcement.triggers.two_complaints]
metric = "complaints"
scope = "account"
window = "7d"
at_least = 2
"""))
    await enforcer.start()
    try:
        play_call(enforcer, callee="+8613900000001")
        await enforcer.add_complaint("13900000001", "13800000001", category="fraud",
                                     source="12321", actor="ops", account="a2")
        await enforcer.add_complaint("13900000002", "13800000001", category="fraud",
                                     source="12321", actor="ops", account="a2")
        async def suspended() -> bool:
            return (await enforcer.status("account", "a2")).state is PartyState.SUSPENDED

        await eventually(suspended, "a2's suspension", interval=0.01)
    finally:
        await enforcer.stop()


async def test_enforcement_events_reach_the_hub(make_enforcer: EnforcerFactory) -> None:
    enforcer = await make_enforcer()
    with enforcer.events.subscribe() as feed:
        await enforcer.suspend("tenant", "t2", reason="audit", actor="ops", duration_s=60)
        event = feed.queue.get_nowait()
    assert isinstance(event, EnforcementAnnounced) and event.kind == "suspension.created"
    assert event.data["party_kind"] == "tenant" and event.data["ends_at"]


def test_running_totals_match_a_plain_count_even_with_late_events() -> None:
    rng = random.Random(7)
    now = 1_800_000_000.0
    book = RiskBook(short_call_s=6, retention_s=8 * DAY)
    events: list[tuple[float, bool, bool, float]] = []
    for n in range(3000):  # out of order on purpose
        at = now - rng.uniform(0, 8 * DAY)
        allowed, answered, duration = rng.random() < 0.8, rng.random() < 0.5, rng.uniform(0, 20)
        book.decision(decision_id=str(n), at=at, tenant="t1", account="a1", caller_id="c",
                      callee="x", allowed=allowed, reason="ok" if allowed else "dnc_listed")
        if allowed:
            book.outcome(at=at, answered=answered, duration=duration, tenant="t1",
                         account="a1", caller_id="c")
        events.append((at, allowed, answered, duration))

    def expected(window_s: float) -> tuple[int, int, int, int]:
        start = now - window_s
        cut = now - HOUR
        cut -= cut % HOUR

        def inside(at: float) -> bool:
            if start >= now - 2 * HOUR:
                return start <= at - at % 60 <= now
            return start <= at - at % HOUR <= cut - HOUR or cut <= at - at % 60 <= now

        picked = [e for e in events if inside(e[0])]
        return (len(picked), sum(not e[1] for e in picked),
                sum(e[1] and e[2] for e in picked),
                sum(e[1] and e[2] and e[3] < 6 for e in picked))

    for window in (600.0, HOUR, 2 * HOUR, 5 * HOUR, DAY, 7 * DAY):
        f = book.figures(PartyKind.ACCOUNT, "a1", window, now)
        assert (f.attempts, f.blocked, f.answered, f.short_calls) == expected(window), window
        assert f.listed_blocks == f.blocked == f.blocks_by_reason.get("dnc_listed", 0)
