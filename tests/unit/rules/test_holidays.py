"""Holiday calendars are data: shipped files per jurisdiction, each sourced; holidays that a
law defines by rule are computed from that definition (checked on known dates); a file's
mistakes are named with its file and line."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from rules.errors import PolicyError
from rules.holidays import (
    Calendar, combine, easter, load_calendar, parse_calendar, shipped, shipped_names,
)


def test_every_shipped_calendar_states_its_source_and_check_date() -> None:
    assert {"cn", "us-federal", "uk-ew", "us-la", "us-ri"} <= set(shipped_names())
    for name in shipped_names():
        cal = shipped(name)
        assert cal.name == name and cal.basis in ("law", "practice") and cal.cite
        assert cal.checked <= date(2026, 12, 31)
        for year in cal.years.values():
            assert year.cite and year.checked


@pytest.mark.parametrize(("year", "sunday"), [
    (2024, date(2024, 3, 31)), (2025, date(2025, 4, 20)), (2026, date(2026, 4, 5)),
    (2027, date(2027, 3, 28)), (2038, date(2038, 4, 25)),
])
def test_easter(year: int, sunday: date) -> None:
    assert easter(year) == sunday


def test_china_knows_the_years_its_notices_published_and_no_other() -> None:
    cn = shipped("cn")
    assert cn.known(2025) and cn.known(2026) and not cn.known(2027)
    assert cn.known_until() == date(2026, 12, 31)
    assert not cn.is_working_day(date(2026, 10, 5))  # National Day, a Monday
    assert cn.is_working_day(date(2026, 10, 10))  # a Saturday worked (调休)
    assert not cn.is_working_day(date(2026, 11, 7))  # a plain Saturday
    assert not cn.is_working_day(date(2025, 1, 29))  # Spring Festival 2025
    assert cn.is_working_day(date(2025, 2, 8))  # a Saturday worked in 2025
    # outside the known years: Monday-Friday (the caller flags it)
    assert cn.is_working_day(date(2027, 2, 8)) and not cn.is_working_day(date(2027, 2, 6))


@pytest.mark.parametrize(("day", "name"), [
    (date(2026, 1, 19), "Birthday of Martin Luther King, Jr."),
    (date(2026, 5, 25), "Memorial Day"),
    (date(2026, 6, 19), "Juneteenth National Independence Day"),
    (date(2026, 7, 3), "Independence Day"),  # 4 July 2026 is a Saturday: observed Friday
    (date(2026, 11, 26), "Thanksgiving Day"),
    (date(2027, 12, 24), "Christmas Day"),  # 25 December 2027 is a Saturday
    (date(2028, 1, 17), "Birthday of Martin Luther King, Jr."),
    (date(2028, 9, 4), "Labor Day"),
    (date(2028, 10, 9), "Columbus Day"),
])
def test_us_federal_holidays_from_5_usc_6103(day: date, name: str) -> None:
    assert shipped("us-federal").holidays(day.year)[day] == name


@pytest.mark.parametrize(("day", "name"), [
    (date(2027, 1, 8), "Battle of New Orleans"),
    (date(2027, 2, 9), "Mardi Gras"),  # Easter 2027 is 28 March: 47 days before
    (date(2026, 2, 17), "Mardi Gras"),
    (date(2026, 4, 3), "Good Friday"),
    (date(2027, 3, 26), "Good Friday"),
    (date(2026, 8, 30), "Huey P. Long Day"),
    (date(2026, 11, 1), "All Saints' Day"),
    (date(2026, 10, 12), "Christopher Columbus Day"),
])
def test_louisiana_holidays_from_la_rs_1_55(day: date, name: str) -> None:
    assert shipped("us-la").holidays(day.year)[day] == name


@pytest.mark.parametrize(("day", "name"), [
    (date(2026, 8, 10), "Victory Day"),  # second Monday of August
    (date(2026, 5, 4), "Rhode Island Independence Day"),
    (date(2025, 5, 5), None),  # 4 May 2025 is a Sunday: observed Monday 5 May
    (date(2026, 11, 3), "election day"),  # the Tuesday after the first Monday, even years
    (date(2026, 7, 6), "Independence Day"),  # 4 July a Saturday: the Monday after (25-1-1)
    (date(2026, 11, 26), "Thanksgiving Day (federal)"),
])
def test_rhode_island_state_and_federal_holidays(day: date, name: str | None) -> None:
    holidays = shipped("us-ri").holidays(day.year)
    assert day in holidays
    if name is not None:
        assert holidays[day] == name
    assert date(2027, 11, 2) not in shipped("us-ri").holidays(2027)  # odd year: no election


def test_uk_bank_holidays_are_listed_years() -> None:
    uk = shipped("uk-ew")
    assert uk.known(2027) and not uk.known(2028)
    assert not uk.is_working_day(date(2026, 12, 28))  # Boxing Day substitute
    assert not uk.is_working_day(date(2027, 3, 29))  # Easter Monday


GOOD = """\
[calendar]
name = "cn"
title = "Mainland China"
zone = "Asia/Shanghai"
checked = 2026-12-02
basis = "law"
cite = "my notice"

