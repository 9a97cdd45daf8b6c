"""The ARI application on the real Asterisk, with SIPp as the agent phone and the carrier."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from outguard.server import Parts
from outguard.callfacts import ChannelFacts
from outguard.testing import sipp
from tests.integration import block_reasons
from tests.integration.conftest import (
    ChannelVariables,
    Running,
    callee_hangs_up,
    carrier_legs,
    settings_for,
    start_outguard,
)
from tests.waiting import eventually

pytestmark = pytest.mark.integration

ALLOWED = "13800138000"


async def listed(og: Running, list_name: str, kind: str, *numbers: str) -> None:
    await og.listed(list_name, kind, *numbers)


async def test_allowed_call_connects_and_its_outcome_is_recorded(outguard: Running) -> None:
    with sipp.Carrier(outguard.pbx.inst, hold_ms=1200) as carrier:
        started = time.monotonic()
        run = await outguard.call(ALLOWED, account="a1")
        wall = time.monotonic() - started  # the whole call, as the agent saw it
        assert carrier.invites() == [ALLOWED]
    assert run.only.final == 200
    assert run.only.ended_by == "remote"
    calls = await outguard.logged()
    assert len(calls) == 1
    logged = calls[0]
    assert logged.call.verdict == "allow"
    assert logged.call.account == "a1"
    assert logged.call.destination == "+8613800138000"
    assert logged.answered_at is not None
    # held 1.2 s by the callee; never longer than the call took (slack: timestamp rounding)
    assert logged.duration is not None and 0.9 < logged.duration < wall + 0.5, (wall, logged)
    assert logged.cause == 16
    assert outguard.screener.live.concurrent("account", "a1") == 0
    await eventually(lambda: outguard.pbx.channels() == 0, "no channel left up", interval=0.05)


class Requests:
    """Every ARI REST request the app sends, per channel id in its path."""

    def __init__(self, og: Running) -> None:
        self.sent: list[tuple[str, str]] = []
        original = og.stasis.client.request

        async def counted(method: str, path: str, **kwargs: Any) -> Any:
            self.sent.append((method, path))
            return await original(method, path, **kwargs)

        og.stasis.client.request = counted  # type: ignore[method-assign]
        kept = og.stasis.client.call_path_request  # continue, hangup: on kept connections

        async def counted_kept(method: str, path: str, params: Any) -> None:
            self.sent.append((method, path))
            await kept(method, path, params)

        og.stasis.client.call_path_request = counted_kept  # type: ignore[method-assign]

    def of(self, channel_id: str) -> list[str]:
        return [f"{m} {p.split(channel_id, 1)[1] or '/'}" for m, p in self.sent
                if channel_id in p]


async def test_an_allowed_call_is_one_request_and_the_dialplan_records_the_verdict(
    outguard: Running,
) -> None:
    requests = Requests(outguard)
    async with ChannelVariables(outguard.pbx) as seen:
        with sipp.Carrier(outguard.pbx.inst, hold_ms=300):
            run = await outguard.call(ALLOWED, account="a1")
        [row] = await outguard.logged()
    assert run.only.final == 200
    uid = row.call.decision_id
    assert row.call.channel_id == uid  # the call log is keyed by the channel's unique id
    assert requests.of(uid) == ["POST /continue"]
    assert ("GET", "/events") not in requests.sent
    assert not any("subscription" in p for _, p in requests.sent)
    assert seen.of(uid) == {"OUTGUARD_VERDICT": "allow", "OUTGUARD_REASON": "ok",
                            "OUTGUARD_DECISION_ID": uid, "OUTGUARD_ACCOUNT": "a1"}
    assert (row.answered_at is not None, row.cause) == (True, 16)


async def test_a_shadow_flagged_call_costs_one_more_request_and_names_its_rule(
    outguard: Running,
) -> None:
    await listed(outguard, "watch", "dnc", "13600136000")
    requests = Requests(outguard)
    async with ChannelVariables(outguard.pbx) as seen:
        with sipp.Carrier(outguard.pbx.inst, hold_ms=100) as carrier:
            run = await outguard.call("13600136000")
            assert carrier.invites() == ["13600136000"]
        [row] = await outguard.logged()
    assert run.only.final == 200
    uid = row.call.decision_id
    assert requests.of(uid) == ["POST /variables", "POST /continue"]
    assert row.call.shadow == ("watch",)
    assert seen.of(uid) == {"OUTGUARD_VERDICT": "allow", "OUTGUARD_REASON": "ok",
                            "OUTGUARD_DECISION_ID": uid, "OUTGUARD_SHADOW": "watch"}
    assert row.cause == 16


async def test_a_blocked_call_sets_its_variables_then_hangs_up(outguard: Running) -> None:
    await listed(outguard, "dnc", "dnc", "13900139000")
    requests = Requests(outguard)
    async with ChannelVariables(outguard.pbx) as seen:
        run = await outguard.call("13900139000")
        [row] = await outguard.logged()
    assert run.only.final == 403
    uid = row.call.decision_id
    assert requests.of(uid) == ["POST /variables", "DELETE /"]
    variables = seen.of(uid)
    assert (variables["OUTGUARD_VERDICT"], variables["OUTGUARD_REASON"],
            variables["OUTGUARD_CAUSE"], variables["OUTGUARD_DECISION_ID"]) == (
        "block", "dnc_listed", "21", uid)
    assert (row.ended_at is not None, row.cause) == (True, 21)


async def test_a_failed_screening_sets_failed_and_refuses_the_call(outguard: Running) -> None:
    def broken(facts: Any) -> Any:
        raise RuntimeError("simulated engine failure")

    outguard.screener.screen = broken  # type: ignore[method-assign]
    async with ChannelVariables(outguard.pbx) as seen:
        run = await outguard.call(ALLOWED)
        await seen.verdict("failed")
    assert run.only.final == 503
    [variables] = [v for v in seen.by_channel.values() if v.get("OUTGUARD_VERDICT")]
    assert variables["OUTGUARD_VERDICT"] == "failed"
    await eventually(lambda: outguard.pbx.channels() == 0, "no channel left up", interval=0.05)


async def test_without_ami_an_allowed_call_is_followed_by_subscription(
    clean_pbx: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_for(clean_pbx, tmp_path / "og.db")
    runner = await start_outguard(clean_pbx, settings, Parts(agi=False, ami=False), monkeypatch)
    try:
        og = Running(runner.app, settings, clean_pbx)
        with sipp.Carrier(clean_pbx.inst, hold_ms=500):
            run = await og.call(ALLOWED, account="a1")
        [row] = await og.logged()
        assert run.only.final == 200
        assert (row.answered_at is not None, row.cause) == (True, 16)
        assert og.screener.live_calls() == 0
    finally:
        await runner.cleanup()


async def test_calls_in_progress_across_an_outguard_restart_close_with_their_outcome(
    clean_pbx: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Continue-mode calls are in the dialplan, not in Stasis: an outguard restart leaves
    them up, and the hangup handler's event closes their rows in the new process."""
    settings = settings_for(clean_pbx, tmp_path / "og.db")
    agent = clean_pbx.inst.ports.agent
    with sipp.Carrier(clean_pbx.inst, callee_hangs_up=False) as carrier:
        runner = await start_outguard(clean_pbx, settings, Parts(agi=False), monkeypatch)
        try:
            og = Running(runner.app, settings, clean_pbx)
            placed = time.monotonic()
            # three agents at once (the policy allows one call per account at a time);
            # timeout_s bounds SIPp, the calls end sooner
            placing = [asyncio.ensure_future(og.call(ALLOWED, account=f"r{i}",
                                                     port=agent + 3 * i, timeout_s=90))
                       for i in range(3)]
            await eventually(
                lambda: [leg["state"] for leg in carrier_legs(clean_pbx)] == ["Up"] * 3,
                "the three calls connected", interval=0.05)
            connected = time.monotonic()
            await og.store.flush_async()
        finally:  # also when the wait fails: an outguard left running screens later tests
            await runner.cleanup()  # outguard stops while the three calls are connected
        runner = await start_outguard(clean_pbx, settings, Parts(agi=False), monkeypatch)
        try:
            og = Running(runner.app, settings, clean_pbx)
            legs = carrier_legs(clean_pbx)  # all three still up: outguard cut none ...
            assert [leg["state"] for leg in legs] == ["Up"] * 3
            first_hangup = time.monotonic() - connected
            for leg in legs:  # ... until each callee hangs up
                callee_hangs_up(clean_pbx, leg)
            runs = await asyncio.gather(*placing)
            ended = time.monotonic() - placed
            assert [r.only.final for r in runs] == [200, 200, 200]
            await eventually(lambda: len(carrier.ended()) == 3, "the carrier's 3 ends",
                             interval=0.01)  # its log may trail the agents' runs
            assert [e for _, e in carrier.ended()] == ["remote"] * 3
            assert [r.only.ended_by for r in runs] == ["remote"] * 3
            logged = await og.logged()  # once the last hangup handler's event is in
        finally:
            await runner.cleanup()
    assert len(logged) == 3
    for row in logged:
        assert (row.call.verdict, row.cause) == ("allow", 16)
        assert row.answered_at is not None and row.duration is not None
        # answered before `connected`, hung up after the first hangup request; answered
        # after `placed`, over before the agents saw the end (slack: timestamp rounding)
        assert first_hangup - 0.5 < row.duration < ended + 0.5, (first_hangup, ended, row)


