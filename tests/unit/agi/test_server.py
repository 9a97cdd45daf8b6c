"""The FastAGI server against a protocol-level fake of Asterisk (no PBX needed)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import select
import socket
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from agi.protocol import FIELD_SEPARATOR, AgiReply, unquote
from agi.server import AgiSession, FastAgiServer, which_pbx
from outguard.callfacts import ChannelFacts
from outguard.live import DEFAULT_PBX
from outguard.pbx_claims import PbxClaims
from outguard.store.aio import AsyncStore
from outguard.store.sqlite import SQLiteStore
from outguard import probes
from outguard.service import Decision, ScreeningUnavailable
from rules.model import CallAttempt, Verdict

ALLOW = Verdict(True, "", "ok", "allowed")
BLOCK = Verdict(False, "dnc", "dnc_listed", 'listed "do not call"\n勿扰', cause=21,
                announcement="beep")


class FakeScreener:
    def __init__(self, verdict: Verdict = ALLOW) -> None:
        self.snapshot: object | None = object()
        self.verdict = verdict
        self.ids_are_uniqueids = False  # as the real screener: decision id = Uniqueid
        self.facts: list[ChannelFacts] = []
        self.ended_calls: list[tuple[str, int | None]] = []
        self.failures: list[tuple[str, str, str, int | None]] = []

    async def wait_ready(self, timeout_s: float) -> bool:
        return self.snapshot is not None

    reserves = False  # embedded mode: screen_reserving is never called

    async def screen_reserving(self, facts: ChannelFacts) -> Decision:
        raise AssertionError("embedded mode does not reserve")

    def screen(self, facts: ChannelFacts) -> Decision:
        if self.snapshot is None:
            raise ScreeningUnavailable("no snapshot")
        self.facts.append(facts)
        attempt = CallAttempt("t1", facts.account or "a", facts.caller_id, facts.dialed,
                              datetime.now(UTC), channel_id=facts.channel_id)
        decision_id = facts.channel_id if self.ids_are_uniqueids else f"d{len(self.facts)}"
        return Decision(decision_id, self.verdict, attempt, 5)

    def ended(self, decision_id: str, cause: int | None, at: float | None = None) -> bool:
        self.ended_calls.append((decision_id, cause))
        return True

    def failed(self, facts: ChannelFacts, reason: str, policy: str,
               cause: int | None = None) -> str:
        """As the Screener: the call's row, verdict failed (here: ``failures``)."""
        self.failures.append((facts.channel_id, reason, policy, cause))
        return facts.channel_id

    async def failed_durably(self, facts: ChannelFacts, reason: str, policy: str,
                             cause: int | None = None) -> str:
        self.durable = True
        return self.failed(facts, reason, policy, cause)


class FakeTracker:
    def __init__(self) -> None:
        self.tracked: list[str] = []

    def track(self, uniqueid: str) -> None:
        self.tracked.append(uniqueid)


def env(script: str = "screen", **extra: str) -> bytes:
    lines = {
        "agi_network": "yes", "agi_network_script": script,
        "agi_channel": "PJSIP/agent-agi-00000001", "agi_uniqueid": "1795400932.7",
        "agi_callerid": "01088886666", "agi_extension": "13800138000",
        "agi_arg_1": "13800138000", **extra,
    }
    return "".join(f"{k}: {v}\n" for k, v in lines.items()).encode() + b"\n"


Answer = Callable[[str], bytes]


def asterisk_answers(variables: dict[str, str]) -> Answer:
    def answer(command: str) -> bytes:
        if command.startswith("GET FULL VARIABLE"):
            names = command.split('"')[1].split(FIELD_SEPARATOR)
            joined = FIELD_SEPARATOR.join(variables.get(n[2:-1], "") for n in names)
            return f"200 result=1 ({joined})\n".encode()
        if command.startswith("EXEC"):
            return b"200 result=0\n"
        return b"200 result=1\n"
    return answer