[[year]]
year = 2027
cite = "国务院办公厅关于2027年部分节假日安排的通知"
checked = 2026-12-20
holidays = [2027-01-01, 2027-02-08]
workdays = [2027-02-06]
"""


def test_an_operators_file_adds_a_year_to_the_shipped_calendar(tmp_path: Path) -> None:
    path = tmp_path / "cn-2027.toml"
    path.write_text(GOOD, encoding="utf-8")
    cal = combine([load_calendar(path)])["cn"]
    assert cal.known(2026) and cal.known(2027) and cal.known_until() == date(2027, 12, 31)
    assert not cal.is_working_day(date(2027, 2, 8)) and cal.is_working_day(date(2027, 2, 6))
    assert cal.years[2027].source == f"{path}:9"
    assert not cal.is_working_day(date(2026, 10, 5))  # the shipped years stay


def test_an_operators_year_replaces_the_shipped_one_whole() -> None:
    fix = GOOD.replace("2027", "2026").replace("2026-02-06", "2026-02-07")
    cal = combine([parse_calendar(fix, "fix.toml")])["cn"]
    assert cal.is_working_day(date(2026, 10, 5))  # not in the corrected list
    assert cal.is_working_day(date(2026, 2, 7))  # the corrected make-up day
    assert not cal.is_working_day(date(2026, 2, 14))  # the shipped one is gone


@pytest.mark.parametrize(("edit", "line", "key", "says"), [
    (("zone = \"Asia/Shanghai\"", "zone = \"Asia/Nowhere\""), 4, "calendar.zone",
     "unknown time zone"),
    (("basis = \"law\"", "basis = \"rumour\""), 6, "calendar.basis", "law or practice"),
    (("holidays = [2027-01-01, 2027-02-08]", "holidays = [2027-01-01, 2028-02-08]"), 13,
     "year[0].holidays", "2028-02-08 is not in 2027"),
    (("workdays = [2027-02-06]", "workdays = [2027-02-08]"), 14, "year[0].workdays",
     "both a holiday and a make-up working day"),
    (("workdays = [2027-02-06]", "workdays = [2027-02-05]"), 14, "year[0].workdays",
     "a weekday"),
    (("cite = \"国务院", "kite = \"国务院"), 11, "year[0].kite", "unknown key"),
    (("year = 2027", "year = \"2027\""), 10, "year[0].year", "must be a year"),
])
def test_a_bad_calendar_file_names_file_line_and_key(
    edit: tuple[str, str], line: int, key: str, says: str,
) -> None:
    with pytest.raises(PolicyError) as exc:
        parse_calendar(GOOD.replace(*edit), "cn-2027.toml")
    issue = next(i for i in exc.value.issues if i.key == key)
    assert (issue.file, issue.line) == ("cn-2027.toml", line) and says in issue.message


def test_holiday_rules_are_checked_with_their_line() -> None:
    text = GOOD.split("[[year]]")[0].replace('cite = "my notice"', 'cite = "x"\nrules_from = 2020')
    text += '\n[[holiday]]\nname = "Odd"\nmonth = 2\nweekday = "mon"\nnth = 7\n'
    with pytest.raises(PolicyError) as exc:
        parse_calendar(text, "odd.toml")
    issue = exc.value.issues[0]
    assert (issue.line, issue.key) == (15, "holiday[0].nth") and "1..5" in issue.message


def test_a_calendar_file_with_no_year_and_no_rule_is_refused() -> None:
    with pytest.raises(PolicyError, match="nothing to count on"):
        parse_calendar(GOOD.split("[[year]]")[0], "empty.toml")


def test_bad_toml_names_its_line() -> None:
    with pytest.raises(PolicyError) as exc:
        parse_calendar(GOOD.replace("year = 2027", "year = = 2027"), "broken.toml")
    assert exc.value.issues[0].line == 10


def test_is_a_calendar() -> None:
    assert isinstance(shipped("cn"), Calendar)
