"""Policy replay: which logged calls a candidate policy would decide differently."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from outguard.cli import cli
from outguard.replay import replay
from outguard.store.base import CallRecord
from outguard.store.sqlite import SQLiteStore
from rules.policy import parse_policy

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC).timestamp()  # Monday 10:00 in Shanghai

BASE = """
default_region = "CN"
timezone = "Asia/Shanghai"
[lists.dnc]
kind = "dnc"
"""


def policy(extra: str) -> object:
    return parse_policy(BASE + extra, "candidate.toml")


def log(store: SQLiteStore, n: int, dest: str, verdict: str = "allow", rule: str = "",
        reason: str = "ok", at: float = T0, purpose: str = "marketing", account: str = "a1") -> None:
    store.record_decision(CallRecord(
        f"d{n}", "", "ari", "t1", account, "+861088886666", dest, verdict, rule, reason, (),
        10, at, purpose, ""))


@pytest.fixture
def store(open_store_at: Callable[..., SQLiteStore]) -> SQLiteStore:
    """On SQLite and on PostgreSQL (tests/unit/store/conftest.py)."""
    s = open_store_at(batch_interval=0.01)
    s.create_list("dnc", "dnc")
    s.add_entries("dnc", ["13900139000"])
    return s


def changes(report: dict[str, object]) -> list[tuple[object, ...]]:
    return [(c["change"], c["rule"], c["reason"], c["was_rule"], c["count"])  # type: ignore[index]
            for c in report["changes"]]  # type: ignore[attr-defined]


def test_newly_blocked_newly_allowed_and_other_rule_are_told_apart(store: SQLiteStore) -> None:
    log(store, 1, "+8613900139000")                                     # allowed, on dnc
    log(store, 2, "+8613800138000", "block", "old", "blacklisted")      # blocked by a rule gone
    log(store, 3, "+8613900139000", "block", "old", "blacklisted")      # blocked, now by dnc
    log(store, 4, "+8613900139000", "block", "dnc", "dnc_listed")       # unchanged block
    log(store, 5, "+8613700137000")                                     # unchanged allow
    store.flush()
    candidate = policy('[[rules]]\nid = "dnc"\nkind = "lists"\nlists = ["dnc"]\n')
    report = replay(store, candidate, T0 - 1, T0 + 1, mask=lambda n: n[:6] + "*").as_dict()  # type: ignore[arg-type]
    assert report["calls"] == 5 and report["changed"] == 3
    assert report["unchanged"] == {"allow": 1, "block": 1}
    assert sorted(changes(report)) == [
        ("newly_allowed", "", "ok", "old", 1),
        ("newly_blocked", "dnc", "dnc_listed", "", 1),
        ("other_rule", "dnc", "dnc_listed", "old", 1),
    ]
    blocked = next(c for c in report["changes"] if c["change"] == "newly_blocked")  # type: ignore[attr-defined]
    assert blocked["examples"][0]["decision_id"] == "d1"
    assert blocked["examples"][0]["destination"] == "+86139*"


def test_caps_count_only_the_calls_the_candidate_lets_through(store: SQLiteStore) -> None:
    for i in range(5):
        log(store, i, f"+861370013700{i}", at=T0 + i)
    log(store, 9, "+8613900139000", at=T0 + 9)   # the candidate blocks it by dnc: not counted
    store.flush()
    candidate = policy('[[rules]]\nid = "dnc"\nkind = "lists"\nlists = ["dnc"]\n'
                       '[[rules]]\nid = "seat_cap"\nkind = "cap"\nscope = "account"\nlimit = 2\nwindow = "day"\n')
    report = replay(store, candidate, T0 - 1, T0 + 60, examples=1).as_dict()  # type: ignore[arg-type]
    assert sorted(changes(report)) == [("newly_blocked", "dnc", "dnc_listed", "", 1),
                                       ("newly_blocked", "seat_cap", "rate_cap", "", 3)]
    assert all(len(c["examples"]) == 1 for c in report["changes"])  # type: ignore[attr-defined]


def test_the_logged_purpose_is_replayed(store: SQLiteStore) -> None:
    night = T0 + 12 * 3600  # 22:00 in Shanghai
    log(store, 1, "+8613700137000", at=night, purpose="marketing")
    log(store, 2, "+8613700137001", at=night, purpose="service")
    store.flush()
    candidate = policy('[windows.day]\nhours = { daily = "09:00-21:00" }\n'
                       '[[rules]]\nid = "hours"\nkind = "time_window"\nwindow = "day"\n'
                       'purposes = ["marketing"]\n')
    report = replay(store, candidate, night - 1, night + 1).as_dict()  # type: ignore[arg-type]
    assert changes(report) == [("newly_blocked", "hours", "quiet_hours", "", 1)]
    assert report["changes"][0]["examples"][0]["decision_id"] == "d1"  # type: ignore[index]


def test_the_cli_prints_the_changes_and_refuses_a_bad_candidate(store: SQLiteStore, tmp_path: Path) -> None:
    log(store, 1, "+8613900139000", at=datetime.now(UTC).timestamp() - 3600)
    store.flush()
    good = tmp_path / "candidate.toml"
    good.write_text(BASE + '[[rules]]\nid = "dnc"\nkind = "lists"\nlists = ["dnc"]\n')
    runner = CliRunner()
    args = ["policy", "replay", str(good), "--days", "1", "--store", store.path]
    result = runner.invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "1 would change (1 newly blocked" in result.output and "dnc_listed" in result.output
    body = json.loads(runner.invoke(cli, [*args, "--json"], catch_exceptions=False).stdout)
    assert body["by_change"]["newly_blocked"] == 1
    bad = tmp_path / "bad.toml"
    bad.write_text(BASE + '[[rules]]\nid = "x"\nkind = "lists"\nlists = ["nope"]\n')
    result = runner.invoke(cli, ["policy", "replay", str(bad), "--store", store.path])
    assert result.exit_code == 1 and "bad.toml:" in result.output and "nope" in result.output
    result = runner.invoke(cli, [*args[:-2], "--days", "0", "--store", store.path])
    assert result.exit_code == 2


async def test_a_screened_calls_purpose_and_campaign_reach_the_call_log_and_the_replay(
    tmp_path: Path,
) -> None:
    """The service's own call log (not rows written by the test) keeps each call's purpose
    and campaign, so a candidate scoped by purpose or campaign replays them as decided."""
    from outguard.callfacts import ChannelFacts
    from outguard.service import Screener
    from outguard.store.aio import AsyncStore

    night = T0 + 12 * 3600  # 22:00 in Shanghai
    store = AsyncStore(SQLiteStore(tmp_path / "og.db"))
    screener = Screener(store, parse_policy(BASE, "live.toml"), clock=lambda: night)
    await screener.start()
    try:
        for n, (purpose, campaign) in enumerate((("service", "renewals"), ("marketing", "spring"))):
            decision = screener.screen(ChannelFacts(
                "ari", f"ch{n}", "PJSIP/agent-1", f"1370013700{n}", "01088886666",
                account="a1", tenant="t1", purpose=purpose, campaign=campaign))
            assert decision.allowed
        await store.flush_async()
        logged = [(c.call.purpose, c.call.campaign) for c in store.store.iter_calls()]
        assert sorted(logged) == [("marketing", "spring"), ("service", "renewals")]
        candidate = policy('[windows.day]\nhours = { daily = "09:00-21:00" }\n'
                           '[[rules]]\nid = "hours"\nkind = "time_window"\nwindow = "day"\n'
                           'purposes = ["marketing"]\n')
        report = replay(store.store, candidate, night - 1, night + 1).as_dict()  # type: ignore[arg-type]
        assert changes(report) == [("newly_blocked", "hours", "quiet_hours", "", 1)]
        assert report["changes"][0]["examples"][0]["destination"] == "+8613700137001"  # type: ignore[index]
    finally:
        await screener.stop()
        await store.aclose()


def test_replay_keeps_only_the_counters_the_candidates_caps_read(
    store: SQLiteStore, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Counting only what the caps read changes no verdict: the same report as counting
    every scope, for caps of every scope."""
    import outguard.replay as replay_module
    from rules.counters import TRACKABLE

    for i in range(40):
        log(store, i, f"+86137001370{i % 7:02d}", at=T0 + i * 30, account=f"a{i % 3}")
    store.flush()
    caps = "".join(
        f'[[rules]]\nid = "{scope}"\nkind = "cap"\nscope = "{scope}"\nlimit = {limit}\n'
        f'window = "day"\n' for scope, limit in (("account", 9), ("destination", 4)))
    candidate = policy(caps)
    assert replay_module.counted_scopes(candidate) == {"account", "destination"}  # type: ignore[arg-type]
    lean = replay(store, candidate, T0 - 1, T0 + 3600).as_dict()  # type: ignore[arg-type]
    monkeypatch.setattr(replay_module, "counted_scopes", lambda p: TRACKABLE)
    full = replay(store, candidate, T0 - 1, T0 + 3600).as_dict()  # type: ignore[arg-type]
    assert changes(lean) == changes(full) and lean["changed"] == full["changed"] > 0
    every = policy(caps + '[[rules]]\nid = "c"\nkind = "cap"\nscope = "caller_id"\nlimit = 9\n'
                   'window = "day"\n[[rules]]\nid = "t"\nkind = "cap"\nscope = "tenant"\n'
                   'limit = 99\nwindow = "day"\n[[rules]]\nid = "d"\nkind = "cap"\n'
                   'scope = "distinct_callees"\nlimit = 5\n[[rules]]\nid = "n"\nkind = "cap"\n'
                   'scope = "concurrent_account"\nlimit = 2\n')
    assert replay_module.counted_scopes(every) == TRACKABLE  # type: ignore[arg-type]