async def fake_call(port: int, block: bytes, answer: Answer | None = None) -> list[str]:
    """Be Asterisk for one AGI(): send the environment, answer each command."""
    answer = answer or asterisk_answers({"OUTGUARD_ACCOUNT": "acc 1"})
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(block)
    commands: list[str] = []
    while True:
        line = await asyncio.wait_for(reader.readline(), 5)
        if not line:
            break
        command = line.decode().rstrip("\n")
        commands.append(command)
        writer.write(answer(command))
    writer.close()
    return commands


@contextlib.asynccontextmanager
async def serving(**kwargs: Any) -> AsyncIterator[FastAgiServer]:
    """A FastAGI server on a free port (``srv.port``) with a fake screener."""
    screener: Any = FakeScreener()
    srv = FastAgiServer(screener, "127.0.0.1", 0, budget_ms=20, **kwargs)
    await srv.start()
    assert srv._server is not None
    srv.port = srv._server.sockets[0].getsockname()[1]
    try:
        yield srv
    finally:
        await srv.stop()


@pytest.fixture
async def server() -> AsyncIterator[FastAgiServer]:
    async with serving(tracker=FakeTracker(), header_timeout_s=0.3) as srv:
        yield srv


def assigned(commands: list[str]) -> list[tuple[str, str]]:
    """(name, value) in the order the commands set them, SET VARIABLE and EXEC MSet."""
    out: list[tuple[str, str]] = []
    for command in commands:
        if command.startswith("SET VARIABLE "):
            name, _, value = command[len("SET VARIABLE "):].partition(" ")
            out.append((name, unquote(value)))
        elif command.startswith("EXEC MSet "):
            for pair in unquote(command[len("EXEC MSet "):]).split(","):
                name, _, value = pair.partition("=")
                out.append((name, value))
    return out


def sets(commands: list[str]) -> list[str]:
    return [name for name, _ in assigned(commands)]


async def test_allowed_call_reads_who_in_one_round_trip_and_sets_the_verdict_last(
    server: FastAgiServer,
) -> None:
    commands = await fake_call(server.port, env())
    assert [c for c in commands if c.startswith("GET")] == [
        'GET FULL VARIABLE "${OUTGUARD_ACCOUNT}\x1f${OUTGUARD_TENANT}\x1f'
        '${OUTGUARD_PURPOSE}\x1f${OUTGUARD_CAMPAIGN}"'
    ]
    assert commands[1:] == [  # two round trips in all
        'EXEC MSet "OUTGUARD_REASON=ok,OUTGUARD_RULE=,OUTGUARD_DECISION_ID=d1,'
        'OUTGUARD_VERDICT=allow"'
    ]
    facts = server.screener.facts[0]  # type: ignore[attr-defined]
    assert (facts.adapter, facts.account, facts.dialed, facts.caller_id, facts.channel_id) == (
        "agi", "acc 1", "13800138000", "01088886666", "1795400932.7")
    assert server.trackers[DEFAULT_PBX].tracked == ["1795400932.7"]  # type: ignore[union-attr]
    assert server.handling.count == 1


WHO_ARGS = {"agi_arg_2": "acc-1", "agi_arg_3": "t9", "agi_arg_4": "service",
            "agi_arg_5": ""}


async def test_a_plainly_allowed_call_with_who_as_arguments_is_one_round_trip(
    server: FastAgiServer,
) -> None:
    server.screener.ids_are_uniqueids = True  # type: ignore[attr-defined]
    commands = await fake_call(server.port, env(**WHO_ARGS))
    assert commands == ['SET VARIABLE OUTGUARD_VERDICT "allow"']
    facts = server.screener.facts[0]  # type: ignore[attr-defined]
    assert (facts.account, facts.tenant, facts.purpose, facts.campaign) == (
        "acc-1", "t9", "service", "")
    assert server.trackers[DEFAULT_PBX].tracked == ["1795400932.7"]  # type: ignore[union-attr]