@pytest.mark.parametrize(block_reasons.FIELDS, block_reasons.TABLE)
async def test_each_block_reason_gives_its_sip_response(
    outguard: Running, setup: block_reasons.Setup, number: str, kwargs: dict[str, str], expected: int,
    reason: str | None,
) -> None:
    await setup(outguard)
    with sipp.Carrier(outguard.pbx.inst, hold_ms=100) as carrier:
        run = await outguard.call(number, **kwargs)
        assert carrier.invites() == []
    assert run.only.final == expected
    logged = await outguard.logged()
    assert [(c.call.verdict, c.call.adapter) for c in logged] == [("block", "ari")]
    if reason:
        assert logged[0].call.reason == reason


async def test_rate_cap_blocks_the_fourth_call_in_a_minute_with_503(outguard: Running) -> None:
    with sipp.Carrier(outguard.pbx.inst, hold_ms=50):
        calls = await outguard.calls_in_turn(ALLOWED, 4, account="a-rate")
    assert [c.final for c in calls] == [200, 200, 200, 503]


async def test_concurrency_cap_gives_486_while_the_first_call_is_up(outguard: Running) -> None:
    with sipp.Carrier(outguard.pbx.inst, hold_ms=1500):
        run = await outguard.call(ALLOWED, account="a-conc", count=2, rate=2)
    assert run.finals() == [200, 486]
    await outguard.settle()
    assert outguard.screener.live.concurrent("account", "a-conc") == 0


