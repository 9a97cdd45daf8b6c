"""Parties, lists, enforcement records, audit, tokens and change notification."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone
from collections.abc import Callable
from pathlib import Path

import pytest

from outguard.errors import AuthFailed, Conflict, InvalidInput, NotFound
from outguard.store import SQLiteStore, match_account
from rules.model import ListKind, PartyKind, PartyState, Scope

NOW = datetime(2026, 5, 1, 9, 0, tzinfo=timezone.utc)


def _parties(store: SQLiteStore, now: datetime = NOW) -> dict[tuple[PartyKind, str], object]:
    return {(p.kind, p.key): p for p in store.load_store_data(now).parties}


@pytest.fixture
def tenant(store: SQLiteStore) -> str:
    store.create_tenant("t1", "Tenant One")
    store.create_account("a1", "t1", kind="agent")
    return "t1"


def test_tenants_and_accounts_round_trip(store: SQLiteStore, tenant: str) -> None:
    assert store.get_tenant("t1").name == "Tenant One"
    assert [a.id for a in store.list_accounts("t1")] == ["a1"]
    with pytest.raises(Conflict):
        store.create_tenant("t1", "again")
    with pytest.raises(NotFound):
        store.create_account("a2", "missing-tenant")
    with pytest.raises(InvalidInput):
        store.create_account("a3", "t1", kind="robot")
    assert store.set_account_state("a1", "disabled").state == "disabled"


def test_account_map_resolves_endpoint_before_prefix_before_callerid(store: SQLiteStore, tenant: str) -> None:
    store.create_account("a2", "t1")
    store.create_account("a3", "t1")
    store.add_account_mapping("callerid", "+8613800138000", "a3")
    store.add_account_mapping("channel_prefix", "PJSIP/10", "a2")
    store.add_account_mapping("endpoint", "1001", "a1")
    with pytest.raises(Conflict):
        store.add_account_mapping("endpoint", "1001", "a2")
    assert store.resolve_account(endpoint="1001", channel="PJSIP/1001-0001") == "a1"
    assert store.resolve_account(endpoint="1009", channel="PJSIP/1009-0001") == "a2"
    assert store.resolve_account(callerid="+8613800138000") == "a3"
    assert store.resolve_account(endpoint="2000") is None
    mappings = store.load_store_data(NOW).extra["account_map"]
    assert match_account(mappings, channel="PJSIP/1002-7") == "a2"  # type: ignore[arg-type]


def test_party_state_folds_suspensions_disables_and_verification(store: SQLiteStore, tenant: str) -> None:
    store.create_account("a2", "t1")
    store.create_account("a3", "t1")
    store.upsert_caller_id("+8613800138000", "t1", verification="verified",
                           verified_until=NOW + timedelta(days=30))
    store.upsert_caller_id("+8613800138001", "t1", verification="verified",
                           verified_until=NOW - timedelta(days=1))
    store.upsert_caller_id("+8613800138002", "t1", verification="missing")
    store.create_suspension("account", "a1", reason="short calls", created_by="trigger:short",
                            started_at=NOW - timedelta(hours=1), ends_at=NOW + timedelta(hours=2))
    store.create_suspension("account", "a2", reason="harassment", created_by="bob",
                            started_at=NOW - timedelta(hours=1))
    lifted = store.create_suspension("account", "a3", reason="x", created_by="bob",
                                     started_at=NOW - timedelta(hours=1))
    store.lift_suspension(lifted.id, lifted_by="carol", lift_reason="appeal ok",
                          lifted_at=NOW - timedelta(minutes=5))
    store.create_suspension("caller_id", "+8613999999999", reason="spoofed", created_by="bob",
                            started_at=NOW - timedelta(hours=1), ends_at=NOW + timedelta(days=1))
    store.set_tenant_state("t1", "disabled")

    p = _parties(store)
    a1 = p[(PartyKind.ACCOUNT, "a1")]
    assert (a1.state, a1.until, a1.reason) == (PartyState.SUSPENDED, NOW + timedelta(hours=2), "short calls")  # type: ignore[attr-defined]
    assert p[(PartyKind.ACCOUNT, "a2")].state is PartyState.DISABLED  # type: ignore[attr-defined]
    assert p[(PartyKind.ACCOUNT, "a3")].state is PartyState.ACTIVE  # type: ignore[attr-defined]
    assert p[(PartyKind.TENANT, "t1")].state is PartyState.DISABLED  # type: ignore[attr-defined]
    good = p[(PartyKind.CALLER_ID, "+8613800138000")]
    assert good.state is PartyState.ACTIVE and good.verified_until == NOW + timedelta(days=30)  # type: ignore[attr-defined]
    assert p[(PartyKind.CALLER_ID, "+8613800138001")].state is PartyState.UNVERIFIED  # type: ignore[attr-defined]
    assert p[(PartyKind.CALLER_ID, "+8613800138002")].state is PartyState.UNVERIFIED  # type: ignore[attr-defined]
    assert p[(PartyKind.CALLER_ID, "+8613999999999")].state is PartyState.SUSPENDED  # type: ignore[attr-defined]
    # after the timed suspension ends, the account is active again
    assert _parties(store, NOW + timedelta(hours=3))[(PartyKind.ACCOUNT, "a1")].state is PartyState.ACTIVE  # type: ignore[attr-defined]
    with pytest.raises(Conflict):
        store.lift_suspension(lifted.id, lifted_by="carol", lift_reason="again")
    with pytest.raises(NotFound):
        store.lift_suspension(9999, lifted_by="carol", lift_reason="no such suspension")
    assert [s.party_key for s in store.list_suspensions(active_at=NOW)] == ["a1", "a2", "+8613999999999"]


def test_lists_and_entries_stream_unexpired_only(store: SQLiteStore) -> None:
    store.create_list("dnc", ListKind.DO_NOT_CALL)
    store.create_list("t1-consent", "consent", scope="tenant", scope_key="t1")
    with pytest.raises(InvalidInput):
        store.create_list("bad", "dnc", scope="tenant")
    assert store.add_entries("dnc", ["13800138000", "+86 138 0013 8001"]) == 2
    assert store.add_entries("dnc", ["13800138000"]) == 0
    store.add_entries("dnc", ["13800138002"], expires_at=NOW - timedelta(days=1))
    store.add_entries("t1-consent", ["13800138003"], evidence="call recording 42")
    with pytest.raises(InvalidInput, match="letters"):
        store.add_entries("dnc", ["13800138004", "call me"])
    assert store.count_entries("dnc") == 3

    data = store.load_store_data(NOW)
    infos = {i.name: i for i in data.lists}
    assert infos["t1-consent"].scope is Scope.TENANT and infos["t1-consent"].scope_key == "t1"
    entries = sorted((e.list_name, e.e164, e.evidence) for e in data.entries)
    assert entries == [
        ("dnc", "+8613800138000", None), ("dnc", "+8613800138001", None),
        ("t1-consent", "+8613800138003", "call recording 42"),
    ]
    assert [e.list_name for e in store.find_entries("+8613800138003")] == ["t1-consent"]
    assert store.remove_entries("dnc", ["13800138000"]) == 1
    assert store.purge_expired(NOW) == 1
    store.delete_list("dnc")
    with pytest.raises(NotFound):
        store.get_list("dnc")


def test_entry_stream_is_consistent_and_single_use(store: SQLiteStore) -> None:
    store.create_list("dnc", "dnc")
    store.add_entries("dnc", ["13800138000"])
    data = store.load_store_data(NOW)
    store.add_entries("dnc", ["13800138001"])  # after the snapshot began
    assert [e.e164 for e in data.entries] == ["+8613800138000"]
    with pytest.raises(Exception, match="once"):
        list(data.entries)


def test_appeals_complaints_and_audit(store: SQLiteStore, tenant: str) -> None:
    susp = store.create_suspension("account", "a1", reason="complaints", created_by="trigger:complaints")
    appeal = store.create_appeal("account", "a1", text="we fixed the dialer", suspension_id=susp.id,
                                 evidence="ticket 7", actor="a1-owner")
    assert store.list_appeals(state="pending")[0].id == appeal.id
    decided = store.decide_appeal(appeal.id, approved=True, reviewer="rita", decision="ok")
    assert decided.state.value == "approved" and decided.decided_at is not None
    with pytest.raises(Conflict):
        store.decide_appeal(appeal.id, approved=False, reviewer="rita", decision="no")
    store.add_complaint("+8613800138000", category="harassment", source="12321",
                        reporter="+8613900000000")
    store.add_complaint("+8613800138000", category="advertising", source="app_mark", kind="mark")
    with pytest.raises(InvalidInput):
        store.add_complaint("+8613800138000", category="rude", source="x")
    assert [c.kind for c in store.list_complaints(caller_id="+8613800138000")] == ["complaint", "mark"]
    actions = [a.action for a in store.list_audit(party_key="a1")]
    assert actions == ["account.create", "suspension.create", "appeal.create", "appeal.approved"]
    approved = store.list_audit(party_key="a1")[-1]
    assert approved.actor == "rita" and approved.before == {"id": appeal.id, "state": "pending"}


def _stored_text(store: SQLiteStore) -> str:
    """Every value of every table, as text (to show a secret is not stored)."""
    tables = [r[0] for r in store._query(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        if getattr(store, "engine", "sqlite") == "postgresql" else
        "SELECT name FROM sqlite_master WHERE type = 'table'")]
    return "\n".join(repr(tuple(row)) for t in tables for row in store._query(f"SELECT * FROM {t}"))


def test_tokens_are_hashed_and_checked_by_prefix_id(store: SQLiteStore) -> None:
    store.create_user("alice", "admin")
    with pytest.raises(InvalidInput):
        store.create_user("bob", "root")
    new = store.create_token("alice", label="cli")
    assert store.verify_token(new.token).name == "alice"
    assert new.id in _stored_text(store)
    assert new.token.split("_", 2)[2] not in _stored_text(store)
    for bad in ("nonsense", new.token[:-1] + ("A" if new.token[-1] != "A" else "B"),
                f"og_ffffffffffff_{new.token.split('_', 2)[2]}"):
        with pytest.raises(AuthFailed):
            store.verify_token(bad)
    store.revoke_token(new.id)
    with pytest.raises(AuthFailed):
        store.verify_token(new.token)


def test_every_data_change_bumps_the_version_and_notifies(store: SQLiteStore, tenant: str) -> None:
    seen: list[int] = []
    unsubscribe = store.subscribe(seen.append)
    v0 = store.data_version()
    store.create_list("dnc", "dnc")
    store.add_entries("dnc", ["13800138000"])
    store.create_suspension("account", "a1", reason="x", created_by="bob")
    store.upsert_caller_id("+8613800138000", "t1")
    assert seen == [v0 + 1, v0 + 2, v0 + 3, v0 + 4] and store.data_version() == v0 + 4
    unsubscribe()
    store.create_account("a9", "t1")
    assert len(seen) == 4


def test_changes_by_another_process_are_noticed_by_polling(
    store: SQLiteStore, open_store_at: Callable[..., SQLiteStore]
) -> None:
    seen: list[int] = []
    store.subscribe(seen.append)
    assert store.check_external_changes() is False
    other = open_store_at()  # stands in for the CLI
    other.create_list("dnc", "dnc")
    other.close()
    # SQLite: polling notices it; PostgreSQL may have pushed it already (LISTEN/NOTIFY)
    noticed = store.check_external_changes()
    deadline = time.monotonic() + 10
    while not seen and time.monotonic() < deadline:
        time.sleep(0.01)
    assert seen == [store.data_version()]  # told once, whichever way came first
    if getattr(store, "engine", "sqlite") == "sqlite":
        assert noticed is True
    assert store.check_external_changes() is False


def test_writes_from_many_threads_are_serialised(store: SQLiteStore, tenant: str) -> None:
    store.create_list("dnc", "dnc")

    def add(i: int) -> None:
        store.add_entries("dnc", [f"1380013{i:04d}"])

    threads = [threading.Thread(target=add, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.count_entries("dnc") == 20


def test_rule_hits_add_up_across_flushes(store: SQLiteStore) -> None:
    store.add_rule_hits({("dnc", "block"): 3, ("", "total"): 5})
    store.add_rule_hits({("dnc", "block"): 2, ("quiet", "shadow"): 1})
    assert store.load_rule_hits() == {("dnc", "block"): 5, ("", "total"): 5,
                                      ("quiet", "shadow"): 1}
