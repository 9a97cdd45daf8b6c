"""The call path's own connection to Redis: one socket, commands pipelined, replies read
in data_received (RESP2).

Every allowed call in cluster mode costs two commands (its reserve, then its release);
redis-py spends more CPU on each than Redis does on the script: a pooled connection taken
and given back under a lock with observability hooks, a health check, a StreamReader
read line by line with an await per line. ``Wire`` sends a command already packed
(``pack``) on one connection and answers its future when the reply is parsed:
concurrent callers share the connection (pipelined; Redis answers in order), and a
caller that gives up (a timeout, a cancellation) leaves the connection in step: its
reply is read and dropped when it comes.

Failures are redis-py's exceptions, so callers handle both clients alike: a connection
refused, cut (even mid-reply) or closed by the server fails every command waiting on it
with ``ConnectionError`` and the next command opens a new connection (a restarted Redis);
an error reply raises its class (``NoScriptError``, ``BusyLoadingError``,
``ResponseError``...); bytes that are not RESP close the connection (``InvalidResponse``).
A connection whose oldest command has had no answer for ``stall_s`` is given up at the
next command (a stalled Redis, a network partition with no reset): the commands waiting
on it fail with ``ConnectionError`` and a new connection is opened. What was sent may
still run when a stalled Redis resumes; every script op is idempotent per call id.

Handles ``redis://`` and ``unix://`` URLs with their database number, user name and
password; ``rediss://`` (TLS) is left to redis-py (``Wire.supports``).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from redis.asyncio.connection import SSLConnection, parse_url
from redis.exceptions import (
    AuthenticationError,
    BusyLoadingError,
    InvalidResponse,
    NoScriptError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisError,
    ResponseError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

__all__ = ["Wire", "pack"]

#: error replies by their first word (as redis-py maps them; the rest are ResponseError)
ERRORS: dict[str, Callable[[str], RedisError]] = {
    "NOSCRIPT": NoScriptError, "LOADING": BusyLoadingError, "NOAUTH": AuthenticationError,
    "WRONGPASS": AuthenticationError, "READONLY": ReadOnlyError, "OOM": OutOfMemoryError,
}
#: the deepest array nesting read (the scripts answer flat arrays)
MAX_DEPTH = 8


def pack(args: tuple[str | int, ...] | list[str | int]) -> bytes:
    """One command in Redis's protocol (an array of bulk strings), in one piece: the
    bytes redis-py's packer writes for the same arguments."""
    parts = [f"*{len(args)}\r\n"]
    for arg in args:
        text = arg if isinstance(arg, str) else repr(arg)
        size = len(text) if text.isascii() else len(text.encode())
        parts.append(f"${size}\r\n{text}\r\n")
    return "".join(parts).encode()


class _Incomplete(Exception):
    """The buffer ends inside a reply: wait for more bytes."""


def error_of(text: str) -> RedisError:
    """The exception an error reply stands for."""
    code, _, rest = text.partition(" ")
    kind = ERRORS.get(code)
    return kind(rest) if kind is not None else ResponseError(text)


def parse(buf: bytes | bytearray, pos: int, depth: int = 0) -> tuple[Any, int]:
    """One RESP2 reply at ``pos``: (value, the position after it). Bulk strings are
    bytes, integers int, simple strings bytes, nil None, errors their exception (not
    raised). ``_Incomplete`` when the reply goes past the end of ``buf``;
    ``InvalidResponse`` when the bytes are not RESP2."""
    end = buf.find(b"\r\n", pos)
    if end < 0:
        if len(buf) - pos > 65536:  # no header is that long
            raise InvalidResponse("a reply line without its end")
        raise _Incomplete
    kind, line = buf[pos:pos + 1], buf[pos + 1:end]
    after = end + 2
    if kind == b"$":
        size = _number(line)
        if size < 0:
            return None, after
        if len(buf) < after + size + 2:
            raise _Incomplete
        if buf[after + size:after + size + 2] != b"\r\n":
            raise InvalidResponse("a bulk string without its end")
        return bytes(buf[after:after + size]), after + size + 2
    if kind == b":":
        return _number(line), after
    if kind == b"*":
        count = _number(line)
        if count < 0:
            return None, after
        if depth >= MAX_DEPTH:
            raise InvalidResponse("arrays nested too deep")
        items = []
        for _ in range(count):
            item, after = parse(buf, after, depth + 1)
            items.append(item)
        return items, after
    if kind == b"+":
        return bytes(line), after
    if kind == b"-":
        return error_of(bytes(line).decode("utf-8", "replace")), after
    raise InvalidResponse(f"not a RESP2 reply: {bytes(buf[pos:pos + 20])!r}")


def _number(line: bytes | bytearray) -> int:
    try:
        return int(line)
    except ValueError:
        raise InvalidResponse(f"not a number: {bytes(line[:20])!r}") from None


