"""The call path's REST requests, prebuilt on kept connections (``ari_app.kept``): the same
answers and errors as aiohttp's client, a connection Asterisk closed while idle replaced
before use, a request that may have reached Asterisk never sent twice."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest

from ari_app.client import AriClient, AriError, AriUnavailable, ChannelGone
from ari_app.kept import KeptHttp, KeptUnavailable
from tests.waiting import eventually

Reply = Callable[[bytes], bytes | None]  # the request's head -> the reply (None: hang up)


def reply(status: int, body: dict[str, str] | None = None, *, close: bool = False) -> bytes:
    text = json.dumps(body).encode() if body is not None else b""
    reason = {204: "No Content", 404: "Not Found", 500: "Internal Server Error"}[status]
    head = f"HTTP/1.1 {status} {reason}\r\nServer: Asterisk\r\n"
    if close:
        head += "Connection: close\r\n"
    if text or status != 204:
        head += f"Content-Length: {len(text)}\r\n"
    return head.encode() + b"\r\n" + text


@dataclass
class FakeAsterisk:
    """An HTTP server answering each request with ``answer(head)``."""

    answer: Reply
    heads: list[bytes] = field(default_factory=list)
    connections: int = 0
    writers: list[asyncio.StreamWriter] = field(default_factory=list)
    port: int = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                self.heads.append(head)
                out = self.answer(head)
                if out is None:
                    break
                writer.write(out)
                await writer.drain()
                if b"Connection: close" in out:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def drop_idle(self) -> None:
        """Asterisk's keep-alive timeout: close every connection."""
        for writer in self.writers:
            writer.close()


@contextlib.asynccontextmanager
async def asterisk(answer: Reply) -> AsyncIterator[FakeAsterisk]:
    fake = FakeAsterisk(answer)
    server = await asyncio.start_server(fake.serve, "127.0.0.1", 0)
    fake.port = server.sockets[0].getsockname()[1]
    try:
        yield fake
    finally:
        server.close()
        fake.drop_idle()
        await server.wait_closed()


def client(port: int) -> AriClient:
    return AriClient(f"http://127.0.0.1:{port}/ari", "outguard", "s3cret", "outguard",
                     request_timeout_s=2.0)


async def test_a_continue_is_one_prebuilt_request_with_auth_on_one_kept_connection() -> None:
    async with asterisk(lambda head: reply(204)) as fake:
        ari = client(fake.port)
        try:
            for n in range(3):
                await ari.continue_in_dialplan(f"pbx-1.{n}", "outguard-allow", "+86138", 1)
        finally:
            await ari.close()
    assert fake.connections == 1
    first = fake.heads[0].decode()
    assert first.startswith("POST /ari/channels/pbx-1.0/continue?context=outguard-allow"
                            "&extension=%2B86138&priority=1 HTTP/1.1\r\n")
    assert "Authorization: Basic b3V0Z3VhcmQ6czNjcmV0\r\n" in first  # outguard:s3cret


@pytest.mark.parametrize(("status", "kind"), [(404, ChannelGone), (500, AriError)])
async def test_errors_are_asterisks_as_with_aiohttp(status: int, kind: type[AriError]) -> None:
    async with asterisk(lambda head: reply(status, {"message": "Channel not found"})) as fake:
        ari = client(fake.port)
        try:
            with pytest.raises(kind) as caught:
                await ari.hangup("pbx-1.1", 21)
        finally:
            await ari.close()
    assert caught.value.status == status and "Channel not found" in str(caught.value)
    assert fake.heads[0].startswith(b"DELETE /ari/channels/pbx-1.1?reason_code=21 HTTP/1.1")
    assert fake.connections == 1  # an error reply keeps the connection


async def test_a_connection_asterisk_closed_while_idle_is_replaced_before_use() -> None:
    async with asterisk(lambda head: reply(204)) as fake:
        ari = client(fake.port)
        try:
            await ari.continue_in_dialplan("pbx-1.1", "outguard-allow", "1", 1)
            fake.drop_idle()  # session_keep_alive, or an Asterisk restart
            kept = ari._kept
            assert kept is not None
            await eventually(lambda: all(c.stale for c in kept._idle),
                             "the FIN to reach the kept connection")
            await ari.continue_in_dialplan("pbx-1.2", "outguard-allow", "1", 1)
        finally:
            await ari.close()
    assert fake.connections == 2 and len(fake.heads) == 2


async def test_a_request_cut_after_it_was_sent_fails_and_is_not_sent_again() -> None:
    async with asterisk(lambda head: None) as fake:  # reads the request, then hangs up
        ari = client(fake.port)
        try:
            with pytest.raises(AriUnavailable):
                await ari.continue_in_dialplan("pbx-1.1", "outguard-allow", "1", 1)
        finally:
            await ari.close()
    assert len(fake.heads) == 1


async def test_connection_close_and_concurrency_open_connections_as_needed() -> None:
    async with asterisk(lambda head: reply(204, close=b"close" in head)) as fake:
        kept = KeptHttp(f"http://127.0.0.1:{fake.port}/ari", "Basic x")
        try:
            await asyncio.gather(*(kept.request("POST", f"/channels/c{n}/continue")
                                   for n in range(3)))
            assert kept.opened == 3  # one request per connection at a time
            await kept.request("POST", "/channels/close/continue")  # Connection: close
            await kept.request("POST", "/channels/c9/continue")
            assert kept.opened == 3
        finally:
            await kept.close()


async def test_nobody_listening_is_unavailable() -> None:
    async with asterisk(lambda head: reply(204)) as fake:
        port = fake.port
    kept = KeptHttp(f"http://127.0.0.1:{port}/ari", "Basic x", timeout_s=1.0)
    with pytest.raises(KeptUnavailable):
        await kept.request("POST", "/channels/c1/continue")
    with pytest.raises(ValueError):
        KeptHttp("https://127.0.0.1/ari", "Basic x")
