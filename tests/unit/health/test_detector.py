"""The connect-rate early warning (``health.judge``): never below the minimum sample,
always on a sharp drop, never on a rate that was always low; and the policy settings that
tune it, validated by the one policy check."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from outguard import policy_file
from outguard.enforcement.health import HealthSpec, judge
from outguard.enforcement.records import RiskFigures
from outguard.figures import connect_rate
from rules.errors import PolicyError
from rules.model import PartyKind

SPEC = HealthSpec()  # the documented defaults
KEY = "+8613800000001"


def figures(answered: int, ended: int) -> RiskFigures:
    return RiskFigures(PartyKind.CALLER_ID, KEY, 86400.0, attempts=ended, allowed=ended,
                       ended=ended, answered=answered,
                       connect_rate=connect_rate(answered, ended))


ended_counts = st.integers(min_value=0, max_value=5000)


@settings(max_examples=500, deadline=None)
@given(short=st.sampled_from(["recent", "baseline"]), recent_ended=ended_counts,
       base_ended=ended_counts, recent_rate=st.floats(0, 1), base_rate=st.floats(0, 1))
def test_no_warning_below_either_minimum_sample(short: str, recent_ended: int, base_ended: int,
                                               recent_rate: float, base_rate: float) -> None:
    """Whatever the rates, a period with fewer ended calls than its minimum never warns."""
    if short == "recent":
        recent_ended %= SPEC.min_calls
    else:
        base_ended %= SPEC.min_baseline_calls
    recent = figures(round(recent_ended * recent_rate), recent_ended)
    base = figures(round(base_ended * base_rate), base_ended)
    assert judge(SPEC, recent, base) is None


@settings(max_examples=300, deadline=None)
@given(recent_ended=st.integers(SPEC.min_calls, 5000),
       base_ended=st.integers(SPEC.min_baseline_calls, 20000),
       base_rate=st.floats(0.15, 0.9), fall=st.floats(0.5, 1.0))
def test_a_sharp_drop_with_enough_calls_warns(recent_ended: int, base_ended: int,
                                              base_rate: float, fall: float) -> None:
    """A fall of half the baseline rate or more (the default warns at 30%), from a rate
    of at least 15% (so the fall is at least 7.5 points, above min_points)."""
    base = figures(round(base_ended * base_rate), base_ended)
    recent_rate = base.connect_rate * (1 - fall)  # type: ignore[operator]
    recent = figures(int(recent_ended * recent_rate), recent_ended)
    drop = judge(SPEC, recent, base)
    assert drop is not None
    assert drop.rate == recent.connect_rate and drop.baseline_rate == base.connect_rate
    assert drop.relative_drop >= SPEC.drop
    assert "connect rate" in drop.message(SPEC) and "harassment" in drop.message(SPEC)


@settings(max_examples=300, deadline=None)
@given(recent_ended=st.integers(SPEC.min_calls, 5000),
       base_ended=st.integers(SPEC.min_baseline_calls, 20000),
       rate=st.floats(0.0, 0.2), wobble=st.floats(-0.2, 0.2))
def test_a_steady_low_rate_never_warns(recent_ended: int, base_ended: int, rate: float,
                                       wobble: float) -> None:
    """A number whose callees always answered little (3%, 10%, 20%) and still do, give
    or take a fifth of its rate, is not a number that was just marked."""
    base = figures(round(base_ended * rate), base_ended)
    recent = figures(round(recent_ended * rate * (1 + wobble)), recent_ended)
    assert judge(SPEC, recent, base) is None


def test_small_absolute_falls_at_very_low_rates_do_not_warn() -> None:
    # 4% -> 2% is a 50% relative fall but 2 points: under min_points (5 points)
    assert judge(SPEC, figures(4, 200), figures(40, 1000)) is None
    # 40% -> 20% is a 50% fall and 20 points: warns
    assert judge(SPEC, figures(40, 200), figures(400, 1000)) is not None


def test_the_threshold_edge() -> None:
    base = figures(500, 1000)  # 50%
    assert judge(SPEC, figures(35, 100), base) is not None  # 35% = exactly 30% down
    assert judge(SPEC, figures(36, 100), base) is None  # 28% down


def test_disabled_never_warns() -> None:
    assert judge(HealthSpec(enabled=False), figures(0, 1000), figures(900, 1000)) is None


# -- the policy settings, through the one policy check --------------------------------

BASE = 'default_region = "CN"\ntimezone = "Asia/Shanghai"\n'


def check(tmp_path: Path, table: str) -> HealthSpec:
    path = tmp_path / "policy.toml"
    path.write_text(BASE + "[enforcement.caller_id_health]\n" + table, encoding="utf-8")
    from outguard.enforcement.policy import validate_enforcement
    policy = policy_file.read(path)
    return validate_enforcement(policy).health


def test_defaults_when_the_table_is_absent() -> None:
    from outguard.enforcement.policy import EnforcementPolicy
    spec = EnforcementPolicy().health
    assert (spec.enabled, spec.window_s, spec.baseline_s, spec.min_calls,
            spec.min_baseline_calls, spec.drop, spec.min_points, spec.cap_factor) == (
        True, 86400.0, 7 * 86400.0, 50, 200, 0.3, 0.05, 0.5)
    # the figures are kept long enough for the baseline
    assert EnforcementPolicy().longest_window_s >= spec.window_s + spec.baseline_s


def test_settings_are_read(tmp_path: Path) -> None:
    spec = check(tmp_path, 'window = "12h"\nbaseline = "14d"\nmin_calls = 80\n'
                 'min_baseline_calls = 500\ndrop = 0.4\nmin_points = 0.08\ncap_factor = 0.25\n')
    assert (spec.window_s, spec.baseline_s, spec.min_calls, spec.min_baseline_calls,
            spec.drop, spec.min_points, spec.cap_factor) == (
        43200.0, 14 * 86400.0, 80, 500, 0.4, 0.08, 0.25)


@pytest.mark.parametrize(("table", "key", "words"), [
    ("min_calls = 0\n", "min_calls", "integer >= 1"),
    ("min_baseline_calls = 2.5\n", "min_baseline_calls", "integer >= 1"),
    ("drop = 1.5\n", "drop", "below 1"),
    ("drop = 0\n", "drop", "above 0"),
    ("cap_factor = 0\n", "cap_factor", "above 0"),
    ("cap_factor = 2\n", "cap_factor", "at most 1"),
    ("min_points = -0.1\n", "min_points", "from 0 to 1"),
    ('window = "soon"\n', "window", "not a duration"),
    ('enabled = "yes"\n', "enabled", "true or false"),
    ("rotate_numbers = true\n", "rotate_numbers", "unknown key"),
])
def test_bad_settings_name_the_file_line_and_key(tmp_path: Path, table: str, key: str,
                                                 words: str) -> None:
    with pytest.raises(PolicyError) as err:
        check(tmp_path, "# tuned for the night shift\n" + table)
    [issue] = err.value.issues
    assert issue.key == f"enforcement.caller_id_health.{key}"
    assert issue.file.endswith("policy.toml") and issue.line == 5
    assert words in issue.message