async def test_blocked_call_hears_the_announcement_before_the_hangup(outguard: Running) -> None:
    await listed(outguard, "announced", "dnc", "13700137000")
    events: list[str] = []
    dispatch = outguard.stasis.dispatch

    def spy(event: dict[str, Any]) -> None:
        events.append(str(event.get("type")))
        dispatch(event)

    outguard.stasis.dispatch = spy  # type: ignore[method-assign]
    run = await outguard.call("13700137000")
    assert run.only.final == 403
    assert {code for code, _ in run.only.provisional} == {183}  # early media, no answer
    assert "PlaybackStarted" in events and "PlaybackFinished" in events


async def test_bridge_mode_connects_and_the_callee_hangs_up(outguard: Running) -> None:
    with sipp.Carrier(outguard.pbx.inst, hold_ms=800) as carrier:
        started = time.monotonic()
        run = await outguard.call(ALLOWED, from_user="agent-bridge", account="a-br")
        wall = time.monotonic() - started
        assert carrier.invites() == [ALLOWED]
    assert run.only.final == 200
    assert run.only.ended_by == "remote"
    logged = await outguard.logged()
    assert logged[0].answered_at is not None and logged[0].duration is not None
    assert 0.5 < logged[0].duration < wall + 0.5, (wall, logged[0])
    await eventually(lambda: outguard.pbx.channels() == 0, "no channel left up", interval=0.05)


