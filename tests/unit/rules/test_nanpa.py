"""US states come from the area code (NANPA's table), and the state rules of us-tcpa hold
for EVERY area code of their state (Florida, Oklahoma, Maryland tested one by one)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import phonenumbers as pn
import pytest

from rules.engine import decide
from rules.model import CallAttempt, ListInfo, ListKind, Party, PartyKind, Purpose, StoreData
from rules.classification import NANPA_TABLE, classify, us_area_code_states
from rules.numbers import normalise
from rules.policy import parse_policy
from rules.snapshot import Snapshot, build_snapshot

from .conftest import FakeCounters

STATE_CODES = {
    "FL": ["239", "305", "321", "324", "352", "386", "407", "448", "561", "645", "656", "689",
           "727", "728", "754", "772", "786", "813", "850", "863", "904", "941", "954"],
    "OK": ["405", "539", "572", "580", "918"],
    "MD": ["227", "240", "301", "410", "443", "667"],
}
STATE_RULES = {"FL": "us_florida", "OK": "us_oklahoma", "MD": "us_maryland"}
CALLER = "+12125550100"  # New York, owned by t1
MONDAY = datetime(2026, 11, 23, tzinfo=timezone.utc)
CASES = [(state, npa) for state, codes in STATE_CODES.items() for npa in codes]


def a_valid_number(npa: str) -> str:
    for nxx in ("234", "555", "720", "867", "940"):
        candidate = f"+1{npa}{nxx}0123"
        if pn.is_valid_number(pn.parse(candidate)):
            return candidate
    raise AssertionError(f"no valid number found in area code {npa}")


def test_the_table_states_its_source_and_date() -> None:
    head = [line for line in NANPA_TABLE.read_text(encoding="utf-8").splitlines() if line.startswith("#")]
    assert any(line.startswith("# source: NANPA") for line in head)
    assert any(line.startswith("# date: 20") for line in head)


def test_every_geographic_us_area_code_has_a_state_and_every_listed_one_is_valid() -> None:
    table = us_area_code_states()
    for npa in range(200, 1000):
        number = pn.parse(f"+1{npa}2345678")
        us = pn.region_code_for_number(number) == "US" and pn.is_valid_number(number)
        non_geo = str(npa).startswith("5") or str(npa) in ("800", "833", "844", "855", "866", "877", "888", "900")
        if us and not non_geo:
            assert str(npa) in table, f"area code {npa} has no state"
        if str(npa) in table:
            assert us, f"area code {npa} is listed but not a valid US code"


@pytest.mark.parametrize(("state", "npa"), CASES, ids=[f"{s}-{n}" for s, n in CASES])
def test_every_area_code_of_the_state_classifies_to_the_state(state: str, npa: str) -> None:
    assert classify(a_valid_number(npa)).province == state


def _snap() -> Snapshot:
    parties = [
        Party(PartyKind.TENANT, "t1"),
        Party(PartyKind.ACCOUNT, "a1", tenant="t1"),
        Party(PartyKind.CALLER_ID, CALLER, tenant="t1"),
    ]
    lists = [ListInfo("us_national_dnc", ListKind.REGISTER, imported_at=MONDAY - timedelta(days=1))]
    policy = parse_policy('include = ["us-tcpa"]\n', "p.toml")
    return build_snapshot(policy, StoreData(parties=parties, lists=lists), MONDAY)


SNAP = _snap()


def at_local(number: str, day: datetime, hour: int, minute: int = 0) -> datetime:
    """``hour:minute`` in the callee's easternmost zone (the latest local time)."""
    zones = classify(number).timezones
    east = max(zones, key=lambda z: day.astimezone(ZoneInfo(z)).utcoffset() or timedelta())
    local = datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZoneInfo(east))
    return local.astimezone(timezone.utc)


def screen(number: str, when: datetime, counters: FakeCounters | None = None) -> tuple[bool, str]:
    attempt = CallAttempt("t1", "a1", CALLER, number, when, Purpose.MARKETING)
    v = decide(attempt, SNAP, counters or FakeCounters())
    return v.allowed, v.rule_id


@pytest.mark.parametrize(("state", "npa"), CASES, ids=[f"{s}-{n}" for s, n in CASES])
def test_state_calling_hours_and_3_calls_in_24h_apply_to_every_area_code(state: str, npa: str) -> None:
    number = a_valid_number(npa)
    rule = STATE_RULES[state]
    assert screen(number, at_local(number, MONDAY, 12)) == (True, "")
    assert screen(number, at_local(number, MONDAY, 20, 30)) == (False, f"{rule}_hours")
    assert screen(number, at_local(number, MONDAY, 7, 30))[1] in (f"{rule}_hours", "us_tcpa_hours")
    third = FakeCounters(dest={("t1", normalise(number, "US"), 86400): 2})
    fourth = FakeCounters(dest={("t1", normalise(number, "US"), 86400): 3})
    assert screen(number, at_local(number, MONDAY, 12), third) == (True, "")
    assert screen(number, at_local(number, MONDAY, 12), fourth) == (False, f"{rule}_3_per_24h")


def test_texas_sunday_mornings_and_washington_evenings_are_closed() -> None:
    dallas, seattle, new_york = "+12145550123", "+12065550123", "+12125550199"
    sunday = MONDAY - timedelta(days=1)
    assert screen(dallas, at_local(dallas, sunday, 11)) == (False, "us_texas_hours")
    assert screen(dallas, at_local(dallas, sunday, 12, 30)) == (True, "")
    assert screen(dallas, at_local(dallas, MONDAY, 8, 30)) == (False, "us_texas_hours")
    assert screen(seattle, at_local(seattle, MONDAY, 20, 30)) == (False, "us_washington_hours")
    assert screen(new_york, at_local(new_york, MONDAY, 20, 30)) == (True, "")  # federal 08-21
