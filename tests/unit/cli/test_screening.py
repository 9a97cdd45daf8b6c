"""check, policy validate/show/reload and report."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from click.testing import CliRunner

from outguard.cli import cli
from outguard.store.base import CallRecord
from tests.unit.api.conftest import POLICY, start_api
from tests.unit.cli.conftest import Cli


def test_check_allows_a_clean_number_and_exits_0(og: Cli) -> None:
    out = og("check", "13800138000", "--account", "a1", "--caller-id", "01088886666").output
    assert out.startswith("ALLOW")
    assert "party_status" in out and "dnc" in out


def test_check_blocks_a_listed_number_and_exits_5(og: Cli) -> None:
    out = og("check", "13900139000", "--account", "a1", "--at", "10:00", code=5).output
    assert out.startswith("BLOCK") and "reason dnc_listed" in out
    body = og.json("check", "13900139000", "--account", "a1", code=5)
    decisive = [r for r in body["rules"] if r["decisive"]]
    assert [r["rule"] for r in decisive] == ["dnc"]
    assert body["attempt"]["destination"] == "13900139000"


def test_check_replays_the_call_log_into_the_caps(og: Cli, tmp_path: Path) -> None:
    strict = tmp_path / "strict.toml"
    strict.write_text(POLICY.read_text().replace("limit = 50", "limit = 1"))
    with og.store() as store:
        store.record_decision(CallRecord("d1", "c1", "ari", "t1", "a1", "+861088886666",
                                         "+8613800138001", "allow", "", "ok", (), 10, time.time() - 5))
    result = og.runner.invoke(cli, ["check", "13800138000", "--account", "a1", "--store",
                                    str(og.store_path)], env={"OUTGUARD_POLICY": str(strict)})
    assert result.exit_code == 5, result.output
    assert "account_per_minute" in result.output


def test_check_refuses_bad_input_with_exit_2(og: Cli) -> None:
    og("check", "13800138000", "--account", "a1", "--purpose", "fun", code=2)
    og("check", "13800138000", "--account", "a1", "--at", "teatime", code=2)


def test_policy_validate_and_show(og: Cli, tmp_path: Path) -> None:
    assert "valid (3 rules" in og("policy", "validate", str(POLICY)).output
    assert og.json("policy", "validate")["valid"] is True  # the settings' policy
    bad = tmp_path / "bad.toml"
    bad.write_text("[[rules]]\nid = 'x'\nkind = 'nonsense'\n")
    result = og("policy", "validate", str(bad), code=1)
    assert "bad.toml:" in result.output
    assert og.json("policy", "validate", str(bad), code=1)["issues"]
    typo = tmp_path / "typo.toml"  # an [enforcement] typo: start would refuse it, so must this
    typo.write_text("[enforcement.triggers.t]\nmetric = 'complaints'\nscope = 'tenant'\n"
                    "window = '30d'\nat_least = 2\naction = 'suspnd'\n")
    result = og("policy", "validate", str(typo), code=1)
    assert "typo.toml:6: enforcement.triggers.t.action:" in result.output
    shown = og.json("policy", "show")
    assert [r["id"] for r in shown["rules"]] == ["party_status", "dnc", "account_per_minute"]
    text = og("policy", "show").output
    assert "party_status" in text
    # the packs' dated sources, each figure law or practice
    assert "pack test: The unit tests' policy (sources checked 2026-12-02)" in text
    assert "[law] company do-not-call list: 47 CFR 64.1200(d) <https://www.ecfr.gov/" in text
    assert "[practice] 50 calls a minute per seat" in text
    assert shown["packs"][0]["sources"][1]["basis"] == "practice"


async def test_policy_reload_tells_the_running_service(tmp_path: Path) -> None:
    api = await start_api(tmp_path)
    try:
        url = str(api.client.make_url("/"))
        args = ["policy", "reload", "--url", url, "--store", str(tmp_path / "outguard.db")]
        ok = await asyncio.to_thread(CliRunner().invoke, cli, args,
                                     env={"OUTGUARD_TOKEN": api.tokens["admin"]})
        assert ok.exit_code == 0, ok.output
        assert "3 rules" in ok.output
        denied = await asyncio.to_thread(CliRunner().invoke, cli, args,
                                         env={"OUTGUARD_TOKEN": api.tokens["readonly"]})
        assert denied.exit_code == 1 and "forbidden" in denied.output
    finally:
        await api.client.close()


def test_policy_reload_exits_3_when_nothing_runs(og: Cli) -> None:
    result = og.runner.invoke(cli, ["policy", "reload", "--url", "http://127.0.0.1:9",
                                    "--token", "og_x_y"])
    assert result.exit_code == 3, result.output
    assert "not answering" in result.output


def _log(og: Cli) -> None:
    now = time.time() - 60
    rows = [("d1", "allow", "ok", 40.0), ("d2", "allow", "ok", 3.0), ("d3", "allow", "ok", None),
            ("d4", "block", "dnc_listed", None)]
    with og.store() as store:
        for i, (did, verdict, reason, talk) in enumerate(rows):
            store.record_decision(CallRecord(did, f"c{i}", "ari", "t1", "a1", "+861088886666",
                                             f"+861380013800{i}", verdict, "", reason, (), 10, now + i))
            answered = now + i + 1 if talk is not None else None
            store.record_outcome(did, answered_at=answered, ended_at=now + i + 2,
                                 duration=talk, cause=16)
        store.add_complaint("+861088886666", category="harassment", source="12321",
                            reporter="+8613800138000")  # called by a1 (d1)
        store.flush()


def test_report_by_account(og: Cli) -> None:
    _log(og)
    body = og.json("report", "--by", "day,account")
    (row,) = body["rows"]
    assert (row["attempts"], row["allowed"], row["blocked"], row["answered"]) == (4, 3, 1, 2)
    assert (row["connect_rate"], row["avg_duration"], row["short_call_ratio"]) == (0.6667, 21.5, 0.5)
    assert row["complaints"] == 1 and row["blocked_by_reason"] == {"dnc_listed": 1}
    table = og("report", "--by", "account").output
    assert "TOTAL" in table and "dnc_listed=1" in table
    csv_text = og("report", "--by", "tenant", "--csv").stdout.splitlines()
    assert csv_text[0].startswith("tenant,attempts") and csv_text[1].startswith("t1,4,3,1,3,2,0.6667")
    og("report", "--by", "week", code=2)
    og("report", "--since", "yesterday", code=2)
