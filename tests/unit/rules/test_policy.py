"""Policy files: parsing, every error with file/line/key, includes and overrides, reload."""

from __future__ import annotations

from pathlib import Path

import pytest

from rules.errors import PolicyError
from rules.model import ListKind, RuleMode, Scope
from rules.policy import PolicyHolder, default_policy, load_policy, parse_policy, preset_names
from rules.policy_types import RuleKind

from .conftest import TEST_POLICY


def issues_of(text: str) -> list[tuple[str, int, str, str]]:
    with pytest.raises(PolicyError) as info:
        parse_policy(text, "p.toml")
    return info.value.as_tuples()


def test_test_policy_parses_in_stage_order() -> None:
    policy = parse_policy(TEST_POLICY, "test.toml")
    kinds = [r.kind for r in policy.ordered_rules()]
    assert kinds[0] is RuleKind.PARTY_STATUS
    assert kinds[-1] is RuleKind.CAP
    assert policy.lists["black_t2"].scope is Scope.TENANT
    assert policy.windows["business"].hours[5] == ((600, 1080),)
    assert 6 not in policy.windows["business"].hours  # Sunday closed


@pytest.mark.parametrize("name", ["cn", "us-tcpa", "uk-ofcom", "demo"])
def test_presets_load(name: str) -> None:
    policy = load_policy(Path(__file__).parents[3] / "rules" / "presets" / f"{name}.toml")
    assert policy.rules


def test_preset_names_and_default_policy() -> None:
    assert {"cn", "us-tcpa", "uk-ofcom", "demo"} <= set(preset_names())
    policy = default_policy()
    ids = [r.id for r in policy.rules]
    assert "cn_caller_id" in ids and "dnc" in ids and "quiet_hours" in ids
    assert policy.includes == ("cn",)
    assert policy.lists["consent"].exempts == ("dnc",)


def test_every_error_is_reported_with_line_and_key() -> None:
    text = """include = ["cn"]

[lists.bad]
kind = "nonsense"

[[rules]]
id = "r1"
kind = "cap"
scope = "account"
limit = -1

[[rules]]
id = "r2"
kind = "time_window"
window = "missing"
cause = 500
"""
    found = issues_of(text)
    by_key = {key: (line, msg) for _, line, key, msg in found}
    assert by_key["lists.bad.kind"][0] == 4
    assert "nonsense" in by_key["lists.bad.kind"][1]
    assert by_key["rules[0].limit"][0] == 10
    assert by_key["rules[1].window"][0] == 15
    assert by_key["rules[1].cause"][0] == 16
    assert all(f == "p.toml" for f, *_ in found)


@pytest.mark.parametrize(
    ("text", "key", "words"),
    [
        pytest.param('[[rules]]\nid = "x"\nkind = "nope"\n', "rules[0].kind", "not one of", id="unknown-kind"),
        pytest.param('[[rules]]\nid = "x"\nkind = "lists"\nmode = "loud"\n', "rules[0].mode", "not one of", id="bad-mode"),
        pytest.param('[[rules]]\nid = "x"\nkind = "lists"\nlists = ["zz"]\n', "rules[0].lists", "no list named", id="unknown-list"),
        pytest.param('[lists.ok]\nkind = "consent"\n[[rules]]\nid = "x"\nkind = "lists"\nlists = ["ok"]\n', "rules[0].lists", "not a do-not-call", id="consent-list-cannot-block"),
        pytest.param('[lists.d]\nkind = "dnc"\n[[rules]]\nid = "x"\nkind = "register_freshness"\nlists = ["d"]\n', "rules[0].lists", "not a register", id="freshness-needs-register"),
        pytest.param('[[rules]]\nid = "x"\nkind = "prefix"\ndeny = ["86a"]\n', "rules[0].deny", "not digit prefixes", id="bad-prefix"),
        pytest.param('[[rules]]\nid = "x"\nkind = "line_type"\ndeny = ["fax"]\n', "rules[0].deny", "not one of", id="bad-line-type"),
        pytest.param('[[rules]]\nid = "x"\nkind = "cap"\nscope = "moon"\nlimit = 1\n', "rules[0].scope", "not one of", id="bad-cap-scope"),
        pytest.param('[[rules]]\nid = "x"\nkind = "cap"\nscope = "account"\nlimit = 1\nwhen_unavailable = "open"\n', "rules[0].when_unavailable", "not block (fail closed) or allow", id="bad-cap-failure-policy"),
        pytest.param('[[rules]]\nid = "x"\nkind = "caller_id"\nfoo = 1\n', "rules[0].foo", "unknown parameter", id="typo-param"),
        pytest.param('[windows.w]\nhours = { mon = "21:00-09:00" }\n', "windows.w.hours", "start must be before end", id="reversed-span"),
        pytest.param('[windows.w]\nhours = { someday = "09:00-10:00" }\n', "windows.w.hours", "unknown day", id="bad-day"),
        pytest.param('[windows.w]\nhours = { mon = "09:00-10:00" }\nzone = "Mars/Base"\n', "windows.w.zone", "unknown time zone", id="bad-zone"),
        pytest.param('[lists.t]\nkind = "dnc"\nscope = "tenant"\n', "lists.t.scope_key", "needs scope_key", id="scope-without-key"),
        pytest.param('[lists.d]\nkind = "dnc"\nexempts = ["x"]\n', "lists.d.exempts", "only allow and consent", id="dnc-cannot-exempt"),
        pytest.param('[causes]\nquiet_hours = "busy"\n', "causes.quiet_hours", "Q.850", id="bad-cause"),
        pytest.param('[causes]\nquiet_hour = 19\n', "causes.quiet_hour", "unknown reason code", id="cause-typo"),
        pytest.param('[[rules]]\nid = "x"\nkind = "lists"\nmessage = "oops {"\n', "rules[0].message", "bad template", id="bad-message-template"),
        pytest.param('include = ["atlantis"]\n', "include", "unknown preset", id="unknown-preset"),
        pytest.param('timezone = "Nowhere/X"\n', "timezone", "bad value", id="bad-timezone"),
    ],
)
def test_validation_errors(text: str, key: str, words: str) -> None:
    found = issues_of(text)
    assert any(k == key and words in m for _, _, k, m in found), found


