"""The FastAGI server and the AMI outcome listener on the real Asterisk, with SIPp as the
agent phone (``agent-agi``, which enters the dialplan's [outguard-agi] context) and the
carrier."""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import socket
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from agi.server import AgiSession
from outguard import sandbox
from outguard.callfacts import ChannelFacts
from outguard.server import Parts
from outguard.service import Decision
from outguard.screening import Unscreened
from outguard.testing import sipp
from tests.integration import block_reasons
from tests.integration.conftest import ChannelVariables, Running, settings_for, start_outguard
from tests.waiting import eventually

pytestmark = pytest.mark.integration

AGENT = "agent-agi"
ALLOWED = "13800138000"


async def listed(og: Running, list_name: str, kind: str, *numbers: str) -> None:
    await og.listed(list_name, kind, *numbers)


async def logged_calls(og: Running) -> list[Any]:
    return await og.logged()


async def call(og: Running, number: str, **kwargs: Any) -> sipp.AgentRun:
    kwargs.setdefault("from_user", AGENT)
    return await og.call(number, **kwargs)


# ---------------------------------------------------------------- allowed calls


async def test_allowed_call_connects_and_its_outcome_is_recorded(outguard_agi: Running) -> None:
    og = outguard_agi
    with sipp.Carrier(og.pbx.inst, hold_ms=1200) as carrier:
        started = time.monotonic()
        run = await call(og, ALLOWED, account="a1")
        wall = time.monotonic() - started  # the whole call, as the agent saw it
        assert carrier.invites() == [ALLOWED]
    assert run.only.final == 200
    assert run.only.ended_by == "remote"
    logged = await logged_calls(og)
    assert len(logged) == 1
    row = logged[0]
    assert (row.call.verdict, row.call.account, row.call.adapter) == ("allow", "a1", "agi")
    assert row.call.destination == "+8613800138000"
    assert row.answered_at is not None
    # held 1.2 s by the callee; never longer than the call took (slack: timestamp rounding)
    assert row.duration is not None and 0.9 < row.duration < wall + 0.5, (wall, row)
    assert row.cause == 16
    assert og.screener.live.concurrent("account", "a1") == 0
    assert og.screener.live_calls() == 0
    await eventually(lambda: og.pbx.channels() == 0, "no channel left up", interval=0.05)


async def test_agent_hangup_is_recorded_with_its_cause(outguard_agi: Running) -> None:
    og = outguard_agi
    with sipp.Carrier(og.pbx.inst, callee_hangs_up=False):
        started = time.monotonic()
        run = await call(og, ALLOWED, account="a-bye", agent_hangs_up_after_ms=600)
        wall = time.monotonic() - started
    assert run.only.final == 200 and run.only.ended_by == "local"
    row = (await logged_calls(og))[0]
    assert row.answered_at is not None and 0.4 < (row.duration or 0) < wall + 0.5, (wall, row)
    assert row.cause == 16
    assert og.screener.live.concurrent("account", "a-bye") == 0


