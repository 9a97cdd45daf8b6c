"""Jurisdiction packs: every preset states its sources, marked law or practice, and the
date they were checked; mistakes are reported with file and line; the CN per-callee caps
preset limits calls to one callee as the carriers publish."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from rules.counters import InMemoryCounters
from rules.engine import decide
from rules.errors import PolicyError
from rules.model import CallAttempt, StoreData
from rules.policy import PRESET_DIR, load_policy, parse_policy, preset_names
from rules.snapshot import build_snapshot

JURISDICTIONS = [n for n in preset_names() if n != "demo"]


@pytest.mark.parametrize("name", JURISDICTIONS)
def test_every_jurisdiction_preset_states_dated_sources(name: str) -> None:
    policy = load_policy(PRESET_DIR / f"{name}.toml")
    own = [p for p in policy.packs if p.source.startswith(str(PRESET_DIR / f"{name}.toml"))]
    assert len(own) == 1, f"{name}.toml needs one [pack] table"
    pack = own[0]
    assert pack.checked <= date.today() and pack.checked.year >= 2026
    assert pack.sources, f"{name}: [[pack.sources]] name where each figure comes from"
    assert all(s.basis in ("law", "practice") and s.cite for s in pack.sources)


def test_an_including_policy_carries_the_packs_of_its_presets_in_order() -> None:
    policy = parse_policy('include = ["cn", "cn-callee-caps"]\n')
    assert [p.name for p in policy.packs] == ["cn", "cn-callee-caps"]


@pytest.mark.parametrize(
    ("text", "where", "words"),
    [
        pytest.param('[pack]\nname = "x"\nchecked = "yesterday"\n', ("pack.checked", 3), "must be a date", id="checked-not-a-date"),
        pytest.param('[pack]\nchecked = 2026-12-01\n', ("pack.name", 1), "non-empty", id="no-name"),
        pytest.param('[pack]\nname = "x"\nchecked = 2026-12-01\n\n[[pack.sources]]\nfigure = "f"\nbasis = "rumour"\ncite = "c"\n',
                     ("pack.sources[0].basis", 7), "law or practice", id="basis-neither"),
        pytest.param('[pack]\nname = "x"\nchecked = 2026-12-01\n[[pack.sources]]\nfigure = "f"\nbasis = "law"\n',
                     ("pack.sources[0].cite", 4), "name the source", id="no-cite"),
        pytest.param('[pack]\nname = "x"\nchecked = 2026-12-01\nowner = "me"\n', ("pack.owner", 4), "unknown key", id="unknown-key"),
    ],
)
def test_pack_mistakes_name_file_line_and_key(text: str, where: tuple[str, int], words: str) -> None:
    with pytest.raises(PolicyError) as err:
        parse_policy(text, "p.toml")
    found = [(i.key, i.line) for i in err.value.issues if words in i.message]
    assert found == [where], err.value.issues


def test_the_cn_callee_caps_limit_calls_to_one_callee() -> None:
    policy = parse_policy('include = ["cn-callee-caps"]\n')
    snap = build_snapshot(policy, StoreData(), datetime(2026, 11, 23, tzinfo=timezone.utc))
    start = datetime(2026, 11, 23, 2, 0, 30, tzinfo=timezone.utc)
    counters = InMemoryCounters(clock=start.timestamp)
    outcomes = []
    for minutes in (0, 0.5, 2, 4, 6, 8, 10, 70):
        at = start + timedelta(minutes=minutes)
        v = decide(CallAttempt("t1", "a1", "", "13800138000", at), snap, counters)
        if v.allowed:
            counters.record("t1", "a1", "", v.destination_e164, at.timestamp())
        outcomes.append(v.rule_id or "allow")
    assert outcomes == ["allow", "cn_callee_per_minute", "allow", "allow", "allow", "allow",
                        "cn_callee_per_hour", "allow"]
    other = decide(CallAttempt("t1", "a1", "", "13800138001", start + timedelta(minutes=11)), snap, counters)
    assert other.allowed  # per callee, not per seat
