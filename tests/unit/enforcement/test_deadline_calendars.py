"""Complaint deadlines on holiday calendars, and their figures as settings.

Outside the years a calendar knows, a deadline is counted Monday-Friday and flagged
``calendar_unknown`` (stored, shown, announced), never silently; a calendar file the
operator adds counts it again. The channels' figures are settings over the sourced
defaults, validated with the file and line of every problem."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from outguard.enforcement import Enforcer
from outguard.enforcement.deadlines import (
    CHANNELS, Deadlines, calendar_warnings, default_deadlines,
)
from outguard.enforcement.policy import validate_enforcement
from outguard.events import EnforcementAnnounced
from outguard.store.aio import AsyncStore
from rules.errors import PolicyError
from rules.policy import load_policy
from tests.unit.enforcement.conftest import ENFORCEMENT, RULES, Clock
from tests.unit.rules.test_holidays import GOOD

SH, NY = ZoneInfo("Asia/Shanghai"), ZoneInfo("America/New_York")
D = default_deadlines()
CN = D.calendar("cn")
assert CN is not None and CN.known(2026) and not CN.known(2027), (
    "the shipped cn calendar now knows 2027: move these tests' unknown year on by one")


def at(y: int, m: int, d: int, h: int = 10, zone: ZoneInfo = SH) -> float:
    return datetime(y, m, d, h, tzinfo=zone).timestamp()


def end_of(y: int, m: int, d: int, zone: ZoneInfo = SH) -> float:
    return datetime(y, m, d, tzinfo=zone).timestamp() + 86400.0


CN_2027 = GOOD  # a 2027 of the operator's: 1 January and 8 February off, 6 February worked


def test_a_deadline_inside_the_known_years_is_not_flagged() -> None:
    d = D.due_at(CHANNELS["12321"], at(2026, 12, 1))
    assert (d.due, d.calendar_unknown) == (end_of(2026, 12, 22), False)


def test_a_deadline_running_into_an_unknown_year_is_counted_on_weekdays_and_flagged() -> None:
    d = D.due_at(CHANNELS["12321"], at(2026, 12, 20))
    # 21-31 Dec: 9 weekdays; then 1, 4, 5, 6, 7, 8 Jan 2027 counted as plain weekdays
    assert (d.due, d.calendar_unknown) == (end_of(2027, 1, 8), True)
    assert D.unknown_years(CHANNELS["12321"], at(2026, 12, 20), d.due) == [2027]
    fwd = D.forward_by(CHANNELS["12321"], at(2026, 12, 30))
    assert fwd is not None and fwd.calendar_unknown


def test_the_fcc_deadline_moves_off_a_weekend_or_federal_holiday() -> None:
    """47 CFR 1.4(j): 30 days from 4 June 2026 is Saturday 4 July (Independence Day,
    observed Friday 3 July); the next business day is Monday 6 July."""
    d = D.due_at(CHANNELS["fcc"], at(2026, 6, 4, 9, NY))
    assert (d.due, d.calendar_unknown) == (end_of(2026, 7, 6, NY), False)
    plain = D.due_at(CHANNELS["fcc"], at(2026, 11, 2, 9, NY))
    assert plain.due == end_of(2026, 12, 2, NY)


def test_ofcom_counts_8_weeks_and_never_needs_a_calendar() -> None:
    london = ZoneInfo("Europe/London")
    d = D.due_at(CHANNELS["ofcom"], at(2027, 11, 20, 9, london))
    assert (d.due, d.calendar_unknown) == (end_of(2028, 1, 15, london), False)


def policy_file(tmp_path: Path, enforcement: str = "", calendars: str = "") -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(calendars + RULES + ENFORCEMENT + enforcement, encoding="utf-8")
    return path


def deadlines_of(path: Path) -> Deadlines:
    return validate_enforcement(load_policy(path)).deadlines


def test_an_operators_calendar_file_adds_2027(tmp_path: Path) -> None:
    (tmp_path / "cn-2027.toml").write_text(CN_2027, encoding="utf-8")
    dl = deadlines_of(policy_file(tmp_path, calendars='calendars = ["cn-2027.toml"]\n'))
    d = dl.due_at(CHANNELS["12321"], at(2026, 12, 20))
    # 1 January 2027 is a holiday in that file: one more weekday
    assert (d.due, d.calendar_unknown) == (end_of(2027, 1, 11), False)
    assert not [w for w in dl.calendar_warnings(at(2026, 12, 2)) if "calendar cn" in w]
    assert [w for w in D.calendar_warnings(at(2026, 12, 2)) if "calendar cn " in w]


def test_a_bad_calendar_file_is_named_with_its_line_and_nothing_is_applied(
    tmp_path: Path,
) -> None:
    bad = CN_2027.replace("holidays = [2027-01-01, 2027-02-08]",
                          "holidays = [2027-01-01, 2026-01-04]")
    (tmp_path / "cn-2027.toml").write_text(bad, encoding="utf-8")
    with pytest.raises(PolicyError) as exc:
        load_policy(policy_file(tmp_path, calendars='calendars = ["cn-2027.toml"]\n'))
    (issue,) = exc.value.issues
    assert (Path(issue.file).name, issue.line) == ("cn-2027.toml", 13)
    assert "2026-01-04 is not in 2027" in issue.message
    with pytest.raises(PolicyError, match="no calendar file there"):
        load_policy(policy_file(tmp_path, calendars='calendars = ["missing.toml"]\n'))


def test_channel_figures_are_settings_with_their_source(tmp_path: Path) -> None:
    dl = deadlines_of(policy_file(tmp_path, """
