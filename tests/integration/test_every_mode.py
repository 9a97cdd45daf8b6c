"""Every mode, every kind of call, against the sandbox Asterisk: allowed, blocked,
shadow-flagged and failed calls (screening failed: fail-closed and fail-open) over ARI
continue, ARI bridge and FastAGI. Each case checks what the phone gets, whether the
carrier was dialled, the call-log row (a failed call's too: verdict failed, the policy
applied, and a fail-open call's outcome), the OUTGUARD_* variables the CDR sees, and that
nothing is left behind: no channel up, no concurrency slot held."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from outguard.testing import sipp
from tests.integration.conftest import ChannelVariables, Running
from tests.waiting import eventually

pytestmark = pytest.mark.integration

ALLOWED = "13800138000"
LISTED = "13900139000"  # on the do-not-call list: blocked (rule dnc, cause 21: SIP 403)
WATCHED = "13600136000"  # on the "watch" list, a rule in shadow mode: let through, flagged

#: the SIPp agent's From user picks the sandbox dialplan's entry context
MODES = {"continue": ("agent", "ari"), "bridge": ("agent-bridge", "ari"),
         "agi": ("agent-agi", "agi")}


@dataclass(frozen=True)
class Case:
    number: str
    fail_mode: str  # "": screening works; "closed" / "open": screening fails, the channel says
    final: int  # the phone's final SIP response
    dialled: bool  # the carrier got an INVITE
    #: the call-log row: (verdict, rule, reason, shadow, cause)
    row: tuple[str, str, str, tuple[str, ...], int]
    verdict: str  # OUTGUARD_VERDICT on the channel


CASES = {
    "allowed": Case(ALLOWED, "", 200, True, ("allow", "", "ok", (), 16), "allow"),
    "blocked": Case(LISTED, "", 403, False, ("block", "dnc", "dnc_listed", (), 21), "block"),
    "shadow-flagged": Case(WATCHED, "", 200, True, ("allow", "", "ok", ("watch",), 16),
                           "allow"),
    # screening failed: the row says so, the failure policy applied, and (fail-open) the
    # outcome of the call that went out, followed like an allowed one
    "failed-closed": Case(ALLOWED, "closed", 503, False,
                          ("failed", "fail-closed", "screening_error", (), 34), "failed"),
    "failed-open": Case(ALLOWED, "open", 200, True,
                        ("failed", "fail-open", "screening_error", (), 16), "unscreened"),
}


@pytest.fixture
async def everything(outguard_all: Running) -> Running:
    await outguard_all.listed("dnc", "dnc", LISTED)
    await outguard_all.listed("watch", "dnc", WATCHED)
    return outguard_all


@pytest.mark.parametrize("kind", list(CASES))
@pytest.mark.parametrize("mode", list(MODES))
async def test_every_kind_of_call_in_every_mode(
    everything: Running, mode: str, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    og, case = everything, CASES[kind]
    agent, adapter = MODES[mode]
    if case.fail_mode:
        def broken(facts: Any) -> Any:
            raise RuntimeError("simulated engine failure")

        monkeypatch.setattr(og.screener, "screen", broken)
    async with ChannelVariables(og.pbx) as seen:
        with sipp.Carrier(og.pbx.inst, hold_ms=300) as carrier:
            run = await og.call(case.number, from_user=agent, account=f"a-{mode}-{kind}",
                                fail_mode=case.fail_mode)
            assert carrier.invites() == ([case.number] if case.dialled else [])
        assert run.only.final == case.final
        logged = await og.logged()
        await seen.verdict(case.verdict)
    [row] = logged  # every call that reached outguard: one row with its outcome
    assert (row.call.verdict, row.call.rule, row.call.reason, row.call.shadow,
            row.cause) == case.row
    assert row.call.adapter == adapter and row.ended_at is not None
    assert (row.answered_at is not None) == (case.final == 200)
    assert row.call.account == f"a-{mode}-{kind}" and row.call.destination == "+86" + case.number
    variables = seen.of(row.call.channel_id)
    assert variables["OUTGUARD_VERDICT"] == case.verdict
    assert variables["OUTGUARD_DECISION_ID"] == row.call.decision_id
    if case.row[3]:
        assert variables["OUTGUARD_SHADOW"] == ",".join(case.row[3])
    assert og.screener.live_calls() == 0
    assert og.screener.live.concurrent("account", f"a-{mode}-{kind}") == 0
    await eventually(lambda: og.pbx.channels() == 0, "no channel left", interval=0.05)
