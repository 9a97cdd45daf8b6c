"""Time windows: the epoch-arithmetic hot path agrees with datetime arithmetic."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from rules.checks_more import TimeWindowCheck
from rules.engine import _context
from rules.policy import parse_policy
from rules.snapshot import Snapshot

from .conftest import FakeCounters, attempt, snapshot

ZONES = ["America/New_York", "Europe/London", "Australia/Lord_Howe", "Asia/Kathmandu", "Asia/Shanghai"]
HOLIDAY = date(2026, 12, 25)


def window_snapshot(zone: str) -> Snapshot:
    text = f"""
[windows.w]
hours = {{ weekdays = ["08:00-12:00", "13:30-21:00"], sat = "10:00-12:30" }}
holidays = [{HOLIDAY.isoformat()}]
holiday_hours = "11:00-11:45"
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
