"""decide(): every rule kind, precedence, shadow mode, expiry, exemptions, causes."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone

import pytest

from rules.engine import decide, explain
from rules.model import ListEntry, Party, PartyKind, PartyState, Purpose, RuleMode
from rules.policy import parse_policy
from rules.snapshot import Snapshot

from .conftest import NOW, TEST_POLICY, FakeCounters, attempt, default_parties, snapshot

US_MORNING = datetime(2026, 11, 23, 15, 0, tzinfo=timezone.utc)  # 10:00 New York, Monday


def with_party(party: Party) -> Snapshot:
    others = [p for p in default_parties() if (p.kind, p.key) != (party.kind, party.key)]
    return snapshot(parties=[*others, party])


CASES = [
    # (id, attempt kwargs, expected rule id, expected reason)
    ("allowed-plain-mobile", {}, "", "ok"),
    ("blocked-destination-letters", {"destination": "13800abc"}, "destination_format", "destination_invalid"),
    # incomplete or invalid numbers never pass as "unknown" (they would miss list entries)
    ("blocked-destination-local-no-area-code", {"destination": "88886666"}, "destination_format", "destination_invalid"),
    ("blocked-destination-12-digit-mobile", {"destination": "138001380001"}, "destination_format", "destination_invalid"),
    ("blocked-destination-unallocated-segment", {"destination": "14000138000"}, "destination_format", "destination_invalid"),
    ("blocked-destination-us-local", {"destination": "+1 000 555 1234"}, "destination_format", "destination_invalid"),
    ("blocked-caller-id-400", {"caller_id": "400-123-4567"}, "cli", "caller_id_service_number"),
    ("blocked-caller-id-95", {"caller_id": "95588"}, "cli", "caller_id_service_number"),
    ("blocked-caller-id-96", {"caller_id": "96123"}, "cli", "caller_id_service_number"),
    ("blocked-caller-id-missing", {"caller_id": ""}, "cli", "caller_id_missing"),
    ("blocked-caller-id-garbage", {"caller_id": "anonymous"}, "cli", "caller_id_invalid"),
    ("blocked-caller-id-unallocated", {"caller_id": "+8680012345678"}, "cli", "caller_id_invalid"),
    ("blocked-caller-id-not-owned", {"caller_id": "13911113333"}, "cli", "caller_id_not_owned"),
    ("blocked-caller-id-other-tenant", {"caller_id": "010-88887777"}, "cli", "caller_id_not_owned"),
    ("blocked-caller-id-verification-expired", {"caller_id": "010-88885555"}, "cli", "caller_id_unverified"),
    ("blocked-caller-id-equals-destination", {"caller_id": "13911112222", "destination": "13911112222"}, "cli", "caller_id_is_destination"),
    ("blocked-dnc-expiring-entry", {"destination": "13800138001"}, "dnc", "dnc_listed"),
    ("allowed-dnc-entry-expired", {"destination": "13800138002"}, "", "ok"),
    ("allowed-dnc-but-consent", {"destination": "13800138000"}, "", "ok"),
    ("allowed-tenant-list-other-tenant", {"destination": "13500135000"}, "", "ok"),
    ("blocked-tenant-blacklist", {"destination": "13500135000", "tenant": "t2", "caller_id": "010-88887777"}, "dnc", "blacklisted"),
    ("blocked-campaign-dnc", {"destination": "13600136000", "campaign": "c1"}, "dnc", "dnc_listed"),
    ("allowed-campaign-dnc-no-campaign", {"destination": "13600136000"}, "", "ok"),
    ("blocked-us-register", {"destination": "+1 212 555 1234", "at": US_MORNING}, "register", "register_listed"),
    ("allowed-us-not-registered", {"destination": "+1 212 555 9999", "at": US_MORNING}, "", "ok"),
    ("blocked-segment-deny", {"destination": "17023456789"}, "segments", "prefix_denied"),
    ("allowed-segment-longer-allow", {"destination": "17012345678"}, "", "ok"),
    ("blocked-region-uk", {"destination": "+44 20 7946 0000"}, "regions", "region_denied"),
    ("blocked-province-xinjiang", {"destination": "0991-2345678"}, "regions", "region_denied"),
    ("blocked-line-type-short-code", {"destination": "10086"}, "lines", "line_type_denied"),
    ("blocked-quiet-hours-night", {"at": NOW + timedelta(hours=12)}, "hours", "quiet_hours"),
    ("blocked-quiet-hours-sunday", {"at": NOW - timedelta(days=1)}, "hours", "quiet_hours"),
    ("allowed-saturday-morning", {"at": NOW - timedelta(days=2)}, "", "ok"),
    ("blocked-holiday", {"at": datetime(2026, 10, 1, 3, 0, tzinfo=timezone.utc)}, "hours", "holiday"),
    ("allowed-night-service-call", {"at": NOW + timedelta(hours=12), "purpose": Purpose.SERVICE}, "", "ok"),
    ("blocked-us-night-callee-zone", {"destination": "+1 212 555 9999", "at": NOW}, "hours", "quiet_hours"),
    ("blocked-multi-zone-one-zone-closed", {"destination": "+1 800 555 1234", "at": US_MORNING}, "hours", "quiet_hours"),
]


@pytest.mark.parametrize(("kw", "rule", "reason"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rule_kinds(snap: Snapshot, counters: FakeCounters, kw: dict[str, object], rule: str, reason: str) -> None:
    v = decide(attempt(**kw), snap, counters)
    assert (v.rule_id, v.reason) == (rule, reason), v.message
    assert v.allowed is (rule == "")


PARTY_CASES = [
    ("blocked-account-suspended", Party(PartyKind.ACCOUNT, "a1", PartyState.SUSPENDED, "t1", NOW + timedelta(hours=1), "complaints"), "account_suspended"),
    ("allowed-account-suspension-over", Party(PartyKind.ACCOUNT, "a1", PartyState.SUSPENDED, "t1", NOW - timedelta(minutes=1)), "ok"),
    ("blocked-account-suspended-no-end", Party(PartyKind.ACCOUNT, "a1", PartyState.SUSPENDED, "t1"), "account_suspended"),
    ("blocked-account-disabled", Party(PartyKind.ACCOUNT, "a1", PartyState.DISABLED, "t1"), "account_disabled"),
    ("blocked-tenant-disabled", Party(PartyKind.TENANT, "t1", PartyState.DISABLED), "tenant_disabled"),
    ("blocked-caller-id-suspended", Party(PartyKind.CALLER_ID, "+861088886666", PartyState.SUSPENDED, "t1", NOW + timedelta(days=1)), "caller_id_suspended"),
    ("blocked-caller-id-unverified-state", Party(PartyKind.CALLER_ID, "+861088886666", PartyState.UNVERIFIED, "t1"), "caller_id_unverified"),
]


@pytest.mark.parametrize(("party", "reason"), [c[1:] for c in PARTY_CASES], ids=[c[0] for c in PARTY_CASES])
def test_party_status(counters: FakeCounters, party: Party, reason: str) -> None:
    v = decide(attempt(), with_party(party), counters)
    assert v.reason == reason, v.message
    if reason != "ok":
        assert v.rule_id == "status" and v.cause == 21


CAP_CASES = [
    ("blocked-account-per-minute", {"rates": {("account", "a1", 60): 5}}, "acct_min", "rate_cap", 34),
    ("allowed-account-below-limit", {"rates": {("account", "a1", 60): 4}}, "", "ok", 16),
    ("blocked-caller-id-per-day", {"rates": {("caller_id", "+861088886666", 86400): 30}}, "cli_day", "rate_cap", 34),
    ("blocked-destination-per-day", {"dest": {("t1", "+8613700137000", 86400): 2}}, "dest_day", "destination_cap", 21),
    ("blocked-distinct-callees", {"callees": {"a1": 100}}, "distinct", "distinct_callees_cap", 34),
    ("blocked-concurrent-account", {"live": {("account", "a1"): 2}}, "conc", "concurrency_cap", 17),
]


@pytest.mark.parametrize(("figures", "rule", "reason", "cause"), [c[1:] for c in CAP_CASES], ids=[c[0] for c in CAP_CASES])
def test_caps(snap: Snapshot, figures: dict[str, dict[object, int]], rule: str, reason: str, cause: int) -> None:
    v = decide(attempt(), snap, FakeCounters(**figures))  # type: ignore[arg-type]
    assert (v.rule_id, v.reason, v.cause) == (rule, reason, cause), v.message


def test_register_never_imported_blocks_us_calls(counters: FakeCounters) -> None:
    v = decide(attempt(destination="+1 212 555 9999", at=US_MORNING), snapshot(lists=[]), counters)
    assert (v.rule_id, v.reason) == ("fresh", "register_stale")


def test_register_older_than_max_age_blocks(counters: FakeCounters) -> None:
    from rules.model import ListInfo, ListKind

    old = [ListInfo("national", ListKind.REGISTER, imported_at=NOW - timedelta(days=32))]
    v = decide(attempt(destination="+1 212 555 9999", at=US_MORNING), snapshot(lists=old), counters)
    assert v.reason == "register_stale"
    assert "32.5 days old (max 31 days)" in v.message


def test_register_age_runs_from_the_copys_release_not_the_import(counters: FakeCounters) -> None:
    from rules.model import ListInfo, ListKind

    stale = [ListInfo("national", ListKind.REGISTER, imported_at=NOW - timedelta(days=1),
                      released_at=NOW - timedelta(days=40))]
    v = decide(attempt(destination="+1 212 555 9999", at=US_MORNING), snapshot(lists=stale), counters)
    assert v.reason == "register_stale" and "40.5 days old" in v.message
    fresh = [ListInfo("national", ListKind.REGISTER, imported_at=NOW - timedelta(days=1),
                      released_at=NOW - timedelta(days=3))]
    v = decide(attempt(destination="+1 212 555 9999", at=US_MORNING), snapshot(lists=fresh), counters)
    assert v.reason != "register_stale"


def test_first_block_wins_in_stage_order(counters: FakeCounters) -> None:
    suspended = Party(PartyKind.ACCOUNT, "a1", PartyState.SUSPENDED, "t1")
    snap = with_party(suspended)
    night_dnc = attempt(destination="13800138001", at=NOW + timedelta(hours=12))
    assert decide(night_dnc, snap, counters).rule_id == "status"
    assert decide(night_dnc, snapshot(), counters).rule_id == "dnc"
    busy = FakeCounters(live={("account", "a1"): 9})
    assert decide(attempt(at=NOW + timedelta(hours=12)), snapshot(), busy).rule_id == "hours"


def shadowed(*ids: str) -> Snapshot:
    policy = parse_policy(TEST_POLICY, "test.toml")
    rules = tuple(dataclasses.replace(r, mode=RuleMode.SHADOW) if r.id in ids else r for r in policy.rules)
    return snapshot(policy=dataclasses.replace(policy, rules=rules))


def test_shadow_mode_records_and_lets_the_call_through(counters: FakeCounters) -> None:
    v = decide(attempt(destination="13800138001"), shadowed("dnc"), counters)
    assert v.allowed and v.reason == "ok"
    assert v.shadow == ("dnc",)


def test_shadow_then_enforce_block_keeps_the_shadow_list(counters: FakeCounters) -> None:
    v = decide(attempt(destination="13800138001", at=NOW + timedelta(hours=12)), shadowed("dnc"), counters)
    assert (v.allowed, v.rule_id, v.shadow) == (False, "hours", ("dnc",))


def test_expiring_entry_lapses_without_a_rebuild(snap: Snapshot, counters: FakeCounters) -> None:
    assert not decide(attempt(destination="13800138001"), snap, counters).allowed
    later = NOW + timedelta(days=2)  # Wednesday 11:00 Shanghai
    assert decide(attempt(destination="13800138001", at=later), snap, counters).allowed


def test_verdict_carries_numbers_cause_and_announcement(counters: FakeCounters) -> None:
    text = TEST_POLICY.replace('lists = ["dnc", "black_t2", "camp_dnc"]', 'lists = ["dnc", "black_t2", "camp_dnc"]\ncause = 1\nannouncement = "ss-noservice"\nmessage = "{detail} [{rule}/{list}]"')
    snap = snapshot(policy=parse_policy(text))
    v = decide(attempt(destination="138 0013 8001"), snap, counters)
    assert (v.cause, v.announcement) == (1, "ss-noservice")
    assert v.message.endswith("[dnc/dnc]")
    assert (v.destination_e164, v.caller_id_e164) == ("+8613800138001", "+861088886666")


def test_causes_table_overrides_defaults(counters: FakeCounters) -> None:
    snap = snapshot(policy=parse_policy(TEST_POLICY + "\n[causes]\nquiet_hours = 21\n"))
    assert decide(attempt(at=NOW + timedelta(hours=12)), snap, counters).cause == 21
    assert decide(attempt(at=NOW + timedelta(hours=12)), snapshot(), counters).cause == 19


def test_hit_counters(snap: Snapshot, counters: FakeCounters) -> None:
    decide(attempt(), snap, counters)
    decide(attempt(destination="13800138001"), snap, counters)
    decide(attempt(destination="13800138000"), snap, counters)  # exempt from dnc
    hits = snap.hits.as_dict()
    assert hits[""] == {"decisions": 3, "allowed": 2}
    assert hits["dnc"] == {"block": 1, "exempt": 1}


def test_explain_lists_every_rule_with_figures(snap: Snapshot, counters: FakeCounters) -> None:
    out = explain(attempt(destination="13800138001", at=NOW + timedelta(hours=12)), snap, counters)
    by_id = {o.rule_id: o for o in out}
    assert out[0].rule_id == "destination_format" and out[0].figures["province"] == "北京市"
    assert len(out) == 1 + len(snap.checks)
    assert by_id["dnc"].outcome == "matched" and by_id["dnc"].decisive
    assert by_id["hours"].outcome == "matched" and not by_id["hours"].decisive
    assert by_id["status"].outcome == "passed"
    assert by_id["register"].outcome == "skipped"  # US-only rule
    assert by_id["acct_min"].figures["count"] == 0
    assert snap.hits.as_dict() == {}  # explain counts nothing


def test_explain_shows_consent_evidence(snap: Snapshot, counters: FakeCounters) -> None:
    out = {o.rule_id: o for o in explain(attempt(destination="13800138000"), snap, counters)}
    assert out["dnc"].outcome == "skipped" and out["dnc"].reason == "exempt"
    assert "web form 2026-11-01" in out["dnc"].message


def test_explain_bad_destination(snap: Snapshot, counters: FakeCounters) -> None:
    out = explain(attempt(destination=""), snap, counters)
    assert [(o.outcome, o.reason, o.decisive) for o in out] == [("matched", "destination_invalid", True)]


def test_decide_uses_now_over_attempt_time(snap: Snapshot, counters: FakeCounters) -> None:
    assert not decide(attempt(), snap, counters, now=NOW + timedelta(hours=12)).allowed


def test_lists_only_from_the_store_are_screened(counters: FakeCounters) -> None:
    from rules.model import ListInfo, ListKind

    text = TEST_POLICY.replace('lists = ["dnc", "black_t2", "camp_dnc"]', "")
    snap = snapshot(
        policy=parse_policy(text),
        lists=[ListInfo("national", ListKind.REGISTER, imported_at=NOW), ListInfo("imported_dnc", ListKind.DO_NOT_CALL)],
        entries=[ListEntry("imported_dnc", "+8613700137000")],
    )
    assert decide(attempt(), snap, counters).reason == "dnc_listed"


def test_home_area_code_resolves_local_dialling_so_the_dnc_entry_still_matches(
    counters: FakeCounters,
) -> None:
    from rules.policy import parse_policy

    text = 'home_area_code = "010"\n' + TEST_POLICY
    snap = snapshot(policy=parse_policy(text), entries=[ListEntry("dnc", "+861062345678")])
    v = decide(attempt(destination="6234 5678"), snap, counters)
    assert (v.rule_id, v.reason, v.destination_e164) == ("dnc", "dnc_listed", "+861062345678")
    plain = snapshot(entries=[ListEntry("dnc", "+861062345678")])
    v = decide(attempt(destination="6234 5678"), plain, counters)
    assert v.reason == "destination_invalid" and "home_area_code" in v.message


def test_a_home_area_code_that_is_not_one_is_a_policy_error() -> None:
    from rules.errors import PolicyError
    from rules.policy import parse_policy

    with pytest.raises(PolicyError, match="home_area_code"):
        parse_policy('home_area_code = "9999"\n' + TEST_POLICY)
    with pytest.raises(PolicyError, match="not an area code of CN"):
        parse_policy('home_area_code = "100"\n' + TEST_POLICY)  # Beijing is 10
    assert parse_policy('home_area_code = "0999"\n' + TEST_POLICY).home_area_code == "999"
