"""The call path's pipelined connection to Redis (``cluster.wire``): replies parsed from any
split of the bytes, each command its own answer, a caller that gives up leaving the
connection in step, and every way a connection ends (cut mid-reply, closed, stalled,
refused, a restarted Redis) failing the commands waiting on it and reconnecting after;
against the real redis-server, and against fake peers for what a real one never sends."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.exceptions import (
    AuthenticationError,
    BusyLoadingError,
    InvalidResponse,
    NoScriptError,
    ResponseError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from outguard.cluster.caps import RedisCaps
from outguard.cluster.wire import Wire, _Protocol, pack
from outguard.testing.servers import REDIS_BASE_PORT, RedisServer
from tests.conftest import TEST_INSTANCE, TEST_PORT_OFFSET
from tests.waiting import eventually


def test_commands_are_packed_as_redis_py_packs_them() -> None:
    """The call path packs its EVALSHA itself: the bytes redis-py's packer writes."""
    from redis.asyncio.connection import Connection

    args = ("EVALSHA", "a" * 40, 0, "og:", "reserve", "call-1", repr(1733140000.25), 86400,
            "租户", "agent\u00e9", "", "+8613800138000", 6, "rule", 1_000_000)
    assert pack(args) == b"".join(Connection().pack_command(*args))


# -- replies, from bytes -----------------------------------------------------------------------

class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []
        self.aborted = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written.append(bytes(data))

    def abort(self) -> None:
        self.aborted = True

    def is_closing(self) -> bool:
        return self.aborted


def connected() -> tuple[_Protocol, FakeTransport]:
    proto, transport = _Protocol(lambda: 0.0), FakeTransport()
    proto.connection_made(transport)
    return proto, transport


REPLIES: list[tuple[bytes, Any]] = [
    (b"$5\r\nallow\r\n", b"allow"),
    (b"$0\r\n\r\n", b""),
    (b"$-1\r\n", None),
    (b"$4\r\na\r\nb\r\n", b"a\r\nb"),  # a bulk string holding a line end
    (b":-42\r\n", -42),
    (b"+PONG\r\n", b"PONG"),
    (b"*0\r\n", []),
    (b"*-1\r\n", None),
    (b"*5\r\n$5\r\nblock\r\n$4\r\nconc\r\n:3\r\n:3\r\n$0\r\n\r\n",
     [b"block", b"conc", 3, 3, b""]),
    (b"*2\r\n*1\r\n:1\r\n$-1\r\n", [[1], None]),
    ("$6\r\n租户\r\n".encode(), "租户".encode()),
]


@pytest.mark.parametrize(("raw", "value"), REPLIES)
async def test_a_reply_is_read_whole_from_any_split_of_its_bytes(raw: bytes, value: Any) -> None:
    for cut in range(len(raw) + 1):
        proto, _ = connected()
        first, second = proto.send(b"X"), proto.send(b"Y")
        stream = raw + b":7\r\n"  # and the next command's reply behind it
        for chunk in (stream[:cut], stream[cut:]):
            if chunk:
                proto.data_received(chunk)
        assert (first.result(), second.result()) == (value, 7), cut
        assert not proto.buf and not proto.waiting


@pytest.mark.parametrize(("line", "kind", "message"), [
    ("NOSCRIPT No matching script.", NoScriptError, "No matching script."),
    ("LOADING Redis is loading the dataset in memory", BusyLoadingError,
     "Redis is loading the dataset in memory"),
    ("WRONGPASS invalid username-password pair", AuthenticationError,
     "invalid username-password pair"),
    ("ERR unknown op nope", ResponseError, "ERR unknown op nope"),
])
async def test_an_error_reply_raises_its_class_and_the_next_reply_is_read(
    line: str, kind: type[Exception], message: str,
) -> None:
    proto, transport = connected()
    failed, after = proto.send(b"X"), proto.send(b"Y")
    proto.data_received(f"-{line}\r\n+OK\r\n".encode())
    with pytest.raises(kind) as raised:
        failed.result()
    assert type(raised.value) is kind and str(raised.value) == message
    assert after.result() == b"OK" and not transport.aborted


