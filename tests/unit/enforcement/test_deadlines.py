"""Complaint deadlines: working days on the China calendar (holidays and make-up working
days), calendar days elsewhere; each deadline announced once as it nears and passes (event
hub and webhooks); closing is audited and happens once."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from outguard.enforcement.deadlines import CHANNELS, Channel, channel_of, default_deadlines, state_of
from outguard.errors import Conflict, InvalidInput
from outguard.events import EnforcementAnnounced
from outguard.store.aio import AsyncStore
from tests.unit.enforcement.conftest import DAY, Clock, EnforcerFactory
from tests.unit.enforcement.test_webhooks import SECRET, Receiver, receiver

__all__ = ["receiver"]  # the webhook receiver fixture

SH = ZoneInfo("Asia/Shanghai")
DEADLINES = default_deadlines()


def due_at(channel: Channel, received: float) -> float:
    deadline = DEADLINES.due_at(channel, received)
    assert not deadline.calendar_unknown
    return deadline.due


def forward_by(channel: Channel, reported: float) -> float | None:
    deadline = DEADLINES.forward_by(channel, reported)
    return None if deadline is None else deadline.due


def at(y: int, m: int, d: int, h: int = 10, zone: ZoneInfo = SH) -> float:
    return datetime(y, m, d, h, tzinfo=zone).timestamp()


def end_of(y: int, m: int, d: int, zone: ZoneInfo = SH) -> float:
    return datetime(y, m, d, tzinfo=zone).timestamp() + DAY


@pytest.mark.parametrize(("received", "due", "why"), [
    (at(2026, 11, 2), end_of(2026, 11, 23), "15 weekdays, the day of receipt not counted"),
    (at(2026, 11, 6, 23), end_of(2026, 11, 27), "a Friday night receipt counts from Monday"),
    (at(2026, 9, 30), end_of(2026, 10, 27),
     "National Day 1-7 Oct skipped, Saturday 10 Oct (make-up day) counted"),
    (at(2026, 2, 13), end_of(2026, 3, 12),
     "Spring Festival 15-23 Feb skipped, Saturdays 14 and 28 Feb counted"),
], ids=["plain-weeks", "friday-night", "national-day", "spring-festival"])
def test_12321_counts_15_working_days_on_the_china_calendar(received: float, due: float,
                                                             why: str) -> None:
    assert due_at(CHANNELS["12321"], received) == due, why


def test_the_china_calendar_is_the_shipped_one_the_cn_preset_uses_too() -> None:
    from rules.policy import PRESET_DIR, load_policy

    cn = DEADLINES.calendar("cn")
    assert cn is not None and CHANNELS["12321"].calendar == "cn"
    window = load_policy(PRESET_DIR / "cn.toml").windows["cn_working_days"]
    assert window.calendar == "cn" and date(2026, 10, 1) in window.holidays
    assert date(2026, 10, 10) in window.workdays
    assert cn.is_working_day(date(2026, 10, 10))  # a Saturday, worked
    assert not cn.is_working_day(date(2026, 10, 5))  # a Monday, holiday
    assert not cn.is_working_day(date(2026, 11, 7))  # a plain Saturday


def test_12321_forwards_within_3_working_days_and_12300_decides_within_5() -> None:
    assert forward_by(CHANNELS["12321"], at(2026, 9, 30)) == end_of(2026, 10, 10)
    assert forward_by(CHANNELS["12300"], at(2026, 11, 2)) == end_of(2026, 11, 9)
    assert forward_by(CHANNELS["fcc"], at(2026, 11, 2)) is None


def test_fcc_and_ofcom_count_calendar_days_in_their_zone() -> None:
    ny, london = ZoneInfo("America/New_York"), ZoneInfo("Europe/London")
    assert due_at(CHANNELS["fcc"], at(2026, 11, 2, 9, ny)) == end_of(2026, 12, 2, ny)
    assert due_at(CHANNELS["ofcom"], at(2026, 11, 2, 9, london)) == end_of(2026, 12, 28, london)


def test_every_channel_states_its_basis_and_source() -> None:
    for channel in CHANNELS.values():
        assert channel.basis in ("law", "practice") and channel.cite
        assert channel.forward_days is None or channel.forward_basis in ("law", "practice")
    assert channel_of(" FCC ") is CHANNELS["fcc"] and channel_of("manual") is None


@pytest.mark.parametrize(("due", "closed", "now", "state"), [
    (None, None, 0.0, "none"), (100.0, 50.0, 200.0, "closed"), (100.0, None, 100.0, "overdue"),
    (100.0 + 2 * DAY, None, 100.0, "due_soon"), (100.0 + 3 * DAY, None, 100.0, "open"),
])
def test_states(due: float | None, closed: float | None, now: float, state: str) -> None:
    assert state_of(due, closed, now) == state


async def test_a_regulator_complaint_is_announced_due_soon_then_overdue_once_each(
    make_enforcer: EnforcerFactory, clock: Clock, store: AsyncStore,
    receiver: tuple[Receiver, str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    rx, url = receiver
    rx.fail_first = 0
    monkeypatch.setenv("OUTGUARD_TEST_HOOK_SECRET", SECRET)
    enforcer = await make_enforcer(f"""
