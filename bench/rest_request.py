"""Does a prebuilt REST request on a kept connection pay against aiohttp's client?

The one ARI request of a plainly allowed continue-mode call (``POST
/channels/{id}/continue``) is about a quarter of outguard's CPU per call (RESULTS.md,
"Where outguard's CPU per call goes"), and its bytes are the same for every call but the
channel id and the extension. This measures, against the real (sandbox) Asterisk, the
client's CPU per request of:

* ``aiohttp`` - what ``ari_app.client.AriClient`` does: ``ClientSession.request`` with
  ``params``, the Authorization header on the session, a kept-alive ``TCPConnector``;
* ``prebuilt`` - one kept ``asyncio`` stream connection, the request written from a bytes
  template (method, path with the query, Host, Authorization, Content-Length: 0), the
  reply read as a status line, headers and a ``Content-Length`` body.

The request is ``POST /ari/asterisk/variable?variable=OUTGUARD_BENCH&value=<n>``: like a
continue it is a POST with a query string and Asterisk answers ``204 No Content``, but it
needs no channel in Stasis. Client CPU is the process's thread CPU time (the event loop's
thread: other processes on the shared host do not count); the two variants alternate in
rounds, and the report gives each one's median and their ratio from the same run.

    .venv/bin/python -m bench.rest_request --instance h14e --offset 200 --requests 2000
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import statistics
import time
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

import aiohttp

from outguard import sandbox

PATH = "/asterisk/variable"


class Prebuilt:
    """HTTP/1.1 on one kept connection, the request bytes built once but for the value."""

    def __init__(self, base_url: str, user: str, password: str) -> None:
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        self.head = f"POST {parts.path}{PATH}?variable=OUTGUARD_BENCH&value=".encode()
        self.tail = (f" HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                     f"Authorization: Basic {token}\r\nContent-Length: 0\r\n\r\n").encode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            await self.writer.wait_closed()

    async def request(self, value: str) -> int:
        assert self.reader is not None and self.writer is not None
        self.writer.write(self.head + value.encode() + self.tail)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        if length:
            await self.reader.readexactly(length)
        return status


class Aiohttp:
    """As ``AriClient`` sends a request."""

    def __init__(self, base_url: str, user: str, password: str) -> None:
        self.url = base_url.rstrip("/") + PATH
        self.headers = {"Authorization": aiohttp.encode_basic_auth(user, password)}
        self.session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        self.session = aiohttp.ClientSession(
            headers=self.headers, timeout=aiohttp.ClientTimeout(total=5),
            connector=aiohttp.TCPConnector(limit=64, keepalive_timeout=30))

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()

    async def request(self, value: str) -> int:
        assert self.session is not None
        async with self.session.request("POST", self.url, params={
                "variable": "OUTGUARD_BENCH", "value": value}) as reply:
            await reply.text()
            return reply.status


async def cpu_per_request_us(send: Callable[[str], Awaitable[int]], n: int) -> tuple[float, float]:
    """(thread CPU, wall) microseconds per request over ``n`` sequential requests."""
    cpu, wall = time.thread_time_ns(), time.perf_counter_ns()
    for i in range(n):
        status = await send(str(i))
        if status != 204:
            raise SystemExit(f"unexpected status {status}")
    return ((time.thread_time_ns() - cpu) / n / 1000,
            (time.perf_counter_ns() - wall) / n / 1000)


async def run(inst: sandbox.Instance, requests: int, rounds: int) -> None:
    clients = {"aiohttp": Aiohttp(inst.ari_url, inst.ari_user, inst.ari_password),
               "prebuilt": Prebuilt(inst.ari_url, inst.ari_user, inst.ari_password)}
    for client in clients.values():
        await client.open()
        await cpu_per_request_us(client.request, 50)  # warm: connection, caches
    cpu: dict[str, list[float]] = {name: [] for name in clients}
    wall: dict[str, list[float]] = {name: [] for name in clients}
    try:
        for _ in range(rounds):
            for name, client in clients.items():
                c, w = await cpu_per_request_us(client.request, requests)
                cpu[name].append(c)
                wall[name].append(w)
    finally:
        for client in clients.values():
            await client.close()
    print(f"{requests} requests x {rounds} rounds per variant, alternating")
    print(f"{'variant':10} {'cpu us/req (median)':>20} {'wall us/req (median)':>21}")
    for name in clients:
        print(f"{name:10} {statistics.median(cpu[name]):20.1f} "
              f"{statistics.median(wall[name]):21.1f}")
    print(f"prebuilt / aiohttp: cpu {statistics.median(cpu['prebuilt']) / statistics.median(cpu['aiohttp']):.2f}, "
          f"wall {statistics.median(wall['prebuilt']) / statistics.median(wall['aiohttp']):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instance", default="bench")
    parser.add_argument("--offset", type=int, default=0)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    box = sandbox.up(args.instance, args.offset)
    try:
        asyncio.run(run(box.inst, args.requests, args.rounds))
    finally:
        box.stop()


if __name__ == "__main__":
    main()