@pytest.mark.parametrize("garbage", [b"?what\r\n", b"$x\r\n", b"$3\r\nabcde\r\n",
                                     b"*1\r\n" * 9 + b":1\r\n"])
async def test_bytes_that_are_not_resp_fail_the_waiting_commands_and_end_the_connection(
    garbage: bytes,
) -> None:
    proto, transport = connected()
    futures = [proto.send(b"X"), proto.send(b"Y")]
    proto.data_received(garbage)
    assert transport.aborted and proto.lost is not None
    for future in futures:
        with pytest.raises(InvalidResponse):
            future.result()


async def test_a_reply_to_no_command_ends_the_connection() -> None:
    proto, transport = connected()
    answered = proto.send(b"X")
    proto.data_received(b":1\r\n:2\r\n")
    assert answered.result() == 1 and transport.aborted


async def test_a_reply_for_a_caller_that_gave_up_is_read_and_dropped() -> None:
    proto, transport = connected()
    gone, waiting = proto.send(b"X"), proto.send(b"Y")
    gone.cancel()
    proto.data_received(b"$4\r\nlate\r\n:2\r\n")
    assert waiting.result() == 2 and not transport.aborted and not proto.waiting


# -- against the real redis-server ------------------------------------------------------------

@contextlib.asynccontextmanager
async def opened(url: str, **options: Any) -> AsyncIterator[Wire]:
    w = Wire(url, **options)
    try:
        yield w
    finally:
        await w.aclose()


@pytest.fixture
async def wire(redis_server: RedisServer) -> AsyncIterator[Wire]:
    async with opened(redis_server.url, connect_timeout_s=10, stall_s=60) as w:
        yield w


@pytest.fixture
async def admin(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_server.url, socket_timeout=10)
    try:
        yield client
    finally:
        await client.aclose()


def key() -> str:
    return f"w{uuid.uuid4().hex[:10]}"


async def sent(w: Wire, n: int = 1) -> None:
    """Wait until ``n`` commands are out on the wire's connection, unanswered."""
    await eventually(lambda: w._conn is not None and len(w._conn.waiting) >= n,
                     f"{n} command(s) sent")


async def test_concurrent_commands_share_one_connection_each_with_its_own_answer(
    wire: Wire,
) -> None:
    answers = await asyncio.gather(*(wire.call(pack(("ECHO", f"m{i}"))) for i in range(300)))
    assert answers == [f"m{i}".encode() for i in range(300)]
    assert wire.connects == 1


async def test_a_caller_that_gives_up_leaves_the_connection_in_step(
    wire: Wire, admin: aioredis.Redis,
) -> None:
    k = key()
    blocked = asyncio.ensure_future(wire.call(pack(("BLPOP", k, 30))))
    await sent(wire)
    blocked.cancel()  # its caller's budget ran out (GuardedCaps' asyncio.timeout)
    with pytest.raises(asyncio.CancelledError):
        await blocked
    behind = asyncio.ensure_future(wire.call(pack(("ECHO", "behind"))))
    await sent(wire, 2)
    await admin.lpush(k, "x")  # the BLPOP answers now: its reply is read and dropped
    assert await behind == b"behind"
    assert await wire.call(pack(("LLEN", k))) == 0  # the BLPOP did run
    assert wire.connects == 1


async def test_a_command_past_the_timeout_raises_redis_timeout_error_and_the_next_one_answers(
    redis_server: RedisServer, admin: aioredis.Redis,
) -> None:
    async with opened(redis_server.url, timeout_s=0.05, stall_s=60) as w:
        k = key()
        with pytest.raises(RedisTimeoutError):
            await w.call(pack(("BLPOP", k, 30)))
        await admin.lpush(k, "x")
        assert await w.call(pack(("ECHO", "next"))) == b"next"
        assert w.connects == 1