async def test_bridge_mode_callee_leaving_while_outguard_bridges_leaves_nothing_up(
    outguard: Running,
) -> None:
    """RESULTS.md finding 5: the callee hangs up between its answer and the bridge; joining
    then fails, and both legs and the bridge must go, not wait for max_duration_s."""
    client = outguard.stasis.client
    answer = client.answer
    left: list[str] = []

    async def callee_leaves_first(channel_id: str) -> None:
        outbound = [c for c in outguard.stasis._watchers if c.startswith("og-out-")]
        for cid in outbound:
            await client.hangup(cid, 16)
            left.append(cid)
        await asyncio.sleep(0.2)  # the outbound leg is gone before the caller is answered
        await answer(channel_id)

    client.answer = callee_leaves_first  # type: ignore[method-assign]
    with sipp.Carrier(outguard.pbx.inst, callee_hangs_up=False):
        run = await outguard.call(ALLOWED, from_user="agent-bridge", account="a-left",
                                  timeout_s=15)
    assert left, "the callee's leg was never seen"
    assert run.only.final == 200 and run.only.ended_by == "remote"
    [row] = await outguard.logged()
    assert row.ended_at is not None
    await eventually(lambda: outguard.pbx.channels() == 0, "no channel left up")
    assert await client.bridges() == []
    assert outguard.screener.live.concurrent("account", "a-left") == 0


async def test_bridge_mode_shadow_flagged_call_connects_with_its_variables(
    outguard: Running,
) -> None:
    await listed(outguard, "watch", "dnc", "13600136000")
    async with ChannelVariables(outguard.pbx) as seen:
        with sipp.Carrier(outguard.pbx.inst, hold_ms=300) as carrier:
            run = await outguard.call("13600136000", from_user="agent-bridge")
            assert carrier.invites() == ["13600136000"]
        [row] = await outguard.logged()
    assert run.only.final == 200
    variables = seen.of(row.call.decision_id)
    assert (variables["OUTGUARD_VERDICT"], variables["OUTGUARD_SHADOW"]) == ("allow", "watch")
    assert (row.call.shadow, row.cause) == (("watch",), 16)
    await eventually(lambda: outguard.pbx.channels() == 0, "no channel left up", interval=0.05)


async def test_bridge_mode_failed_screening_refuses_the_call_and_leaves_nothing_up(
    outguard: Running,
) -> None:
    def broken(facts: Any) -> Any:
        raise RuntimeError("simulated engine failure")

    outguard.screener.screen = broken  # type: ignore[method-assign]
    with sipp.Carrier(outguard.pbx.inst) as carrier:
        run = await outguard.call(ALLOWED, from_user="agent-bridge")
        assert carrier.invites() == []
    assert run.only.final == 503
    await eventually(lambda: outguard.pbx.channels() == 0, "no channel left up", interval=0.05)


async def test_bridge_mode_caller_hangup_hangs_up_the_carrier(outguard: Running) -> None:
    with sipp.Carrier(outguard.pbx.inst, callee_hangs_up=False) as carrier:
        run = await outguard.call(
            ALLOWED, from_user="agent-bridge", agent_hangs_up_after_ms=500
        )
        await eventually(carrier.ended, "the carrier's end in its log", interval=0.01)
        assert carrier.ended() == [(1, "remote")]
    assert run.only.final == 200 and run.only.ended_by == "local"
    await outguard.settle()
    assert outguard.screener.live_calls() == 0
    await eventually(lambda: outguard.pbx.channels() == 0, "no channel left up", interval=0.05)


@pytest.mark.parametrize("agent", ["agent-bridge", "agent"], ids=["bridge", "continue"])
async def test_busy_callee_gives_the_phone_486(outguard: Running, agent: str) -> None:
    with sipp.Carrier(outguard.pbx.inst, busy=True) as carrier:
        run = await outguard.call(ALLOWED, from_user=agent, account="a-busy")
        assert carrier.invites() == [ALLOWED]
    assert run.only.final == 486
    logged = await outguard.logged()
    assert logged[0].answered_at is None and logged[0].cause == 17
    assert outguard.screener.live.concurrent("account", "a-busy") == 0


async def test_bridge_mode_blocked_call_never_reaches_the_carrier(outguard: Running) -> None:
    await listed(outguard, "dnc", "dnc", "13900139000")
    with sipp.Carrier(outguard.pbx.inst) as carrier:
        run = await outguard.call("13900139000", from_user="agent-bridge")
        assert carrier.invites() == []
    assert run.only.final == 403


async def test_screening_error_fails_closed_with_503(outguard: Running) -> None:
    def broken(facts: Any) -> Any:
        raise RuntimeError("simulated engine failure")

    outguard.screener.screen = broken  # type: ignore[method-assign]
    with sipp.Carrier(outguard.pbx.inst) as carrier:
        run = await outguard.call(ALLOWED)
        assert carrier.invites() == []
    assert run.only.final == 503


