"""The [enforcement] table: a good one becomes typed settings; a bad one is refused with
every problem named by file, line and key (and the previous policy stays in use)."""

from __future__ import annotations

from pathlib import Path

import pytest

from outguard.enforcement import Enforcer, parse_duration, validate_enforcement
from outguard.store.aio import AsyncStore
from rules.errors import PolicyError
from rules.model import PartyKind
from rules.policy import load_policy, parse_policy
from tests.unit.enforcement.conftest import DAY, Clock, PolicyFactory

GOOD = """
[enforcement.triggers.tenant_complaints]
metric = "complaints"
scope = "account"
window = "7d"
at_least = 2
target = "tenant"

[enforcement.verification]
disable_after = "90d"
sweep_every = "30m"

[enforcement.webhooks]
urls = ["http://127.0.0.1:9/hook"]
secret_env = "OPS_HOOK_SECRET"
max_attempts = 3
"""

BAD = """
[enforcement]
durations = ["24h", "permanent", "7d"]
short_call_s = -1
colour = "red"

[enforcement.triggers.t1]
metric = "vibes"
scope = "account"
window = "soon"
at_least = 2
above = 3

[enforcement.triggers.t2]
metric = "short_call_ratio"
scope = "caller_id"
above = 60
target = "account"
action = "ban"

[enforcement.webhooks]
urls = ["ftp://x"]
secret_env = "my secret value"
"""


def test_durations() -> None:
    assert parse_duration("24h") == DAY and parse_duration("90m") == 5400
    assert parse_duration("2w") == 14 * DAY and parse_duration(30) == 30.0
    for bad in ("", "7 days", "-1h", 0, True, "0s"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_a_good_table(make_policy: PolicyFactory) -> None:
    config = validate_enforcement(make_policy(GOOD))
    assert config.durations == (DAY, 7 * DAY, 30 * DAY, None)
    assert config.strike_lookback_s == 180 * DAY and config.short_call_s == 6
    [trigger] = config.triggers
    assert (trigger.scope, trigger.target, trigger.op, trigger.threshold) == (
        PartyKind.ACCOUNT, PartyKind.TENANT, ">=", 2)
    assert trigger.source.endswith(f":{_line_of(trigger.source)}")
    assert config.verification.sweep_every_s == 1800
    assert config.webhooks.secret_env == "OPS_HOOK_SECRET"
    assert config.duration_for(0) == DAY and config.duration_for(9) is None


def _line_of(source: str) -> str:
    return source.rsplit(":", 1)[1]


def test_every_problem_is_named_with_file_line_and_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(BAD, encoding="utf-8")
    with pytest.raises(PolicyError) as info:
        validate_enforcement(load_policy(path))
    issues = {(i.key, i.line) for i in info.value.issues}
    lines = BAD.splitlines()

    def line(text: str, after: str = "") -> int:
        start = lines.index(after) if after else 0
        return next(n for n, ln in enumerate(lines) if n >= start and ln.startswith(text)) + 1

    expected = {
        ("enforcement.durations", line("durations")),
        ("enforcement.short_call_s", line("short_call_s")),
        ("enforcement.colour", line("colour")),
        ("enforcement.triggers.t1.metric", line("metric", "[enforcement.triggers.t1]")),
        ("enforcement.triggers.t1.window", line("window", "[enforcement.triggers.t1]")),
        ("enforcement.triggers.t1", line("[enforcement.triggers.t1]")),
        ("enforcement.triggers.t2.above", line("above", "[enforcement.triggers.t2]")),
        ("enforcement.triggers.t2.target", line("target", "[enforcement.triggers.t2]")),
        ("enforcement.triggers.t2.action", line("action", "[enforcement.triggers.t2]")),
        ("enforcement.webhooks.urls", line("urls")),
        ("enforcement.webhooks.secret_env", line("secret_env")),
    }
    assert expected <= issues, sorted(issues)
    assert all(i.file == str(path) for i in info.value.issues)


def test_a_policy_without_the_table_gets_the_defaults() -> None:
    config = validate_enforcement(parse_policy('default_region = "CN"\n'))
    assert config.triggers == () and config.durations[-1] is None


async def test_a_bad_table_leaves_the_running_policy_in_place(
    store: AsyncStore, clock: Clock, make_policy: PolicyFactory, tmp_path: Path
) -> None:
    enforcer = Enforcer(store, make_policy(GOOD), clock=clock)
    path = tmp_path / "bad.toml"
    path.write_text(BAD, encoding="utf-8")
    with pytest.raises(PolicyError):
        enforcer.set_policy(load_policy(path))
    assert [t.name for t in enforcer.config.triggers] == ["tenant_complaints"]
    enforcer.set_policy(make_policy(""))
    assert enforcer.config.triggers == ()


def test_the_demo_policy_has_a_valid_enforcement_example() -> None:
    from rules.policy import default_policy

    policy = default_policy()
    config = validate_enforcement(policy)
    assert {t.name for t in config.triggers} >= {"tenant_complaints", "callee_marks"}
    assert config.verification.suspend and config.webhooks.urls == ()
    assert "complaint_lists" in [r.id for r in policy.rules]


async def test_the_service_refuses_to_start_when_the_table_is_bad(tmp_path: Path) -> None:
    """Not "running with no triggers" while GET /api/policy lists them: no start at all,
    with every problem named (what `policy validate` says too)."""
    from aiohttp import web

    from outguard.config import Settings
    from outguard.server import Parts, build_app

    path = tmp_path / "bad.toml"
    path.write_text(BAD, encoding="utf-8")
    settings = Settings(store=str(tmp_path / "og.db"), policy=str(path))
    runner = web.AppRunner(build_app(settings, Parts(ari=False, agi=False, ami=False,
                                                     api=False)))
    try:
        with pytest.raises(PolicyError) as caught:
            await runner.setup()
    finally:
        await runner.cleanup()
    assert any(i.key == "enforcement.short_call_s" for i in caught.value.issues)
