"""The AMI client against a protocol-level fake manager (no PBX needed)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from panoramisk.ami_protocol import AMIProtocol

from agi.ami import AmiClient, AmiTargetRefused, format_action
from agi.outcomes import AmiListener
from outguard.config import AmiConfig
from outguard.live import InMemoryLiveCalls, LiveCall
from tests.waiting import eventually

Script = Callable[[dict[str, str], asyncio.StreamWriter], Awaitable[None]]


def block(**headers: str) -> bytes:
    return ("".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n").encode()


class FakeManager:
    """Answers Login and Filter; anything else goes to ``script``."""

    def __init__(self, script: Script | None = None, accept_login: bool = True) -> None:
        self.script = script
        self.accept_login = accept_login
        self.actions: list[dict[str, str]] = []
        self.connections = 0
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self.serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in self.writers:
            writer.close()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        writer.write(b"Asterisk Call Manager/11.0.0\r\n")
        try:
            while True:
                raw = await reader.readuntil(b"\r\n\r\n")
                action = dict(line.split(": ", 1) for line in raw.decode().split("\r\n") if line)
                self.actions.append(action)
                aid = action["ActionID"]
                if action["Action"] == "Login":
                    ok = "Success" if self.accept_login else "Error"
                    writer.write(block(Response=ok, ActionID=aid, Message="Authentication"))
                elif action["Action"] == "Filter":
                    writer.write(block(Response="Success", ActionID=aid))
                elif self.script is not None:
                    await self.script(action, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass


@pytest.fixture
async def manager() -> AsyncIterator[FakeManager]:
    fake = FakeManager()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


async def run_client(fake: FakeManager, **kwargs: Any) -> tuple[AmiClient, asyncio.Task[None]]:
    client = AmiClient("127.0.0.1", fake.port, "outguard", "secret", **kwargs)
    task = asyncio.get_running_loop().create_task(client.run())
    return client, task


async def stop_client(client: AmiClient, task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await client.close()


EVENTS = b"".join(
    block(Event="Newchannel", Uniqueid=f"u.{n}", CallerIDName="欧阳娜娜" * (n % 5 + 1))
    for n in range(50)
)


async def test_characters_split_across_reads_arrive_whole() -> None:
    """Fed one byte at a time, every multi-byte character is cut across reads."""
    seen: list[Any] = []
    client = AmiClient("127.0.0.1", 1, "u", "p", on_event=seen.append)
    reader = asyncio.StreamReader()
    for byte in EVENTS:
        reader.feed_data(bytes([byte]))
    reader.feed_eof()
    with pytest.raises(asyncio.IncompleteReadError):
        await client._read(reader)
    assert [e.get("CallerIDName") for e in seen] == [
        "欧阳娜娜" * (n % 5 + 1) for n in range(50)
    ]


def test_panoramisk_1_4_drops_characters_split_across_chunks() -> None:
    """Why the connection layer is our own: if this starts failing, panoramisk has fixed
    its decoder and agi/ami.py could use its Manager again."""
    seen: list[Any] = []

    class Factory:
        save_stream = None

        def dispatch(self, message: Any) -> None:
            seen.append(message)

    protocol = AMIProtocol()
    protocol.connection_made(None)
    protocol.factory = Factory()
    protocol.encoding = "utf-8"
    data = block(Event="Newchannel", CallerIDName="欧阳娜娜")
    cut = data.index("阳".encode()) + 1  # inside a character
    protocol.data_received(data[:cut])
    protocol.data_received(data[cut:])
    assert seen[0]["CallerIDName"] != "欧阳娜娜"


async def test_async_originate_returns_at_its_response(manager: FakeManager) -> None:
    events: list[Any] = []
    answered = asyncio.Event()

    async def originate(action: dict[str, str], writer: asyncio.StreamWriter) -> None:
        aid = action["ActionID"]
        writer.write(block(Response="Success", ActionID=aid,
                           Message="Originate successfully queued"))
        await answered.wait()  # ... the callee answers later
        writer.write(block(Event="OriginateResponse", ActionID=aid, Response="Success",
                           Reason="4"))

    manager.script = originate
    client, task = await run_client(manager, on_event=events.append)
    try:
        await client.wait_connected(30)
        # the reply comes while the callee has not answered (the fake waits for us)
        reply = await client.action("Originate", Channel="Local/1@x", Async="true")
        assert reply.get("Message") == "Originate successfully queued"
        assert events == []
        answered.set()
        await eventually(lambda: events, "the OriginateResponse event")
        assert [e.get("Event") for e in events] == ["OriginateResponse"]
        assert events[0].get("ActionID") == reply.get("ActionID")
    finally:
        await stop_client(client, task)


async def test_list_actions_collect_their_events(manager: FakeManager) -> None:
    async def channels(action: dict[str, str], writer: asyncio.StreamWriter) -> None:
        aid = action["ActionID"]
        writer.write(block(Response="Success", ActionID=aid, EventList="start"))
        for uid in ("u.1", "u.2"):
            writer.write(block(Event="CoreShowChannel", ActionID=aid, Uniqueid=uid))
        writer.write(block(Event="CoreShowChannelsComplete", ActionID=aid,
                           EventList="Complete", ListItems="2"))

    manager.script = channels
    seen: list[Any] = []
    client, task = await run_client(manager, on_event=seen.append)
    try:
        await client.wait_connected(30)
        reply = await client.action("CoreShowChannels")
        assert [e.get("Uniqueid") for e in reply.events] == ["u.1", "u.2"]
        assert seen == []  # listed events are the action's, not the event handler's
    finally:
        await stop_client(client, task)


async def test_login_sends_the_event_classes_and_filters(manager: FakeManager) -> None:
    client, task = await run_client(manager, events="call,cdr", filters=("^Event: Hangup",))
    try:
        await client.wait_connected(30)
        login, flt = manager.actions[:2]
        assert (login["Action"], login["Username"], login["Events"]) == (
            "Login", "outguard", "call,cdr")
        assert (flt["Action"], flt["Operation"], flt["Filter"]) == (
            "Filter", "Add", "^Event: Hangup")
    finally:
        await stop_client(client, task)


async def test_reconnects_after_the_manager_drops_the_connection(manager: FakeManager) -> None:
    client, task = await run_client(manager)
    try:
        await client.wait_connected(30)
        for writer in manager.writers:
            writer.close()
        await eventually(lambda: manager.connections == 2 and client.connected,
                         "the second connection", interval=0.02)
        assert client.reconnects == 1
    finally:
        await stop_client(client, task)


async def test_an_unanswered_ping_drops_the_connection(manager: FakeManager) -> None:
    async def silent(action: dict[str, str], writer: asyncio.StreamWriter) -> None:
        return None  # never answers a Ping

    manager.script = silent
    client, task = await run_client(manager, ping_every_s=0.05, action_timeout_s=0.5)
    try:
        await client.wait_connected(30)
        await eventually(lambda: manager.connections >= 2, "the reconnection", interval=0.02)
        # the first session was dropped by its unanswered Ping
        assert [a["Action"] for a in manager.actions[:2]] == ["Login", "Ping"]
    finally:
        await stop_client(client, task)


async def test_a_refused_login_is_not_connected() -> None:
    fake = FakeManager(accept_login=False)
    await fake.start()
    client, task = await run_client(fake)
    try:
        await eventually(lambda: fake.connections >= 2, "a second attempt")  # backoff
        assert not client.connected
    finally:
        await stop_client(client, task)
        await fake.stop()


def test_format_action_keeps_headers_on_one_line_and_repeats_lists() -> None:
    data = format_action("Originate", "og-1", {"Variable": ["A=1", "B=2"], "Data": "x\ny"})
    assert data == (b"Action: Originate\r\nActionID: og-1\r\nVariable: A=1\r\n"
                    b"Variable: B=2\r\nData: x y\r\n\r\n")


async def test_after_a_reconnect_calls_that_ended_meanwhile_are_released(
    manager: FakeManager,
) -> None:
    async def channels(action: dict[str, str], writer: asyncio.StreamWriter) -> None:
        aid = action["ActionID"]
        writer.write(block(Response="Success", ActionID=aid, EventList="start"))
        writer.write(block(Event="CoreShowChannel", ActionID=aid, Uniqueid="still.up"))
        writer.write(block(Event="CoreShowChannelsComplete", ActionID=aid,
                           EventList="Complete"))

    manager.script = channels
    ended: list[tuple[str, int | None]] = []

    class Outcomes:
        def __init__(self) -> None:
            self.live = InMemoryLiveCalls()

        def clock(self) -> float:
            return 2e9

        def answered(self, decision_id: str, at: float | None = None) -> None: ...

        def ended(self, decision_id: str, cause: int | None, at: float | None = None,
                  note: str | None = None, answered_at: float | None = None) -> bool:
            if self.live.release(decision_id) is None:
                return False
            ended.append((decision_id, cause))
            return True

    outcomes = Outcomes()
    for uid, did in (("gone.1", "d-gone"), ("still.up", "d-up")):
        outcomes.live.reserve(LiveCall(call_id=did, channel_id=uid, adapter="agi",
                                       tenant="t1", account="a1", caller_id="",
                                       destination="", started=1e9))
    listener = AmiListener(outcomes, AmiConfig(port=manager.port))
    task = asyncio.get_running_loop().create_task(listener.run())
    try:
        await eventually(lambda: ended, "the vanished call's end", interval=0.02)
        assert ended == [("d-gone", None)]
        assert [c.channel_id for c in outcomes.live.calls()] == ["still.up"]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await listener.close()


async def test_cancelling_the_client_as_its_connection_opens_ends_it() -> None:
    """Shutdown mid-connect: the reconnect loop ends (on Python 3.11 asyncio.wait_for lost
    this cancellation every time and the loop went on for ever)."""
    for _ in range(20):
        fake = FakeManager()
        await fake.start()
        client, task = await run_client(fake, ping_every_s=0.05, action_timeout_s=0.1)
        try:
            while fake.connections == 0:
                await asyncio.sleep(0)
            task.cancel()  # the client is opening the connection the fake just accepted
            done, _ = await asyncio.wait({task}, timeout=30)
            assert done == {task} and task.cancelled()
        finally:
            await stop_client(client, task)
            await fake.stop()


async def test_a_target_refused_at_login_hands_on_no_event_and_retries() -> None:
    """``on_login`` runs before any event is used: a refusal ends the session (retried
    with back-off), and the events the manager sent meanwhile reach nobody."""
    seen: list[Any] = []
    verdicts = ["refuse", "accept"]

    async def script(action: dict[str, str], writer: asyncio.StreamWriter) -> None:
        if action["Action"] == "Getvar":
            writer.write(block(Event="Hangup", Uniqueid="u.1"))  # an event before the answer
            writer.write(block(Response="Success", ActionID=action["ActionID"],
                               Variable="ENTITYID", Value="02:00:00:00:00:01"))

    async def on_login(client: AmiClient) -> None:
        reply = await client.action("Getvar", Variable="ENTITYID")
        assert reply.get("Value") == "02:00:00:00:00:01"
        if verdicts.pop(0) == "refuse":
            raise AmiTargetRefused("pbx 'bj-1' is another Asterisk's")

    fake = FakeManager(script)
    await fake.start()
    client, task = await run_client(fake, on_event=seen.append, on_login=on_login)
    try:
        await eventually(lambda: client.connected, "connected at the second attempt")
        assert fake.connections == 2 and client.reconnects == 1
        assert seen == []  # events before the hook passed reach nobody, in both sessions
        fake.writers[-1].write(block(Event="Hangup", Uniqueid="u.2"))
        await eventually(lambda: [e.get("Uniqueid") for e in seen] == ["u.2"],
                         "an event after the hook passed handed on")
    finally:
        await stop_client(client, task)
        await fake.stop()