@pytest.mark.parametrize(("sixth", "carried"), [
    (None, None), ("", ""), (" 1795400932.7 ", "1795400932.7")],
    ids=["older-dialplan", "nothing-carried-out", "a-decision-carried-out"])
async def test_the_decision_the_channel_carried_out_reaches_the_screener(
    server: FastAgiServer, sixth: str | None, carried: str | None,
) -> None:
    """The sixth AGI argument is the channel's OUTGUARD_DECISION_ID: what the Screener
    needs to replace the row of a decision it never answered (a retried screening)."""
    extra = dict(WHO_ARGS) if sixth is None else {**WHO_ARGS, "agi_arg_6": sixth}
    await fake_call(server.port, env(**extra))
    assert server.screener.facts[0].carried == carried  # type: ignore[attr-defined]


class ClusterScreener(FakeScreener):
    """Cluster mode: the decision id is the unique id at the PBX."""

    reserves = True

    async def screen_reserving(self, facts: ChannelFacts) -> Decision:
        decision = self.screen(facts)
        return dataclasses.replace(decision, id=f"{facts.channel_id}@{facts.pbx}")

    def failed(self, facts: ChannelFacts, reason: str, policy: str,
               cause: int | None = None) -> str:
        super().failed(facts, reason, policy, cause)
        return f"{facts.channel_id}@{facts.pbx}"  # as cluster_call_id


@pytest.mark.parametrize(("pbx_global", "plain"), [
    ("default", True), ("", False), ("sh-1", False), (None, False)],
    ids=["the-pbx", "unset", "another-pbx", "older-dialplan"])
async def test_in_cluster_mode_a_plain_allow_is_one_set_variable_when_the_dialplan_names_the_pbx(
    pbx_global: str | None, plain: bool,
) -> None:
    """The seventh AGI argument is the dialplan's OUTGUARD_PBX: when it is this PBX's name,
    [outguard-allow] builds <uniqueid>@<pbx> as outguard does, and the verdict is one
    SET VARIABLE; otherwise the decision id goes with the verdict (and a wrong global is
    flagged)."""
    srv = FastAgiServer(ClusterScreener(), "127.0.0.1", 0, budget_ms=20)  # type: ignore[arg-type]
    await srv.start()
    assert srv._server is not None
    port = srv._server.sockets[0].getsockname()[1]
    try:
        extra = {**WHO_ARGS, "agi_arg_6": ""}
        if pbx_global is not None:
            extra["agi_arg_7"] = pbx_global
        commands = await fake_call(port, env(**extra))
    finally:
        await srv.stop()
    if plain:
        assert commands == ['SET VARIABLE OUTGUARD_VERDICT "allow"']
        assert srv.dialplans[DEFAULT_PBX].problem == ""
    else:
        assert ("OUTGUARD_DECISION_ID", "1795400932.7@default") in assigned(commands)
        assert srv.dialplans[DEFAULT_PBX].found == pbx_global  # flagged in /health


async def test_a_shadow_flagged_allow_is_one_mset_that_names_the_rule(
    server: FastAgiServer,
) -> None:
    server.screener.ids_are_uniqueids = True  # type: ignore[attr-defined]
    server.screener.verdict = Verdict(  # type: ignore[attr-defined]
        True, "", "ok", "allowed", shadow=("quiet",))
    commands = await fake_call(server.port, env(**WHO_ARGS))
    assert len(commands) == 1
    assert assigned(commands)[-1] == ("OUTGUARD_VERDICT", "allow")
    assert ("OUTGUARD_SHADOW", "quiet") in assigned(commands)
    assert ("OUTGUARD_REASON", "ok") in assigned(commands)


