"""The cn preset's sector hours: insurance sales calls only 09:00-21:00 (《人身保险电话销售
业务管理办法》, 保监发〔2013〕40号), applied to every marketing call to a CN number (no national
hours rule was found for finance or real-estate marketing: README, Presets). Other
purposes are not limited by it."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from rules.engine import decide, explain
from rules.model import CallAttempt, Purpose

from .conftest import FakeCounters
from .test_presets_law import parties, snap_of

CALLER = "+861088886666"
MONDAY = (2026, 11, 23)  # a working day


def at(hour: int, minute: int = 0) -> datetime:
    """A Shanghai wall-clock time on that Monday, in UTC."""
    return datetime(*MONDAY, hour - 8, minute, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("when", "purpose", "outcome"),
    [
        pytest.param(at(8, 59), Purpose.MARKETING, "matched", id="marketing-before-nine"),
        pytest.param(at(9, 0), Purpose.MARKETING, "passed", id="marketing-at-nine"),
        pytest.param(at(20, 59), Purpose.MARKETING, "passed", id="marketing-before-nine-pm"),
        pytest.param(at(21, 30), Purpose.MARKETING, "matched", id="marketing-after-nine-pm"),
        pytest.param(at(21, 30), Purpose.SERVICE, "skipped", id="service-not-limited"),
        pytest.param(at(21, 30), Purpose.COLLECTION, "skipped", id="collection-not-limited"),
    ],
)
def test_insurance_hours_limit_marketing_calls_only(when: datetime, purpose: Purpose,
                                                    outcome: str) -> None:
    snap = snap_of('include = ["cn"]\n', parties(CALLER))
    attempt = CallAttempt("t1", "a1", CALLER, "13700137000", when, purpose)
    (rule,) = [o for o in explain(attempt, snap, FakeCounters()) if o.rule_id == "cn_insurance_hours"]
    assert rule.outcome == outcome


def test_a_late_marketing_call_is_refused_by_the_sector_hours_rule() -> None:
    snap = snap_of('include = ["cn"]\n', parties(CALLER))
    late = CallAttempt("t1", "a1", CALLER, "13700137000", at(21, 30), Purpose.MARKETING)
    verdict = decide(late, snap, FakeCounters())
    assert (verdict.rule_id, verdict.reason) == ("cn_insurance_hours", "quiet_hours")
    day = CallAttempt("t1", "a1", CALLER, "13700137000", at(10), Purpose.MARKETING)
    assert decide(day, snap, FakeCounters()).allowed
