"""Prebuilt HTTP/1.1 requests on kept connections to Asterisk's HTTP server.

The one REST request of a plainly allowed continue-mode call (``POST
/channels/{id}/continue``) costs aiohttp's client about 150 us of CPU; the same request
written from a prebuilt header block on a kept connection and read back as a status line,
headers and a ``Content-Length`` body costs about a fifth of that (``bench/rest_request.py``,
bench/RESULTS.md). This is that client, for requests without a body:

* one request per connection at a time; idle connections are kept (last in, first out) and
  a new one is opened when none is idle, up to ``limit`` kept;
* a connection Asterisk closed while it was idle (``session_keep_alive``, a restart) is
  noticed before a request is written to it and replaced; a connection that fails once a
  request was written is closed and the failure raised (:class:`KeptUnavailable`): the
  request may or may not have reached Asterisk, and is never sent twice;
* a reply with ``Connection: close`` (or no ``Content-Length`` on a reply that has a body)
  closes the connection after it is read;
* the whole request has ``timeout_s``.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

#: the longest header block accepted from Asterisk
MAX_HEAD = 64 * 1024


class KeptUnavailable(ConnectionError):
    """The connection failed (refused, closed or timed out mid-request)."""


class _Conn:
    __slots__ = ("reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @property
    def stale(self) -> bool:
        return self.reader.at_eof() or self.writer.is_closing()

    def close(self) -> None:
        self.writer.close()


class KeptHttp:
    """Requests without a body to one HTTP server, on kept connections."""

    def __init__(self, base_url: str, authorization: str, *, timeout_s: float = 5.0,
                 limit: int = 64) -> None:
        parts = urlsplit(base_url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        if parts.scheme != "http":
            raise ValueError(f"kept connections speak plain http, not {parts.scheme}")
        self.prefix = parts.path.rstrip("/")
        self._tail = (f" HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                      f"Authorization: {authorization}\r\nContent-Length: 0\r\n\r\n").encode()
        self.timeout_s = timeout_s
        self.limit = limit
        self._idle: list[_Conn] = []
        self.opened = 0  # connections ever opened (tests, metrics)

    async def request(self, method: str, target: str) -> tuple[int, bytes]:
        """``method`` ``target`` (the path under the base URL, query included, already
        quoted): the status and the body."""
        line = f"{method} {self.prefix}{target}".encode()
        conn = self._take()
        try:
            async with asyncio.timeout(self.timeout_s):
                if conn is None:
                    conn = await self._open()
                conn.writer.write(line + self._tail)
                status, body, keep = await _read_reply(conn.reader)
        except (OSError, EOFError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                TimeoutError, ValueError) as err:
            if conn is not None:
                conn.close()
            raise KeptUnavailable(f"{method} {target}: {err or type(err).__name__}") from err
        except BaseException:  # cancelled mid-request: the connection's state is unknown
            if conn is not None:
                conn.close()
            raise
        if keep and len(self._idle) < self.limit:
            self._idle.append(conn)
        else:
            conn.close()
        return status, body

    def _take(self) -> _Conn | None:
        while self._idle:
            conn = self._idle.pop()
            if not conn.stale:
                return conn
            conn.close()
        return None

    async def _open(self) -> _Conn:
        reader, writer = await asyncio.open_connection(self.host, self.port, limit=MAX_HEAD)
        self.opened += 1
        return _Conn(reader, writer)

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
        for conn in idle:
            try:
                await conn.writer.wait_closed()
            except OSError:
                pass


async def _read_reply(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """Status, body, and whether the connection may be kept."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status_line = lines[0].split(b" ", 2)
    if len(status_line) < 2 or not status_line[0].startswith(b"HTTP/1."):
        raise ValueError(f"not an HTTP reply: {lines[0][:80]!r}")
    status = int(status_line[1])
    length: int | None = None
    keep = status_line[0] == b"HTTP/1.1"
    for header in lines[1:]:
        name, _, value = header.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value.strip())
        elif name == b"connection":
            keep = value.strip().lower() != b"close"
        elif name == b"transfer-encoding" and value.strip().lower() != b"identity":
            raise ValueError("chunked replies are not read on a kept connection")
    if length is None:
        if status in (204, 304) or 100 <= status < 200:
            return status, b"", keep
        return status, await reader.read(), False  # the body ends with the connection
    body = await reader.readexactly(length) if length else b""
    return status, body, keep
