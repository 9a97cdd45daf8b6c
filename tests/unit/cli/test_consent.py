"""``outguard consent``: grant, revoke, show, import and reassigned results from the CLI."""

from __future__ import annotations

from pathlib import Path

from tests.unit.cli.conftest import Cli


def test_grant_revoke_and_show_the_history(og: Cli) -> None:
    body = og.json("consent", "grant", "13800138000", "--tenant", "t1", "--purpose",
                   "marketing", "--source", "web_form", "--evidence", "form-1",
                   "--expires", "2030-01-01")
    assert (body["channel"], body["purpose"], body["evidence"]) == ("cli", "marketing", "form-1")
    body = og.json("consent", "revoke", "13800138000", "--tenant", "t1", "--source", "call")
    assert body["listed_on"] == ["optout-t1", "cn_refused"]
    shown = og.json("consent", "show", "138 0013 8000")
    assert [h["action"] for h in shown["history"]] == ["grant", "revoke"]
    text = og("consent", "show", "13800138000").output
    assert "0 consent(s) in force" in text and "web_form" in text and "optout-t1" in text


def test_mistakes_exit_2_and_name_them(og: Cli) -> None:
    out = og("consent", "grant", "13800138000", "--tenant", "t1", "--source", " ", code=2).output
    assert "source" in out
    out = og("consent", "show", "nope", code=2).output
    assert "not a phone number" in out


def test_import_and_reassigned(og: Cli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("action,number,source\nrevoke,13800138000,sms\ngrant,13800138001,web\n")
    out = og("consent", "import", str(bad), code=1).output
    assert "line 3" in out and "tenant" in out
    assert og.json("consent", "show", "13800138000")["history"] == []
    good = tmp_path / "good.csv"
    good.write_text("action,number,source,tenant\nrevoke,13800138000,sms,t1\n")
    assert og.json("consent", "import", str(good))["revocations"] == 1
    rnd = tmp_path / "rnd.csv"
    rnd.write_text("number,disconnected\n13800138000,2026-10-01\n")
    assert og.json("consent", "reassigned", "rnd", str(rnd))["numbers"] == 1


def test_show_tells_a_consent_voided_by_a_reassigned_number(og: Cli, tmp_path: Path) -> None:
    og.json("consent", "grant", "13800138000", "--tenant", "t1", "--source", "web_form",
            "--at", "2026-09-01T10:00:00+08:00")
    og.json("consent", "grant", "13800138000", "--tenant", "t2", "--source", "web_form",
            "--at", "2026-10-05T10:00:00+08:00")
    rnd = tmp_path / "rnd.csv"
    rnd.write_text("number,disconnected\n13800138000,2026-10-01\n")
    og.json("consent", "reassigned", "rnd", str(rnd))
    shown = og.json("consent", "show", "13800138000")
    assert [g["tenant"] for g in shown["in_force"]] == ["t2"]  # given after the disconnect
    assert [(g["tenant"], g["void"]) for g in shown["void"]] == [("t1", "reassigned")]
    (rnd_entry,) = [e for e in shown["lists"] if e["list"] == "rnd"]
    assert rnd_entry["disconnected_at"].startswith("2026-10-0")
    text = og("consent", "show", "13800138000").output
    assert "1 consent(s) in force" in text and "void: consent #1 (tenant t1" in text
