"""The AMI client on the real Asterisk: multi-byte text survives, actions resolve at their
response, filters keep the volume down, and the listener reconnects."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from agi.ami import AmiClient
from agi.outcomes import EVENT_CLASSES, EVENT_FILTERS
from outguard import sandbox
from outguard.testing import sipp
from tests.integration.conftest import Running
from tests.waiting import eventually

pytestmark = pytest.mark.integration

NAMES = ("张三", "李四光", "王小明的外呼坐席", "欧阳娜娜（客服）", "𠮷野家",
         "陈")  # 2-, 3- and 4-byte characters


async def connected(pbx: sandbox.Sandbox, **kwargs: Any) -> tuple[AmiClient, asyncio.Task[None]]:
    inst = pbx.inst
    client = AmiClient("127.0.0.1", inst.ports.ami, inst.ami_user, inst.ami_password,
                       **kwargs)
    task = asyncio.get_running_loop().create_task(client.run())
    try:
        await client.wait_connected(10)
    except BaseException:
        await closed(client, task)
        raise
    return client, task


async def closed(client: AmiClient, task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await client.close()


@pytest.fixture
async def user_events(pbx: sandbox.Sandbox) -> AsyncIterator[tuple[AmiClient, list[Any]]]:
    seen: list[Any] = []
    client, task = await connected(pbx, events="user", on_event=seen.append)
    try:
        yield client, seen
    finally:
        await closed(client, task)


async def test_chinese_caller_names_survive_2000_events_whole(
    user_events: tuple[AmiClient, list[Any]],
) -> None:
    """panoramisk 1.4 decodes each TCP chunk on its own and drops the bytes of a character
    split between two chunks (2-4 of 2,000 events here). Names of every length shift the
    chunk boundaries across the characters."""
    client, seen = user_events
    count = 2000
    expected = {}
    for n in range(count):
        name = NAMES[n % len(NAMES)] * (1 + n % 7) + f"-{n}"
        expected[str(n)] = name
    started = time.monotonic()
    for first in range(0, count, 200):  # 200 actions in flight at a time
        await asyncio.gather(*(
            client.action("UserEvent", UserEvent="OutguardProbe", Seq=str(n),
                          CallerIDName=expected[str(n)])
            for n in range(first, min(count, first + 200))
        ))
    await eventually(lambda: len(seen) >= count, f"{count} probe events", interval=0.02)
    got = {e.get("Seq"): e.get("CallerIDName") for e in seen
           if e.get("UserEvent") == "OutguardProbe"}
    assert len(got) == count
    damaged = {seq: name for seq, name in got.items() if name != expected[seq]}
    assert damaged == {}
    assert time.monotonic() - started < 30


async def test_chinese_caller_name_of_a_real_call_arrives_whole(
    clean_pbx: sandbox.Sandbox,
) -> None:
    """The same through a channel: an originated call whose caller name is Chinese."""
    names: set[str] = set()
    client, task = await connected(
        clean_pbx, events="call", on_event=lambda e: names.add(e.get("CallerIDName")),
    )
    try:
        with sipp.Carrier(clean_pbx.inst, hold_ms=100):
            reply = await client.action(
                "Originate", Channel="PJSIP/13800138000@carrier", Application="Wait",
                Data="0.2", CallerID='"王小明的外呼坐席" <01088886666>', Async="true",
            )
            assert reply.get("Response") == "Success"
            await eventually(lambda: "王小明的外呼坐席" in names, "the caller ID name in an event")
    finally:
        await closed(client, task)
    assert "王小明的外呼坐席" in names


async def test_async_originate_resolves_at_its_response_not_at_the_answer(
    clean_pbx: sandbox.Sandbox,
) -> None:
    """panoramisk resolves an async Originate only at OriginateResponse (after the callee
    answers or the attempt fails). Here the action returns at "successfully queued" and
    the OriginateResponse arrives later, as an event with the same ActionID."""
    later: list[Any] = []
    client, task = await connected(
        clean_pbx, events="call",
        on_event=lambda e: later.append(e) if e.get("Event") == "OriginateResponse" else None,
    )
    try:
        with sipp.Carrier(clean_pbx.inst, hold_ms=100):
            started = time.monotonic()
            reply = await client.action(
                "Originate", Channel="Local/13800138000@outguard-dial", Application="Wait",
                Data="0.2", Async="true", Timeout="5000",
            )
            returned = time.monotonic() - started
            await eventually(lambda: later, "the OriginateResponse event")
    finally:
        await closed(client, task)
    assert "Event" not in reply and reply.get("Response") == "Success"
    assert "queued" in reply.get("Message", "")
    assert returned < 0.5
    assert later and later[0].get("Response") == "Success"
    assert later[0].get("ActionID") == reply.get("ActionID")


async def test_one_filtered_event_per_screened_call_reaches_the_listener(
    outguard_agi: Running,
) -> None:
    """The hangup handler's UserEvent is the only event of a call that crosses the wire."""
    pbx = outguard_agi.pbx
    everything: list[str] = []
    filtered: list[str] = []
    full, full_task = await connected(pbx, events="call,dialplan,cdr,user",
                                      on_event=lambda e: everything.append(e.get("Event")))
    some, some_task = await connected(pbx, events=EVENT_CLASSES, filters=EVENT_FILTERS,
                                      on_event=lambda e: filtered.append(e.get("Event")))
    try:
        with sipp.Carrier(pbx.inst, hold_ms=100):
            calls = await outguard_agi.calls_in_turn("13800138000", 3, account="a-events",
                                                     from_user="agent-agi")
        assert [c.final for c in calls] == [200, 200, 200]
        # outguard has seen each call's UserEvent (it released the slots): so has this
        # listener, whose connection is filtered the same way, unless it lags; wait for it
        await eventually(lambda: filtered.count("UserEvent") == 3, "three UserEvents",
                         interval=0.01)
    finally:
        await closed(full, full_task)
        await closed(some, some_task)
    assert [e for e in filtered if e != "FullyBooted"] == ["UserEvent"] * 3
    print(f"\nevents per call: {len(everything) / 3:.0f} unfiltered, 1 filtered")


