"""Counters and live-call reservations shared by several outguard instances, on Redis.

One round trip per call: ``RedisCaps.reserve`` runs ``reserve.lua`` (EVALSHA), which
counts every cap that applies to the call and, only if none is reached, records the call
in the rate counters and takes one live-call slot per concurrency key, atomically. The
answer is idempotent per call id (a retry returns the first answer and counts nothing).
``release`` frees the slots once, on the call's outcome; ``refresh`` extends the slots
of calls still up (an instance that died stops refreshing and its slots expire after
``ttl_s``). Counts are sums of increments and set cardinalities: they cannot go negative,
and no release path can remove another call's slot (the failure class of OpenSIPS
fraud_detection #949/#2079 and shared profiles #2385).

Windows are bucketed as in ``rules.counters.InMemoryCounters`` (1 s / 1 min / 1 day
buckets, destinations per minute), so a window counts the same calls on both and caps err
on the side of blocking. ``rebuild`` replays allowed calls from the call log into an
emptied Redis (idempotent per call id as well).

The call path's scripts go over a connection of their own (``cluster.wire``: one socket,
commands pipelined, replies parsed as they arrive), not redis-py's pool: redis-py spent
more CPU per command than Redis spends running the script (bench/RESULTS.md).

Times are the instances' clocks (epoch seconds): keep them in sync (NTP).
Needs one Redis >= 7 or Valkey primary (not Redis Cluster: keys are not hash-tagged).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from importlib import resources
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisError

from outguard.cluster.model import CallKeys, Reservation
from outguard.cluster.wire import Wire, pack
from rules.deferred import CapSpec
from rules.policy_validate import CAP_SCOPES

__all__ = ["CapSpec", "CallKeys", "CountsIncomplete", "Reservation", "RedisCaps", "SCOPES"]

logger = logging.getLogger(__name__)

SCOPES = CAP_SCOPES
PING = pack(("PING",))
SCRIPT = resources.files("outguard.cluster").joinpath("reserve.lua").read_text(encoding="utf-8")


class CountsIncomplete(RedisError):
    """Redis answers but its counters are not complete (emptied and not yet rebuilt from
    the call log): the caps' failure policy applies until they are."""


