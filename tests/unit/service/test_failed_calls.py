"""A call outguard could not screen has its call-log row like any other: verdict
``failed``, the failure policy applied as its rule, the reason, and, when fail-open let it
through, its outcome; it counts toward the caps as an allowed call does, and every figure
(reports, risk figures, metrics, the live stream) treats it the one way figures.py says."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from outguard.api.metrics import Collector
from outguard.callevents import CallDecided, as_dict, decode, encode
from outguard.callfacts import ChannelFacts
from outguard.enforcement.risk import RiskBook
from outguard.live import DEFAULT_PBX
from outguard.reports import build_report
from outguard.service import Screener
from outguard.store.aio import AsyncStore
from outguard.store.base import CallRecord, LoggedCall
from outguard.store.sqlite import SQLiteStore
from rules.model import PartyKind
from rules.policy import parse_policy
from tests.unit.service.test_restart import Clock

POLICY = """
default_region = "CN"
timezone = "Asia/Shanghai"

[[rules]]
id = "account_concurrent"
kind = "cap"
scope = "concurrent_account"
limit = 1
cause = 17

[[rules]]
id = "account_hourly"
kind = "cap"
scope = "account"
window = "hour"
limit = 2
cause = 34
"""


def facts(channel: str, account: str = "a1") -> ChannelFacts:
    return ChannelFacts(adapter="ari", channel_id=channel, channel_name="PJSIP/agent-1",
                        dialed="13800138000", caller_id="01088886666", account=account,
                        tenant="t1")


@pytest.fixture
async def screener(tmp_path: Path) -> AsyncIterator[Screener]:
    store = AsyncStore(SQLiteStore(tmp_path / "og.db"))
    s = Screener(store, parse_policy(POLICY), clock=Clock())
    await s.start()
    try:
        yield s
    finally:
        await s.stop()
        await store.aclose()


async def rows(s: Screener) -> list[LoggedCall]:
    await s.store.flush_async()
    return list(await s.store.run(lambda: list(s.store.store.iter_calls())))


async def test_a_fail_closed_call_has_a_closed_failed_row_with_its_policy_and_cause(
    screener: Screener,
) -> None:
    call_id = screener.failed(facts("pbx-1.1"), "screening_error", "fail-closed", 34)
    [row] = await rows(screener)
    c = row.call
    assert (c.decision_id, c.verdict, c.rule, c.reason) == (
        "pbx-1.1", "failed", "fail-closed", "screening_error") and call_id == "pbx-1.1"
    assert (c.account, c.tenant, c.destination) == ("a1", "t1", "+8613800138000")
    assert row.ended_at == c.at and row.cause == 34 and row.answered_at is None
    assert screener.live_calls() == 0  # refused: nothing held
    assert screener.stats.failed == 1 and screener.stats.decisions == 0


async def test_a_fail_open_call_is_followed_to_its_end_and_counts_toward_the_caps(
    screener: Screener,
) -> None:
    call_id = screener.failed(facts("pbx-1.1"), "screening_unavailable", "fail-open", 34)
    assert screener.call_on_channel(DEFAULT_PBX, "pbx-1.1") is not None  # it holds its slot ...
    assert not screener.screen(facts("pbx-1.2")).allowed  # ... the cap of one call holds
    screener.clock.t += 2  # type: ignore[attr-defined]
    screener.answered(call_id)
    screener.clock.t += 30  # type: ignore[attr-defined]
    assert screener.ended(call_id, 16)
    [failed, blocked] = await rows(screener)
    assert (failed.call.verdict, failed.call.rule, failed.cause, failed.duration) == (
        "failed", "fail-open", 16, 30.0)
    assert failed.answered_at is not None and failed.ended_at is not None
    assert blocked.call.reason == "concurrency_cap"
    # it went out: the hourly cap counts it (one more call, then the cap of 2 refuses)
    third = screener.screen(facts("pbx-1.3"))
    assert third.allowed
    screener.ended(third.id, 16)
    assert screener.screen(facts("pbx-1.4")).verdict.rule_id == "account_hourly"


async def test_a_channel_gone_before_any_answer_has_a_failed_row_and_no_policy(
    screener: Screener,
) -> None:
    screener.failed(facts("pbx-1.1"), "channel_gone", "")
    [row] = await rows(screener)
    assert (row.call.verdict, row.call.rule, row.cause) == ("failed", "", None)
    assert row.ended_at is not None


async def test_a_channel_screened_after_its_failure_gets_a_row_of_its_own(
    screener: Screener,
) -> None:
    screener.failed(facts("pbx-1.1"), "screening_error", "fail-closed", 34)
    decision = screener.screen(facts("pbx-1.1"))
    assert decision.id != "pbx-1.1"
    assert len({r.call.decision_id for r in await rows(screener)}) == 2


async def test_fail_open_calls_are_replayed_into_the_counters_after_a_restart(
    tmp_path: Path,
) -> None:
    clock = Clock()
    store = AsyncStore(SQLiteStore(tmp_path / "og.db"))
    first = Screener(store, parse_policy(POLICY), clock=clock)
    await first.start()
    first.ended(first.failed(facts("pbx-1.1"), "screening_error", "fail-open", 34), 16)
    first.ended(first.screen(facts("pbx-1.2")).id, 16)
    first.failed(facts("pbx-1.3"), "screening_error", "fail-closed", 34)  # never went out
    await store.flush_async()
    await first.stop()
    await store.aclose()
    store = AsyncStore(SQLiteStore(tmp_path / "og.db"))
    second = Screener(store, parse_policy(POLICY), clock=clock)
    await second.start()
    try:
        assert second.screen(facts("pbx-1.4")).verdict.rule_id == "account_hourly"
    finally:
        await second.stop()
        await store.aclose()


def decided(call_id: str, verdict: str, rule: str = "", reason: str = "ok",
            cause: int = 0) -> CallDecided:
    return CallDecided(
        call_id=call_id, channel_id=call_id, adapter="ari", at=1_800_000_000.0, tenant="t1",
        account="a1", caller_id="+861088886666", destination="+8613800138000",
        allowed=verdict == "allow" or rule == "fail-open", rule=rule, reason=reason,
        message="", cause=cause, shadow=(), decision_us=0 if verdict == "failed" else 12,
        failed=verdict == "failed")


def test_the_live_stream_and_the_cluster_feed_carry_the_failed_verdict() -> None:
    event = decided("c1", "failed", "fail-open", "screening_error")
    wire = as_dict(event)
    assert (wire["verdict"], wire["rule"], wire["reason"]) == (
        "failed", "fail-open", "screening_error")
    assert decode(encode(event)) == event
    old = encode(decided("c2", "allow"))  # an instance without the field: not failed
    assert decode(old.removesuffix(",false]") + "]") == decided("c2", "allow")


def test_metrics_count_failed_calls_by_reason_without_a_decision_latency() -> None:
    c = Collector()
    c.add(decided("c1", "allow"))
    c.add(decided("c2", "failed", "fail-closed", "screening_error", 34))
    assert c.decisions == {("allow", "ok", DEFAULT_PBX): 1,
                           ("failed", "screening_error", DEFAULT_PBX): 1}
    assert c.latency_count == 1


def test_risk_figures_count_failed_attempts_apart_and_outcomes_of_fail_open_calls() -> None:
    book = RiskBook()
    at = 1_800_000_000.0
    for i, (allowed, failed) in enumerate(((True, False), (False, False), (True, True),
                                           (False, True))):
        book.decision(decision_id=f"c{i}", at=at, tenant="t1", account="a1",
                      caller_id="+861088886666", callee="+8613800138000", allowed=allowed,
                      reason="ok" if allowed or failed else "dnc_listed", failed=failed)
    book.outcome(at=at + 10, answered=True, duration=30.0, tenant="t1", account="a1",
                 caller_id="+861088886666")  # the fail-open call's end
    f = book.figures(PartyKind.ACCOUNT, "a1", 3600, at + 60)
    assert (f.attempts, f.allowed, f.blocked, f.failed, f.listed_blocks) == (4, 1, 1, 2, 1)
    assert (f.ended, f.answered) == (1, 1)
    assert f.blocks_by_reason == {"dnc_listed": 1}


def test_reports_count_failed_calls_and_the_outcomes_of_those_that_went_out(
    tmp_path: Path,
) -> None:
    store = SQLiteStore(tmp_path / "og.db")
    try:
        for event in (decided("c1", "allow"), decided("c2", "block", "dnc", "dnc_listed", 21),
                      decided("c3", "failed", "fail-open", "screening_error"),
                      decided("c4", "failed", "fail-closed", "screening_error", 34)):
            store.record_decision(CallRecord.from_decided(event))
        store.record_outcome("c3", answered_at=1_800_000_001.0, ended_at=1_800_000_031.0,
                             duration=30.0, cause=16)
        store.record_outcome("c4", answered_at=None, ended_at=1_800_000_000.0, duration=0.0,
                             cause=34)
        store.flush()
        total = build_report(list(store.iter_calls()), [], by=("day",),
                             tz="Asia/Shanghai")["total"]
    finally:
        store.close()
    assert (total["attempts"], total["allowed"], total["blocked"], total["failed"],
            total["failed_open"]) == (4, 1, 1, 2, 1)
    assert (total["ended"], total["answered"]) == (1, 1)  # the fail-open call's outcome
    assert total["blocked_by_reason"] == {"dnc_listed": 1}


async def test_a_failed_calls_row_is_committed_before_the_policy_is_carried_out(
    screener: Screener, tmp_path: Path,
) -> None:
    """``failed_durably`` returns once the row is in the store: a kill -9 right after (the
    adapters carry the failure policy out only then) cannot lose it."""
    import sqlite3

    call_id = await screener.failed_durably(facts("ch-durable"), "screening_error",
                                            "fail-open")
    conn = sqlite3.connect(tmp_path / "og.db")
    try:
        assert conn.execute("SELECT verdict, rule, reason FROM calls WHERE decision_id = ?",
                            (call_id,)).fetchall() == [("failed", "fail-open",
                                                         "screening_error")]
    finally:
        conn.close()