async def test_blocked_call_sets_cause_message_and_announcement_escaped(
    server: FastAgiServer,
) -> None:
    server.screener.verdict = BLOCK  # type: ignore[attr-defined]
    commands = await fake_call(server.port, env())
    assert commands[1] == 'SET VARIABLE OUTGUARD_MESSAGE "listed \\"do not call\\"\\\\n勿扰"'
    assert assigned(commands) == [
        ("OUTGUARD_MESSAGE", 'listed "do not call"\\n勿扰'),
        ("OUTGUARD_REASON", "dnc_listed"), ("OUTGUARD_RULE", "dnc"),
        ("OUTGUARD_DECISION_ID", "d1"), ("OUTGUARD_CAUSE", "21"),
        ("OUTGUARD_ANNOUNCEMENT", "beep"), ("OUTGUARD_VERDICT", "block"),
    ]
    assert len(commands) == 3
    assert server.trackers[DEFAULT_PBX].tracked == []  # type: ignore[union-attr]


async def test_a_value_that_is_not_a_token_is_set_on_its_own(server: FastAgiServer) -> None:
    shadowed = Verdict(True, "", "ok", "allowed", shadow=("quiet, hours",))
    server.screener.verdict = shadowed  # type: ignore[attr-defined]
    commands = await fake_call(server.port, env())
    assert commands[1] == 'SET VARIABLE OUTGUARD_SHADOW "quiet, hours"'
    assert ("OUTGUARD_SHADOW", "quiet, hours") in assigned(commands)
    assert assigned(commands)[-1] == ("OUTGUARD_VERDICT", "allow")


async def test_a_value_with_the_separator_is_fetched_on_its_own(server: FastAgiServer) -> None:
    odd = f"acc{FIELD_SEPARATOR}x"
    commands = await fake_call(server.port, env(),
                               asterisk_answers({"OUTGUARD_ACCOUNT": odd}))
    assert len([c for c in commands if c.startswith("GET")]) == 5
    assert server.screener.facts[0].account == odd  # type: ignore[attr-defined]


async def test_a_query_string_does_not_change_the_route(server: FastAgiServer) -> None:
    commands = await fake_call(server.port, env("screen?mode=fast"))
    assert assigned(commands)[-1] == ("OUTGUARD_VERDICT", "allow")


async def test_an_unknown_route_sets_a_failed_verdict_and_logs_an_error(
    server: FastAgiServer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, "agi.server"):
        commands = await fake_call(server.port, env("screem"))
    assert assigned(commands) == [("OUTGUARD_REASON", "agi_unknown_route"),
                                  ("OUTGUARD_DECISION_ID", "1795400932.7"),
                                  ("OUTGUARD_FAIL_MODE", "closed"),
                                  ("OUTGUARD_FAIL_CAUSE", "34"),
                                  ("OUTGUARD_VERDICT", "failed")]
    assert "no route 'screem'" in caplog.text
    assert server.screener.facts == []  # type: ignore[attr-defined]
    assert server.screener.failures == [  # type: ignore[attr-defined]
        ("1795400932.7", "agi_unknown_route", "fail-closed", 34)]


async def test_screening_unavailable_sets_a_failed_verdict(server: FastAgiServer) -> None:
    server.screener.snapshot = None
    failures = probes.SCREENING_FAILURES.labels("agi", "dialplan")
    before = failures._value.get()
    commands = await fake_call(server.port, env())
    assert assigned(commands) == [("OUTGUARD_REASON", "screening_unavailable"),
                                  ("OUTGUARD_DECISION_ID", "1795400932.7"),
                                  ("OUTGUARD_FAIL_MODE", "closed"),
                                  ("OUTGUARD_FAIL_CAUSE", "34"),
                                  ("OUTGUARD_VERDICT", "failed")]
    assert failures._value.get() == before + 1  # outguard_screening_failures_total
    assert server.screener.failures == [  # type: ignore[attr-defined]
        ("1795400932.7", "screening_unavailable", "fail-closed", 34)]