[enforcement.webhooks]
urls = ["{url}"]
secret_env = "OUTGUARD_TEST_HOOK_SECRET"
backoff_s = 0.01
""")
    sub = enforcer.events.subscribe(size=100)
    received = datetime.fromtimestamp(clock.now, UTC)
    c = await enforcer.add_complaint("13900000001", "13800000001", category="harassment",
                                     source="12321", actor="ops", received=received)
    plain = await enforcer.add_complaint("13900000002", "13800000001", category="harassment",
                                         source="manual", actor="ops")
    assert c.due_at is not None and c.due_at.timestamp() == due_at(CHANNELS["12321"], clock.now)
    assert plain.due_at is None and plain.received_at is None
    assert await enforcer.check_deadlines() == []  # three weeks to go
    clock.now = c.due_at.timestamp() - DAY
    assert [s for s, _ in await enforcer.check_deadlines()] == ["due_soon"]
    assert await enforcer.check_deadlines() == []  # once
    clock.now = c.due_at.timestamp() + 1
    assert [s for s, _ in await enforcer.check_deadlines()] == ["overdue"]
    assert await enforcer.check_deadlines() == []
    assert [x.id for x in await enforcer.complaints_due(0.0)] == [c.id]

    closed = await enforcer.close_complaint(c.id, resolution="callee on dnc; agent coached",
                                            actor="rita")
    assert (closed.closed_by, closed.resolution) == ("rita", "callee on dnc; agent coached")
    with pytest.raises(Conflict):
        await enforcer.close_complaint(c.id, resolution="again", actor="rita")
    with pytest.raises(InvalidInput):
        await enforcer.close_complaint(plain.id, resolution=" ", actor="rita")
    assert await enforcer.complaints_due() == []
    audit = [a for a in await store.list_audit() if a.action == "complaint.close"]
    assert len(audit) == 1 and audit[0].actor == "rita" and audit[0].after is not None
    assert audit[0].after["late"] is True and audit[0].after["resolution"].startswith("callee")

    seen = []
    while not sub.queue.empty():
        seen.append(sub.queue.get_nowait())
    events = [e.kind for e in seen if isinstance(e, EnforcementAnnounced)]
    assert [e for e in events if e.startswith("complaint.") and e != "complaint.added"] == [
        "complaint.due_soon", "complaint.overdue", "complaint.closed"]
    await enforcer.webhooks.idle()
    hooks = [json.loads(body)["type"] for _, body in rx.deliveries]
    assert [h for h in hooks if h != "complaint.added"] == [
        "complaint.due_soon", "complaint.overdue", "complaint.closed"]


async def test_a_complaint_cannot_be_received_before_it_was_made(
    make_enforcer: EnforcerFactory, clock: Clock,
) -> None:
    enforcer = await make_enforcer()
    with pytest.raises(InvalidInput) as err:
        await enforcer.add_complaint(
            "13900000001", "13800000001", category="harassment", source="12300", actor="ops",
            at=datetime.fromtimestamp(clock.now, UTC),
            received=datetime.fromtimestamp(clock.now - DAY, UTC))
    assert err.value.details["field"] == "received"
