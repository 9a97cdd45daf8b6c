"""The reservation script makes fewer Redis calls than the previous version's and keeps its
data: a rolling upgrade runs both on one Redis.

The same random sequence of reserves (some blocked), releases, refreshes, unscreened calls
and replays, over hours and days of calls, is run three ways on the real redis-server:
by the previous version's script (``reserve_before.lua``, 9f97332), by the current one,
and alternating between the two on one key prefix (a rolling upgrade). Every answer is
the same, and so is what Redis holds at the end: the same keys, counts, callee sets, live
slots and call records, each key with an expiry (the same, give or take the seconds the
test took). Hash fields that every window has left behind are not compared: the previous
script deleted the field ``keep`` buckets back on every call, the current one on a
bucket's first call and sweeps the rest once a hash holds too many, and a replay of an
old call may write one in between (never read)."""

from __future__ import annotations

import dataclasses
import random
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from outguard.cluster.caps import CallKeys, CapSpec, RedisCaps
from outguard.testing.servers import RedisServer

BEFORE = (Path(__file__).with_name("reserve_before.lua")).read_text(encoding="utf-8")
NOW = 1_764_000_000.0
DAY = 86400
#: bucket hashes by their kind ("r": rates, "d": destinations) and resolution suffix: how
#: many buckets back any window reads
KEEP = {("r", "1"): 120, ("r", "60"): 1500, ("r", "3600"): 26, ("r", "86400"): 8,
        ("d", "60"): 8 * 1440, ("d", "3600"): 192}
TTL_SLACK_S = 60  # the seconds the test itself may take between two runs' writes
REPLAY_AGE_S = 3 * 3600  # the oldest call a replay counts, before the op's time

Op = tuple[Any, ...]


def caps_of(call: CallKeys) -> list[CapSpec]:
    return [CapSpec("conc", "concurrent_account", call.account, 0, 3),
            CapSpec("minute", "account", call.account, 60, 4),
            CapSpec("caller_hour", "caller_id", call.caller_id, 3600, 12),
            CapSpec("tenant_day", "tenant", call.tenant, DAY, 400, enforce=False),
            CapSpec("dest_day", "destination", call.destination, DAY, 3),
            CapSpec("callees", "distinct_callees", call.account, DAY, 9)]


def operations(seed: int, n: int = 400) -> list[Op]:
    rng = random.Random(seed)
    at = NOW
    ops: list[Op] = []
    calls: list[CallKeys] = []
    for i in range(n):
        at += rng.choice((0.0, 0.3, 0.8, 2.0, 7.0, 50.0, 700.0, 5000.0, 30000.0))
        call = CallKeys(f"c{i}", f"t{rng.randrange(2)}", f"a{rng.randrange(3)}",
                        f"+8610{rng.randrange(3)}", f"+86139{rng.randrange(8):08d}")
        kind = rng.choices(("reserve", "release", "refresh", "take", "record", "count"),
                           (12, 5, 2, 1, 1, 2))[0]
        if kind == "reserve" or not calls:
            ops.append(("reserve", call, at))
            calls.append(call)
        elif kind == "release":
            ops.append(("release", rng.choice(calls).call_id, at))
        elif kind == "refresh":
            up = rng.sample(calls, min(len(calls), 4))
            ops.append(("refresh", [(c.call_id, c.tenant, c.account) for c in up], at))
        elif kind == "take":
            ops.append(("take", call, at))
            calls.append(call)
        elif kind == "record":  # a replay of a call let through earlier
            ops.append(("record", call, at - rng.uniform(0, REPLAY_AGE_S)))
        else:
            cap = rng.choice(caps_of(call))
            ops.append(("count", cap, call.tenant, at))
    return ops


async def run(ops: Sequence[Op], clients: Sequence[RedisCaps]) -> list[Any]:
    answers: list[Any] = []
    for n, op in enumerate(ops):
        caps = clients[n % len(clients)]
        kind = op[0]
        if kind == "reserve":
            answers.append(await caps.reserve(op[1], caps_of(op[1]), op[2]))
        elif kind == "release":
            answers.append(await caps.release(op[1], op[2]))
        elif kind == "refresh":
            answers.append(await caps.refresh(op[1], op[2]))
        elif kind == "take":
            answers.append(await caps.take(op[1], op[2]))
        elif kind == "record":
            c: CallKeys = op[1]
            answers.append(await caps.rebuild([(c.call_id, c.tenant, c.account, c.caller_id,
                                                c.destination, op[2])]))
        else:
            cap: CapSpec = op[1]
            answers.append(await caps.count(cap.scope, cap.key, cap.window_s, op[3], op[2]))
    return answers


