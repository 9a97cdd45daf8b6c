"""The two-PBX benchmark's pure parts: step verdicts, maxima, ratios to the baseline, the
report, the settings each outguard instance runs with, the PostgreSQL CPU sum. (The
benchmark itself runs by hand: bench/README.md.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.procstat import CLK_TCK, parse_ppid, tree_cpu_delta
from bench.two_pbx_report import (
    Limits,
    Maximum,
    Side,
    Step,
    highest_common_rate,
    maxima,
    ratios,
    render,
    step_verdict,
)

PASSING = {"rate": 100.0, "calls": 400, "failed": 3, "offered_cps": 95.0,
           "pdd_p99_ms": 120.0, "timed_out": False}


@pytest.mark.parametrize(("change", "missed"), [
    ({}, ""),
    ({"failed": 4}, "4 of 400 calls failed"),  # 1% is not < 1%
    ({"offered_cps": 89.9}, "offered 89.9 calls/s of 100"),
    ({"offered_cps": None}, "offered unknown"),
    ({"pdd_p99_ms": 500.1}, "post-dial delay p99 500 ms"),
    ({"pdd_p99_ms": None}, "post-dial delay p99 none"),
    ({"timed_out": True}, "SIPp ran past its time limit"),
    ({"calls": 0, "failed": 0}, "0 of 0 calls failed"),
])
def test_a_step_passes_only_within_every_limit(change: dict[str, object], missed: str) -> None:
    passed, why = step_verdict(**{**PASSING, **change})  # type: ignore[arg-type]
    assert passed is (missed == "")
    assert missed in why if missed else why == ""


def test_the_limits_at_their_edges_pass() -> None:
    assert step_verdict(100, 400, 3, 90.0, 500.0, False) == (True, "")
    strict = Limits(max_failed_share=0.0, min_offered_share=1.0, max_pdd_p99_ms=10)
    passed, why = step_verdict(100, 400, 0, 99.0, 11.0, False, strict)
    assert not passed and "offered" in why and "post-dial" in why


def side(pbx: str, calls: int, completed: int, offered: float | None,
         pdd: list[float]) -> Side:
    return Side(pbx=pbx, calls=calls, completed=completed, offered_cps=offered, pdd_ms=pdd)


def test_a_step_judges_both_pbxes_together() -> None:
    # each PBX offered half the rate; one lost 3 calls, the other 2: 5 of 400 is >= 1%
    s = Step("cluster", "search", 1, 100, sides=[
        side("a", 200, 197, 48.0, [10.0] * 197), side("b", 200, 198, 47.5, [20.0] * 198)])
    s.judge()
    assert (s.calls, s.failed, s.offered_cps) == (400, 5, 95.5)
    assert not s.passed and "5 of 400" in s.why
    s.sides[0].completed = 200
    s.judge()
    assert s.passed and s.why == ""
    s.sides[1].pdd_ms = [20.0] * 190 + [900.0] * 8  # p99 of both sides' samples
    s.judge()
    assert not s.passed and "post-dial" in s.why
    s.sides[1].offered_cps = None  # a side without a figure: the sum is unknown
    assert s.offered_cps is None


def search(variant: str, rep: int, outcomes: dict[float, bool]) -> list[Step]:
    return [Step(variant, "search", rep, rate, passed=ok) for rate, ok in outcomes.items()]


def test_the_maximum_is_the_last_rate_passed_before_the_first_failure() -> None:
    steps = (search("direct", 1, {20: True, 40: True, 60: False})
             + search("cluster", 1, {20: True, 40: False})
             + search("direct", 2, {20: True, 40: True, 60: True})  # never failed: capped
             + search("cluster", 2, {20: False})
             + [Step("cluster", "moderate", 2, 20, passed=True)])  # not a search step
    found = maxima(steps)
    assert found["direct"] == {1: Maximum(40, False), 2: Maximum(60, True)}
    assert found["cluster"] == {1: Maximum(20, False), 2: Maximum(None, False)}
    assert [m.text() for m in found["direct"].values()] == ["40", ">= 60"]
    assert found["cluster"][2].text() == "< first rate"
    assert ratios(found) == {"direct": {1: 1.0, 2: 1.0}, "cluster": {1: 0.5, 2: None}}


def test_the_highest_common_rate_is_one_every_variant_passed() -> None:
    steps = (search("direct", 1, {20: True, 40: True, 60: False})
             + search("cluster", 1, {20: True, 40: False}))
    assert highest_common_rate(steps, 1) == 20
    assert highest_common_rate(search("direct", 1, {20: False}) + steps[3:], 1) is None
    assert highest_common_rate(steps, 2) is None


def test_the_report_names_the_maxima_ratios_and_cpu_per_call() -> None:
    def run(variant: str, rep: int, rate: float, ok: bool, cpu: float) -> dict[str, object]:
        s = Step(variant, "search", rep, rate, passed=ok, why="" if ok else "too slow",
                 sides=[side("a", 40, 40, rate / 2, [5.0]), side("b", 40, 40, rate / 2, [7.0])],
                 cpu_s={"asterisk-a": cpu, "asterisk-b": cpu, "sipp": 1.0})
        return s.to_json()

    results = {
        "info": {"git": "abc1234", "load_start": "1.0 1.0 1.0", "busy": 0.5, "steal": 0.0},
        "config": {"variants": ["direct", "cluster"]},
        "steps": [run("direct", 1, 20, True, 0.4), run("cluster", 1, 20, True, 0.8),
                  run("direct", 1, 40, True, 0.4), run("cluster", 1, 40, False, 0.8),
                  run("direct", 1, 60, False, 0.4)],
    }
    text = render(results)
    assert "| 1 | 40 | 20 | 0.50 |" in text  # maxima and the ratio of rep 1
    assert "git abc1234" in text and "load average 1.0 1.0 1.0" in text
    # 0.4 s of each Asterisk over 80 calls: 5 ms each, 10 ms in all; screened twice that
    assert "| highest common, rep 1 | direct | 20 | 80/80 | 5.0 / 7.0 | 5.00 | 5.00 |" in text
    assert "| 20.00 | 2.00x |" in text
    assert "FAIL: too slow" in text
    assert Step.from_json(results["steps"][0]).sides[1].pdd_ms == [7.0]  # round trip


def test_postgres_cpu_is_summed_over_the_backends_alive_at_the_end() -> None:
    before = {10: 100, 11: 50, 12: 7}
    after = {10: 130, 11: 50, 13: 2 * CLK_TCK}  # 12 gone, 13 born in between
    assert tree_cpu_delta(before, after) == pytest.approx(30 / CLK_TCK + 2)
    stat = "4242 (postgres: x (y)) S 4200 4242 4242 0 -1 4194560 1 0 0 0 5 6 0 0 20 0 1 0"
    assert parse_ppid(stat) == 4200


def test_each_instance_runs_in_cluster_mode_on_its_own_pbx(tmp_path: Path) -> None:
    from bench.two_pbx_harness import settings_toml
    from outguard import config, sandbox
    from outguard.testing.pbxes import second_instance

    inst = second_instance("bench2-b", 700)
    path = tmp_path / "settings.toml"
    path.write_text(settings_toml(inst, "pbx-b", "postgresql://u@127.0.0.1:14780/outguard",
                                  "redis://127.0.0.1:17780/0", tmp_path / "spool", 250),
                    encoding="utf-8")
    settings = config.load(str(path), env={})
    assert settings.store.startswith("postgresql://")
    assert settings.cluster.redis == "redis://127.0.0.1:17780/0"
    assert settings.cluster.timeout_ms == 250
    assert [(a.pbx, a.url) for a in settings.ari] == [("pbx-b", inst.ari_url)]
    assert [(a.pbx, a.port) for a in settings.ami] == [("pbx-b", inst.ports.ami)]
    assert not settings.agi.enabled
    first = sandbox.new_instance("bench2", 700)
    assert inst.ports.sip == first.ports.sip + 50
    assert inst.ports.rtp_start > first.ports.rtp_end  # the pair's RTP ranges apart


def test_an_embedded_instance_has_its_own_sqlite_store_and_no_cluster(tmp_path: Path) -> None:
    from bench.two_pbx_harness import settings_toml
    from outguard import config
    from outguard.testing.pbxes import second_instance

    inst = second_instance("bench2-b", 700)
    path = tmp_path / "settings.toml"
    path.write_text(settings_toml(inst, "pbx-b", str(tmp_path / "embedded-b.db"), None,
                                  tmp_path / "spool", 250), encoding="utf-8")
    settings = config.load(str(path), env={})
    assert settings.store == str(tmp_path / "embedded-b.db")
    assert not settings.cluster.redis


def test_the_diagnosis_is_reported_per_variant_at_the_lowest_rate() -> None:
    def run(variant: str, rate: float, decide: list[float]) -> dict[str, object]:
        return Step(variant, "search", 1, rate, passed=True, handling_ms=[4.0, 6.0],
                    stages_ms={"stage decide": decide}).to_json()

    results = {
        "info": {"git": "abc1234", "load_start": "1.0 1.0 1.0", "busy": 0.5, "steal": 0.0},
        "config": {"variants": ["embedded", "cluster"]},
        "steps": [run("embedded", 20, [0.5]), run("cluster", 20, [2.5]),
                  run("cluster", 40, [9.0])],
    }
    text = render(results)
    assert "screened steps at 20 calls/s" in text
    assert "| embedded | stage decide | 1 | 0.50 |" in text
    assert "| cluster | stage decide | 1 | 2.50 |" in text  # not the 40 calls/s step's
    assert "| cluster | StasisStart -> continue answered | 2 | 4.00 |" in text