class _Protocol(asyncio.Protocol):
    """One connection: the futures of the commands sent, answered in order."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        #: (the command's future, when it was sent: ``clock()``)
        self.waiting: deque[tuple[asyncio.Future[Any], float]] = deque()
        self.lost: BaseException | None = None
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def send(self, packed: bytes) -> asyncio.Future[Any]:
        assert self.transport is not None
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.waiting.append((future, self.clock()))
        self.transport.write(packed)
        return future

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        pos = 0
        try:
            while pos < len(buf):
                value, pos_next = parse(buf, pos)
                pos = pos_next
                if not self.waiting:
                    raise InvalidResponse("a reply to no command")
                future = self.waiting.popleft()[0]
                if future.done():  # its caller gave up (cancelled): dropped
                    continue
                if isinstance(value, RedisError):
                    future.set_exception(value)
                else:
                    future.set_result(value)
        except _Incomplete:
            pass
        except InvalidResponse as exc:
            self.abort(exc)
            return
        del buf[:pos]

    def abort(self, exc: BaseException) -> None:
        """Give the connection up: every command waiting fails with ``exc``."""
        self._fail(exc)
        if self.transport is not None:
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(RedisConnectionError(f"Redis closed the connection: {exc}" if exc else
                                   "Redis closed the connection"))
        if not self.closed.done():
            self.closed.set_result(None)

    def _fail(self, exc: BaseException) -> None:
        if self.lost is None:
            self.lost = exc
        while self.waiting:
            future = self.waiting.popleft()[0]
            if not future.done():  # each its own exception (a traceback of its own)
                future.set_exception(_again(exc))
                future.exception()  # marked retrieved: asyncio logs none if nobody awaits
        self.buf.clear()


def _again(exc: BaseException) -> BaseException:
    try:
        return type(exc)(*exc.args)
    except Exception:  # an exception class with other arguments: shared
        return exc


class Wire:
    """One pipelined connection to the Redis of ``url``; see the module docstring.

    ``connect_timeout_s`` bounds opening a connection (and its AUTH / SELECT);
    ``timeout_s``, when set, bounds each command (redis-py's socket timeout: past it
    ``TimeoutError``); ``stall_s`` is how long the oldest command may go unanswered
    before the connection is given up (default: ``timeout_s``, else 1 s), by ``clock``."""

    def __init__(self, url: str, *, connect_timeout_s: float = 0.5,
                 timeout_s: float | None = None, stall_s: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not self.supports(url):
            raise ValueError(f"{url!r}: the call path's connection takes redis:// and unix://")
        params = parse_url(url)
        self.host: str = params.get("host", "localhost")
        self.port: int = int(params.get("port", 6379))
        self.path: str | None = params.get("path")
        self.db = int(params.get("db", 0) or 0)
        self.username: str | None = params.get("username")
        self.password: str | None = params.get("password")
        self.connect_timeout_s = connect_timeout_s
        self.timeout_s = timeout_s
        self.stall_s = stall_s if stall_s is not None else (timeout_s or 1.0)
        self.clock = clock
        self._conn: _Protocol | None = None
        self._closed = False
        self._connecting: asyncio.Lock | None = None
        self.connects = 0  # connections opened (tests, figures)

    @staticmethod
    def supports(url: str) -> bool:
        """True for the URLs this connection can open (not TLS)."""
        try:
            params = parse_url(url)
        except ValueError:
            return False
        return params.get("connection_class") is not SSLConnection

    async def call(self, packed: bytes) -> Any:
        """Send one packed command and return its reply (an error reply raised)."""
        conn = self._conn
        if conn is None or not self._usable(conn):
            if self._closed:
                raise RedisConnectionError("the connection to Redis was closed (aclose)")
            conn = await self._connect()
        future = conn.send(packed)
        if self.timeout_s is None:
            return await future
        try:
            async with asyncio.timeout(self.timeout_s):
                return await future
        except TimeoutError:
            raise RedisTimeoutError(f"Redis did not answer within {self.timeout_s:g} s") from None

    def _usable(self, conn: _Protocol) -> bool:
        """Open, and its oldest command not waiting longer than ``stall_s``."""
        if conn.lost is not None or conn.transport is None or conn.transport.is_closing():
            return False
        return not conn.waiting or self.clock() - conn.waiting[0][1] <= self.stall_s

    async def _connect(self) -> _Protocol:
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            conn = self._conn
            if conn is not None:
                if self._usable(conn):
                    return conn  # another caller connected meanwhile
                conn.abort(RedisConnectionError(f"Redis has not answered for {self.stall_s:g} s"
                                                if conn.lost is None else str(conn.lost)))
            self._conn = None
            loop = asyncio.get_running_loop()
            conn = _Protocol(self.clock)
            try:
                async with asyncio.timeout(self.connect_timeout_s):
                    if self.path is not None:
                        await loop.create_unix_connection(lambda: conn, self.path)
                    else:
                        await loop.create_connection(lambda: conn, self.host, self.port)
                    await self._hello(conn)
            except TimeoutError:
                conn.abort(RedisConnectionError("timed out"))
                raise RedisConnectionError(f"Redis did not answer within {self.connect_timeout_s:g} s"
                                      " at connect") from None
            except OSError as exc:
                conn.abort(RedisConnectionError(str(exc)))
                raise RedisConnectionError(f"cannot connect to Redis: {exc}") from exc
            except BaseException as exc:
                conn.abort(exc if isinstance(exc, RedisError) else RedisConnectionError(str(exc)))
                raise
            self._conn = conn
            self.connects += 1
            return conn

    async def _hello(self, conn: _Protocol) -> None:
        """AUTH and SELECT, pipelined, when the URL asks for them."""
        setup: list[asyncio.Future[Any]] = []
        if self.password is not None:
            auth: tuple[str, ...] = ("AUTH", self.password) if self.username is None else (
                "AUTH", self.username, self.password)
            setup.append(conn.send(pack(auth)))
        if self.db:
            setup.append(conn.send(pack(("SELECT", self.db))))
        for answer in await asyncio.gather(*setup, return_exceptions=True):
            if isinstance(answer, BaseException):
                raise answer

    async def aclose(self) -> None:
        """Close the connection (commands still waiting fail with ``ConnectionError``);
        no command is sent after."""
        self._closed = True
        conn, self._conn = self._conn, None
        if conn is None or conn.transport is None:
            return
        conn.transport.close()
        try:
            async with asyncio.timeout(1.0):
                await asyncio.shield(conn.closed)
        except TimeoutError:
            conn.transport.abort()