async def test_a_failed_verdict_carries_the_channels_failure_policy_else_the_settings(
    server: FastAgiServer,
) -> None:
    """The same rule as the ARI app: the channel's OUTGUARD_FAIL_MODE / _CAUSE, else the
    service's calls.fail_mode / fail_cause, handed to the dialplan's failure branch."""
    server.screener.snapshot = None
    server.fail_mode, server.fail_cause = "open", 41
    commands = await fake_call(server.port, env())
    assert ("OUTGUARD_FAIL_MODE", "open") in assigned(commands)
    assert ("OUTGUARD_FAIL_CAUSE", "41") in assigned(commands)
    commands = await fake_call(server.port, env(), asterisk_answers(
        {"OUTGUARD_FAIL_MODE": "closed", "OUTGUARD_FAIL_CAUSE": "21"}))
    assert ("OUTGUARD_FAIL_MODE", "closed") in assigned(commands)
    assert ("OUTGUARD_FAIL_CAUSE", "21") in assigned(commands)


async def test_a_screening_exception_sets_a_failed_verdict(server: FastAgiServer) -> None:
    def broken(facts: Any) -> Any:
        raise RuntimeError("boom")

    server.screener.screen = broken  # type: ignore[method-assign]
    commands = await fake_call(server.port, env())
    assert ("OUTGUARD_VERDICT", "failed") in assigned(commands)
    assert server.screener.failures == [  # type: ignore[attr-defined]
        ("1795400932.7", "screening_error", "fail-closed", 34)]


async def test_a_fail_open_call_is_followed_to_its_end_like_an_allowed_one(
    server: FastAgiServer,
) -> None:
    server.screener.snapshot = None
    server.trackers[DEFAULT_PBX] = tracker = FakeTracker()
    commands = await fake_call(server.port, env(), asterisk_answers(
        {"OUTGUARD_FAIL_MODE": "open"}))
    assert ("OUTGUARD_FAIL_MODE", "open") in assigned(commands)
    assert server.screener.failures == [  # type: ignore[attr-defined]
        ("1795400932.7", "screening_unavailable", "fail-open", 34)]
    assert tracker.tracked == ["1795400932.7"]  # the hangup handler's event ends it


async def test_a_caller_who_hangs_up_before_the_answer_has_a_failed_row(
    server: FastAgiServer,
) -> None:
    """A dialplan that passes only the number: outguard asks for the rest, and the
    caller is gone by then."""
    def gone(command: str) -> bytes:
        return b"HANGUP\n511 Command Not Permitted on a dead channel\n"

    await fake_call(server.port, env(), gone)
    assert server.screener.failures == [  # type: ignore[attr-defined]
        ("1795400932.7", "channel_gone", "", None)]


async def test_hangup_notice_ahead_of_a_reply_is_skipped(server: FastAgiServer) -> None:
    inner = asterisk_answers({})

    def answer(command: str) -> bytes:
        return b"HANGUP\n" + inner(command) if command.startswith("GET") else inner(command)

    commands = await fake_call(server.port, env(), answer)
    assert assigned(commands)[-1] == ("OUTGUARD_VERDICT", "allow")


async def test_dead_channel_ends_the_session_and_without_ami_releases_the_call(
    server: FastAgiServer,
) -> None:
    server.trackers.clear()
    inner = asterisk_answers({})

    def answer(command: str) -> bytes:
        if command.startswith(("SET", "EXEC")):
            return b"511 Command Not Permitted on a dead channel or intercepted\n"
        return inner(command)

    commands = await fake_call(server.port, env(), answer)
    assert len(commands) == 2  # stopped at the first refusal
    assert server.screener.ended_calls == [("d1", None)]  # type: ignore[attr-defined]


def test_routes_must_be_async() -> None:
    """panoramisk 1.4 wraps plain functions with the removed asyncio.coroutine."""
    screener: Any = FakeScreener()
    srv = FastAgiServer(screener)

    def plain(session: Any) -> None:
        return None

    async def fine(session: Any) -> None:
        return None

    with pytest.raises(TypeError, match="async def"):
        srv.add_route("plain", plain)  # type: ignore[arg-type]
    srv.add_route("/fine/", fine)
    with pytest.raises(ValueError):
        srv.add_route("fine", fine)


