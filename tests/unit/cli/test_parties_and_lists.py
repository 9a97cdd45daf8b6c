"""tenants, accounts, caller-ids, users, tokens and lists on a store file."""

from __future__ import annotations

import json
from pathlib import Path

from tests.unit.cli.conftest import Cli


def test_tenants_are_added_listed_and_disabled(og: Cli) -> None:
    assert "acme" in og("tenants", "add", "acme", "ACME 呼叫中心").output
    assert [t["id"] for t in og.json("tenants", "list")] == ["acme", "t1"]
    og("tenants", "add", "acme", "again", code=4)
    assert "disabled" in og("tenants", "set-state", "acme", "disabled").output
    og("tenants", "set-state", "nope", "disabled", code=3)
    og("tenants", "set-state", "acme", "sleeping", code=2)


def test_accounts_and_their_channel_mappings(og: Cli) -> None:
    og("accounts", "add", "seat-07", "--tenant", "t1", "--kind", "campaign", "--name", "Seven")
    og("accounts", "add", "seat-08", "--tenant", "nope", code=3)
    rows = og.json("accounts", "list", "--tenant", "t1")
    assert [(a["id"], a["kind"]) for a in rows] == [("a1", "agent"), ("seat-07", "campaign")]
    table = og("accounts", "list").output.splitlines()
    assert table[0].split()[:3] == ["ID", "TENANT", "KIND"]
    assert "mapping 1" in og("accounts", "map", "seat-07", "--pattern", "1007").output
    assert og.json("accounts", "mappings")[0]["pattern"] == "1007"
    og("accounts", "unmap", "1")
    og("accounts", "unmap", "1", code=3)
    assert "disabled" in og("accounts", "set-state", "seat-07", "disabled").output


def test_caller_ids_are_normalised_and_updated(og: Cli) -> None:
    body = og.json("caller-ids", "add", "010-8888-7777", "--tenant", "t1",
                   "--verification", "pending", "--verified-until", "2030-01-01")
    assert body["e164"] == "+861088887777" and body["verification"] == "pending"
    body = og.json("caller-ids", "set", "01088887777", "--state", "disabled")
    assert (body["state"], body["verification"]) == ("disabled", "pending")
    assert body["verified_until"].startswith("2030-01-01")
    assert og.json("caller-ids", "show", "+861088887777")["state"] == "disabled"
    assert len(og.json("caller-ids", "list", "--tenant", "t1")) == 2
    og("caller-ids", "show", "01099990000", code=3)
    og("caller-ids", "add", "not-a-number", "--tenant", "t1", code=2)
    og("caller-ids", "add", "01088887777", "--tenant", "t1", "--verified-until", "soon", code=2)


def test_users_and_tokens(og: Cli) -> None:
    out = og("users", "add", "alice", "--role", "admin", "--token").output
    token = next(w for w in out.split() if w.startswith("og_"))
    with og.store() as store:
        assert store.verify_token(token).name == "alice"
    og("users", "add", "bob", "--role", "wizard", code=2)
    assert [u["name"] for u in og.json("users", "list")] == ["alice"]
    new = og.json("tokens", "create", "alice", "--label", "ci")
    assert new["role"] == "admin" and new["token"].startswith(f"og_{new['id']}_")
    plain = og("tokens", "create", "alice").stdout.strip()
    assert plain.startswith("og_")
    og("tokens", "revoke", new["id"])
    og("tokens", "revoke", new["id"], code=3)
    og("tokens", "create", "nobody", code=3)
    assert "disabled" in og("users", "disable", "alice").output
    assert og.json("users", "list")[0]["disabled"] is True
    og("users", "enable", "alice")


def test_lists_are_created_filled_searched_and_emptied(og: Cli) -> None:
    og("lists", "create", "vip", "--kind", "allow", "--description", "never block")
    og("lists", "create", "vip", "--kind", "allow", code=4)
    og("lists", "create", "x", "--kind", "dnc", "--scope", "tenant", code=2)
    assert "2 added" in og("lists", "add", "dnc", "13900139001", "+86 139 0013 9002",
                           "--reason", "asked").output
    assert "0 added" in og("lists", "add", "dnc", "13900139001").output
    og("lists", "add", "dnc", "bogus", code=2)
    og("lists", "add", "nope", "13900139001", code=3)
    rows = og.json("lists", "show")
    assert {(r["name"], r["entries"]) for r in rows} == {("dnc", 3), ("vip", 0)}
    found = og.json("lists", "show", "dnc", "--search", "9002")
    assert [e["e164"] for e in found] == ["+8613900139002"]
    assert og.json("lists", "find", "13900139001")[0]["list"] == "dnc"
    assert "1 removed" in og("lists", "remove", "dnc", "13900139001").output
    og("lists", "delete", "vip", "--yes")
    og("lists", "show", "vip", code=3)


def test_a_list_is_imported_and_exported(og: Cli, tmp_path: Path) -> None:
    src = tmp_path / "dnc.txt"
    src.write_text("13600136000\n13600136001\nrubbish\n", encoding="utf-8")
    refused = og("lists", "import", "dnc", str(src), "--mode", "replace", code=1).output
    assert "1 of 3 lines rejected" in refused and f"{src}:3: letters in number" in refused
    out = og("lists", "import", "dnc", str(src), "--mode", "replace",
             "--max-reject-ratio", "0.5").output
    assert "2 numbers accepted, 1 lines rejected" in out and f"{src}:3:" in out
    body = og.json("lists", "import", "dnc", str(src), "--mode", "add")
    assert body["added"] == 0 and body["total"] == 2
    exported = og("lists", "export", "dnc").stdout.splitlines()
    assert exported[0].startswith("e164") and exported[1].startswith("+8613600136000")
    target = tmp_path / "out.json"
    og("lists", "export", "dnc", "-o", str(target), "--format", "json")
    assert len(json.loads(target.read_text(encoding="utf-8"))) == 2
    empty = tmp_path / "empty.txt"
    empty.write_text("nothing here\n", encoding="utf-8")
    og("lists", "import", "dnc", str(empty), code=1)


def test_long_work_shows_progress_on_a_terminal(og: Cli, tmp_path: Path,
                                                monkeypatch) -> None:
    import sys

    lists_cli = sys.modules["outguard.cli.lists"]  # (the package exports the group as `lists`)
    monkeypatch.setattr(lists_cli, "on_terminal", lambda: True)
    src = tmp_path / "big.txt"
    src.write_text("".join(f"1360013{i:04d}\n" for i in range(3000)), encoding="utf-8")
    result = og("lists", "import", "dnc", str(src))
    assert "importing big.txt" in result.stderr
    result = og("lists", "export", "dnc", "-o", str(tmp_path / "out.csv"))
    assert "exporting dnc" in result.stderr and "3000 entries written" in result.stderr
    assert len((tmp_path / "out.csv").read_text(encoding="utf-8").splitlines()) == 3001
