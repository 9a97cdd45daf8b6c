"""One reading of a policy: what `policy validate` accepts is what start and reload accept,
the [enforcement] table included; malformed policies of every shape give a PolicyError
with the problem named, never a traceback."""

from __future__ import annotations

import datetime as dt
import json
import random
import tomllib
from pathlib import Path
from typing import Any

import pytest

from outguard.enforcement import Enforcer  # noqa: F401  (start builds one from the policy)
from outguard.enforcement.policy import validate_enforcement
from outguard.policy_file import parse_untrusted, read
from rules.errors import PolicyError
from rules.policy import PRESET_DIR, parse_policy

DEMO = (PRESET_DIR / "demo.toml").read_text(encoding="utf-8")
DEMO_DATA = tomllib.loads(DEMO)
#: every shipped policy: the fuzz mutates each (their rule kinds differ)
BASES = {p.stem: tomllib.loads(p.read_text(encoding="utf-8"))
         for p in sorted(PRESET_DIR.glob("*.toml"))}


def toml_value(value: Any) -> str:
    """A small TOML writer (inline tables only): enough to write any parsed policy."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(value)


def toml_doc(data: dict[str, Any]) -> str:
    return "\n".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in data.items()) + "\n"


def test_the_writer_round_trips_the_shipped_policies() -> None:
    for base in BASES.values():
        assert tomllib.loads(toml_doc(base)) == base
    parse_untrusted(toml_doc(DEMO_DATA), None)


def _with(base: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    data = json.loads(json.dumps(base, default=str))  # deep copy (dates as text)
    data = _restore_dates(data, base)
    node: Any = data
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return data


def _restore_dates(copy: Any, original: Any) -> Any:
    if isinstance(original, dict):
        return {k: _restore_dates(copy[k], v) for k, v in original.items()}
    if isinstance(original, list):
        return [_restore_dates(c, o) for c, o in zip(copy, original)]
    return original if isinstance(original, (dt.date, dt.time)) else copy


def _leaves(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(node, dict):
        out = [path] if path else []
        for k, v in node.items():
            out += _leaves(v, (*path, k))
        return out
    if isinstance(node, list):
        out = [path]
        for i, v in enumerate(node):
            out += _leaves(v, (*path, i))
        return out
    return [path]


WRONG = [0, -1, 10**20, 1.5, float("inf"), True, "", "x", "suspnd", [], [1, "a"], {},
         {"a": {"b": 1}}, dt.date(2026, 10, 1), dt.time(9, 0),
         dt.datetime(2026, 1, 1, 8, 0), [[[[[]]]]], "09:00-25:00", "-5d", "\x1b[31m"]


def test_any_value_of_a_shipped_policy_replaced_by_junk_gives_a_policy_error_or_a_policy(
) -> None:
    """A seeded sample of (policy, value, junk) triples over the shipped policies (all
    of them, about 9,000, pass too: they take a minute)."""
    triples = [(name, path, value) for name, base in BASES.items()
               for path in _leaves(base) for value in WRONG]
    sample = random.Random(13).sample(triples, min(700, len(triples)))
    unexpected: list[str] = []
    for name, path, value in sample:
        text = toml_doc(_with(BASES[name], path, value))
        try:
            parse_untrusted(text, None)
        except PolicyError as exc:
            assert exc.issues and all(i.message for i in exc.issues)
        except Exception as exc:  # the defect class: anything but a PolicyError
            unexpected.append(f"{name}: {path} = {value!r}: {type(exc).__name__}: {exc}")
    assert unexpected == []


ENFORCEMENT_TABLE = """
[enforcement.triggers.t]
metric = "complaints"
scope = "tenant"
window = "30d"
at_least = 2
action = "suspend"
"""

#: (name, policy text, a key the issues must name)
MALFORMED = [
    ("action typo", ENFORCEMENT_TABLE.replace('"suspend"', '"suspnd"'), "enforcement.triggers"),
    ("metric typo", ENFORCEMENT_TABLE.replace('"complaints"', '"complains"'), "enforcement"),
    ("window not a duration", ENFORCEMENT_TABLE.replace('"30d"', '"thirty"'), "enforcement"),
    ("two thresholds", ENFORCEMENT_TABLE + "above = 3\n", "enforcement"),
    ("unknown enforcement key", "[enforcement]\nshort_calls = 6\n", "enforcement.short_calls"),
    ("enforcement not a table", "enforcement = 3\n", "enforcement"),
    ("durations wrong type", "[enforcement]\ndurations = 24\n", "enforcement.durations"),
    ("webhook urls a string", "[enforcement.webhooks]\nurls = \"http://x\"\n", "enforcement"),
    ("holidays a bare date", "[windows.w]\nhours = { weekdays = \"09:00-21:00\" }\n"
                             "holidays = 2026-10-01\n", "windows.w"),
    ("hours a date", "[windows.w]\nhours = 2026-10-01\n", "windows.w"),
    ("rules a table", "[rules]\nid = 1\n", "rules"),
    ("rule id a list", "[[rules]]\nid = [1]\nkind = \"lists\"\n", "rules[0]"),
    ("deep nesting", "x = " + "[" * 100_000 + "]" * 100_000 + "\n", ""),
    ("deep inline tables", "x = " + "{a=" * 5000 + "1" + "}" * 5000 + "\n", ""),
    ("include a number", "include = 3\n", "include"),
    ("include an absolute path", "include = [\"/etc/passwd\"]\n", "include"),
    ("include a relative escape", "include = [\"../../../../etc/hostname.toml\"]\n", "include"),
    ("include with a NUL", "include = [\"a\\u0000b.toml\"]\n", "include"),
    ("causes wrong type", "[causes]\nquiet_hours = \"x\"\n", "causes"),
    ("default_region a table", "[default_region]\nx = 1\n", "default_region"),
    ("timezone unknown", "timezone = \"Mars/Olympus\"\n", "timezone"),
    ("not TOML", "[[[\n", ""),
]


@pytest.mark.parametrize(("text", "key"), [(t, k) for _, t, k in MALFORMED],
                         ids=[n for n, _, _ in MALFORMED])
def test_malformed_policies_are_reported_not_raised(text: str, key: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_untrusted(text, None)
    assert any(key in i.key or key in i.message for i in caught.value.issues), caught.value


def test_validate_and_start_read_the_enforcement_table_with_the_same_code(
    tmp_path: Path,
) -> None:
    bad = tmp_path / "p.toml"
    bad.write_text(ENFORCEMENT_TABLE.replace('"suspend"', '"suspnd"'), encoding="utf-8")
    with pytest.raises(PolicyError) as by_read:
        read(bad)  # what the service's start and a reload use
    with pytest.raises(PolicyError) as by_enforcement:
        validate_enforcement(parse_policy(bad.read_text(encoding="utf-8"), str(bad)))
    assert by_read.value.as_tuples() == by_enforcement.value.as_tuples()
    assert by_read.value.issues[0].line == 7  # action = "suspnd"


def test_a_non_utf8_include_is_reported(tmp_path: Path) -> None:
    (tmp_path / "latin1.toml").write_bytes(b'timezone = "Europe/Z\xfcrich"\n')
    main = tmp_path / "main.toml"
    main.write_text('include = ["latin1.toml"]\n', encoding="utf-8")
    with pytest.raises(PolicyError, match="UTF-8"):
        read(main)


def test_a_non_utf8_policy_file_is_reported(tmp_path: Path) -> None:
    main = tmp_path / "main.toml"
    main.write_bytes(b'timezone = "\xff"\n')
    with pytest.raises(PolicyError, match="UTF-8"):
        read(main)


def test_api_policies_include_presets_and_files_of_the_policy_dir_only(tmp_path: Path) -> None:
    policy_dir = tmp_path / "policies"
    policy_dir.mkdir()
    (policy_dir / "site.toml").write_text('timezone = "Asia/Shanghai"\n', encoding="utf-8")
    secret = tmp_path / "secret.toml"
    secret.write_text('timezone = "Secret/Value"\n', encoding="utf-8")
    assert parse_untrusted('include = ["cn", "site.toml"]\n', policy_dir).timezone == \
        "Asia/Shanghai"
    for include in (str(secret), "../secret.toml", str(tmp_path / "missing.toml")):
        with pytest.raises(PolicyError) as caught:
            parse_untrusted(f"include = [{json.dumps(include)}]\n", policy_dir)
        text = str(caught.value)
        assert "Secret/Value" not in text and "unknown preset" in text
    # the same message whether the file exists or not: nothing learnt about the server
    messages = set()
    for include in (str(secret), str(tmp_path / "missing.toml")):
        with pytest.raises(PolicyError) as caught:
            parse_untrusted(f"include = [{json.dumps(include)}]\n", None)
        messages.add(caught.value.issues[0].message.replace(include, "X"))
    assert len(messages) == 1