@pytest.mark.parametrize(
    ("setting", "channel", "expected"),
    [
        pytest.param("closed", "open", 200, id="the-dialplan-says-open-the-call-goes-through"),
        pytest.param("open", "closed", 503, id="the-dialplan-says-closed-over-settings-open"),
    ],
)
async def test_screening_error_follows_the_dialplans_failure_policy(
    clean_pbx: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    setting: str, channel: str, expected: int,
) -> None:
    """One rule with FastAGI: the channel's OUTGUARD_FAIL_MODE wins over calls.fail_mode."""
    settings = settings_for(clean_pbx, tmp_path / "og.db", fail_mode=setting)
    runner = await start_outguard(clean_pbx, settings, Parts(agi=False, ami=False), monkeypatch)
    try:
        og = Running(runner.app, settings, clean_pbx)

        def broken(facts: Any) -> Any:
            raise RuntimeError("simulated engine failure")

        og.screener.screen = broken  # type: ignore[method-assign]
        with sipp.Carrier(clean_pbx.inst, hold_ms=100):
            run = await og.call(ALLOWED, fail_mode=channel)
        assert run.only.final == expected
    finally:
        await runner.cleanup()


async def test_channel_hung_up_during_the_decision_leaves_nothing_behind(
    outguard: Running,
) -> None:
    decide = outguard.stasis._decide

    async def slow(facts: ChannelFacts) -> Any:
        await asyncio.to_thread(outguard.pbx.cli, "channel request hangup all")
        await asyncio.sleep(0.3)
        return await decide(facts)

    outguard.stasis._decide = slow  # type: ignore[method-assign]
    with sipp.Carrier(outguard.pbx.inst) as carrier:
        run = await outguard.call(ALLOWED, account="a-gone", timeout_s=10)
        assert carrier.invites() == []
    assert run.only.final is not None and run.only.final >= 400
    # the decision itself still runs after the hangup
    await eventually(lambda: not outguard.stasis._tasks, "the decision task finished")
    logged = await outguard.logged()
    assert [c.call.verdict for c in logged] == ["allow"]  # decided, then found gone
    assert logged[0].ended_at is not None and logged[0].answered_at is None
    assert outguard.screener.live_calls() == 0
    assert outguard.screener.live.concurrent("account", "a-gone") == 0
    await eventually(lambda: outguard.pbx.channels() == 0, "no channel left up", interval=0.05)


class HeldListing:
    """The app's listing of Asterisk's channels taken when asked for (a reconcile's first
    request) and handed over once ``release`` is set: calls go on meanwhile, as they do
    while a reconnect's reconcile waits for Asterisk under load."""

    def __init__(self, og: Running) -> None:
        self.taken = asyncio.Event()
        self.release = asyncio.Event()
        real = og.stasis.client.channels

        async def held() -> list[dict[str, Any]]:
            listed = await real()
            self.taken.set()
            await self.release.wait()
            return listed

        og.stasis.client.channels = held  # type: ignore[method-assign]


@pytest.mark.parametrize("agent", ["agent", "agent-bridge"], ids=["continue", "bridge"])
async def test_a_call_decided_during_a_reconcile_keeps_its_slot_and_its_real_end(
    outguard: Running, agent: str,
) -> None:
    """The reconcile asked for the channels before the call began: its channel is not in
    the listing, which must not close it as a call that ended while outguard was away
    (its slot freed while it is up, its row closed with an unknown end). A bridged call is
    its handler's until it ends, which a reconcile leaves alone: the same outcome."""
    listing = HeldListing(outguard)
    reconciling = asyncio.create_task(outguard.stasis.reconcile())
    await asyncio.wait_for(listing.taken.wait(), 10)
    with sipp.Carrier(outguard.pbx.inst, hold_ms=2500) as carrier:
        calling = asyncio.create_task(outguard.call(ALLOWED, from_user=agent, account="a-r1"))
        await eventually(lambda: outguard.pbx.channels() >= 2
                         and outguard.screener.live.concurrent("account", "a-r1") == 1,
                         "the call connected", interval=0.02)
        listing.release.set()
        await reconciling
        assert outguard.screener.live.concurrent("account", "a-r1") == 1
        run = await calling
        ends = await asyncio.to_thread(carrier.wait_ended, 1)
    assert run.only.final == 200 and [who for _, who in ends] == ["local"]
    await outguard.released("a-r1")
    [row] = await outguard.logged()
    assert row.end_note is None and row.cause == 16
    assert row.duration is not None and row.duration > 2.0, row


