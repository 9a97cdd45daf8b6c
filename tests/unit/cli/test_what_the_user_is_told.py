"""What the user is told: a party that cannot call says so and why; enforcement on a party
nobody has heard of is refused; commands that only read never create a store where a
path was mistyped (every one of them: the tree is walked)."""

from __future__ import annotations

import time
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from outguard.cli import cli
from tests.unit.api.conftest import POLICY
from tests.unit.cli.conftest import Cli
from tests.unit.cli.test_tree import COMMANDS


def test_an_account_of_a_suspended_tenant_is_told_it_cannot_call(og: Cli) -> None:
    og("suspend", "tenant", "t1", "--reason", "two complaints", "--for", "7d")
    out = og("status", "account", "a1").output
    assert "account a1: active" in out  # its own state
    assert "cannot call" in out and "tenant t1 is suspended" in out
    assert "two complaints" in out
    body = og.json("status", "account", "a1")
    assert body["can_call"] is False
    assert "tenant t1 is suspended" in body["cannot_call_because"]
    og("lift", "tenant", "t1", "--reason", "resolved")
    assert "calls: allowed" in og("status", "account", "a1").output
    assert og.json("status", "account", "a1")["can_call"] is True


@pytest.mark.parametrize("args", [
    ("suspend", "account", "a1-typo", "--reason", "x", "--for", "1h"),
    ("disable", "account", "nobody", "--reason", "x"),
    ("suspend", "tenant", "t9", "--reason", "x"),
    ("suspend", "caller_id", "01099998888", "--reason", "x"),
    ("lift", "account", "nobody", "--reason", "x"),
    ("status", "account", "nobody"),
    ("appeals", "submit", "account", "nobody", "--text", "x"),
], ids=lambda a: " ".join(a[:3]))
def test_enforcement_on_a_party_nobody_knows_is_refused(og: Cli, args: tuple[str, ...]) -> None:
    result = og(*args, code=3)
    assert "not found" in result.output
    with og.store() as store:
        assert store.list_suspensions() == []


def test_a_party_seen_only_in_calls_can_be_suspended(og: Cli) -> None:
    """An account named after its endpoint has no row but calls: it can be stopped."""
    from outguard.store.base import CallRecord

    with og.store() as store:
        store.record_decision(CallRecord(
            decision_id="d1", channel_id="c1", adapter="ari", tenant="t1",
            account="endpoint-1007", caller_id="+861088886666", destination="+8613800138000",
            verdict="allow", rule="", reason="ok", shadow=(), decision_us=5,
            at=time.time()))
    og("suspend", "account", "endpoint-1007", "--reason", "unknown seat", "--for", "1h")


# every command that reads the store without changing it, with arguments it accepts
READ_ONLY: dict[str, tuple[str, ...]] = {
    "status": ("account", "a1"),
    "risk": (),
    "suspensions": (),
    "appeals list": (),
    "appeals show": ("1",),
    "complaints list": (),
    "complaints due": (),
    "lists show": (),
    "lists find": ("13900139000",),
    "lists export": ("dnc", "-o", "-"),
    "tenants list": (),
    "accounts list": (),
    "accounts mappings": (),
    "caller-ids list": (),
    "caller-ids show": ("01088886666",),
    "caller-ids health": (),
    "caller-ids tasks": (),
    "users list": (),
    "tokens list": (),
    "backup": ("/nonexistent-dir/outguard-backup.db",),
    "check": ("13800138000", "--account", "a1"),
    "report": (),
    "consent show": ("13800138000",),
    "policy replay": (str(POLICY),),
}
# commands that change the store; a fresh store is created for them, except the
# enforcement ones, which act on parties that must already be there
WRITES = {
    "tenants add", "tenants set-state", "accounts add", "accounts set-state", "accounts map",
    "accounts unmap", "caller-ids add", "caller-ids set", "users add", "users disable",
    "users enable", "tokens create", "tokens revoke", "lists create", "lists delete",
    "lists add", "lists remove", "lists import", "prune", "consent grant", "consent revoke",
    "consent import", "consent reassigned",
}
ENFORCEMENT = {
    "suspend": ("account", "a1", "--reason", "x"),
    "lift": ("account", "a1", "--reason", "x"),
    "disable": ("account", "a1", "--reason", "x"),
    "appeals submit": ("account", "a1", "--text", "x"),
    "appeals approve": ("1", "--decision", "x"),
    "appeals reject": ("1", "--decision", "x"),
    "complaints add": ("13800138000", "--caller-id", "01088886666"),
    "complaints close": ("1", "--resolution", "x"),
    "caller-ids task-note": ("1", "--text", "x"),
    "caller-ids task-close": ("1", "--resolution", "x"),
}


def store_commands() -> set[str]:
    return {" ".join(path) for path, command in COMMANDS
            if not isinstance(command, click.Group)
            and any(p.name == "store_path" for p in command.params)}


def test_every_command_with_a_store_is_classified() -> None:
    """A new command must say whether it only reads (and so never creates a store)."""
    known = set(READ_ONLY) | WRITES | set(ENFORCEMENT) | {
        "complaints import", "call", "policy validate", "policy show", "policy reload",
        "sandbox call", "complaints channels"}
    assert store_commands() - known == set()


@pytest.mark.parametrize("name", sorted(READ_ONLY) + sorted(ENFORCEMENT))
def test_a_mistyped_store_path_is_refused_and_never_created(tmp_path: Path, name: str) -> None:
    missing = tmp_path / "typo" / "outguard.db"
    args = READ_ONLY[name] if name in READ_ONLY else ENFORCEMENT[name]
    result = CliRunner().invoke(cli, [*name.split(), *args, "--store", str(missing)],
                                env={"OUTGUARD_POLICY": str(POLICY)})
    assert result.exit_code == 3, result.output
    assert str(missing) in result.output and "no outguard store" in result.output
    assert not missing.exists() and not missing.parent.exists()


def test_complaints_import_refuses_a_missing_store(tmp_path: Path) -> None:
    csv = tmp_path / "c.csv"
    csv.write_text("callee,caller_id,category,source\n13800138000,01088886666,fraud,12321\n",
                   encoding="utf-8")
    missing = tmp_path / "nope.db"
    result = CliRunner().invoke(cli, ["complaints", "import", str(csv), "--store",
                                      str(missing)], env={"OUTGUARD_POLICY": str(POLICY)})
    assert result.exit_code == 3 and not missing.exists(), result.output
