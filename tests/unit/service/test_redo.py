"""A call id reused after a restart: outguard died between a decision and carrying it out
(the ARI continue / hangup, the FastAGI answer), and the channel is screened again. The
new decision takes the undone one's id and replaces its call-log row whole, so the call
log ends with one row per decision carried out, saying what was done, and the outcome
closes that row. A channel screened again after a decision that WAS carried out gets a row
of its own."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from outguard.callevents import CallDecided
from outguard.callfacts import ChannelFacts
from outguard.live import DEFAULT_PBX
from outguard.service import Screener
from outguard.store.aio import AsyncStore
from outguard.store.sqlite import SQLiteStore
from rules.policy import parse_policy
from tests.unit.service.test_restart import POLICY as CAP_OF_ONE
from tests.unit.service.test_restart import Clock

POLICY = CAP_OF_ONE + """
[lists.dnc]
kind = "dnc"

[[rules]]
id = "dnc"
kind = "lists"
lists = ["dnc"]
cause = 21
"""
NUMBER = "13800138000"


def facts(channel: str = "pbx-1.1", **kw: Any) -> ChannelFacts:
    return replace(ChannelFacts(adapter="ari", channel_id=channel,
                                channel_name="PJSIP/agent-1", dialed=NUMBER,
                                caller_id="01088886666", account="a1"), **kw)


async def started(path: Path, clock: Clock) -> Screener:
    screener = Screener(AsyncStore(SQLiteStore(path)), parse_policy(POLICY), clock=clock)
    await screener.start()
    return screener


async def died(screener: Screener) -> None:
    """The process is gone: what it committed stays, nothing else of it remains."""
    await screener.store.flush_async()
    await screener.stop()
    await screener.store.aclose()


def rows(path: Path) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT decision_id, verdict, reason, at, ended_at, cause, end_note"
                            " FROM calls ORDER BY at").fetchall()
    finally:
        conn.close()


async def listed(screener: Screener, on: bool) -> None:
    if on:
        await screener.store.add_entries("dnc", [NUMBER])
    else:
        await screener.store.remove_entries("dnc", [NUMBER])
    await screener.rebuild()


@pytest.mark.parametrize("first_blocked", [False, True], ids=["allowed", "blocked"])
async def test_a_channel_still_in_stasis_after_a_crash_gets_one_row_with_its_new_decision(
    tmp_path: Path, first_blocked: bool,
) -> None:
    path, clock = tmp_path / "og.db", Clock()
    first = await started(path, clock)
    await first.store.create_list("dnc", "dnc")
    await listed(first, on=first_blocked)
    undone = first.screen(facts())
    assert undone.allowed is not first_blocked
    await died(first)  # killed before the continue / hangup: the channel waits in Stasis

    clock.t += 5
    second = await started(path, clock)
    try:
        await listed(second, on=not first_blocked)  # the lists changed meanwhile
        redone = second.screen(facts(waiting=True))  # the reconcile screens it again
        assert redone.id == undone.id == "pbx-1.1"
        assert redone.allowed is first_blocked
        assert second.live_calls() == (1 if redone.allowed else 0)
        if redone.allowed:
            clock.t += 30
            assert second.ended(redone.id, 16)  # the hangup handler's event
        await second.store.flush_async()
        verdict = "allow" if redone.allowed else "block"
        cause = 16 if redone.allowed else 21
        ended = clock.t
        assert rows(path) == [("pbx-1.1", verdict, "ok" if redone.allowed else "dnc_listed",
                               clock.t - (30 if redone.allowed else 0), ended, cause, None)]
    finally:
        await died(second)


async def test_a_retried_fastagi_screening_replaces_the_decision_it_never_answered(
    tmp_path: Path,
) -> None:
    """The channel holds no OUTGUARD_DECISION_ID (``carried=""``): nothing was carried out,
    in this process or after a restart; the live call of the first decision is dropped, not
    ended, and no slot is held twice (the concurrency cap of 1 does not refuse it)."""
    path, clock = tmp_path / "og.db", Clock()
    screener = await started(path, clock)
    seen: list[CallDecided] = []
    with screener.events.subscribe(100) as sub:
        try:
            first = screener.screen(facts(adapter="agi", carried=""))
            clock.t += 1
            again = screener.screen(facts(adapter="agi", carried=""))  # the dialplan's retry
            assert again.allowed and again.id == first.id
            assert screener.live_calls() == 1
            await died(screener)
            clock.t += 1
            screener = await started(path, clock)  # and once more after a restart
            with screener.events.subscribe(100) as after:
                third = screener.screen(facts(adapter="agi", carried=""))
                event = after.queue.get_nowait()
                assert isinstance(event, CallDecided) and event.redo  # known from the log
            assert third.allowed and third.id == first.id and screener.live_calls() == 1
            clock.t += 10
            assert screener.ended(third.id, 16)
            await screener.store.flush_async()
            assert [(r[0], r[1], r[3], r[5]) for r in rows(path)] == [
                ("pbx-1.1", "allow", clock.t - 10, 16)]
            while not sub.queue.empty():
                event = sub.queue.get_nowait()
                if isinstance(event, CallDecided):
                    seen.append(event)
        finally:
            await died(screener)
    # the first process's: its first screening is no redo (nothing to replace), its retry is
    assert [e.redo for e in seen] == [False, True]
    from outguard.api.metrics import Collector

    collector = Collector()
    for e in seen:
        collector.add(e)
    assert collector.redone == {DEFAULT_PBX: 1}


async def test_a_channel_screened_again_after_a_decision_carried_out_gets_a_row_of_its_own(
    tmp_path: Path,
) -> None:
    """FastAGI: the channel holds the first decision's id (carried out); ARI: a fresh
    StasisStart (the channel left Stasis and came back). Across a restart too."""
    path, clock = tmp_path / "og.db", Clock()
    screener = await started(path, clock)
    first = screener.screen(facts(adapter="agi", carried=""))
    clock.t += 1
    second = screener.screen(facts(adapter="agi", carried=first.id))
    assert second.id != first.id
    await died(screener)
    clock.t += 1
    screener = await started(path, clock)
    try:
        assert screener.call_on_channel(DEFAULT_PBX, "pbx-1.1") is not None  # restored
        third = screener.screen(facts())  # ARI: a new StasisStart on the same channel
        assert third.id not in (first.id, second.id)
        fourth = screener.screen(facts(adapter="agi", carried=third.id))
        assert fourth.id not in (first.id, second.id, third.id)
        await screener.store.flush_async()
        logged = rows(path)
        assert [r[0] for r in logged] == [first.id, second.id, third.id, fourth.id]
        # each earlier call ended when its channel was screened again
        assert all(r[4] is not None for r in logged[:3]) and logged[3][4] is None
    finally:
        await died(screener)


async def test_a_colliding_unique_id_of_another_pbx_is_never_redone(tmp_path: Path) -> None:
    path, clock = tmp_path / "og.db", Clock()
    screener = await started(path, clock)
    try:
        one = screener.screen(facts(carried="", pbx="bj-1"))
        other = screener.screen(facts(carried="", pbx="sh-1", account="a2"))
        assert one.id == "pbx-1.1" and other.id != one.id
        await screener.store.flush_async()
        assert len(rows(path)) == 2
    finally:
        await died(screener)


async def test_a_failed_screening_of_a_waiting_channel_replaces_the_undone_decision(
    tmp_path: Path,
) -> None:
    path, clock = tmp_path / "og.db", Clock()
    first = await started(path, clock)
    undone = first.screen(facts())
    await died(first)
    clock.t += 2
    second = await started(path, clock)
    try:
        call_id = second.failed(facts(waiting=True), "screening_unavailable", "fail-closed", 34)
        assert call_id == undone.id and second.live_calls() == 0
        await second.store.flush_async()
        assert rows(path) == [(undone.id, "failed", "screening_unavailable", clock.t, clock.t,
                               34, None)]
    finally:
        await died(second)


async def test_a_first_screening_is_never_a_redo_whatever_the_dialplan_passes(
    tmp_path: Path,
) -> None:
    """``redo`` means an earlier decision of the id was undone: a first FastAGI screening
    (the new dialplan passes an empty OUTGUARD_DECISION_ID), a first ARI one, a channel
    found waiting that nobody decided for (the process died before deciding), an older
    dialplan: none is a redo, in the event, the metrics or the log."""
    from outguard.api.metrics import Collector

    path, clock = tmp_path / "og.db", Clock()
    screener = await started(path, clock)
    collector = Collector()
    try:
        with screener.events.subscribe(100) as sub:
            for n, kw in enumerate([dict(adapter="agi", carried=""), dict(),
                                    dict(waiting=True), dict(adapter="agi", carried=None)]):
                screener.screen(facts(f"pbx-1.{n}", account=f"a{n}", **kw))
            events = [sub.queue.get_nowait() for _ in range(4)]
        assert [e.redo for e in events if isinstance(e, CallDecided)] == [False] * 4
        for e in events:
            collector.add(e)
        assert collector.redone == {}
    finally:
        await died(screener)


async def test_a_redo_that_blocks_takes_back_the_count_of_the_undone_allow(
    tmp_path: Path,
) -> None:
    """Embedded counters: the undone decision allowed the call (counted), the redo blocks
    it: it never went out, so it no longer counts (in this process, and after a restart
    where the replay counted the undone row); a redo that allows it again counts it once."""
    path, clock = tmp_path / "og.db", Clock()
    screener = await started(path, clock)
    await screener.store.create_list("dnc", "dnc")

    def counted() -> int:
        return screener.counters.attempts("account", "a1", 3600, clock.t)

    try:
        screener.screen(facts(adapter="agi", carried=""))
        assert counted() == 1
        again = screener.screen(facts(adapter="agi", carried=""))  # allowed again
        assert again.allowed and counted() == 1
        await listed(screener, on=True)
        blocked = screener.screen(facts(adapter="agi", carried=""))
        assert not blocked.allowed and counted() == 0
        assert screener.counters.destination_attempts(
            "default", "+8613800138000", 3600, clock.t) == 0
        await listed(screener, on=False)
        screener.screen(facts("pbx-1.2", adapter="agi", carried=""))  # another call
        await died(screener)
        clock.t += 1
        screener = await started(path, clock)  # replayed: pbx-1.2 counts, undone
        assert counted() == 1
        await listed(screener, on=True)
        assert not screener.screen(facts("pbx-1.2", adapter="agi", carried="")).allowed
        assert counted() == 0
    finally:
        await died(screener)