async def held(caps: RedisCaps, now: float) -> dict[str, tuple[Any, int]]:
    """What Redis holds under ``caps.prefix`` (without it): each key's content and
    expiry in seconds (-1: none); hash fields every window has left behind, and slots
    expired by ``now``, left out."""
    client: Any = caps.client
    out: dict[str, tuple[Any, int]] = {}
    async for raw in client.scan_iter(match=caps.prefix + "*", count=1000):
        key = raw.decode()
        kind = (await client.type(key)).decode()
        content: Any
        if kind == "hash":
            fields = {k.decode(): v.decode().replace(caps.prefix, "")  # slots name keys
                      for k, v in (await client.hgetall(key)).items()}
            keep = KEEP.get((key.removeprefix(caps.prefix)[:1], key.rsplit(":", 1)[-1]))
            if keep is not None and ":call:" not in key and all(
                    f.lstrip("-").isdigit() for f in fields):
                newest = max(int(f) for f in fields)
                fields = {f: v for f, v in fields.items() if int(f) > newest - keep}
            content = fields
        elif kind == "set":
            content = sorted(m.decode() for m in await client.smembers(key))
        elif kind == "zset":
            content = sorted((m.decode(), s) for m, s in
                             await client.zrangebyscore(key, f"({now!r}", "+inf", withscores=True))
        else:
            content = (await client.get(key) or b"").decode()
        out[key.removeprefix(caps.prefix)] = (content, await client.ttl(key))
    return out


@pytest.fixture
async def three(redis_server: RedisServer) -> AsyncIterator[tuple[RedisCaps, RedisCaps,
                                                                   RedisCaps, RedisCaps]]:
    """Clients on fresh prefixes: the previous script, the current one, and the two
    sharing one prefix (a rolling upgrade)."""
    tag = uuid.uuid4().hex[:8]
    before = RedisCaps.from_url(redis_server.url, prefix=f"b{tag}:", ttl_s=60, timeout_s=10)
    before.script = BEFORE
    now = RedisCaps.from_url(redis_server.url, prefix=f"n{tag}:", ttl_s=60, timeout_s=10)
    old = RedisCaps.from_url(redis_server.url, prefix=f"m{tag}:", ttl_s=60, timeout_s=10)
    old.script = BEFORE
    new = RedisCaps.from_url(redis_server.url, prefix=f"m{tag}:", ttl_s=60, timeout_s=10)
    clients = (before, now, old, new)
    for c in clients:
        await c.mark_complete(NOW)
    try:
        yield clients
    finally:
        for c in clients:
            await c.aclose()


def assert_same(got: dict[str, tuple[Any, int]], want: dict[str, tuple[Any, int]]) -> None:
    """The same keys and contents; every key expires, when the other's does. A bucket
    hash's expiry is counted from the time of the call that sets it (``(b + keep + 1) *
    res - now``): the previous script set it at every call, so a replay of a call older
    than its bucket's first (up to ``REPLAY_AGE_S``) pushed it later by that age; the
    current one sets it at the bucket's first call, which a live call is."""
    assert got.keys() == want.keys()
    for key, (content, ttl) in want.items():
        assert got[key][0] == content, key
        if key == "epoch":
            continue
        earlier = REPLAY_AGE_S if key.startswith(("r:", "d:")) else 0
        assert ttl > 0 and ttl - earlier - TTL_SLACK_S <= got[key][1] <= ttl + TTL_SLACK_S, (
            key, got[key][1], ttl)


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_both_scripts_answer_alike_and_leave_the_same_data_alone_and_mixed(
    three: tuple[RedisCaps, RedisCaps, RedisCaps, RedisCaps], seed: int,
) -> None:
    before, now, old, new = three
    assert before.script != now.script
    ops = operations(seed)
    want = await run(ops, [before])
    assert sum(1 for a in want if getattr(a, "allowed", True) is False) > 10  # caps bite
    assert await run(ops, [now]) == want
    assert await run(ops, [old, new]) == want  # a rolling upgrade: alternating calls
    end = ops[-1][-1]
    reference = await held(before, end)
    assert len(reference) > 20
    assert_same(await held(now, end), reference)
    assert_same(await held(old, end), reference)


async def test_the_current_script_makes_fewer_redis_calls_per_reservation(
    three: tuple[RedisCaps, RedisCaps, RedisCaps, RedisCaps],
) -> None:
    """Counted by Redis itself (INFO commandstats counts the commands a script runs)."""
    before, now, _, _ = three

    async def commands(caps: RedisCaps, tag: str) -> int:
        stats = await caps.client.info("commandstats")
        total = sum(int(v["calls"]) for k, v in stats.items()
                    if k not in ("cmdstat_evalsha", "cmdstat_info"))
        for i in range(50):
            call = CallKeys(f"{tag}{i}", "t1", f"a{i % 5}", f"+8610{i % 2}", f"+86139{i:08d}")
            roomy = [dataclasses.replace(c, limit=10**6) for c in caps_of(call)]
            assert (await caps.reserve(call, roomy, NOW + i * 0.4)).allowed
        stats = await caps.client.info("commandstats")
        return sum(int(v["calls"]) for k, v in stats.items()
                   if k not in ("cmdstat_evalsha", "cmdstat_info")) - total

    # the session's Redis is shared by the tests run so far, not by concurrent ones
    cut, was = await commands(now, "n"), await commands(before, "b")
    assert cut < was * 0.7, (cut, was)
