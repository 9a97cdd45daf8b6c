"""Shared helpers for the rules tests: a fixed clock, a test policy, fake counters."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import pytest

from rules.model import CallAttempt, ListEntry, ListInfo, ListKind, Party, PartyKind, Purpose, StoreData
from rules.policy import parse_policy
from rules.policy_types import Policy
from rules.snapshot import Snapshot, build_snapshot

# Monday 2026-11-23 11:00 in Shanghai (03:00 UTC).
NOW = datetime(2026, 11, 23, 3, 0, tzinfo=timezone.utc)
CALLER = "+861088886666"  # owned by t1, verified
DEST = "13700137000"  # a CN mobile on no list

TEST_POLICY = """
default_region = "CN"
timezone = "Asia/Shanghai"

[lists.dnc]
kind = "dnc"

[lists.black_t2]
kind = "blacklist"
scope = "tenant"
scope_key = "t2"

[lists.camp_dnc]
kind = "dnc"
scope = "campaign"
scope_key = "c1"

[lists.national]
kind = "register"
max_age_days = 31

[lists.consent]
kind = "consent"
exempts = ["dnc", "hours"]

[windows.business]
hours = { weekdays = "09:00-21:00", sat = "10:00-18:00" }
holidays = [2026-10-01]

[[rules]]
id = "status"
kind = "party_status"

[[rules]]
id = "cli"
kind = "caller_id"
forbidden_prefixes = ["86400", "8695", "8696"]

[[rules]]
id = "dnc"
kind = "lists"
lists = ["dnc", "black_t2", "camp_dnc"]

[[rules]]
id = "register"
kind = "lists"
lists = ["national"]
regions = ["US"]

[[rules]]
id = "fresh"
kind = "register_freshness"
lists = ["national"]
regions = ["US"]

[[rules]]
id = "segments"
kind = "prefix"
deny = ["86170", "86171"]
allow = ["861701"]

[[rules]]
id = "regions"
kind = "region"
allow_regions = ["CN", "US"]
deny_provinces = ["新疆维吾尔自治区"]

[[rules]]
id = "lines"
kind = "line_type"
deny = ["premium", "short_code"]

[[rules]]
id = "hours"
kind = "time_window"
window = "business"
purposes = ["marketing"]

[[rules]]
id = "acct_min"
kind = "cap"
scope = "account"
limit = 5
window = "minute"

[[rules]]
id = "cli_day"
kind = "cap"
scope = "caller_id"
limit = 30
window = "day"

[[rules]]
id = "dest_day"
kind = "cap"
scope = "destination"
limit = 2
window = "day"

[[rules]]
id = "distinct"
kind = "cap"
scope = "distinct_callees"
limit = 100

[[rules]]
id = "conc"
kind = "cap"
scope = "concurrent_account"
limit = 2
"""


@dataclass
class FakeCounters:
    """model.Counters with fixed figures set by the test."""

    rates: dict[tuple[str, str, int], int] = field(default_factory=dict)
    dest: dict[tuple[str, str, int], int] = field(default_factory=dict)
    callees: dict[str, int] = field(default_factory=dict)
    live: dict[tuple[str, str], int] = field(default_factory=dict)

    def attempts(self, scope: str, key: str, window_s: int, now: float) -> int:
        return self.rates.get((scope, key, window_s), 0)

    def destination_attempts(self, tenant: str, e164: str, window_s: int, now: float) -> int:
        return self.dest.get((tenant, e164, window_s), 0)

    def distinct_callees(self, account: str, now: float) -> int:
        return self.callees.get(account, 0)

    def concurrent(self, scope: str, key: str) -> int:
        return self.live.get((scope, key), 0)


def default_parties() -> list[Party]:
    return [
        Party(PartyKind.TENANT, "t1"),
        Party(PartyKind.ACCOUNT, "a1", tenant="t1"),
        Party(PartyKind.CALLER_ID, CALLER, tenant="t1", verified_until=NOW + timedelta(days=90)),
        Party(PartyKind.CALLER_ID, "+8613911112222", tenant="t1", verified_until=NOW + timedelta(days=90)),
        Party(PartyKind.CALLER_ID, "+861088887777", tenant="t2", verified_until=NOW + timedelta(days=90)),
        Party(PartyKind.CALLER_ID, "+861088885555", tenant="t1", verified_until=NOW - timedelta(days=1)),
    ]


def default_lists() -> list[ListInfo]:
    return [ListInfo("national", ListKind.REGISTER, imported_at=NOW - timedelta(days=5))]


def default_entries() -> list[ListEntry]:
    return [
        ListEntry("dnc", "+8613800138000"),
        ListEntry("dnc", "+8613800138001", NOW + timedelta(days=1)),
        ListEntry("dnc", "+8613800138002", NOW - timedelta(minutes=1)),  # expired
        ListEntry("black_t2", "+8613500135000"),
        ListEntry("camp_dnc", "+8613600136000"),
        ListEntry("national", "+12125551234"),
        ListEntry("consent", "+8613800138000", NOW + timedelta(days=30), "web form 2026-11-01"),
    ]


def snapshot(
    policy: Policy | None = None,
    parties: Iterable[Party] | None = None,
    entries: Iterable[ListEntry] | None = None,
    lists: Iterable[ListInfo] | None = None,
    now: datetime = NOW,
) -> Snapshot:
    pol = policy if policy is not None else parse_policy(TEST_POLICY, "test.toml")
    data = StoreData(
        parties=default_parties() if parties is None else parties,
        lists=default_lists() if lists is None else lists,
        entries=default_entries() if entries is None else entries,
    )
    return build_snapshot(pol, data, now)


def attempt(**kw: object) -> CallAttempt:
    base: dict[str, object] = {
        "tenant": "t1",
        "account": "a1",
        "caller_id": "010-88886666",
        "destination": DEST,
        "at": NOW,
        "purpose": Purpose.MARKETING,
    }
    base.update(kw)
    return CallAttempt(**base)  # type: ignore[arg-type]


@pytest.fixture
def snap() -> Snapshot:
    return snapshot()


@pytest.fixture
def counters() -> FakeCounters:
    return FakeCounters()
