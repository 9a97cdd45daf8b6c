"""Decide with a Redis reservation (cluster mode) against the in-memory path, in one run.

    .venv/bin/python bench/reserve.py --calls 3000

Two Screeners over the same policy (six caps that apply to every call: caller ID per day,
account per hour and per minute, destination per day, distinct callees, concurrent calls;
limits high enough that every call is allowed, so every cluster decision is a round trip)
and a SQLite store each: one embedded (``screen``, caps in memory), one in cluster mode
(``screen_reserving`` against a redis-server this script starts on 127.0.0.1, port 17000 +
OUTGUARD_TEST_OFFSET, default 900). Calls alternate between the two in rounds of 100, so
both see the same load; each call ends right after it is decided (its release goes out in
the background, as in service). Prints a Markdown section for bench/RESULTS.md with the
commit; the figures that matter are the ratios within the run.

    .venv/bin/python bench/reserve.py --socket-timeout-ab --calls 3000

only measures the reservation as the service sends it (``GuardedCaps`` over ``RedisCaps``)
on two clients of one redis-server, with and without redis-py's socket timeout (which
sends each command through ``asyncio.wait_for``: a task per command on Python 3.11),
interleaved in one run: latency and CPU per reserve+release on both sides.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis.asyncio as aioredis
from redis import __version__ as redis_version

from outguard.callfacts import ChannelFacts
from outguard.cluster.caps import CallKeys, CapSpec, RedisCaps
from outguard.cluster.guard import GuardedCaps
from outguard.service import Screener
from outguard.store.aio import AsyncStore
from outguard.store.sqlite import SQLiteStore
from outguard.testing.servers import REDIS_BASE_PORT, RedisServer
from rules.policy import parse_policy

POLICY = """
default_region = "CN"
timezone = "Asia/Shanghai"
"""
CAPS = (("caller_daily", "caller_id", "day"), ("acct_hour", "account", "hour"),
        ("acct_minute", "account", "minute"), ("dest_day", "destination", "day"),
        ("callees", "distinct_callees", "day"), ("conc", "concurrent_account", "day"))
for rule, scope, window in CAPS:
    POLICY += (f'\n[[rules]]\nid = "{rule}"\nkind = "cap"\nscope = "{scope}"\n'
               f'limit = 1000000\nwindow = "{window}"\n')


DAY = 86400


def pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def facts(i: int, tag: str) -> ChannelFacts:
    return ChannelFacts(adapter="ari", channel_id=f"{tag}-{i}", channel_name="PJSIP/agent-1",
                        dialed=f"139{i:08d}", caller_id=f"01088{i % 50:06d}",
                        account=f"a{i % 200}")


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a process so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(url: str, calls: int, workdir: Path, redis_pid: int) -> dict[str, float]:
    policy = parse_policy(POLICY)
    local_store = AsyncStore(SQLiteStore(workdir / "local.db"))
    shared_store = AsyncStore(SQLiteStore(workdir / "shared.db"))
    caps = RedisCaps.from_url(url, prefix="bench:", timeout_s=5)
    guard = GuardedCaps(caps, history=shared_store.store.iter_allowed_calls_since,
                        timeout_s=5)
    local = Screener(local_store, policy)
    cluster = Screener(shared_store, policy, shared=guard)
    await local.start()
    await cluster.start()
    in_memory: list[float] = []
    reserving: list[float] = []
    try:
        for i in range(200):  # warm up both: caches, the script loaded, the connection open
            local.ended(local.screen(facts(i, "wl")).id, 16)
            cluster.ended((await cluster.screen_reserving(facts(i, "wc"))).id, 16)
        await caps.client.config_resetstat()
        cpu = {"mem": 0.0, "res": 0.0, "redis": 0.0}
        for start in range(0, calls, 100):
            c0 = time.process_time()
            for i in range(start, min(calls, start + 100)):
                t0 = time.perf_counter()
                d = local.screen(facts(i, "l"))
                in_memory.append((time.perf_counter() - t0) * 1e6)
                assert d.allowed, d.verdict
                local.ended(d.id, 16)
            c1, r1 = time.process_time(), proc_cpu(redis_pid)
            for i in range(start, min(calls, start + 100)):
                t0 = time.perf_counter()
                d = await cluster.screen_reserving(facts(i, "c"))
                reserving.append((time.perf_counter() - t0) * 1e6)
                assert d.allowed, d.verdict
                cluster.ended(d.id, 16)
            await asyncio.sleep(0)  # let the releases go out
            cpu["mem"] += c1 - c0
            cpu["res"] += time.process_time() - c1
            cpu["redis"] += proc_cpu(redis_pid) - r1
        stats = await caps.client.info("commandstats")
        script_us = float(stats.get("cmdstat_evalsha", {}).get("usec_per_call", 0.0))
        scripts = float(stats.get("cmdstat_evalsha", {}).get("calls", 0.0))
        ping: list[float] = []
        for _ in range(min(calls, 2000)):
            t0 = time.perf_counter()
            await caps.client.ping()
            ping.append((time.perf_counter() - t0) * 1e6)
    finally:
        await local.stop()
        await cluster.stop()
        await local_store.aclose()
        await shared_store.aclose()
        await caps.aclose()
    return {"calls": calls,
            "mem_p50": pct(in_memory, 50), "mem_p99": pct(in_memory, 99),
            "res_p50": pct(reserving, 50), "res_p99": pct(reserving, 99),
            "ping_p50": pct(ping, 50), "ping_p99": pct(ping, 99), "script_us": script_us,
            "scripts": scripts, "mem_cpu_us": cpu["mem"] / calls * 1e6,
            "res_cpu_us": cpu["res"] / calls * 1e6, "redis_cpu_us": cpu["redis"] / calls * 1e6}


# ---------------------------------------------------------------- socket timeout A/B

AB_CAPS = [CapSpec(rule, scope, "", {"day": DAY, "hour": 3600, "minute": 60}[window],
                   1_000_000) for rule, scope, window in CAPS]


def ab_specs(i: int) -> list[CapSpec]:
    """The six caps of one call (keys as the policy would fill them)."""
    keys = {"caller_id": f"+8610{i % 50:04d}", "account": f"a{i % 200}",
            "destination": f"+86139{i:08d}", "distinct_callees": f"a{i % 200}",
            "concurrent_account": f"a{i % 200}"}
    return [dataclasses.replace(c, key=keys[c.scope],
                                window_s=0 if c.scope.startswith("concurrent") else c.window_s)
            for c in AB_CAPS]


async def socket_timeout_ab(url: str, calls: int, redis_pid: int,
                            timeout_s: float) -> dict[str, dict[str, float]]:
    """The reservation as the service sends it (``GuardedCaps`` over ``RedisCaps``: every
    call bounded by ``asyncio.timeout``), on two clients of the same redis-server: "A"
    with redis-py's socket timeout as ``outguard.server`` sets it, "B" without one (the
    guard's bound only). Rounds of 100 reserve+release, alternating A and B (the first of
    each round alternating too); CPU of this process and of redis-server per round."""
    socket_s = max(0.5, timeout_s * 2)
    clients = {"A": aioredis.Redis.from_url(url, socket_timeout=socket_s,
                                            socket_connect_timeout=socket_s),
               "B": aioredis.Redis.from_url(url, socket_timeout=None,
                                            socket_connect_timeout=socket_s)}
    guards = {k: GuardedCaps(RedisCaps(c, prefix=f"ab{k}:"), timeout_s=timeout_s)
              for k, c in clients.items()}
    now = time.time()
    out: dict[str, dict[str, list[float] | float]] = {
        k: {"reserve": [], "release": [], "cpu": 0.0, "redis": 0.0} for k in guards}
    failed: dict[str, int] = {}

    async def one(g: GuardedCaps, tag: str, i: int) -> tuple[float, float]:
        call = CallKeys(f"{tag}{i}", "t1", f"a{i % 200}", f"+8610{i % 50:04d}",
                        f"+86139{i:08d}")
        t0 = time.perf_counter()
        answer = await g.reserve(call, ab_specs(i), now + i * 0.001)
        t1 = time.perf_counter()
        if not answer.allowed or answer.unavailable:  # past the guard's bound: counted
            failed[tag[0]] = failed.get(tag[0], 0) + 1
        await g.release(call.call_id, now + i * 0.001)
        return (t1 - t0) * 1e6, (time.perf_counter() - t1) * 1e6

    try:
        for k, g in guards.items():
            await g.check()  # a fresh prefix: the counters are complete
            for i in range(200):
                await one(g, f"w{k}", i)
        for n, start in enumerate(range(0, calls, 100)):
            for k in ("A", "B") if n % 2 == 0 else ("B", "A"):
                got = out[k]
                c0, r0 = time.process_time(), proc_cpu(redis_pid)
                for i in range(start, min(calls, start + 100)):
                    reserve_us, release_us = await one(guards[k], k, i)
                    got["reserve"].append(reserve_us)  # type: ignore[union-attr]
                    got["release"].append(release_us)  # type: ignore[union-attr]
                got["cpu"] += time.process_time() - c0  # type: ignore[operator]
                got["redis"] += proc_cpu(redis_pid) - r0  # type: ignore[operator]
    finally:
        for c in clients.values():
            await c.aclose()
    figures: dict[str, dict[str, float]] = {}
    for k, got in out.items():
        res, rel = got["reserve"], got["release"]
        assert isinstance(res, list) and isinstance(rel, list)
        both = [a + b for a, b in zip(res, rel, strict=True)]
        figures[k] = {"calls": len(res), "failed": failed.get(k, 0),
                      "reserve_p50": pct(res, 50), "reserve_p99": pct(res, 99),
                      "both_p50": pct(both, 50), "both_p99": pct(both, 99),
                      "cpu_us": float(got["cpu"]) / len(res) * 1e6,  # type: ignore[arg-type]
                      "redis_cpu_us": float(got["redis"]) / len(res) * 1e6}  # type: ignore[arg-type]
    return figures


def print_ab(r: dict[str, dict[str, float]], offset: int, calls: int, commit: str,
             timeout_s: float) -> None:
    load = os.getloadavg()
    a, b = r["A"], r["B"]
    print(f"""## redis-py's socket timeout on the reservation: A/B (bench/reserve.py --socket-timeout-ab)