async def test_a_connection_whose_oldest_command_waits_past_stall_s_is_given_up(
    redis_server: RedisServer,
) -> None:
    """A stalled Redis or a partition with no reset: the next command does not queue
    behind the silence, it opens a new connection."""
    now = [1000.0]
    async with opened(redis_server.url, stall_s=5, clock=lambda: now[0]) as w:
        blocked = asyncio.ensure_future(w.call(pack(("BLPOP", key(), 30))))
        await sent(w)
        now[0] += 5  # not yet past
        behind = asyncio.ensure_future(w.call(pack(("ECHO", "queued"))))
        await sent(w, 2)
        now[0] += 0.5
        assert await w.call(pack(("ECHO", "fresh"))) == b"fresh"
        assert w.connects == 2
        for gone in (blocked, behind):
            with pytest.raises(RedisConnectionError, match="has not answered for 5 s"):
                await gone


async def test_closing_fails_the_commands_waiting(wire: Wire) -> None:
    blocked = asyncio.ensure_future(wire.call(pack(("BLPOP", key(), 30))))
    await sent(wire)
    await wire.aclose()
    with pytest.raises(RedisConnectionError):
        await blocked


async def test_a_refused_connection_raises_connection_error() -> None:
    with socket.socket() as bound:  # a port nobody listens on
        bound.bind(("127.0.0.1", 0))
        w = Wire(f"redis://127.0.0.1:{bound.getsockname()[1]}/0", connect_timeout_s=10)
        with pytest.raises(RedisConnectionError, match="cannot connect"):
            await w.call(pack(("PING",)))
        assert w.connects == 0


# -- peers that misbehave ---------------------------------------------------------------------

FakePeer = Callable[[list[bytes | None]], Awaitable[str]]


@pytest.fixture
async def fake_redis() -> AsyncIterator[FakePeer]:
    """Starts a peer on 127.0.0.1 that answers the n-th connection's first command with
    the n-th bytes given and closes it, or never answers it (None); returns its URL."""
    servers: list[asyncio.Server] = []
    stuck: list[asyncio.StreamWriter] = []

    async def start(answers: list[bytes | None]) -> str:
        script = iter(answers)

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            answer = next(script)
            await reader.read(1)
            if answer is None:
                stuck.append(writer)
                return
            writer.write(answer)
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        servers.append(server)
        return f"redis://127.0.0.1:{server.sockets[0].getsockname()[1]}/0"

    try:
        yield start
    finally:
        for writer in stuck:
            writer.close()
        for server in servers:
            server.close()
            await server.wait_closed()


async def test_a_connection_cut_mid_reply_fails_its_command_and_the_next_reconnects(
    fake_redis: FakePeer,
) -> None:
    url = await fake_redis([b"$10\r\nhal", b"$4\r\nfull\r\n"])
    async with opened(url, connect_timeout_s=10) as w:
        with pytest.raises(RedisConnectionError, match="closed the connection"):
            await w.call(pack(("GET", "k")))
        assert await w.call(pack(("GET", "k"))) == b"full"
        assert w.connects == 2


async def test_a_connect_whose_hello_gets_no_answer_is_bounded(
    fake_redis: FakePeer,
) -> None:
    url = await fake_redis([None])
    w = Wire(url.replace("redis://", "redis://:secret@"), connect_timeout_s=0.2)
    with pytest.raises(RedisConnectionError, match="did not answer within 0.2 s at connect"):
        await w.call(pack(("PING",)))
    assert w.connects == 0
    await w.aclose()


# -- a Redis of this module's own: restarted, with a password, on a unix socket ----------------

