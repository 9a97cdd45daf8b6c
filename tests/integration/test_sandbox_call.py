"""The unscreened path end to end: SIPp agent -> Asterisk -> SIPp carrier.

This is also the baseline the benchmarks compare every screening variant against.
"""

from __future__ import annotations

import pytest

from outguard import sandbox
from outguard.testing import sipp

pytestmark = pytest.mark.integration


def test_direct_call_connects_and_far_end_hangup_tears_it_down(
    clean_pbx: sandbox.Sandbox,
) -> None:
    with sipp.Carrier(clean_pbx.inst, hold_ms=200) as carrier:
        run = sipp.place_calls(clean_pbx.inst, "13800138000", from_user="agent-direct")
        assert carrier.invites() == ["13800138000"]
        assert carrier.wait_ended(1) == [(1, "local")]
    call = run.only
    assert run.returncode == 0, run.output
    assert call.final == 200
    assert call.ended_by == "remote"
    assert clean_pbx.wait_channels(0) == 0


def test_direct_call_agent_hangup_reaches_the_carrier(clean_pbx: sandbox.Sandbox) -> None:
    with sipp.Carrier(clean_pbx.inst, callee_hangs_up=False) as carrier:
        run = sipp.place_calls(
            clean_pbx.inst, "+8613800138000", from_user="agent-direct",
            agent_hangs_up_after_ms=100,
        )
        assert carrier.wait_ended(1) == [(1, "remote")]
    assert run.only.final == 200
    assert run.only.ended_by == "local"
    assert clean_pbx.wait_channels(0) == 0


def test_several_calls_in_a_row_all_connect(clean_pbx: sandbox.Sandbox) -> None:
    with sipp.Carrier(clean_pbx.inst, hold_ms=100) as carrier:
        run = sipp.place_calls(
            clean_pbx.inst, "13800138000", from_user="agent-direct", count=10, rate=20
        )
        assert len(carrier.invites()) == 10
    assert run.finals() == [200] * 10
    assert all(c.ended_by == "remote" for c in run.calls.values())


def test_native_astdb_blacklist_blocks_with_403(clean_pbx: sandbox.Sandbox) -> None:
    clean_pbx.cli("database put blacklist 13900139000 1")
    try:
        run = sipp.place_calls(clean_pbx.inst, "13900139000", from_user="agent-native")
    finally:
        clean_pbx.cli("database del blacklist 13900139000")
    assert run.only.final == 403


@pytest.mark.parametrize(
    ("agent", "fail_mode", "expected"),
    [
        pytest.param("agent", "closed", 503, id="ari-app-absent-fail-closed-503"),
        pytest.param("agent-agi", "closed", 503, id="agi-server-down-fail-closed-503"),
        pytest.param("agent", "open", 200, id="ari-app-absent-fail-open-connects"),
        pytest.param("agent-agi", "open", 200, id="agi-server-down-fail-open-connects"),
    ],
)
def test_dialplan_failure_policy_without_outguard(
    clean_pbx: sandbox.Sandbox, agent: str, fail_mode: str, expected: int
) -> None:
    with sipp.Carrier(clean_pbx.inst, hold_ms=100):
        run = sipp.place_calls(
            clean_pbx.inst, "13800138000", from_user=agent, fail_mode=fail_mode
        )
    assert run.only.final == expected


def test_sandbox_restart_keeps_serving_calls(pbx: sandbox.Sandbox) -> None:
    pbx.restart()
    with sipp.Carrier(pbx.inst, hold_ms=100):
        run = sipp.place_calls(pbx.inst, "13800138000", from_user="agent-direct")
    assert run.only.final == 200
