"""A consent exempts only what it covers; reassigned numbers void older consent;
litigators are blocked whatever consent says."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from rules.counters import InMemoryCounters
from rules.engine import decide, explain
from rules.model import CallAttempt, ConsentGrant, ListEntry, ListInfo, ListKind, Party, PartyKind, Purpose, StoreData
from rules.policy import parse_policy
from rules.snapshot import Snapshot, build_snapshot

NOW = datetime(2026, 11, 23, 3, 0, tzinfo=timezone.utc)  # Monday 11:00 Shanghai
NUMBER = "+8613800138000"

POLICY = """
default_region = "CN"
timezone = "Asia/Shanghai"
[lists.dnc]
kind = "dnc"
[lists.litigators]
kind = "litigator"
[lists.rnd]
kind = "reassigned"
[lists.consent]
kind = "consent"
exempts = ["dnc"]
[lists.consent_all]
kind = "consent"
exempts = ["dnc", "litigators"]
[[rules]]
id = "dnc"
kind = "lists"
lists = ["dnc"]
[[rules]]
id = "litigators"
kind = "lists"
lists = ["litigators"]
"""


def snap(entries: list[ListEntry] = [], grants: list[ConsentGrant] = [],
         text: str = POLICY) -> Snapshot:
    policy = parse_policy(text)
    parties = [Party(PartyKind.TENANT, "t1"), Party(PartyKind.TENANT, "t2")]
    data = StoreData(parties=parties, lists=[ListInfo("dnc", ListKind.DO_NOT_CALL)],
                     entries=[ListEntry("dnc", NUMBER), *entries], consents=grants)
    return build_snapshot(policy, data, NOW)


def grant(**kw: object) -> ConsentGrant:
    base: dict[str, object] = dict(id=1, e164=NUMBER, list_name="consent", tenant="t1",
                                   given_at=NOW - timedelta(days=10))
    base.update(kw)
    return ConsentGrant(**base)  # type: ignore[arg-type]


def call(tenant: str = "t1", campaign: str | None = None,
         purpose: Purpose = Purpose.MARKETING) -> CallAttempt:
    return CallAttempt(tenant, "a1", "", NUMBER, NOW, purpose, campaign)


def verdict(s: Snapshot, attempt: CallAttempt) -> str:
    v = decide(attempt, s, InMemoryCounters())
    return "allow" if v.allowed else v.reason


@pytest.mark.parametrize(
    ("g", "attempt", "expected"),
    [
        pytest.param(grant(), call(), "allow", id="tenant-grant-covers-its-tenant"),
        pytest.param(grant(), call(tenant="t2"), "dnc_listed", id="not-another-tenant"),
        pytest.param(grant(campaign="c1"), call(campaign="c1"), "allow", id="campaign-grant-covers-campaign"),
        pytest.param(grant(campaign="c1"), call(campaign="c2"), "dnc_listed", id="not-another-campaign"),
        pytest.param(grant(campaign="c1"), call(), "dnc_listed", id="not-a-call-without-campaign"),
        pytest.param(grant(purpose=Purpose.SERVICE), call(purpose=Purpose.SERVICE), "allow", id="purpose-grant-covers-purpose"),
        pytest.param(grant(purpose=Purpose.SERVICE), call(), "dnc_listed", id="service-consent-is-not-marketing-consent"),
        pytest.param(grant(expires_at=NOW - timedelta(seconds=1)), call(), "dnc_listed", id="expired-grant"),
        pytest.param(grant(expires_at=NOW + timedelta(days=1)), call(), "allow", id="unexpired-grant"),
        pytest.param(grant(list_name="nope"), call(), "dnc_listed", id="grant-on-unknown-list-exempts-nothing"),
    ],
)
def test_a_ledger_consent_exempts_only_what_it_covers(g: ConsentGrant, attempt: CallAttempt, expected: str) -> None:
    assert verdict(snap(grants=[g]), attempt) == expected


def test_explain_names_the_consent_record_and_its_evidence() -> None:
    s = snap(grants=[grant(id=7, evidence="form-42", source="web_form")])
    out = {o.rule_id: o for o in explain(call(), s, InMemoryCounters())}
    assert out["dnc"].outcome == "skipped"
    assert "consent #7" in out["dnc"].message and "form-42" in out["dnc"].message


@pytest.mark.parametrize(
    ("disconnected", "expected"),
    [
        pytest.param(NOW - timedelta(days=5), "dnc_listed", id="consent-before-disconnect-is-void"),
        pytest.param(NOW - timedelta(days=20), "allow", id="consent-after-disconnect-stands"),
        pytest.param(None, "dnc_listed", id="undated-reassignment-voids-all"),
    ],
)
def test_reassigned_numbers_void_older_consent(disconnected: datetime | None, expected: str) -> None:
    rnd = ListEntry("rnd", NUMBER, disconnected_at=disconnected)
    assert verdict(snap([rnd], [grant()]), call()) == expected
    # a consent-list entry recorded ten days ago is judged the same way
    entry = ListEntry("consent", NUMBER, given_at=NOW - timedelta(days=10))
    assert verdict(snap([rnd, entry]), call()) == expected


def test_a_consent_list_entry_of_unknown_date_is_void_on_a_reassigned_number() -> None:
    rnd = ListEntry("rnd", NUMBER, disconnected_at=NOW - timedelta(days=400))
    assert verdict(snap([rnd, ListEntry("consent", NUMBER)]), call()) == "dnc_listed"
    assert verdict(snap([ListEntry("consent", NUMBER)]), call()) == "allow"


def test_a_litigator_is_blocked_whatever_consent_says() -> None:
    lit = ListEntry("litigators", NUMBER)
    s = snap([lit], [grant(list_name="consent_all")])
    v = decide(call(), s, InMemoryCounters())
    assert (v.allowed, v.rule_id, v.reason) == (False, "litigators", "litigator_listed")
    # the same through a consent-list entry, and in explain
    s2 = snap([lit, ListEntry("consent_all", NUMBER)])
    assert decide(call(), s2, InMemoryCounters()).reason == "litigator_listed"
    out = {o.rule_id: o for o in explain(call(), s2, InMemoryCounters())}
    assert out["litigators"].outcome == "matched" and out["litigators"].decisive
    assert out["dnc"].outcome == "skipped"  # the consent still lifts the plain dnc block


def test_litigator_lists_are_checked_by_a_lists_rule_without_lists() -> None:
    s = snap([ListEntry("litigators", "+8613900139000")],
             text=POLICY.replace('lists = ["litigators"]\n', ""))
    v = decide(CallAttempt("t1", "a1", "", "+8613900139000", NOW), s, InMemoryCounters())
    assert v.reason == "litigator_listed"
