"""The consent ledger in the store: provenance, revocation scope, the lists a revocation
feeds, imports all or nothing, reassigned-number results."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from outguard.errors import ImportFailed, InvalidInput
from outguard.store import SQLiteStore
from outguard.store.consent import REFUSAL_DAYS, ConsentInput
from outguard.store.consent_files import read_consents, read_reassigned
from rules.model import Purpose

T0 = datetime(2026, 11, 1, tzinfo=UTC)
N = "+8613800138000"


def grant(**kw: object) -> ConsentInput:
    base: dict[str, object] = dict(number="13800138000", action="grant", source="web_form",
                                   channel="api", tenant="t1", list_name="consent",
                                   evidence="form-1", at=T0)
    base.update(kw)
    return ConsentInput(**base)  # type: ignore[arg-type]


def revoke(**kw: object) -> ConsentInput:
    base: dict[str, object] = dict(number="13800138000", action="revoke", source="call",
                                   channel="cli", tenant="t1", at=T0 + timedelta(days=1))
    base.update(kw)
    return ConsentInput(**base)  # type: ignore[arg-type]


def in_force(store: SQLiteStore) -> list[tuple[str, str | None, Purpose | None]]:
    return [(g.tenant, g.campaign, g.purpose)
            for g in store.consents_in_force(N, T0 + timedelta(days=2))]


def test_a_grant_keeps_its_provenance_and_is_in_force(store: SQLiteStore) -> None:
    record, listed = store.record_consent(grant(purpose="marketing", campaign="c1"))
    assert (record.e164, record.source, record.channel, record.evidence) == (N, "web_form", "api", "form-1")
    assert record.at == T0 and listed == []
    assert in_force(store) == [("t1", "c1", Purpose.MARKETING)]
    assert store.load_store_data(T0 + timedelta(days=2)).consents  # the snapshot sees it
    audit = store.list_audit(party_key=N)
    assert [a.action for a in audit] == ["consent.grant"]


@pytest.mark.parametrize(
    ("rev", "left"),
    [
        pytest.param(revoke(), [("t2", None, None)], id="tenant-revocation-ends-that-tenants-grants"),
        pytest.param(revoke(tenant=None), [], id="revocation-without-tenant-ends-all"),
        pytest.param(revoke(campaign="c1"), [("t1", None, None), ("t2", None, None)],
                     id="campaign-revocation-leaves-the-tenant-wide-grant"),
        pytest.param(revoke(at=T0 - timedelta(days=1)), [("t1", None, None), ("t1", "c1", None), ("t2", None, None)],
                     id="an-earlier-revocation-does-not-end-a-later-grant"),
    ],
)
def test_a_revocation_ends_the_grants_it_covers(store: SQLiteStore, rev: ConsentInput,
                                                left: list[tuple[str, str | None, None]]) -> None:
    store.record_consent(grant())
    store.record_consent(grant(campaign="c1"))
    store.record_consent(grant(tenant="t2"))
    store.record_consent(rev)
    assert sorted(in_force(store), key=str) == sorted(left, key=str)


def test_a_revocation_lists_the_number_and_a_cn_refusal_lasts_six_months(store: SQLiteStore) -> None:
    before = store.data_version()
    record, listed = store.record_consent(revoke())
    assert listed == ["optout-t1", "cn_refused"]
    assert store.data_version() > before  # running services rebuild their snapshot
    entries = {e.list_name: e for e in store.find_entries(N)}
    assert entries["optout-t1"].expires_at is None
    assert entries["cn_refused"].expires_at == record.at + timedelta(days=REFUSAL_DAYS)
    assert REFUSAL_DAYS >= 183
    assert store.get_list("optout-t1").info.scope_key == "t1"
    # a second, earlier refusal never shortens the period
    store.record_consent(revoke(at=T0 - timedelta(days=30)))
    again = {e.list_name: e for e in store.find_entries(N)}
    assert again["cn_refused"].expires_at == entries["cn_refused"].expires_at


def test_a_narrowed_revocation_does_not_list_the_number(store: SQLiteStore) -> None:
    _, listed = store.record_consent(revoke(purpose="marketing", number="+12025550123"))
    assert listed == []


@pytest.mark.parametrize(
    ("item", "field"),
    [
        pytest.param(grant(tenant=None), "tenant", id="grant-without-tenant"),
        pytest.param(grant(list_name=None), "list", id="grant-without-list"),
        pytest.param(grant(source=" "), "source", id="no-source"),
        pytest.param(grant(purpose="sales"), "purpose", id="unknown-purpose"),
        pytest.param(grant(number="12ab"), "number", id="bad-number"),
        pytest.param(grant(expires_at=T0 - timedelta(days=1)), "expires_at", id="expires-before-given"),
        pytest.param(revoke(list_name="consent"), "list", id="revocation-with-list"),
        pytest.param(grant(at=datetime(2026, 1, 1)), "at", id="naive-time"),
    ],
)
def test_bad_records_are_refused_naming_the_field(store: SQLiteStore, item: ConsentInput, field: str) -> None:
    with pytest.raises(InvalidInput) as err:
        store.record_consent(item)
    assert err.value.details["field"] == field
    assert store.consent_history(N) == []


def test_a_csv_import_is_all_or_nothing_with_line_numbers(store: SQLiteStore, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("action,number,tenant,source,at\n"
                   "grant,13800138000,t1,web_form,2026-11-01T10:00+08:00\n"
                   "revoke,1380013800x,t1,call,\n"
                   "grant,13800138001,,web_form,\n", encoding="utf-8")
    with pytest.raises(ImportFailed) as err:
        read_consents(bad, region="CN")
    assert [r.line for r in err.value.rejects] == [3, 4]
    good = tmp_path / "good.csv"
    good.write_text("action,number,tenant,source,purpose,expires_at\n"
                    "grant,13800138000,t1,web_form,marketing,2027-11-01\n"
                    "revoke,13800138000,t1,sms,marketing,\n", encoding="utf-8")
    items = read_consents(good, region="CN")
    assert [i.channel for i in items] == ["import", "import"]
    assert len(store.import_consents(items)) == 2
    assert [e.action for e in store.consent_history(N)] == ["grant", "revoke"]


def test_reassigned_results_carry_their_disconnect_date(store: SQLiteStore, tmp_path: Path) -> None:
    rnd = tmp_path / "rnd.csv"
    rnd.write_text("number,date,result\n+1 202 555 0123,2026-10-01,yes\n"
                   "+1 202 555 0124,2026-10-01,no\n+1 202 555 0125,2026-10-01,no data\n",
                   encoding="utf-8")
    rows = read_reassigned(rnd, region="US")
    assert rows == [("+12025550123", datetime(2026, 10, 1, tzinfo=UTC).timestamp())]
    assert store.add_reassigned("rnd", rows) == 1
    data = store.load_store_data(T0)
    entries = [e for e in data.entries if e.list_name == "rnd"]
    assert entries[0].disconnected_at == datetime(2026, 10, 1, tzinfo=UTC)
    store.create_list("dnc", "dnc")
    with pytest.raises(InvalidInput):
        store.add_reassigned("dnc", rows)
    broken = tmp_path / "broken.csv"
    broken.write_text("number,disconnected\n+12025550123,yesterday\n", encoding="utf-8")
    with pytest.raises(ImportFailed) as err:
        read_reassigned(broken, region="US")
    assert err.value.rejects[0].line == 2