async def test_a_client_closing_before_the_blank_line_does_not_freeze_the_loop(
    server: FastAgiServer,
) -> None:
    """panoramisk 1.4's header loop spins forever when read() returns b'' (event loop
    frozen). Here: the connection is dropped and everything else goes on."""
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.005)
            ticks += 1

    tick = asyncio.get_running_loop().create_task(ticker())
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(env()[:40])
    writer.write_eof()
    assert await closed_by_server(reader)
    commands = await fake_call(server.port, env())  # the next call is served
    await asyncio.sleep(0.05)  # a frozen loop would never get here
    tick.cancel()
    writer.close()
    assert assigned(commands)[-1] == ("OUTGUARD_VERDICT", "allow")
    assert server.rejected == 1
    assert ticks >= 2


async def test_a_client_that_never_finishes_is_dropped_after_the_header_timeout(
    server: FastAgiServer,
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(env()[:40])  # and nothing more, connection left open
    commands = await fake_call(server.port, env())  # served meanwhile
    assert assigned(commands)[-1] == ("OUTGUARD_VERDICT", "allow")
    assert await closed_by_server(reader)  # dropped after 0.3 s
    writer.close()
    assert server.rejected == 1


async def closed_by_server(reader: asyncio.StreamReader, timeout_s: float = 30.0) -> bool:
    """True once the server has closed the connection, with nothing more sent: a FIN
    (EOF), or a reset when it closed with the client's bytes still unread (the oversized
    environment: which of the two the client sees depends on timing)."""
    async with asyncio.timeout(timeout_s):
        try:
            return await reader.read() == b""
        except ConnectionResetError:
            return True

def connect_many(port: int, count: int, wait_s: float) -> int:
    """Open ``count`` connections at once without accepting them here; how many the
    kernel completed (Asterisk's connect) within ``wait_s`` (a bound, reached only when
    some are never completed)."""
    socks = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        poller = select.poll()
        for sock in socks:
            sock.setblocking(False)
            sock.connect_ex(("127.0.0.1", port))
            poller.register(sock, select.POLLOUT)
        done: set[int] = set()
        deadline = time.monotonic() + wait_s
        while len(done) < count and time.monotonic() < deadline:
            for fd, _ in poller.poll(100):
                done.add(fd)
                poller.unregister(fd)
        return sum(1 for s in socks if s.fileno() in done
                   and s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0)
    finally:
        for sock in socks:
            sock.close()


async def test_calls_queue_while_the_server_is_held_up_never_dropped(
    server: FastAgiServer,
) -> None:
    """Each call is a connection, and Asterisk fails the call (AGISTATUS=FAILURE, the
    dialplan's failure branch: SIP 503 when failing closed) when connecting takes over
    2 s. While the server's loop is held up (here: by this test, for the whole burst), 600
    calls (7.5 s at 80 calls/s) still connect: the kernel queues them for the server."""
    connected = connect_many(server.port, 600, wait_s=5.0)  # blocks the loop meanwhile
    assert connected == 600


async def test_an_oversized_environment_is_refused(server: FastAgiServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"agi_x: " + b"y" * 200_000 + b"\n\n")
    assert await closed_by_server(reader)
    writer.close()
    assert server.rejected == 1


async def test_binding_beyond_loopback_warns(caplog: pytest.LogCaptureFixture) -> None:
    screener: Any = FakeScreener()
    srv = FastAgiServer(screener, "0.0.0.0", 0, tracker=FakeTracker())
    with caplog.at_level(logging.WARNING, "agi.server"):
        await srv.start()
        await srv.stop()
    assert "NOT loopback" in caplog.text


# -- several PBXes: which one a FastAGI call comes from --------------------------------------

@pytest.mark.parametrize(("named", "peer", "pbxes", "hosts", "expected"), [
    pytest.param("b", "127.0.0.1", ["a", "b"], {}, "b", id="the-url-names-it"),
    pytest.param("c", "127.0.0.1", ["a", "b"], {}, None, id="the-url-names-an-unknown-one"),
    pytest.param(None, "10.0.0.2", ["a", "b"], {"a": "10.0.0.1", "b": "10.0.0.2"}, "b",
                 id="the-peer-is-one-pbxs-host"),
    pytest.param(None, "127.0.0.1", ["a", "b"], {"a": "127.0.0.1", "b": "127.0.0.1"}, None,
                 id="two-pbxes-share-the-peers-address"),
    pytest.param(None, "10.0.0.9", ["a"], {"a": "10.0.0.1"}, "a", id="the-only-pbx"),
    pytest.param(None, "10.0.0.9", ["a", "b"], {"a": "10.0.0.1"}, None, id="cannot-tell"),
])
def test_which_pbx_a_fastagi_call_comes_from(named: str | None, peer: str, pbxes: list[str],
                                             hosts: dict[str, str],
                                             expected: str | None) -> None:
    assert which_pbx(named, peer, pbxes, hosts) == expected


@pytest.fixture
async def two_pbx_server() -> AsyncIterator[FastAgiServer]:
    async with serving(pbxes=("a", "b"), trackers={"a": FakeTracker(), "b": FakeTracker()},
                       pbx_hosts={"a": "127.0.0.1", "b": "127.0.0.1"}) as srv:
        yield srv


async def test_a_call_is_screened_and_tracked_as_the_pbx_its_url_names(
    two_pbx_server: FastAgiServer,
) -> None:
    srv = two_pbx_server
    await fake_call(srv.port, env("screen?pbx=b", **WHO_ARGS))
    assert [f.pbx for f in srv.screener.facts] == ["b"]  # type: ignore[attr-defined]
    assert srv.trackers["b"].tracked == ["1795400932.7"]  # type: ignore[attr-defined]
    assert srv.trackers["a"].tracked == []  # type: ignore[attr-defined]


async def test_a_call_whose_pbx_cannot_be_told_fails_to_the_dialplan_never_allowed(
    two_pbx_server: FastAgiServer, caplog: pytest.LogCaptureFixture,
) -> None:
    srv = two_pbx_server
    commands = await fake_call(srv.port, env(**WHO_ARGS))
    assert srv.screener.facts == []  # type: ignore[attr-defined]
    assert ("OUTGUARD_REASON", "agi_unknown_pbx") in assigned(commands)
    assert assigned(commands)[-1] == ("OUTGUARD_VERDICT", "failed")
    assert "screen?pbx=NAME" in caplog.text


async def test_in_cluster_mode_fastagi_calls_of_a_second_asterisk_under_a_claimed_name_fail(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    """The eighth AGI argument is the Asterisk's ${ENTITYID}: the first Asterisk whose
    calls come under a PBX name claims it (one store round trip, then none); calls of
    another Asterisk under that name get verdict failed (agi_pbx_conflict) naming both,
    never screened, while the first's calls keep coming; once its claim lapses the name
    is free."""
    store = AsyncStore(SQLiteStore(tmp_path / "og.db"))
    clock = [1000.0]
    claims = PbxClaims(store, "og-a:8470", lease_s=30, clock=lambda: clock[0])
    srv = FastAgiServer(ClusterScreener(), "127.0.0.1", 0, budget_ms=20,  # type: ignore[arg-type]
                        claims=claims)
    await srv.start()
    assert srv._server is not None
    port = srv._server.sockets[0].getsockname()[1]

    def call(entity: str, uniqueid: str) -> bytes:
        return env(**WHO_ARGS, agi_arg_6="", agi_arg_7="default", agi_arg_8=entity,
                   agi_uniqueid=uniqueid)

    try:
        first = await fake_call(port, call("02:00:00:00:00:01", "1.1"))
        assert first == ['SET VARIABLE OUTGUARD_VERDICT "allow"']
        other = await fake_call(port, call("02:00:00:00:00:02", "2.1"))
        assert ("OUTGUARD_REASON", "agi_pbx_conflict") in assigned(other)
        assert assigned(other)[-1] == ("OUTGUARD_VERDICT", "failed")
        assert [f.channel_id for f in srv.screener.facts] == ["1.1"]  # type: ignore[attr-defined]
        (why,) = claims.conflicts.values()
        assert "02:00:00:00:00:01" in why and "02:00:00:00:00:02" in why
        assert "agi_pbx_conflict" in why and claims.refused == {"default": 1}
        again = await fake_call(port, call("02:00:00:00:00:01", "1.2"))  # no store trip
        assert again == ['SET VARIABLE OUTGUARD_VERDICT "allow"']
        clock[0] += 31  # the conflict is not met again for a lease: no longer reported
        await claims.renew()
        assert claims.conflicts == {}
        srv._entities.clear()  # the first Asterisk sends no more calls: its claim lapses
        srv._refused.clear()
        await claims.renew()
        clock[0] += 31
        taken = await fake_call(port, call("02:00:00:00:00:02", "2.2"))
        assert taken == ['SET VARIABLE OUTGUARD_VERDICT "allow"']
    finally:
        await srv.stop()
        await store.aclose()
    assert "agi_pbx_conflict" in caplog.text


@pytest.mark.parametrize("entity", ["02:00:00:00:00:02", 'x?y, "z"\\w'],
                         ids=["an-entity-id", "hostile"])
async def test_a_conflicting_asterisks_failed_verdict_carries_its_decision_id_whatever_it_holds(
    tmp_path: Path, entity: str,
) -> None:
    """The row of a call refused for a PBX name conflict is "<uniqueid>@<pbx>?<entity>":
    not a value MSet can carry (it split a real call's commands once: "not a token
    assignment for MSet"). Every value that is not a token is set on its own, quoted,
    and the verdict still comes last."""
    store = AsyncStore(SQLiteStore(tmp_path / "og.db"))
    claims = PbxClaims(store, "og-a:8470", lease_s=30, clock=lambda: 1000.0)
    srv = FastAgiServer(ClusterScreener(), "127.0.0.1", 0, budget_ms=20,  # type: ignore[arg-type]
                        claims=claims)
    await srv.start()
    assert srv._server is not None
    port = srv._server.sockets[0].getsockname()[1]
    try:
        first = await fake_call(port, env(**WHO_ARGS, agi_arg_6="", agi_arg_7="default",
                                          agi_arg_8="02:00:00:00:00:01", agi_uniqueid="1.1"))
        assert first == ['SET VARIABLE OUTGUARD_VERDICT "allow"']
        other = await fake_call(port, env(**WHO_ARGS, agi_arg_6="", agi_arg_7="default",
                                          agi_arg_8=entity, agi_uniqueid="2.1"))
    finally:
        await srv.stop()
        await store.aclose()
    got = assigned(other)
    assert ("OUTGUARD_DECISION_ID", f"2.1@default?{entity}") in got
    assert ("OUTGUARD_REASON", "agi_pbx_conflict") in got
    assert got[-1] == ("OUTGUARD_VERDICT", "failed")
    assert any(c.startswith("SET VARIABLE OUTGUARD_DECISION_ID ") for c in other)


async def test_set_tokens_sets_the_last_variable_last_whatever_the_values() -> None:
    """The verdict is set last even when it, or a value before it, is not a token."""
    sent: list[str] = []

    class Session(AgiSession):
        async def command(self, line: str) -> AgiReply:  # type: ignore[override]
            sent.append(line)
            return AgiReply(200, result="0")

    session = Session.__new__(Session)
    await session.set_tokens({"A": "1", "B": "a,b", "C": "2", "D": "x y"})
    assert sent == ['SET VARIABLE B "a,b"', 'EXEC MSet "A=1,C=2"', 'SET VARIABLE D "x y"']
    sent.clear()
    await session.set_tokens({"A": "1", "D": "ok"})
    assert sent == ['EXEC MSet "A=1,D=ok"']
    sent.clear()
    await session.set_tokens({})
    assert sent == []
