"""Cluster mode: only the instance that leads enforcement acts on a crossing; the others
keep the same figures (every instance's calls, from the call feed) and act when they
become the leader."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from outguard.callevents import CallDecided, CallEnded, CallEvent
from outguard.enforcement import Enforcer
from outguard.store.aio import AsyncStore
from outguard.store.base import CallRecord
from rules.model import PartyKind
from tests.unit.enforcement.conftest import (
    Clock,
    EnforcerFactory,
    PolicyFactory,
    play_call,
)
from tests.waiting import eventually

BUSY = """
[enforcement.triggers.busy]
metric = "allowed"
scope = "account"
window = "1h"
at_least = 3
action = "suspend"
duration = "1h"
"""


async def test_a_follower_with_the_same_figures_acts_on_nothing_until_it_leads(
    make_enforcer: EnforcerFactory,
) -> None:
    leading = {"follower": False}
    follower = await make_enforcer(BUSY, leads=lambda: leading["follower"])
    for _ in range(3):
        play_call(follower)
    assert follower.risk("account", "a1", window_s=3600).allowed == 3
    assert await follower.evaluate() == []
    assert await follower.store.list_suspensions(party_key="a1") == []
    leading["follower"] = True  # the leader's session ended: this one took the lock
    follower.leadership_changed(True)
    [firing] = await follower.evaluate()
    assert (firing.trigger, firing.kind, firing.key) == ("busy", PartyKind.ACCOUNT, "a1")
    assert len(await follower.store.list_suspensions(party_key="a1")) == 1


class Feed:
    """A call feed that hands out a fixed list of events after the mark, then waits."""

    def __init__(self, events: list[CallEvent]) -> None:
        self._events = events

    async def mark(self) -> str:
        return "mark"

    async def events(self, after: str) -> AsyncIterator[CallEvent]:
        assert after == "mark"
        for event in self._events:
            yield event
        await asyncio.Event().wait()


def decided(call_id: str, at: float) -> CallDecided:
    return CallDecided(call_id, f"ch-{call_id}", "ari", at, "t1", "a1", "+8613800000001",
                       "+8613900000001", True, "", "ok", "allowed", 0, (), 10)


def ended(call_id: str, at: float) -> CallEnded:
    return CallEnded(call_id, at, "t1", "a1", "+8613800000001", "+8613900000001", at - 30,
                     30.0, 16)


async def test_the_feed_skips_the_calls_the_start_replay_already_counted(
    store: AsyncStore, clock: Clock, make_policy: PolicyFactory,
) -> None:
    now = clock()
    store.record_decision(CallRecord.from_decided(decided("logged", now - 60)))
    store.record_outcome("logged", answered_at=now - 50, ended_at=now - 20, duration=30.0,
                         cause=16)
    await store.flush_async()
    # the feed repeats the logged call (shared just before the replay read the log)
    feed = Feed([decided("logged", now - 60), ended("logged", now - 20),
                 decided("new", now - 5), ended("new", now - 1)])
    enforcer = Enforcer(store, make_policy(BUSY), clock=clock, feed=feed)
    await enforcer.start()
    try:
        await eventually(lambda: enforcer.risk("account", "a1", window_s=3600).ended == 2,
                         "the new call's outcome to be counted")
        figures = enforcer.risk("account", "a1", window_s=3600)
        assert (figures.attempts, figures.allowed, figures.ended) == (2, 2, 2)
    finally:
        await enforcer.stop()