async def test_a_call_continued_after_a_reconcile_listed_it_is_not_screened_again(
    outguard: Running,
) -> None:
    """Decided before the reconcile asked; its continue reached Asterisk after the channel
    was listed in Stasis. Taken for a channel still waiting, it was screened again, its
    second continue refused (409: not in Stasis) and the live call hung up for it."""
    listing = HeldListing(outguard)
    client = outguard.stasis.client
    real_continue = client.continue_in_dialplan
    decided, go_on = asyncio.Event(), asyncio.Event()

    async def held_continue(cid: str, context: str, exten: str, priority: int) -> None:
        decided.set()
        await go_on.wait()
        await real_continue(cid, context, exten, priority)

    client.continue_in_dialplan = held_continue  # type: ignore[method-assign]
    with sipp.Carrier(outguard.pbx.inst, hold_ms=1500) as carrier:
        calling = asyncio.create_task(outguard.call(ALLOWED, account="a-r2"))
        await asyncio.wait_for(decided.wait(), 15)
        reconciling = asyncio.create_task(outguard.stasis.reconcile())
        await asyncio.wait_for(listing.taken.wait(), 10)  # the channel listed in Stasis
        client.continue_in_dialplan = real_continue  # type: ignore[method-assign]
        go_on.set()
        await eventually(lambda: carrier.invites() == [ALLOWED], "the call dialled out",
                         interval=0.02)
        listing.release.set()
        await reconciling
        run = await calling
        ends = await asyncio.to_thread(carrier.wait_ended, 1)
    # not cut: the callee hung up after its 1.5 s, the agent heard it then
    assert [who for _, who in ends] == ["local"]
    assert run.only.final == 200 and run.only.ended_by == "remote"
    assert run.only.final_ms is not None and run.only.ended_ms is not None
    assert run.only.ended_ms - run.only.final_ms > 1300, run.only
    await outguard.released("a-r2")
    [row] = await outguard.logged()  # one decision, not a second one
    assert row.call.verdict == "allow" and row.cause == 16 and row.end_note is None
    assert row.duration is not None and row.duration > 1.0, row


async def test_asterisk_restart_the_app_reconnects_and_screens_the_next_call(
    outguard: Running,
) -> None:
    """The call path's kept connections (continue, hangup: ``ari_app.kept``) died with
    Asterisk: each is replaced before it is used again, and no call fails for it."""
    await listed(outguard, "dnc", "dnc", "13900139000")
    with sipp.Carrier(outguard.pbx.inst, hold_ms=100):
        run = await outguard.call(ALLOWED)  # a kept connection, idle after the continue
    assert run.only.final == 200
    kept = outguard.stasis.client._kept
    assert kept is not None and kept.opened >= 1
    opened = kept.opened
    reconnects = outguard.stasis.reconnects
    await asyncio.to_thread(outguard.pbx.restart)
    await eventually(lambda: outguard.stasis.connected and outguard.stasis.reconnects > reconnects,
                     "the Stasis application reconnected to the restarted Asterisk")
    run = await outguard.call("13900139000")
    assert run.only.final == 403
    with sipp.Carrier(outguard.pbx.inst, hold_ms=100):
        run = await outguard.call(ALLOWED)
    assert run.only.final == 200
    assert kept.opened > opened  # the dead connection was replaced, not used


async def test_sandbox_call_of_a_blocked_number_prints_the_verdict_and_exits_5(
    outguard: Running,
) -> None:
    from click.testing import CliRunner

    from outguard.cli import cli

    await listed(outguard, "dnc", "dnc", "13900139000")

    def sandbox_call(number: str) -> Any:
        return CliRunner().invoke(cli, ["sandbox", "call", number, "--name",
                                        outguard.pbx.inst.name, "--store",
                                        outguard.settings.store])

    result = await asyncio.to_thread(sandbox_call, "13900139000")
    assert result.exit_code == 5, result.output
    assert "403" in result.output
    assert "outguard: block, reason dnc_listed, rule dnc" in result.output
    with sipp.Carrier(outguard.pbx.inst, hold_ms=100):
        result = await asyncio.to_thread(sandbox_call, ALLOWED)
    assert result.exit_code == 0, result.output
    assert "outguard: allow" in result.output
