"""Time windows: the epoch-arithmetic hot path agrees with datetime arithmetic."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rules.checks_more import TimeWindowCheck
from rules.engine import _context
from rules.policy import parse_policy
from rules.snapshot import Snapshot

from .conftest import FakeCounters, attempt, snapshot

ZONES = ["America/New_York", "Europe/London", "Australia/Lord_Howe", "Asia/Kathmandu", "Asia/Shanghai"]
HOLIDAY = date(2026, 12, 25)
WORKDAY = date(2026, 12, 27)  # a Sunday made a working day (调休)


def window_snapshot(zone: str) -> Snapshot:
    text = f"""
[windows.w]
hours = {{ weekdays = ["08:00-12:00", "13:30-21:00"], sat = "10:00-12:30" }}
holidays = [{HOLIDAY.isoformat()}]
holiday_hours = "11:00-11:45"
workdays = [{WORKDAY.isoformat()}]
workday_hours = "09:00-10:00"
zone = "{zone}"
callee_zone = false

[[rules]]
id = "w"
kind = "time_window"
window = "w"
"""
    return snapshot(policy=parse_policy(text), parties=[], entries=[], lists=[])


SNAPS = {z: window_snapshot(z) for z in ZONES}


def reference_open(now: datetime, zone: str) -> bool:
    local = now.astimezone(ZoneInfo(zone))
    minute = local.hour * 60 + local.minute
    if local.date() == HOLIDAY:
        spans = [(660, 705)]
    elif local.date() == WORKDAY:
        spans = [(540, 600)]
    elif local.weekday() < 5:
        spans = [(480, 720), (810, 1260)]
    elif local.weekday() == 5:
        spans = [(600, 750)]
    else:
        spans = []
    return any(a <= minute < b for a, b in spans)


@settings(max_examples=1500, deadline=None)
@given(
    st.sampled_from(ZONES),
    st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31)),
)
def test_fast_window_agrees_with_datetime(zone: str, naive: datetime) -> None:
    now = naive.replace(tzinfo=timezone.utc)
    snap = SNAPS[zone]
    ctx = _context(attempt(at=now), snap, FakeCounters(), now)
    assert not isinstance(ctx, str)
    check = snap.checks[-1]  # after the built-in party_status rule
    assert isinstance(check, TimeWindowCheck)
    assert (check.evaluate(ctx) is None) is reference_open(now, zone)


def test_offset_memo_follows_a_dst_change() -> None:
    snap = SNAPS["America/New_York"]
    check = snap.checks[-1]  # after the built-in party_status rule
    # 2026-03-08: clocks go forward at 07:00 UTC. Monday 2026-03-09 12:59 UTC = 08:59 EDT.
    before = datetime(2026, 3, 6, 12, 59, tzinfo=timezone.utc)  # Friday 07:59 EST: closed
    after = before + timedelta(days=3)  # Monday 08:59 EDT: open
    for now in (before, after, before):
        ctx = _context(attempt(at=now), snap, FakeCounters(), now)
        assert not isinstance(ctx, str)
        assert (check.evaluate(ctx) is None) is reference_open(now, "America/New_York")


def test_fast_window_agrees_with_datetime_around_the_holiday_and_the_make_up_day() -> None:
    start = datetime(2026, 12, 24, tzinfo=timezone.utc)
    for zone in ZONES:
        snap, check = SNAPS[zone], SNAPS[zone].checks[-1]
        for step in range(5 * 96):  # every 15 minutes over five days
            now = start + timedelta(minutes=15 * step)
            ctx = _context(attempt(at=now), snap, FakeCounters(), now)
            assert not isinstance(ctx, str)
            assert (check.evaluate(ctx) is None) is reference_open(now, zone), (zone, now)


def _shanghai(day: date, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=ZoneInfo("Asia/Shanghai"))


CN_RULE = """include = ["cn"]

[[rules]]
id = "working_days"
kind = "time_window"
window = "cn_working_days"
"""


def test_cn_preset_follows_the_official_2026_schedule_with_make_up_working_days() -> None:
    snap = snapshot(policy=parse_policy(CN_RULE), parties=[], entries=[], lists=[])
    check = next(c for c in snap.checks if c.spec.id == "working_days")

    def is_open(day: date) -> bool:
        now = _shanghai(day, 10).astimezone(timezone.utc)
        ctx = _context(attempt(at=now), snap, FakeCounters(), now)
        assert not isinstance(ctx, str)
        return check.evaluate(ctx) is None

    make_up = [date(2026, 1, 4), date(2026, 2, 14), date(2026, 2, 28), date(2026, 5, 9),
               date(2026, 9, 20), date(2026, 10, 10)]
    assert all(d.weekday() >= 5 and is_open(d) for d in make_up)
    holidays = [date(2026, 1, 1), date(2026, 2, 16), date(2026, 2, 23), date(2026, 4, 6),
                date(2026, 5, 5), date(2026, 6, 19), date(2026, 9, 25), date(2026, 10, 7)]
    assert not any(is_open(d) for d in holidays)
    assert not is_open(date(2026, 10, 11))  # an ordinary Sunday
    assert is_open(date(2026, 10, 9))  # an ordinary Friday


def test_make_up_days_reach_the_verdict_and_the_explanation() -> None:
    from rules.engine import decide, explain

    snap = snapshot(policy=parse_policy(CN_RULE), parties=[], entries=[], lists=[])
    sunday = _shanghai(date(2026, 9, 20), 10).astimezone(timezone.utc)
    v = decide(attempt(at=sunday), snap, FakeCounters())
    assert v.rule_id != "working_days"
    figures = next(o for o in explain(attempt(at=sunday), snap, FakeCounters())
                   if o.rule_id == "working_days").figures
    assert figures["Asia/Shanghai"]["open"] == "09:00-21:00"


@pytest.mark.parametrize(
    ("window", "words"),
    [
        pytest.param('hours = { weekdays = "09:00-18:00" }\nholidays = [2026-10-01]\n'
                     "workdays = [2026-10-01]", "both a holiday and a make-up working day",
                     id="holiday-and-workday"),
        pytest.param('hours = { sat = "09:00-18:00" }\nworkdays = [2026-10-11]',
                     "need workday_hours", id="no-hours-to-copy"),
        pytest.param('hours = { weekdays = "09:00-18:00" }\nworkdays = ["10 Oct"]',
                     "bad date", id="bad-date"),
    ],
)
def test_bad_make_up_days_are_validation_errors(window: str, words: str) -> None:
    from rules.errors import PolicyError

    text = f"[windows.w]\n{window}\n\n[[rules]]\nid = \"w\"\nkind = \"time_window\"\nwindow = \"w\"\n"
    with pytest.raises(PolicyError, match=words):
        parse_policy(text)
