"""A caller ID with an open caller-ID health task has its caller_id caps reduced by the
task's factor: over the reduced limit the call is refused (caller_id_throttled, the cap's
cause); other caller IDs and other cap scopes keep their limits."""

from __future__ import annotations

import dataclasses

import pytest

from rules.checks_more import throttled_limit
from rules.engine import decide, explain
from rules.model import Party, PartyKind

from .conftest import CALLER, FakeCounters, attempt, default_parties, snapshot

DAY = 86400


def throttled(factor: float, task: int = 7) -> list[Party]:
    return [dataclasses.replace(p, cap_factor=factor, throttle_task=task)
            if (p.kind, p.key) == (PartyKind.CALLER_ID, CALLER) else p
            for p in default_parties()]


@pytest.mark.parametrize(("calls", "factor", "reason"), [
    (14, 0.5, "ok"),                    # under 30 x 0.5
    (15, 0.5, "caller_id_throttled"),   # at the reduced limit
    (29, 0.5, "caller_id_throttled"),
    (30, 0.5, "rate_cap"),              # at the cap itself: the cap's own reason
    (29, 1.0, "ok"),                    # factor 1: not throttled
    (0, 0.01, "ok"),                    # the reduced limit is at least one call
    (1, 0.01, "caller_id_throttled"),
])
def test_a_throttled_caller_id_is_refused_over_its_reduced_cap(
        calls: int, factor: float, reason: str) -> None:
    snap = snapshot(parties=throttled(factor))
    v = decide(attempt(), snap, FakeCounters(rates={("caller_id", CALLER, DAY): calls}))
    assert v.reason == reason, v.message
    if reason == "caller_id_throttled":
        assert (v.rule_id, v.cause) == ("cli_day", 34)
        assert "health task 7" in v.message


def test_other_caller_ids_and_accounts_keep_their_limits() -> None:
    snap = snapshot(parties=throttled(0.5))
    other = "+8613911112222"
    v = decide(attempt(caller_id=other), snap,
               FakeCounters(rates={("caller_id", other, DAY): 29}))
    assert v.reason == "ok"
    v = decide(attempt(), snap, FakeCounters(rates={("account", "a1", 60): 4}))
    assert v.reason == "ok"  # the account cap (5/min) is not a caller-ID cap


def test_explain_shows_the_reduced_limit_and_the_task() -> None:
    snap = snapshot(parties=throttled(0.5, task=3))
    outcomes = explain(attempt(), snap, FakeCounters(rates={("caller_id", CALLER, DAY): 20}))
    cap = next(o for o in outcomes if o.rule_id == "cli_day")
    assert cap.outcome == "matched" and cap.reason == "caller_id_throttled"
    assert cap.figures["limit"] == 15 and cap.figures["cap"] == 30
    assert cap.figures["health_task"] == 3


@pytest.mark.parametrize(("limit", "factor", "expected"), [
    (100, 0.5, 50), (3, 0.5, 1), (1, 0.1, 1), (10, 1.0, 10), (7, 0.3, 2)])
def test_throttled_limit_is_at_least_one(limit: int, factor: float, expected: int) -> None:
    assert throttled_limit(limit, factor) == expected