[enforcement.complaint_deadlines]
warn_days = 10

[enforcement.complaint_deadlines.channels.12321]
act_days = 10
basis = "practice"
cite = "agreement with the provincial 12321 office, 2026-11"

[enforcement.complaint_deadlines.channels.cnca]
title = "Provincial communications administration"
act_days = 5
unit = "working_days"
calendar = "cn"
zone = "Asia/Shanghai"
basis = "practice"
cite = "the administration's letter of 2026-11-02"
"""))
    assert dl.warn_days == 10
    changed = dl.channels["12321"]
    assert (changed.act_days, changed.cite, changed.forward_days) == (
        10, "agreement with the provincial 12321 office, 2026-11", 3)
    assert changed.origin.endswith("policy.toml:" + str(changed.origin.split(":")[-1]))
    assert dl.due_at(changed, at(2026, 9, 30)).due == end_of(2026, 10, 20)
    own = dl.channel_of("CNCA")
    assert own is not None and dl.due_at(own, at(2026, 9, 30)).due == end_of(2026, 10, 13)
    assert dl.channels["fcc"] == CHANNELS["fcc"]


@pytest.mark.parametrize(("table", "key", "line", "says"), [
    ("[enforcement.complaint_deadlines.channels.12321]\nact_days = 10\n",
     "enforcement.complaint_deadlines.channels.12321.cite", 19, "where it comes from"),
    ("[enforcement.complaint_deadlines.channels.12321]\nunit = \"weeks\"\nbasis = \"law\"\n"
     "cite = \"x\"\n", "enforcement.complaint_deadlines.channels.12321.unit", 20,
     "working_days or days"),
    ("[enforcement.complaint_deadlines.channels.fcc]\ncalendar = \"us-tx\"\nbasis = \"law\"\n"
     "cite = \"x\"\n", "enforcement.complaint_deadlines.channels.fcc.calendar", 20,
     "no calendar 'us-tx'"),
    ("[enforcement.complaint_deadlines.channels.12300]\nact_days = 0\nbasis = \"law\"\n"
     "cite = \"x\"\n", "enforcement.complaint_deadlines.channels.12300.act_days", 20,
     "from 1 to 365"),
    ("[enforcement.complaint_deadlines.channels.mine]\ntitle = \"x\"\nact_days = 3\n",
     "enforcement.complaint_deadlines.channels.mine.unit", 19, "needs unit"),
    ("[enforcement.complaint_deadlines]\nwarn_days = -1\n",
     "enforcement.complaint_deadlines.warn_days", 20, "from 0 to 366"),
])
def test_bad_deadline_settings_name_the_line_and_key(
    tmp_path: Path, table: str, key: str, line: int, says: str,
) -> None:
    path = policy_file(tmp_path, "\n" + table)
    with pytest.raises(PolicyError) as exc:
        validate_enforcement(load_policy(path))
    issue = next(i for i in exc.value.issues if i.key == key)
    assert says in issue.message and issue.file == str(path) and issue.line == line


async def test_a_flagged_deadline_is_stored_shown_and_counted_again_when_the_year_is_added(
    store: AsyncStore, clock: Clock, tmp_path: Path,
) -> None:
    clock.now = at(2026, 12, 20, 12)
    first = Enforcer(store, load_policy(policy_file(tmp_path)), clock=clock)
    await first.start(background=False)
    try:
        sub = first.events.subscribe(size=10)
        c = await first.add_complaint("13900000001", "13800000001", category="harassment",
                                      source="12321", actor="ops")
        added = [e for e in [sub.queue.get_nowait() for _ in range(sub.queue.qsize())]
                 if isinstance(e, EnforcementAnnounced) and e.kind == "complaint.added"]
        assert [e.data["calendar_unknown"] for e in added] == [True]  # webhooks send this
        assert c.calendar_unknown and c.due_at == datetime.fromtimestamp(
            end_of(2027, 1, 8), UTC)
        stored = await store.get_complaint(c.id)
        assert stored.calendar_unknown
        warnings = await first.calendar_warnings()
        assert any("1 open complaint deadline(s)" in w for w in warnings)
        assert await first.recount_unknown_deadlines() == []  # nothing new to count on
    finally:
        await first.stop()
    (tmp_path / "cn-2027.toml").write_text(CN_2027, encoding="utf-8")
    policy = load_policy(policy_file(tmp_path, calendars='calendars = ["cn-2027.toml"]\n'))
    second = Enforcer(store, policy, clock=clock)
    await second.start(background=False)
    try:
        sub = second.events.subscribe(size=10)
        (again,) = await second.recount_unknown_deadlines()
        assert not again.calendar_unknown
        assert again.due_at == datetime.fromtimestamp(end_of(2027, 1, 11), UTC)
        kinds = [e.kind for e in [sub.queue.get_nowait() for _ in range(sub.queue.qsize())]
                 if isinstance(e, EnforcementAnnounced)]
        assert kinds == ["complaint.rescheduled"]
        audit = [a for a in await store.list_audit() if a.action == "complaint.reschedule"]
        assert len(audit) == 1 and audit[0].before and audit[0].before["calendar_unknown"] == 1
        assert await second.recount_unknown_deadlines() == []
        assert not [w for w in await second.calendar_warnings() if "open complaint" in w]
        # another instance that read the row before this one wrote it changes nothing
        assert again.due_at is not None
        assert await store.reschedule_complaint(again.id, due_at=again.due_at,
                                                calendar_unknown=False) is None
        assert len([a for a in await store.list_audit()
                    if a.action == "complaint.reschedule"]) == 1
    finally:
        await second.stop()


def test_calendar_warnings_name_the_windows_whose_calendar_ends(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text('include = ["cn"]\n', encoding="utf-8")
    policy = load_policy(path)
    found = calendar_warnings(D, policy, at(2026, 12, 2), unknown_open=2)
    assert any("windows cn_working_days" in w for w in found)
    assert any("2 open complaint deadline(s)" in w for w in found)
    assert calendar_warnings(D, policy, at(2026, 6, 1)) == []


def test_every_shipped_calendar_a_channel_names_exists() -> None:
    for channel in CHANNELS.values():
        assert channel.calendar is None or D.calendar(channel.calendar) is not None
    assert date(2026, 7, 3) in D.calendar("us-federal").holidays(2026)  # type: ignore[union-attr]
