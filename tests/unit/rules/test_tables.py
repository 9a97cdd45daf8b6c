"""Number sets and prefix tables against brute-force references; snapshot bad rows."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rules import tables
from rules.model import ListEntry, ListInfo, ListKind, Party, PartyKind
from rules.tables import ListIndexBuilder, PrefixTable

from .conftest import NOW, snapshot

digit_strings = st.text(alphabet="0123456789", min_size=1, max_size=8)


def brute_force(digits: str, allow: list[str], deny: list[str]) -> tuple[str, bool] | None:
    table = {p: True for p in allow}
    table.update({p: False for p in deny})
    best = max((p for p in table if digits.startswith(p)), key=len, default=None)
    return None if best is None else (best, table[best])


@settings(max_examples=500, deadline=None)
@given(
    st.lists(digit_strings, max_size=30),
    st.lists(digit_strings, max_size=30),
    st.lists(st.text(alphabet="0123456789", max_size=12), min_size=1, max_size=20),
)
def test_prefix_table_matches_brute_force(allow: list[str], deny: list[str], probes: list[str]) -> None:
    table = PrefixTable(allow, deny)
    for digits in probes + [p + "7" for p in allow + deny]:
        assert table.match(digits) == brute_force(digits, allow, deny)


@pytest.mark.parametrize(
    ("digits", "expected"),
    [
        pytest.param("8617012345678", ("861701", True), id="longer-allow-wins"),
        pytest.param("8617023456789", ("86170", False), id="deny-segment"),
        pytest.param("8613800138000", None, id="no-match"),
        pytest.param("86", None, id="shorter-than-every-prefix"),
    ],
)
def test_prefix_table_cases(digits: str, expected: tuple[str, bool] | None) -> None:
    table = PrefixTable(allow=["861701"], deny=["86170", "86171"])
    assert table.match(digits) == expected


def test_prefix_in_both_allow_and_deny_is_denied() -> None:
    table = PrefixTable(allow=["8613"], deny=["8613"])
    assert table.match("8613800138000") == ("8613", False)
    assert table.conflicts == ["8613"]


@pytest.mark.parametrize("chunk", [97, 1 << 18], ids=["many-chunks", "one-chunk"])
def test_list_index_matches_a_reference(monkeypatch: pytest.MonkeyPatch, chunk: int) -> None:
    monkeypatch.setattr(tables, "CHUNK", chunk)
    rng = random.Random(7)
    lo, hi = 8613000000000, 8613000020000
    plain: dict[int, set[int]] = {}
    expiring: dict[tuple[int, int], int] = {}
    builder = ListIndexBuilder()
    for _ in range(4000):
        key, lid = rng.randrange(lo, hi), rng.randrange(5)
        builder.add(key, lid)
        plain.setdefault(key, set()).add(lid)
    for _ in range(800):
        key, lid, until = rng.randrange(lo, hi), rng.randrange(5), rng.randrange(100, 200)
        builder.add(key, lid, until)
        builder.add(key, lid, until - 50)  # a duplicate with an earlier expiry: the later one wins
        expiring[(key, lid)] = max(until, expiring.get((key, lid), 0))
    index = builder.build()
    for key in range(lo, hi, 3):
        want = set(plain.get(key, set()))
        want |= {lid for (k, lid), until in expiring.items() if k == key and until > 150}
        got = index.lists_of(key, 150)
        assert sorted(got) == sorted(want)
        assert len(got) == len(set(got))
    for (key, lid), until in expiring.items():
        assert index.expiry(key, lid) == until


def test_short_codes_are_negative_keys() -> None:
    b = ListIndexBuilder()
    b.add(-8695588, 3)
    b.add(8695588, 1)
    index = b.build()
    assert index.lists_of(-8695588, 0) == (3,)
    assert index.lists_of(8695588, 0) == (1,)
    assert index.lists_of(-8695589, 0) == ()


def test_many_lists_one_lookup() -> None:
    b = ListIndexBuilder()
    for lid in range(0, tables.MAX_LISTS, 97):
        b.add(8613800138000, lid)
    assert index_ids(b.build()) == list(range(0, tables.MAX_LISTS, 97))


def index_ids(index: tables.ListIndex) -> list[int]:
    return sorted(index.lists_of(8613800138000, 0))


def test_memory_per_listed_number_is_at_most_16_bytes() -> None:
    n = 100_000
    entries = (ListEntry("dnc", f"+86138{i:08d}") for i in range(n))
    snap = snapshot(entries=entries, parties=[])
    assert snap.stats["numbers"] == n
    assert snap.list_bytes() / n <= 16


def test_bad_rows_are_reported_and_skipped() -> None:
    naive = datetime(2027, 1, 1)
    entries = [
        ListEntry("dnc", "+8613800138000"),
        ListEntry("dnc", "13800138000"),  # not canonical
        ListEntry("dnc", "+86 138"),
        ListEntry("nope", "+8613800138000"),
        ListEntry("dnc", "+8613800138009", naive),
        "not an entry",
    ]
    parties = [
        Party(PartyKind.CALLER_ID, "not a number", tenant="t1"),
        Party(PartyKind.ACCOUNT, "a1"),
        Party(PartyKind.ACCOUNT, "a1"),
        Party(PartyKind.ACCOUNT, "a2", until=naive),
    ]
    lists = [ListInfo("dnc", ListKind.BLACKLIST), ListInfo("national", ListKind.REGISTER, imported_at=naive)]
    snap = snapshot(entries=entries, parties=parties, lists=lists)  # type: ignore[arg-type]
    text = "\n".join(snap.warnings)
    for words in ("not E.164", "unknown list 'nope'", "lacks a time zone", "not a ListEntry",
                  "caller ID 'not a number'", "duplicate account a1", "times without a time zone",
                  "the policy wins", "imported_at/released_at has no time zone"):
        assert words in text
    assert snap.stats["numbers"] == 1
    assert snap.stats["bad_rows"] == 5


def test_expired_entries_are_dropped_at_build() -> None:
    entries = [ListEntry("dnc", "+8613800138000", NOW - timedelta(seconds=1))]
    snap = snapshot(entries=entries)
    assert snap.stats["numbers"] == 0 and snap.stats["expired_skipped"] == 1


def test_build_needs_an_aware_now() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        snapshot(now=datetime(2026, 1, 1))


def test_warnings_are_capped() -> None:
    entries = (ListEntry("dnc", "bad") for _ in range(1500))
    snap = snapshot(entries=entries)
    assert len(snap.warnings) == 1001
    assert snap.warnings[-1].startswith("... and 500 more")
    assert snap.stats["bad_rows"] == 1500


def test_snapshot_is_immutable() -> None:
    snap = snapshot()
    with pytest.raises(TypeError):
        snap.lists["x"] = snap.lists["dnc"]  # type: ignore[index]
    with pytest.raises(AttributeError):
        snap.checks = ()  # type: ignore[misc]