async def test_an_allowed_call_is_one_round_trip_a_blocked_one_two(
    outguard_agi: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Who/why arrive as AGI arguments; a plain allow is one SET VARIABLE and the dialplan
    sets the rest; a block is the message on its own, then its tokens in one MSet."""
    sent: list[str] = []
    command = AgiSession.command

    async def counted(self: AgiSession, line: str) -> Any:
        sent.append(line.split()[0])
        return await command(self, line)

    monkeypatch.setattr(AgiSession, "command", counted)
    await block_reasons.dnc_listed(outguard_agi)
    async with ChannelVariables(outguard_agi.pbx) as seen:
        with sipp.Carrier(outguard_agi.pbx.inst, hold_ms=100):
            run = await call(outguard_agi, ALLOWED, account="acc-1", tenant="t1")
            assert run.only.final == 200
            assert sent == ["SET"]
            sent.clear()
            run = await call(outguard_agi, "13900139000")
            assert run.only.final == 403
            assert sent == ["SET", "EXEC"]
        allowed, blocked = await logged_calls(outguard_agi)
    assert (allowed.call.account, allowed.call.tenant) == ("acc-1", "t1")
    uid = allowed.call.decision_id
    assert uid == allowed.call.channel_id
    assert {k: v for k, v in seen.of(uid).items() if k not in ("OUTGUARD_AGI",)} == {
        "OUTGUARD_ACCOUNT": "acc-1", "OUTGUARD_TENANT": "t1",
        "OUTGUARD_VERDICT": "allow", "OUTGUARD_REASON": "ok", "OUTGUARD_DECISION_ID": uid}
    variables = seen.of(blocked.call.decision_id)
    assert (variables["OUTGUARD_VERDICT"], variables["OUTGUARD_CAUSE"]) == ("block", "21")
    assert (allowed.cause, blocked.cause) == (16, 21)


async def test_a_shadow_flagged_call_is_one_round_trip_and_names_its_rule(
    outguard_agi: Running,
) -> None:
    await listed(outguard_agi, "watch", "dnc", "13600136000")
    async with ChannelVariables(outguard_agi.pbx) as seen:
        with sipp.Carrier(outguard_agi.pbx.inst, hold_ms=100) as carrier:
            run = await call(outguard_agi, "13600136000")
            assert carrier.invites() == ["13600136000"]
        [row] = await logged_calls(outguard_agi)
    assert run.only.final == 200
    assert row.call.shadow == ("watch",)
    variables = seen.of(row.call.decision_id)
    assert (variables["OUTGUARD_VERDICT"], variables["OUTGUARD_SHADOW"],
            variables["OUTGUARD_REASON"]) == ("allow", "watch", "ok")
    assert row.cause == 16


async def test_a_dialplan_that_passes_only_the_number_still_gets_who(
    outguard_agi: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Older dialplans (AGI(url,${EXTEN})): one GET FULL VARIABLE more."""
    original = outguard_agi.agi.screen

    async def number_only(session: AgiSession) -> None:
        env = {k: v for k, v in session.request.env.items()
               if not k.startswith("agi_arg_") or k == "agi_arg_1"}
        session.request = dataclasses.replace(session.request, env=env)
        await original(session)

    monkeypatch.setattr(outguard_agi.agi, "screen", number_only)
    outguard_agi.agi._routes["screen"] = number_only
    with sipp.Carrier(outguard_agi.pbx.inst, hold_ms=100):
        run = await call(outguard_agi, ALLOWED, account="acc 2")
    assert run.only.final == 200
    [row] = await logged_calls(outguard_agi)
    assert row.call.account == "acc 2"


async def test_busy_callee_is_recorded_unanswered_with_cause_17(outguard_agi: Running) -> None:
    og = outguard_agi
    with sipp.Carrier(og.pbx.inst, busy=True) as carrier:
        run = await call(og, ALLOWED, account="a-busy")
        assert carrier.invites() == [ALLOWED]
    assert run.only.final == 486
    row = (await logged_calls(og))[0]
    assert (row.call.verdict, row.answered_at, row.cause) == ("allow", None, 17)
    assert og.screener.live.concurrent("account", "a-busy") == 0


async def read_back_after_the_verdict(
    og: Running, monkeypatch: pytest.MonkeyPatch, names: tuple[str, ...]
) -> list[dict[str, str | None]]:
    """Read the variables back in the same AGI session, once the verdict is set."""
    read: list[dict[str, str | None]] = []
    set_verdict = og.agi._set_verdict

    async def and_read_back(session: AgiSession, decision: Decision, pbx: str) -> None:
        await set_verdict(session, decision, pbx)
        values = {}
        for name in names:
            values[name] = (await session.command(f"GET VARIABLE {name}")).value
        read.append(values)

    monkeypatch.setattr(og.agi, "_set_verdict", and_read_back)
    return read


# ---------------------------------------------------------------- blocked calls

@pytest.mark.parametrize(block_reasons.FIELDS, block_reasons.TABLE)
async def test_each_block_reason_gives_its_sip_response(
    outguard_agi: Running, setup: block_reasons.Setup, number: str, kwargs: dict[str, str], expected: int,
    reason: str | None,
) -> None:
    og = outguard_agi
    await setup(og)
    with sipp.Carrier(og.pbx.inst, hold_ms=100) as carrier:
        run = await call(og, number, **kwargs)
        assert carrier.invites() == []
    assert run.only.final == expected
    logged = await logged_calls(og)
    assert [(c.call.verdict, c.call.adapter) for c in logged] == [("block", "agi")]
    if reason:
        assert logged[0].call.reason == reason


async def test_rate_cap_blocks_the_fourth_call_in_a_minute_with_503(
    outguard_agi: Running,
) -> None:
    with sipp.Carrier(outguard_agi.pbx.inst, hold_ms=50):
        calls = await outguard_agi.calls_in_turn(ALLOWED, 4, account="a-rate",
                                                 from_user=AGENT)
    assert [c.final for c in calls] == [200, 200, 200, 503]


async def test_concurrency_cap_gives_486_while_the_first_call_is_up(
    outguard_agi: Running,
) -> None:
    with sipp.Carrier(outguard_agi.pbx.inst, hold_ms=1500):
        run = await call(outguard_agi, ALLOWED, account="a-conc", count=2, rate=2)
    assert run.finals() == [200, 486]
    await outguard_agi.settle()
    assert outguard_agi.screener.live.concurrent("account", "a-conc") == 0


async def test_blocked_call_hears_the_announcement_before_the_hangup(
    outguard_agi: Running,
) -> None:
    await listed(outguard_agi, "announced", "dnc", "13700137000")
    run = await call(outguard_agi, "13700137000")
    assert run.only.final == 403
    assert {code for code, _ in run.only.provisional} == {183}  # early media, no answer


TRICKY = 'He said "别再打了", path C:\\calls\\ \nsecond line\ttab 中文'


async def test_a_message_with_quotes_newline_and_chinese_survives_into_the_channel(
    outguard_agi: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    og = outguard_agi
    await block_reasons.dnc_listed(og)
    screen = og.screener.screen

    def tricky(facts: Any) -> Decision:
        decision = screen(facts)
        verdict = dataclasses.replace(decision.verdict, message=TRICKY)
        return dataclasses.replace(decision, verdict=verdict)

    monkeypatch.setattr(og.screener, "screen", tricky)
    read = await read_back_after_the_verdict(og, monkeypatch, ("OUTGUARD_MESSAGE",))
    run = await call(og, "13900139000")
    assert run.only.final == 403
    # one line for Asterisk: the line break arrives as the two characters \n, the tab as
    # a space; quotes, backslashes and Chinese text unchanged
    expected = 'He said "别再打了", path C:\\calls\\ \\nsecond line tab 中文'
    assert read == [{"OUTGUARD_MESSAGE": expected}]


async def test_channel_hung_up_during_the_decision_leaves_nothing_behind(
    outguard_agi: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    og = outguard_agi
    decide = og.agi._decide

    async def slow(facts: ChannelFacts) -> Decision | Unscreened:
        await asyncio.to_thread(og.pbx.cli, "channel request hangup all")
        await asyncio.sleep(0.3)  # the Hangup reaches AMI before the decision exists
        return await decide(facts)

    monkeypatch.setattr(og.agi, "_decide", slow)
    with sipp.Carrier(og.pbx.inst) as carrier:
        run = await call(og, ALLOWED, account="a-gone", timeout_s=10)
        assert carrier.invites() == []
    assert run.only.final is not None and run.only.final >= 400
    logged = await logged_calls(og)
    assert [c.call.verdict for c in logged] == ["allow"]  # decided, then found gone
    assert logged[0].ended_at is not None and logged[0].answered_at is None
    assert og.screener.live_calls() == 0
    assert og.screener.live.concurrent("account", "a-gone") == 0
    await eventually(lambda: og.pbx.channels() == 0, "no channel left up", interval=0.05)


# ---------------------------------------------------------------- failure paths


async def test_server_down_fails_closed_with_503(clean_pbx: sandbox.Sandbox) -> None:
    with sipp.Carrier(clean_pbx.inst) as carrier:
        run = await asyncio.to_thread(sipp.place_calls, clean_pbx.inst, ALLOWED,
                                      from_user=AGENT)
        assert carrier.invites() == []
    assert run.only.final == 503


async def test_server_down_with_fail_open_lets_the_call_through(
    clean_pbx: sandbox.Sandbox,
) -> None:
    with sipp.Carrier(clean_pbx.inst, hold_ms=100) as carrier:
        run = await asyncio.to_thread(sipp.place_calls, clean_pbx.inst, ALLOWED,
                                      from_user=AGENT, fail_mode="open")
        assert carrier.invites() == [ALLOWED]
    assert run.only.final == 200


async def test_screening_error_fails_closed_with_503(
    outguard_agi: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(facts: Any) -> Any:
        raise RuntimeError("simulated engine failure")

    monkeypatch.setattr(outguard_agi.screener, "screen", broken)
    with sipp.Carrier(outguard_agi.pbx.inst) as carrier:
        run = await call(outguard_agi, ALLOWED)
        assert carrier.invites() == []
    assert run.only.final == 503


async def test_screening_error_with_fail_open_lets_the_call_through(
    outguard_agi: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(facts: Any) -> Any:
        raise RuntimeError("simulated engine failure")

    monkeypatch.setattr(outguard_agi.screener, "screen", broken)
    with sipp.Carrier(outguard_agi.pbx.inst, hold_ms=100):
        run = await call(outguard_agi, ALLOWED, fail_mode="open")
    assert run.only.final == 200


@pytest.fixture
async def agi_url(outguard_agi: Running) -> AsyncIterator[Callable[[str], Any]]:
    """Point the sandbox's global OUTGUARD_AGI at another URL (restored afterwards)."""
    client = outguard_agi.ami.client
    port = outguard_agi.pbx.inst.ports.agi

    async def point(path: str) -> None:
        reply = await client.action("Setvar", Variable="OUTGUARD_AGI",
                                    Value=f"agi://127.0.0.1:{port}/{path}")
        assert reply.get("Response") == "Success", reply

    yield point
    await point("screen")


async def test_route_with_a_query_string_still_screens(
    outguard_agi: Running, agi_url: Callable[[str], Any]
) -> None:
    await block_reasons.dnc_listed(outguard_agi)
    await agi_url("screen?mode=fast")
    run = await call(outguard_agi, "13900139000")
    assert run.only.final == 403
    with sipp.Carrier(outguard_agi.pbx.inst, hold_ms=100):
        run = await call(outguard_agi, ALLOWED)
    assert run.only.final == 200


async def test_unknown_route_never_looks_like_an_allow(
    outguard_agi: Running, agi_url: Callable[[str], Any]
) -> None:
    await agi_url("screem")
    with sipp.Carrier(outguard_agi.pbx.inst) as carrier:
        run = await call(outguard_agi, ALLOWED)
        assert carrier.invites() == []
    assert run.only.final == 503
    [row] = await logged_calls(outguard_agi)  # it reached outguard: it has its row
    assert (row.call.verdict, row.call.rule, row.call.reason, row.cause) == (
        "failed", "fail-closed", "agi_unknown_route", 34)


async def test_a_half_open_client_does_not_stall_other_calls(outguard_agi: Running) -> None:
    og = outguard_agi
    port = og.pbx.inst.ports.agi
    half = b"agi_network: yes\nagi_network_script: screen\nagi_channel: PJSIP/x-1\n"

    def stuck_and_closing() -> tuple[socket.socket, socket.socket]:
        stuck = socket.create_connection(("127.0.0.1", port))
        stuck.sendall(half)  # ... and never the rest
        closing = socket.create_connection(("127.0.0.1", port))
        closing.sendall(half)
        closing.shutdown(socket.SHUT_WR)  # closes before the blank line
        return stuck, closing

    stuck, closing = await asyncio.to_thread(stuck_and_closing)
    try:
        ticks = 0

        async def ticker() -> None:  # the event loop must keep turning
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        tick = asyncio.get_running_loop().create_task(ticker())
        agent = og.pbx.inst.ports.agent
        with sipp.Carrier(og.pbx.inst, hold_ms=50):  # the policy allows 3/min, 1 at a time
            runs = await asyncio.gather(*(
                og.calls_in_turn(ALLOWED, 3, account=f"a-half-{n}", from_user=AGENT,
                                 port=agent + 3 * n)
                for n in range(2)
            ))
        tick.cancel()
        assert [[c.final for c in run] for run in runs] == [[200] * 3] * 2
        delays = [c.post_dial_delay_ms or 10**6 for run in runs for c in run]
        assert max(delays) < 500, delays  # each call screened well within its budget
        assert ticks > 20
        assert og.agi.rejected >= 1  # the one that closed early is gone already
    finally:
        stuck.close()
        closing.close()


# ---------------------------------------------------------------- load


async def test_calls_arriving_while_outguard_is_held_up_wait_in_the_queue_not_fail(
    outguard_agi: Running,
) -> None:
    """Asterisk gives up connecting to the FastAGI server after 2 s (MAX_AGI_CONNECT) and
    the call takes the dialplan's failure branch (SIP 503 when failing closed). While
    outguard is held up (a host short of CPU, a long pause) calls keep coming: they wait
    in the kernel's queue and are screened once it runs again. 300 calls at 60 calls/s
    with outguard held for 3.5 s (210 calls meanwhile): all screened. (A queue of 100,
    asyncio's default, failed 48 of them, and 503s in the 1,000-call test below.)"""
    await listed(outguard_agi, "dnc", "dnc", "13900139000")
    # the fault injected, not a wait: the event loop outguard runs on stops for 3.5 s
    asyncio.get_running_loop().call_later(2.0, time.sleep, 3.5)
    run = await call(outguard_agi, "13900139000", count=300, rate=60, timeout_s=60)
    assert collections.Counter(run.finals()) == {403: 300}


LOAD_POLICY = """
default_region = "CN"
timezone = "Asia/Shanghai"

[lists.dnc]
kind = "dnc"

[[rules]]
id = "dnc"
kind = "lists"
lists = ["dnc"]
cause = 21

[[rules]]
id = "account_concurrent"
kind = "cap"
scope = "concurrent_account"
limit = 15
cause = 17
"""


async def _hang_up_stale_channels(pbx: sandbox.Sandbox, stop: asyncio.Event,
                                  older_than_s: int = 10) -> int:
    """SIPp on a starved 2-core host now and then loses its side of a call (the carrier
    never sends its BYE): Asterisk rightly keeps such a call up, and outguard rightly holds
    its slot, until the SIPp agent gives up minutes later. The load test's calls last under
    a second, so a channel up for ``older_than_s`` is one of those: hang it up, as a PBX's
    session timer would, and count it."""
    hung_up = 0
    while not stop.is_set():
        out = await asyncio.to_thread(pbx.cli, "core show channels concise")
        for line in out.splitlines():
            fields = line.split("!")
            if len(fields) > 11 and fields[11].isdigit() and int(fields[11]) >= older_than_s:
                await asyncio.to_thread(pbx.cli, f"channel request hangup {fields[0]}")
                hung_up += 1
        try:
            await asyncio.wait_for(stop.wait(), 1.0)
        except TimeoutError:
            pass
    return hung_up


@pytest.mark.slow
async def test_slots_never_leak_or_underflow_under_1000_calls_with_random_hangups(
    clean_pbx: sandbox.Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """1,000 calls at ~80 cps from two agents: one hangs up itself after 300 ms, the other
    waits for the carrier, which hangs up after 500 ms; a tenth dial a do-not-call number;
    the concurrency cap (15 per account) bites now and then. Afterwards no slot is held,
    none went negative, and every allowed call has its outcome."""
    policy = tmp_path / "load.toml"
    policy.write_text(LOAD_POLICY, encoding="utf-8")
    settings = dataclasses.replace(settings_for(clean_pbx, tmp_path / "og.db"),
                                   policy=str(policy))
    runner = await start_outguard(clean_pbx, settings, Parts(ari=False, api=False), monkeypatch)
    stop = asyncio.Event()
    try:
        og = Running(runner.app, settings, clean_pbx)
        await listed(og, "dnc", "dnc", "13900139000")
        agent = clean_pbx.inst.ports.agent
        started = time.monotonic()
        watchdog = asyncio.create_task(_hang_up_stale_channels(clean_pbx, stop))
        with sipp.Carrier(clean_pbx.inst, hold_ms=500, limit_s=90):
            runs = await asyncio.gather(
                call(og, ALLOWED, account="load-a", count=450, rate=36,
                     agent_hangs_up_after_ms=300, timeout_s=60, port=agent),
                call(og, ALLOWED, account="load-b", count=450, rate=36,
                     timeout_s=60, port=agent + 3),
                call(og, "13900139000", account="load-c", count=100, rate=8,
                     timeout_s=60, port=agent + 6),
            )
        took = time.monotonic() - started
        stop.set()
        stale = await watchdog
        finals = [f for run in runs for f in run.finals()]
        await og.settle()  # AMI reports the last hangups late on a busy box
        logged = await logged_calls(og)
        # what outguard logged, to tell an outguard failure from the PBX's own refusal
        seen = collections.Counter((c.call.verdict, c.call.reason, c.cause) for c in logged)
        assert len(finals) == 1000, (collections.Counter(finals), seen)
        assert set(finals) <= {200, 403, 486}, (collections.Counter(finals), seen)
        assert runs[2].finals() == [403] * 100
        for account in ("load-a", "load-b", "load-c"):
            assert og.screener.live.concurrent("account", account) == 0
        assert og.screener.live.concurrent("tenant", "t1") == 0
        assert og.screener.live_calls() == 0
        assert not og.screener.live.calls()  # nothing held, nothing negative
        assert len(logged) == 1000, seen
        allowed = [c for c in logged if c.call.verdict == "allow"]
        assert len(allowed) == finals.count(200)
        assert all(c.ended_at is not None and c.cause for c in allowed)
        assert all(c.answered_at is not None for c in allowed)
        rec = og.agi.handling
        p50, p99 = rec.percentile(50) or 0.0, rec.percentile(99) or 0.0
        print(f"\n1000 calls in {took:.1f} s ({stale} channel(s) SIPp left up were hung up): "
              f"{finals.count(200)} connected, "
              f"{finals.count(486)} capped, {finals.count(403)} dnc; FastAGI accept -> last "
              f"reply p50 {p50 * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms over {rec.count} "
              "sessions")
    finally:
        stop.set()  # ends the watchdog, if it runs
        await runner.cleanup()