def test_toml_syntax_error_has_a_line() -> None:
    found = issues_of('a = 1\n[[rules]]\nid = \n')
    assert found[0][1] == 3
    assert "TOML" in found[0][3]


def test_duplicate_rule_ids_in_one_file_are_an_error() -> None:
    text = '[[rules]]\nid = "x"\nkind = "line_type"\ndeny = ["premium"]\n[[rules]]\nid = "x"\nkind = "line_type"\n'
    found = issues_of(text)
    assert found == [("p.toml", 5, "rules[1].id", "duplicate rule id 'x' (first at line 1)")]


def test_include_then_override_replace_patch_and_disable() -> None:
    text = """include = ["cn"]

[[rules]]
id = "cn_sim_daily"
mode = "enforce"
limit = 25

[[rules]]
id = "cn_premium"
kind = "line_type"
deny = ["premium", "voip"]

[[rules]]
id = "cn_sim_hourly"
enabled = false
"""
    policy = parse_policy(text, "site.toml")
    rules = {r.id: r for r in policy.rules}
    assert rules["cn_sim_daily"].mode is RuleMode.ENFORCE
    assert rules["cn_sim_daily"].params["limit"] == 25
    assert rules["cn_sim_daily"].params["scope"] == "caller_id"  # kept from the preset
    assert rules["cn_premium"].params["deny"] == frozenset({"premium", "voip"})
    assert "cn_sim_hourly" not in rules
    ids = [r.id for r in policy.rules]
    assert ids.index("cn_premium") < ids.index("cn_sim_daily")  # preset positions kept


def test_include_cycle_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text('include = ["b.toml"]\n', encoding="utf-8")
    (tmp_path / "b.toml").write_text('include = ["a.toml"]\n', encoding="utf-8")
    with pytest.raises(PolicyError, match="cycle"):
        load_policy(tmp_path / "a.toml")


def test_list_kinds_from_file() -> None:
    policy = parse_policy(TEST_POLICY)
    assert policy.lists["national"].kind is ListKind.REGISTER
    assert policy.lists["national"].max_age_days == 31


def test_reload_with_a_broken_file_keeps_the_old_policy(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(TEST_POLICY, encoding="utf-8")
    holder = PolicyHolder(path)
    old = holder.policy
    path.write_text(TEST_POLICY + '\n[[rules]]\nid = "oops"\nkind = "cap"\n', encoding="utf-8")
    assert holder.reload() is False
    assert holder.policy is old
    assert holder.last_error is not None
    assert any(i.key.startswith("rules[") for i in holder.last_error.issues)
    path.write_text(TEST_POLICY.replace("limit = 5", "limit = 6"), encoding="utf-8")
    assert holder.reload() is True
    assert holder.policy is not old
    assert holder.last_error is None


def test_missing_file_is_a_policy_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy(tmp_path / "absent.toml")
