"""US state telemarketing laws that name Sundays and holidays (us-tcpa): Louisiana (La.
R.S. 45:811: no calls on Sundays or state holidays, La. R.S. 1:55) and Rhode Island (R.I.
Gen. Laws 5-61-2(2): none on Sundays or state or federal holidays), on known dates, with
a block that names the holiday."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from rules.engine import decide
from rules.model import (
    CallAttempt, ListInfo, ListKind, Party, PartyKind, Purpose, StoreData, Verdict,
)
from rules.policy import parse_policy
from rules.snapshot import build_snapshot
from tests.unit.rules.test_nanpa import CALLER, FakeCounters

POLICY = parse_policy('include = ["us-tcpa"]\n', "p.toml")


def decide_at(number: str, when: datetime) -> Verdict:
    """The us-tcpa decision for a marketing call at ``when``, with a fresh national DNC
    copy (imported the day before)."""
    parties = [Party(PartyKind.TENANT, "t1"), Party(PartyKind.ACCOUNT, "a1", tenant="t1"),
               Party(PartyKind.CALLER_ID, CALLER, tenant="t1")]
    lists = [ListInfo("us_national_dnc", ListKind.REGISTER,
                      imported_at=when - timedelta(days=1))]
    snap = build_snapshot(POLICY, StoreData(parties=parties, lists=lists), when)
    attempt = CallAttempt("t1", "a1", CALLER, number, when, Purpose.MARKETING)
    return decide(attempt, snap, FakeCounters())


def screen(number: str, when: datetime) -> tuple[bool, str]:
    v = decide_at(number, when)
    return v.allowed, v.rule_id

NEW_ORLEANS = "+15045550123"  # area code 504: Louisiana, America/Chicago
PROVIDENCE = "+14015550123"  # area code 401: Rhode Island, America/New_York


def local(number: str, day: date, hour: int, minute: int = 0) -> datetime:
    zone = ZoneInfo("America/Chicago" if number == NEW_ORLEANS else "America/New_York")
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone).astimezone(
        timezone.utc)


@pytest.mark.parametrize(("day", "holiday"), [
    (date(2027, 2, 9), "Mardi Gras"),
    (date(2026, 4, 3), "Good Friday"),
    (date(2026, 8, 31), None),  # a plain Monday after Huey P. Long Day (30 Aug, a Sunday)
    (date(2027, 8, 30), "Huey P. Long Day"),
    (date(2026, 11, 2), None),  # a plain Monday
    (date(2027, 11, 1), "All Saints' Day"),
    (date(2027, 1, 8), "Battle of New Orleans"),
])
def test_louisiana_state_holidays_are_closed_all_day(day: date, holiday: str | None) -> None:
    noon = local(NEW_ORLEANS, day, 12)
    if holiday is None:
        assert screen(NEW_ORLEANS, noon) == (True, "")
        return
    verdict = decide_at(NEW_ORLEANS, noon)
    assert (verdict.allowed, verdict.rule_id, verdict.reason) == (
        False, "us_louisiana_hours", "holiday")
    assert f"is {holiday}, a holiday of calendar 'us-la'" in verdict.message


def test_louisiana_sundays_and_evenings_are_closed_saturdays_open() -> None:
    sunday, saturday, monday = date(2026, 11, 22), date(2026, 11, 21), date(2026, 11, 23)
    assert screen(NEW_ORLEANS, local(NEW_ORLEANS, sunday, 12)) == (False, "us_louisiana_hours")
    assert screen(NEW_ORLEANS, local(NEW_ORLEANS, saturday, 12)) == (True, "")
    assert screen(NEW_ORLEANS, local(NEW_ORLEANS, monday, 20, 5)) == (False,
                                                                       "us_louisiana_hours")
    assert screen(NEW_ORLEANS, local(NEW_ORLEANS, monday, 19, 55)) == (True, "")


@pytest.mark.parametrize(("day", "open_"), [
    (date(2026, 8, 10), False),  # Victory Day
    (date(2026, 11, 3), False),  # election day
    (date(2026, 11, 26), False),  # Thanksgiving (federal)
    (date(2026, 6, 19), False),  # Juneteenth (federal)
    (date(2026, 8, 11), True),
    (date(2026, 11, 22), False),  # a Sunday
])
def test_rhode_island_state_and_federal_holidays(day: date, open_: bool) -> None:
    assert screen(PROVIDENCE, local(PROVIDENCE, day, 12)) == (
        (True, "") if open_ else (False, "us_rhode_island_hours"))


def test_rhode_island_hours_are_9_to_6_weekdays_10_to_5_saturdays() -> None:
    monday, saturday = date(2026, 11, 23), date(2026, 11, 21)
    assert screen(PROVIDENCE, local(PROVIDENCE, monday, 18, 5))[0] is False
    assert screen(PROVIDENCE, local(PROVIDENCE, monday, 17, 55)) == (True, "")
    assert screen(PROVIDENCE, local(PROVIDENCE, saturday, 9, 30))[0] is False
    assert screen(PROVIDENCE, local(PROVIDENCE, saturday, 16, 55)) == (True, "")
    assert screen(PROVIDENCE, local(PROVIDENCE, saturday, 17, 5))[0] is False


def test_other_states_are_not_closed_on_louisiana_holidays() -> None:
    new_york = "+12125550199"
    mardi_gras = local(NEW_ORLEANS, date(2027, 2, 9), 12)
    assert screen(new_york, mardi_gras + timedelta(hours=0)) == (True, "")


def test_mississippi_sundays_are_closed_holidays_are_not() -> None:
    jackson = "+16015550123"  # area code 601: Mississippi, America/Chicago
    chicago = ZoneInfo("America/Chicago")

    def noon(day: date) -> datetime:
        return datetime(day.year, day.month, day.day, 12, tzinfo=chicago).astimezone(
            timezone.utc)

    assert screen(jackson, noon(date(2026, 11, 22))) == (False, "us_mississippi_hours")
    assert screen(jackson, noon(date(2026, 11, 21))) == (True, "")  # Saturday
    assert screen(jackson, noon(date(2026, 11, 26))) == (True, "")  # Thanksgiving: no ban