class RedisCaps:
    """The caps and live-call slots of a cluster; see the module docstring.

    ``day_offset_s`` shifts the calendar day of ``distinct_callees`` as in
    ``InMemoryCounters`` (28800 for Asia/Shanghai midnight).

    The scripts (reserve, release, take, refresh, count) and the probe go over ``wire``
    (``cluster.wire``: one pipelined connection, the call path's) when there is one, else
    over ``client``'s pool; ``client`` (redis-py) does the rest (the rebuild's pipelines,
    the epoch marker, tests' and tools' reads). ``script`` is the text it loads (an
    older one runs beside it in the rolling-upgrade test).
    """

    def __init__(self, client: aioredis.Redis, *, wire: Wire | None = None, prefix: str = "og:",
                 ttl_s: float = 7200.0, dedup_s: int = 86400, day_offset_s: int = 0) -> None:
        self.client = client
        self.wire = wire
        self.script = SCRIPT
        self.prefix = prefix
        self.ttl_s = ttl_s
        self.dedup_s = dedup_s
        self.day_offset_s = day_offset_s
        self._sha: str | None = None

    @classmethod
    def from_url(cls, url: str, *, timeout_s: float | None = 0.5,
                 connect_timeout_s: float | None = None, stall_s: float | None = None,
                 wire: bool = True, **options: Any) -> RedisCaps:
        """Clients of its own: the call path's ``Wire`` (unless ``wire`` is False, or
        the URL is ``rediss://``: TLS goes through redis-py) and redis-py's for the rest.
        ``timeout_s`` bounds every command (redis-py's socket timeout on every read and
        write); None sets none, and then every call must be bounded by its caller
        (``GuardedCaps`` bounds each with ``asyncio.timeout``; redis-py then sends
        without ``asyncio.wait_for``, a task per command on Python 3.11).
        ``connect_timeout_s`` bounds opening a connection (default: ``timeout_s``, or
        0.5 s without one); ``stall_s``: how long the wire's oldest command may wait for
        its answer before the connection is given up (``Wire``)."""
        connect = connect_timeout_s if connect_timeout_s is not None else (timeout_s or 0.5)
        client = aioredis.Redis.from_url(url, socket_timeout=timeout_s,
                                         socket_connect_timeout=connect)
        line = Wire(url, connect_timeout_s=connect, timeout_s=timeout_s, stall_s=stall_s) \
            if wire and Wire.supports(url) else None
        return cls(client, wire=line, **options)

    async def aclose(self) -> None:
        try:
            if self.wire is not None:
                await self.wire.aclose()
        finally:
            await self.client.aclose()

    def _day(self, now: float) -> str:
        return str(int((now + self.day_offset_s) // 86400))

    async def _run(self, *args: Any) -> Any:
        """EVALSHA the script; load it when Redis does not know it (restarted, SCRIPT FLUSH)
        and retry once on a dropped connection (a restarted Redis leaves the pool's
        connections dead): safe, every operation is idempotent per call id."""
        for attempt in range(3):
            try:
                if self._sha is None:
                    self._sha = await self._script_load()
                return await self._evalsha(pack(("EVALSHA", self._sha, 0, self.prefix, *args)))
            except NoScriptError:
                self._sha = None
            except RedisConnectionError:
                if attempt:
                    raise
        raise NoScriptError("the reservation script could not be loaded")

    async def _script_load(self) -> str:
        if self.wire is not None:
            return _text(await self.wire.call(pack(("SCRIPT", "LOAD", self.script))))
        return str(await self.client.script_load(self.script))

    async def _evalsha(self, packed: bytes) -> Any:
        """Send one packed command and read its answer: over the wire when there is one,
        else on a pooled connection of redis-py's, as ``client.evalsha`` does it without
        redis-py's per-command machinery (argument encoding one by one, retry wrapper,
        observability hooks). Errors are redis-py's own (``NoScriptError``,
        ``ConnectionError``); a connection cut mid-command (a timeout, a cancellation) is
        closed by redis-py, never handed back with an answer pending."""
        if self.wire is not None:
            return await self.wire.call(packed)
        pool = self.client.connection_pool
        conn = await pool.get_connection()  # type: ignore[no-untyped-call]
        try:
            await conn.send_packed_command(packed, check_health=False)
            return await conn.read_response()
        finally:
            await pool.release(conn)

    async def ping(self) -> bool:
        """True when Redis answers on the call path's connection and on redis-py's (the
        rebuild and the epoch marker use it); one retry each on a dropped connection,
        which also replaces a connection a restarted Redis left dead."""
        if self.wire is not None and not await _again_if_dropped(self._wire_ping):
            return False
        return await _again_if_dropped(self._pool_ping)

    async def _wire_ping(self) -> bool:
        assert self.wire is not None
        return bool(await self.wire.call(PING) == b"PONG")

    async def _pool_ping(self) -> bool:
        return bool(await self.client.ping())

    # -- the call path ---------------------------------------------------------------------

    async def reserve(self, call: CallKeys, caps: Sequence[CapSpec], now: float) -> Reservation:
        """Check every cap and, if none is reached, count the call and take its slots."""
        args: list[Any] = [
            "reserve", call.call_id, repr(float(now)), repr(float(self.ttl_s)), self.dedup_s,
            self._day(now), call.tenant, call.account, call.caller_id, call.destination,
            len(caps),
        ]
        for cap in caps:
            key = f"{call.tenant}\0{cap.key}" if cap.scope == "destination" else cap.key
            args += [cap.rule_id, cap.scope, key, cap.window_s, cap.limit,
                     "1" if cap.enforce else "0"]
        verdict, rule, count, limit, shadow = await self._run(*args)
        verdict = _text(verdict)
        if verdict == "unready":
            raise CountsIncomplete("the shared counters are not rebuilt yet")
        duplicate = verdict.startswith("dup-")
        verdict = verdict.removeprefix("dup-")
        return Reservation(
            allowed=verdict in ("allow", "released"), rule_id=_text(rule), count=int(count),
            limit=int(limit), shadow=tuple(s for s in _text(shadow).split(",") if s),
            duplicate=duplicate,
        )

    async def take(self, call: CallKeys, now: float) -> bool:
        """A call that went out unscreened (screening failed, fail-open): count it and take
        its slots whatever the caps say (no cap can refuse a call already out). True when
        counted now, False when it had been (idempotent per call id); ``CountsIncomplete``
        while the counters are not rebuilt."""
        answer = int(await self._run(
            "take", call.call_id, repr(float(now)), repr(float(self.ttl_s)), self.dedup_s,
            self._day(now), call.tenant, call.account, call.caller_id, call.destination))
        if answer < 0:
            raise CountsIncomplete("the shared counters are not rebuilt yet")
        return bool(answer)

    async def mark_complete(self, now: float) -> None:
        """Declare the counters complete (a fresh cluster, or rebuilt from the call log):
        reserves answer from now on."""
        await self.client.set(self.prefix + "epoch", repr(float(now)))

    async def release(self, call_id: str, now: float) -> bool:
        """The call ended: free its slots. True the first time, False after (a no-op)."""
        return bool(await self._run("release", call_id, repr(float(now))))

    async def void(self, call: CallKeys, at: float) -> bool:
        """A call counted at ``at`` (reserved, taken or replayed) that never went out
        after all: take its counts back and free its slots. True the first time, False
        after, or for a call never counted (idempotent per call id)."""
        return bool(await self._run("void", call.call_id, repr(float(at)), self._day(at),
                                    call.tenant, call.account, call.caller_id,
                                    call.destination))

    async def refresh(self, calls: Iterable[tuple[str, str, str]], now: float) -> int:
        """Extend the slots of the calls still up, (call id, tenant, account) each, by
        ``ttl_s`` (a call Redis forgot, emptied, or knows only from a replay takes its
        slots); return how many were live, or -1 while the counters are not complete
        (emptied, not rebuilt yet: nothing is taken, try again)."""
        args: list[str] = []
        for call_id, tenant, account in calls:
            args += [call_id, tenant, account]
        if not args:
            return 0
        return int(await self._run("refresh", repr(float(now)), repr(float(self.ttl_s)), *args))

    # -- reads and recovery ----------------------------------------------------------------

    async def count(self, scope: str, key: str, window_s: int, now: float,
                    tenant: str = "") -> int:
        """What a cap of ``scope`` would count now (for /metrics, reports and tests)."""
        if scope not in SCOPES:
            raise ValueError(f"unknown cap scope {scope!r}")
        if scope == "destination":
            key = f"{tenant}\0{key}"
        return int(await self._run("count", repr(float(now)), scope, key, window_s,
                                   self._day(now)))

    async def rebuild(self, rows: Iterable[tuple[str, str, str, str, str, float]],
                      batch: int = 1000) -> int:
        """Replay allowed calls (call_id, tenant, account, caller_id, destination, at) into
        the counters, pipelined; a call already counted is skipped. Returns how many were
        newly counted."""
        try:
            self._sha = await self.client.script_load(self.script)  # Redis may have restarted
        except RedisConnectionError:
            self._sha = await self.client.script_load(self.script)
        added = 0
        pipe = self.client.pipeline(transaction=False)
        pending = 0
        for call_id, tenant, account, caller_id, destination, at in rows:
            pipe.evalsha(self._sha, 0, self.prefix, "record", call_id, repr(float(at)),
                         self.dedup_s, self._day(at), tenant, account, caller_id, destination)
            pending += 1
            if pending >= batch:
                added += sum(int(x) for x in await pipe.execute())
                pending = 0
        if pending:
            added += sum(int(x) for x in await pipe.execute())
        return added


async def _again_if_dropped(probe: Callable[[], Awaitable[bool]]) -> bool:
    try:
        return await probe()
    except RedisConnectionError:
        return await probe()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