@pytest.fixture(scope="module")
def own_redis() -> Iterator[RedisServer]:
    server = RedisServer(REDIS_BASE_PORT + TEST_PORT_OFFSET + 55, f"{TEST_INSTANCE}-wire",
                         unix_socket=True)
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def test_a_restarted_redis_fails_nothing_after_the_loss_is_seen(
    own_redis: RedisServer,
) -> None:
    async with opened(own_redis.url, connect_timeout_s=10) as w:
        assert await w.call(pack(("PING",))) == b"PONG"
        own_redis.restart()
        conn = w._conn
        assert conn is not None
        await eventually(lambda: conn.lost is not None, "the old connection seen closed")
        assert await w.call(pack(("PING",))) == b"PONG"
        assert w.connects == 2


async def test_the_reservations_go_on_across_a_redis_restart(own_redis: RedisServer) -> None:
    """Whether or not the loss was seen first: RedisCaps retries a dropped connection once
    and reloads the script Redis forgot."""
    from outguard.cluster.caps import CallKeys

    caps = RedisCaps.from_url(own_redis.url, prefix="w:", timeout_s=10)
    try:
        assert caps.wire is not None
        await caps.mark_complete(1000.0)
        assert (await caps.reserve(CallKeys("c1", "t", "a", "+8610", "+86139"), [], 1000.0)).allowed
        own_redis.restart()
        await caps.client.connection_pool.disconnect()  # redis-py's side, not the wire's
        await caps.mark_complete(1001.0)  # an empty Redis, marked complete (as if rebuilt)
        assert (await caps.reserve(CallKeys("c2", "t", "a", "+8610", "+86139"), [], 1001.0)).allowed
        assert await caps.count("account", "a", 60, 1002.0) == 1
    finally:
        await caps.aclose()


async def test_the_password_user_and_database_of_the_url_are_used(own_redis: RedisServer) -> None:
    admin = aioredis.Redis.from_url(own_redis.url, socket_timeout=10)
    await admin.config_set("requirepass", "s3cret")
    try:
        base = f"127.0.0.1:{own_redis.port}"
        w = Wire(f"redis://:s3cret@{base}/3", connect_timeout_s=10)
        named = Wire(f"redis://default:s3cret@{base}/0", connect_timeout_s=10)
        wrong = Wire(f"redis://:nope@{base}/0", connect_timeout_s=10)
        try:
            assert await w.call(pack(("SET", "w:db", "three"))) == b"OK"
            assert await named.call(pack(("PING",))) == b"PONG"
            with pytest.raises(AuthenticationError):
                await wrong.call(pack(("PING",)))
        finally:
            for x in (w, named, wrong):
                await x.aclose()
        db3 = aioredis.Redis.from_url(f"redis://:s3cret@{base}/3", socket_timeout=10)
        try:
            assert await db3.get("w:db") == b"three"
        finally:
            await db3.aclose()
    finally:
        authed = aioredis.Redis.from_url(f"redis://:s3cret@127.0.0.1:{own_redis.port}/0",
                                         socket_timeout=10)
        await authed.config_set("requirepass", "")
        await authed.aclose()
        await admin.aclose()


async def test_a_unix_socket_url_is_used_with_its_database(own_redis: RedisServer) -> None:
    async with opened(f"unix://{own_redis.socket_path}?db=2", connect_timeout_s=10) as w:
        assert await w.call(pack(("SET", "w:unix", "two"))) == b"OK"
    db2 = aioredis.Redis.from_url(own_redis.url.removesuffix("/0") + "/2", socket_timeout=10)
    try:
        assert await db2.get("w:unix") == b"two"
    finally:
        await db2.aclose()


async def test_tls_urls_go_through_redis_py() -> None:
    assert not Wire.supports("rediss://caps.example.net:6380/0")
    assert Wire.supports("redis://caps.example.net:6379/0")
    assert Wire.supports("unix:///run/redis.sock?db=1")
    caps = RedisCaps.from_url("rediss://caps.example.net:6380/0")
    assert caps.wire is None
    await caps.aclose()
    with pytest.raises(ValueError, match="redis:// and unix://"):
        Wire("rediss://caps.example.net:6380/0")