Command: `OUTGUARD_TEST_OFFSET={offset} .venv/bin/python bench/reserve.py --socket-timeout-ab --calls {calls}`;
code: git {commit}; Python {sys.version.split()[0]}, redis-py {redis_version}; \
{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}.
`GuardedCaps` (timeout {timeout_s * 1000:g} ms, `asyncio.timeout`) over two clients of one
redis-server: A with redis-py's socket timeout ({max(0.5, timeout_s * 2):g} s, as
`outguard.server` sets it), B without; six caps a call, reserve then release, rounds of
100 alternating, {calls} calls each; answers past the guard's bound (failed by the caps'
policy): A {a['failed']:.0f}, B {b['failed']:.0f}.

| client | reserve p50 / p99 | reserve+release p50 / p99 | CPU per reserve+release: outguard / redis-server |
|---|---|---|---|
| A: socket timeout | {a['reserve_p50']:.0f} / {a['reserve_p99']:.0f} us | {a['both_p50']:.0f} / {a['both_p99']:.0f} us | {a['cpu_us']:.0f} / {a['redis_cpu_us']:.0f} us |
| B: none (the guard's bound) | {b['reserve_p50']:.0f} / {b['reserve_p99']:.0f} us | {b['both_p50']:.0f} / {b['both_p99']:.0f} us | {b['cpu_us']:.0f} / {b['redis_cpu_us']:.0f} us |
| B / A | {b['reserve_p50'] / a['reserve_p50']:.2f} / {b['reserve_p99'] / a['reserve_p99']:.2f} | {b['both_p50'] / a['both_p50']:.2f} / {b['both_p99'] / a['both_p99']:.2f} | {b['cpu_us'] / a['cpu_us']:.2f} / {b['redis_cpu_us'] / a['redis_cpu_us']:.2f} |
""")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=3000)
    ap.add_argument("--socket-timeout-ab", action="store_true",
                    help="only the A/B of redis-py's socket timeout on the reservation")
    ap.add_argument("--timeout-ms", type=float, default=250.0,
                    help="the guard's bound ([cluster] timeout_ms) in the A/B (default 250)")
    args = ap.parse_args()
    offset = int(os.environ.get("OUTGUARD_TEST_OFFSET", "900"))
    commit = subprocess.run(["git", "log", "-1", "--format=%h"], capture_output=True,
                            text=True).stdout.strip()
    redis = RedisServer(REDIS_BASE_PORT + offset, "bench-reserve")
    redis.start()
    if args.socket_timeout_ab:
        try:
            assert redis.proc is not None
            ab = asyncio.run(socket_timeout_ab(redis.url, args.calls, redis.proc.pid,
                                               args.timeout_ms / 1000))
        finally:
            redis.stop()
        print_ab(ab, offset, args.calls, commit, args.timeout_ms / 1000)
        return
    try:
        with tempfile.TemporaryDirectory(prefix="outguard-bench-") as tmp:
            assert redis.proc is not None
            r = asyncio.run(measure(redis.url, args.calls, Path(tmp), redis.proc.pid))
    finally:
        redis.stop()
    load = os.getloadavg()
    print(f"""## Decide with a Redis reservation vs in memory (bench/reserve.py)

Command: `OUTGUARD_TEST_OFFSET={offset} .venv/bin/python bench/reserve.py --calls {args.calls}`;
code: git {commit}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; load average
{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (shared 2-core host). Six caps apply to every
call; every call is allowed; {r['calls']:.0f} calls each way, alternating in rounds of 100.

| path | p50 | p99 |
|---|---|---|
| embedded: `Screener.screen`, caps in memory | {r['mem_p50']:.0f} us | {r['mem_p99']:.0f} us |
| cluster: `Screener.screen_reserving`, one EVALSHA to redis-server on 127.0.0.1 | {r['res_p50']:.0f} us | {r['res_p99']:.0f} us |
| bare PING to the same Redis, same run | {r['ping_p50']:.0f} us | {r['ping_p99']:.0f} us |
| ratio cluster / embedded | {r['res_p50'] / r['mem_p50']:.1f}x | {r['res_p99'] / r['mem_p99']:.1f}x |

Redis's own time in the script (INFO commandstats, EVALSHA usec_per_call, reserves and
releases together, {r['scripts']:.0f} scripts): {r['script_us']:.0f} us per script.

CPU per call (the time the host gave each side, whatever the wait for it):

| per call | CPU |
|---|---|
| embedded: the outguard process (decision, call log) | {r['mem_cpu_us']:.0f} us |
| cluster: the outguard process (decision, call log, reserve and release in redis-py) | {r['res_cpu_us']:.0f} us |
| cluster: redis-server (reserve and release scripts, its event loop) | {r['redis_cpu_us']:.0f} us |
""")


if __name__ == "__main__":
    main()