async def test_the_hangup_handlers_event_carries_dials_talk_time_and_its_own_time(
    outguard_agi: Running,
) -> None:
    """``Talked`` (Dial's ANSWEREDTIME_MS) and ``At`` (STRFTIME with milliseconds) reach
    outguard from the real dialplan, and agree with the CDR's figures for a plain call."""
    pbx = outguard_agi.pbx
    ends: list[Any] = []
    client, task = await connected(
        pbx, events="user",
        on_event=lambda e: ends.append(e) if e.get("UserEvent") == "OutguardEnded" else None)
    try:
        with sipp.Carrier(pbx.inst, hold_ms=1200):
            before = time.time()
            run = await outguard_agi.call("13800138000", from_user="agent-agi",
                                          account="a-talk")
            after = time.time()
        assert run.only.final == 200
        await eventually(lambda: ends, "the OutguardEnded event")
    finally:
        await closed(client, task)
    event = ends[0]
    talked, at = float(event["Talked"]) / 1000, float(event["At"])
    assert before < at < after + 1  # the handler's clock is the host's (milliseconds)
    assert 1.0 < talked < after - before + 0.5, event  # the callee held the call 1.2 s
    assert abs(float(event["Billsec"]) - talked) < 0.5, event  # one CDR record: they agree
    [row] = await outguard_agi.logged()
    assert row.duration == pytest.approx(talked, abs=0.001), (event, row)


async def test_listener_reconnects_after_an_asterisk_restart_and_tracks_again(
    outguard_agi: Running,
) -> None:
    og = outguard_agi
    before = og.ami.client.reconnects
    await asyncio.to_thread(og.pbx.restart)
    await eventually(lambda: og.ami.connected and og.ami.client.reconnects > before,
                     "the AMI listener reconnected to the restarted Asterisk")
    with sipp.Carrier(og.pbx.inst, hold_ms=300):
        run = await og.call("13800138000", from_user="agent-agi", account="a-re")
    assert run.only.final == 200
    await og.settle()
    logged = list(await og.store.run(lambda: list(og.store.store.iter_calls())))
    assert logged[-1].cause == 16 and logged[-1].answered_at is not None
    assert og.screener.live.concurrent("account", "a-re") == 0
