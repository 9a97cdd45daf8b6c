"""suspend, lift, disable, status, suspensions, appeals, complaints and risk."""

from __future__ import annotations

import json
from pathlib import Path

from outguard.cli import cli
from tests.unit.cli.conftest import Cli


def test_suspend_status_and_lift(og: Cli) -> None:
    out = og("suspend", "account", "a1", "--reason", "complaints", "--for", "2h").output
    assert "suspended until" in out
    status = og.json("status", "account", "a1")
    assert status["state"] == "suspended" and status["reason"] == "complaints"
    assert "figures" in status
    assert "suspended" in og("status", "account", "a1").output
    rows = og.json("suspensions")
    assert [(s["party_key"], s["permanent"]) for s in rows] == [("a1", False)]
    assert "1 suspension(s) lifted" in og("lift", "account", "a1", "--reason", "retrained").output
    og("lift", "account", "a1", "--reason", "again", code=3)
    assert og.json("suspensions") == []
    assert len(og.json("suspensions", "--all")) == 1
    og("suspend", "account", "a1", "--reason", "x", "--for", "soon", code=2)


def test_a_caller_id_is_disabled_permanently(og: Cli) -> None:
    assert "disabled" in og("disable", "caller_id", "010-8888-6666", "--reason", "returned").output
    assert og.json("status", "caller_id", "01088886666")["state"] == "disabled"
    og("disable", "caller_id", "01088886666", "--reason", "again", code=4)


def test_appeals_are_filed_listed_approved_and_rejected(og: Cli) -> None:
    og("suspend", "account", "a1", "--reason", "complaints", "--for", "1d")
    og("appeals", "submit", "account", "a1", "--text", "not me")
    og("appeals", "submit", "account", "a1", "--text", "again", code=4)
    (appeal,) = og.json("appeals", "list", "--state", "pending")
    assert appeal["text"] == "not me"
    assert og.json("appeals", "show", str(appeal["id"]))["state"] == "pending"
    og("appeals", "show", "999", code=3)
    assert "unbanned" in og("appeals", "approve", str(appeal["id"]), "--decision", "ok").output
    og("appeals", "approve", str(appeal["id"]), "--decision", "twice", code=4)
    assert og.json("status", "account", "a1")["state"] == "active"
    og("suspend", "account", "a1", "--reason", "more complaints", "--for", "1d")
    og("appeals", "submit", "account", "a1", "--text", "please")
    pending = og.json("appeals", "list", "--state", "pending")
    og("appeals", "reject", str(pending[0]["id"]), "--decision", "recordings confirm it")
    assert og.json("status", "account", "a1")["state"] == "suspended"
    assert len(og.json("appeals", "list", "--party", "a1")) == 2


def test_complaints_are_added_imported_and_listed(og: Cli, tmp_path: Path) -> None:
    assert "complaint" in og("complaints", "add", "13800138000", "--caller-id", "01088886666",
                             "--source", "12321").output
    assert "mark" in og("complaints", "add", "13800138001", "--caller-id", "01088886666",
                        "--mark").output
    src = tmp_path / "c.csv"
    src.write_text("callee,caller_id,category,source\n13800138002,01088886666,fraud,12321\n"
                   "13800138003,rubbish,fraud,12321\n", encoding="utf-8")
    body = og.json("complaints", "import", str(src))
    assert (body["added"], body["rejected"]) == (1, 1)
    rows = og.json("complaints", "list", "--caller-id", "01088886666")
    assert sorted(r["kind"] for r in rows) == ["complaint", "complaint", "mark"]
    assert "caller_id" in og("complaints", "list").output.splitlines()[0].lower()


def test_risk_lists_parties_with_figures(og: Cli) -> None:
    import time

    from outguard.store.base import CallRecord

    with og.store() as store:
        store.record_decision(CallRecord("d1", "c1", "ari", "t1", "a1", "+861088886666",
                                         "+8613800138000", "allow", "", "ok", (), 10, time.time() - 30))
        store.flush()
    rows = og.json("risk", "--kind", "account")
    assert rows[0]["key"] == "a1" and rows[0]["attempts"] == 1
    assert "a1" in og("risk").output


def test_complaint_deadlines_are_listed_and_closed(og: Cli) -> None:
    out = og("complaints", "add", "13800138000", "--caller-id", "01088886666", "--source",
             "12321", "--at", "2026-01-05T09:00:00+08:00",
             "--received", "2026-01-05T10:00:00+08:00").output
    assert "due 2026-01-26 16:00 UTC" in out  # 15 working days: end of 26 Jan, Shanghai
    og("complaints", "add", "13800138001", "--caller-id", "01088886666", "--source", "ofcom")
    og("complaints", "add", "13800138002", "--caller-id", "01088886666", "--received", "soon",
       code=2)
    rows = og.json("complaints", "due", code=1)  # exit 1: one is overdue
    assert [(r["source"], r["deadline"]) for r in rows] == [("12321", "overdue"),
                                                             ("ofcom", "open")]
    assert [r["source"] for r in og.json("complaints", "due", "--within-days", "1",
                                         code=1)] == ["12321"]
    assert "after its deadline" in og("complaints", "close", str(rows[0]["id"]),
                                      "--resolution", "callee on dnc").output
    og("complaints", "close", str(rows[0]["id"]), "--resolution", "again", code=4)
    assert [r["source"] for r in og.json("complaints", "due")] == ["ofcom"]
    listed = og.runner.invoke(cli, ["complaints", "channels", "--json"])
    channels = {c["channel"]: c for c in json.loads(listed.stdout)}
    assert channels["12321"]["act_days"] == 15 and channels["12321"]["basis"] == "practice"
